"""Host memory ports: how a client (queue manager, AXI4 port, RDMA engine) asks the DMA engines
for transfers, and multiplexers that let several clients share one engine.

A **read port** (:func:`DmaReadPortSignature`, client's view): the client offers a
:class:`~amnic.dma.commands.DmaCommand` on ``cmd``; the engine returns exactly ``length`` bytes
on ``data`` (packed: byte 0 in lane 0 of the first beat, ``last`` on the final beat) and one
:class:`~amnic.dma.commands.DmaStatus` on ``status``, both in command order.

A **write port** (:func:`DmaWritePortSignature`): the client offers a command on ``cmd`` and its
``length`` bytes on ``data`` (packed, ``last`` on the final beat); the engine returns one status
per command, in order, once the data has left for the host.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.stream import PacketLayout, PacketSignature

from .commands import MAX_TRANSFER, DmaCommand, DmaStatus

__all__ = [
    "DmaReadPortSignature", "DmaWritePortSignature", "DmaReadMux", "DmaWriteMux", "ReadBuffer",
    "round_robin_grant",
]


def DmaReadPortSignature(width):
    """A read port from the client's side (``cmd`` out; ``data``, ``status`` in)."""
    return wiring.Signature({
        "cmd": Out(stream.Signature(DmaCommand)),
        "data": In(PacketSignature(width, user_width=0)),
        "status": In(stream.Signature(DmaStatus)),
    })


def DmaWritePortSignature(width):
    """A write port from the client's side (``cmd``, ``data`` out; ``status`` in)."""
    return wiring.Signature({
        "cmd": Out(stream.Signature(DmaCommand)),
        "data": Out(PacketSignature(width, user_width=0)),
        "status": In(stream.Signature(DmaStatus)),
    })


def round_robin_grant(m, requests, last, name):
    """Index of the first set bit of ``requests`` after index ``last`` (wrapping), and whether
    any is set. Combinational; ``last`` is the caller's register of the previous grant."""
    n = len(requests)
    grant = Signal(range(n), name=f"{name}_grant")
    any_request = Signal(name=f"{name}_any")
    m.d.comb += any_request.eq(requests.any())
    # Scan from last+1 to last+n: the last assignment in priority order wins, so walk backwards.
    for offset in reversed(range(1, n + 1)):
        for k in range(n):
            with m.If((last == k) & requests[(k + offset) % n]):
                m.d.comb += grant.eq((k + offset) % n)
    return grant, any_request


class _Mux(wiring.Component):
    """Shared part of the read and write multiplexers: command arbitration and the FIFOs that
    remember which client each outstanding command belongs to. Subclasses say how the data
    stream is routed (:meth:`_route_data`)."""

    def __init__(self, port_signature, clients, outstanding):
        if clients < 1:
            raise ValueError(f"need at least one client, not {clients}")
        self.clients = clients
        self.outstanding = outstanding
        members = {f"c{k}": In(port_signature) for k in range(clients)}
        members["engine"] = Out(port_signature)
        super().__init__(members)

    def ports(self):
        return [getattr(self, f"c{k}") for k in range(self.clients)]

    def elaborate(self, platform):
        m = Module()
        bits = max(1, ceil_log2(self.clients))
        m.submodules.data_route = data_route = fifo.SyncFIFO(width=bits, depth=self.outstanding)
        m.submodules.status_route = status_route = fifo.SyncFIFO(
            width=bits, depth=self.outstanding)
        self._arbitrate(m, [data_route, status_route])
        self._route_status(m, status_route)
        data = self.engine.data
        m.d.comb += data_route.r_en.eq(data.valid & data.ready & data.payload.last)
        for k, port in enumerate(self.ports()):
            self._route_data(m, port, data_route.r_rdy & (data_route.r_data == k))
        return m

    def _arbitrate(self, m, fifos):
        """Pass one client's command per cycle, round robin; push its index into ``fifos``."""
        ports = self.ports()
        last = Signal(range(self.clients), init=self.clients - 1)
        grant, any_request = round_robin_grant(m, Cat(port.cmd.valid for port in ports), last,
                                               "cmd")
        room = Signal()  # every route FIFO can take the client's index
        m.d.comb += room.eq(Cat(f.w_rdy for f in fifos).all())
        for f in fifos:
            m.d.comb += f.w_data.eq(grant)
        for k, port in enumerate(ports):
            with m.If(grant == k):
                m.d.comb += self.engine.cmd.payload.eq(port.cmd.payload)
                m.d.comb += port.cmd.ready.eq(room & self.engine.cmd.ready)
        m.d.comb += self.engine.cmd.valid.eq(any_request & room)
        taken = any_request & room & self.engine.cmd.ready
        for f in fifos:
            m.d.comb += f.w_en.eq(taken)
        with m.If(taken):
            m.d.sync += last.eq(grant)

    def _route_status(self, m, route):
        """Hand each status to the client whose command it answers."""
        status = self.engine.status
        m.d.comb += route.r_en.eq(status.valid & status.ready)
        for k, port in enumerate(self.ports()):
            m.d.comb += port.status.payload.eq(status.payload)
            with m.If(route.r_rdy & (route.r_data == k)):
                m.d.comb += [port.status.valid.eq(status.valid), status.ready.eq(port.status.ready)]


class DmaReadMux(_Mux):
    """Share one read engine between ``clients`` read ports.

    Commands are taken round robin, one per cycle; data and status go back to the client whose
    command they answer (the engine answers in order). At most ``outstanding`` commands may be
    in the engine; a client's data back-pressure stalls the engine's data stream (and so every
    client behind it): put a :class:`ReadBuffer` in front of a client that may be slow.

    Attributes
    ----------
    c0 ... c<clients-1> : In(DmaReadPortSignature(width))
        The clients.
    engine : Out(DmaReadPortSignature(width))
        To the read engine.
    """

    def __init__(self, width, clients, *, outstanding=32):
        super().__init__(DmaReadPortSignature(width), clients, outstanding)

    def _route_data(self, m, port, selected):
        data = self.engine.data
        m.d.comb += port.data.payload.eq(data.payload)
        with m.If(selected):
            m.d.comb += [port.data.valid.eq(data.valid), data.ready.eq(port.data.ready)]


class DmaWriteMux(_Mux):
    """Share one write engine between ``clients`` write ports.

    Commands are taken round robin, one per cycle; the data of each command is taken from its
    client in command order (a client whose data is late stalls the engine), and each status
    goes back to its client.

    Attributes
    ----------
    c0 ... c<clients-1> : In(DmaWritePortSignature(width))
        The clients.
    engine : Out(DmaWritePortSignature(width))
        To the write engine.
    """

    def __init__(self, width, clients, *, outstanding=32):
        super().__init__(DmaWritePortSignature(width), clients, outstanding)

    def _route_data(self, m, port, selected):
        data = self.engine.data
        with m.If(selected):
            m.d.comb += [data.payload.eq(port.data.payload), data.valid.eq(port.data.valid),
                         port.data.ready.eq(data.ready)]


class ReadBuffer(wiring.Component):
    """Give a read client its own data buffer so it never stalls the shared read engine.

    The read engine returns data in command order on one stream: a client that stops taking
    its data holds up every other client's data behind it (and a client that waits for another
    client — the TX queues waiting for the RX queues to drain the loopback — deadlocks). This
    block sits between the client and the multiplexer and forwards a command only when its
    buffer has room for all of the command's data, so the data it forwards is always taken.

    Commands are always taken into a FIFO (up to ``statuses`` in flight) and leave it when the
    buffer has room: a command reserves ``ceil(length / (width / 8))`` beats (none for a length
    the engine refuses: 0 or above :data:`~amnic.dma.commands.MAX_TRANSFER`); a beat is released
    when the client takes it. Statuses are buffered too.

    Parameters
    ----------
    width : int
        Data width in bits.
    beats : int
        Buffer depth in beats (a power of two); it must hold the longest command of the client.
    statuses : int
        Commands in flight at most.

    Attributes
    ----------
    client : In(DmaReadPortSignature(width))
        To the client.
    engine : Out(DmaReadPortSignature(width))
        To the multiplexer (or engine).
    """

    def __init__(self, width, beats, *, statuses=16):
        self.width, self.beats, self.statuses = width, beats, statuses
        super().__init__({
            "client": In(DmaReadPortSignature(width)),
            "engine": Out(DmaReadPortSignature(width)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.width // 8
        shift = ceil_log2(lanes)
        m.submodules.data = data = fifo.SyncFIFOBuffered(
            width=PacketLayout(self.width, 0).size, depth=self.beats)
        m.submodules.status = status = fifo.SyncFIFOBuffered(
            width=DmaStatus.as_shape().size, depth=self.statuses)

        # Commands wait in a FIFO for room, so the client can always hand over its commands
        # (a client that issues commands and takes data in one sequence would otherwise wait
        # for room that only its own data-taking frees).
        m.submodules.commands = commands = fifo.SyncFIFOBuffered(
            width=DmaCommand.as_shape().size, depth=self.statuses)
        in_flight = Signal(range(self.statuses + 1))  # commands whose status is not taken
        accepted = self.client.cmd.valid & self.client.cmd.ready
        m.d.comb += [
            commands.w_data.eq(self.client.cmd.payload),
            commands.w_en.eq(self.client.cmd.valid & (in_flight < self.statuses)),
            self.client.cmd.ready.eq(commands.w_rdy & (in_flight < self.statuses)),
        ]
        head = DmaCommand(commands.r_data)
        need = Signal(range(self.beats + (MAX_TRANSFER >> shift) + 2))
        with m.If((head.length != 0) & (head.length <= MAX_TRANSFER)):
            m.d.comb += need.eq((head.length + lanes - 1) >> shift)
        reserved = Signal(range(self.beats + 1))  # beats promised and not yet taken
        room = self.beats - reserved >= need
        m.d.comb += [
            self.engine.cmd.payload.eq(head),
            self.engine.cmd.valid.eq(commands.r_rdy & room),
            commands.r_en.eq(self.engine.cmd.ready & room),
        ]
        issued = self.engine.cmd.valid & self.engine.cmd.ready
        taken = self.client.data.valid & self.client.data.ready
        m.d.sync += reserved.eq(reserved + Mux(issued, need, 0) - taken)
        status_taken = self.client.status.valid & self.client.status.ready
        m.d.sync += in_flight.eq(in_flight + accepted - status_taken)

        m.d.comb += [
            data.w_data.eq(self.engine.data.payload),
            data.w_en.eq(self.engine.data.valid),
            self.engine.data.ready.eq(data.w_rdy),
            self.client.data.payload.eq(data.r_data),
            self.client.data.valid.eq(data.r_rdy),
            data.r_en.eq(self.client.data.ready),
            status.w_data.eq(self.engine.status.payload),
            status.w_en.eq(self.engine.status.valid),
            self.engine.status.ready.eq(status.w_rdy),
            self.client.status.payload.eq(status.r_data),
            self.client.status.valid.eq(status.r_rdy),
            status.r_en.eq(self.client.status.ready),
        ]
        return m
