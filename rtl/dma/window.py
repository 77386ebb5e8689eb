"""DMA address window: the host memory range the device may touch, enforced on every transfer.

The host grants the function one window of bus addresses (the buffers, rings and memory
regions it handed to the device); a transfer that would leave it is never put on the link. This
is the device's own guard for a host without an IOMMU, and a check that a driver bug (a stale
or garbage descriptor address) ends in an error status instead of a write into random memory.

:class:`DmaReadWindow` and :class:`DmaWriteWindow` sit between the clients (after their
multiplexer) and a DMA engine and keep the port protocol of :mod:`amnic.dma.ports` unchanged:

* A command of 1..:data:`~amnic.dma.commands.MAX_TRANSFER` bytes at ``address`` is *allowed* when
  the window is disabled, or when ``base <= address`` and ``address + length - 1 <= limit``
  (both inclusive, so the window may end at the top of the 64-bit space). Other lengths pass to
  the engine, which refuses them with ``BAD_LENGTH``.
* An allowed command goes to the engine. A refused one does not: its status, in command order
  among the engine's, carries :attr:`~amnic.dma.commands.DmaError.OUT_OF_WINDOW`; a refused
  read still returns its ``length`` bytes as zeros (as every failed read does), a refused write's
  data is taken and discarded. ``refused`` counts them and ``fault`` / ``fault_address`` report each
  as it happens.

The check is registered: a command spends one cycle in the stage (no bubbles in a stream of
commands).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import keep_bytes

from .commands import MAX_TRANSFER, DmaCommand, DmaError
from .ports import DmaReadPortSignature, DmaWritePortSignature

__all__ = ["AddressWindow", "DmaReadWindow", "DmaWriteWindow", "window_allows"]


class AddressWindow(data.Struct):
    """The window: bytes ``base`` to ``limit`` inclusive, checked while ``enable``."""

    enable: 1
    base: 64
    limit: 64


def window_allows(window, address, length):
    """Whether a transfer of ``length`` (1..MAX_TRANSFER) bytes at ``address`` stays inside
    ``window`` (reference model; plain integers and an object with the window's fields)."""
    if not window.enable:
        return True
    return window.base <= address and address + length - 1 <= window.limit


class _Order(data.Struct):
    """What the output side needs of each command the stage passed on, in command order."""

    refused: 1
    length: range(MAX_TRANSFER + 1)
    id: 16


class _WindowStage(wiring.Component):
    """Shared part: the registered check and the FIFO of verdicts in command order. Subclasses
    produce the client-side answers (:meth:`_answer`) and may keep verdicts of their own
    (:meth:`_verdict_fifos`: a command leaves the stage when each has room)."""

    def __init__(self, port_signature, outstanding):
        self.outstanding = outstanding
        super().__init__({
            "client": In(port_signature),
            "engine": Out(port_signature),
            "window": In(AddressWindow),
            "refused": Out(32),
            "fault": Out(1),
            "fault_address": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.order = order = fifo.SyncFIFOBuffered(
            width=_Order.as_shape().size, depth=self.outstanding)

        cmd = self.client.cmd.payload
        win = self.window
        last_byte = (cmd.address + cmd.length - 1)[:65]
        checked = (cmd.length != 0) & (cmd.length <= MAX_TRANSFER)
        outside = (cmd.address < win.base) | (last_byte > win.limit)

        held = Signal(DmaCommand)
        held_valid = Signal()
        held_refused = Signal()
        engine_cmd = self.engine.cmd
        entry = Signal(_Order)
        m.d.comb += [
            engine_cmd.payload.eq(held),
            entry.refused.eq(held_refused), entry.length.eq(held.length), entry.id.eq(held.id),
            order.w_data.eq(entry),
        ]
        leave = Signal()
        extra = self._verdict_fifos(m, order)
        with m.If(held_valid & order.w_rdy & Cat(f.w_rdy for f in extra).all()):
            m.d.comb += engine_cmd.valid.eq(~held_refused)
            m.d.comb += leave.eq(held_refused | engine_cmd.ready)
        m.d.comb += [order.w_en.eq(leave), self.client.cmd.ready.eq(~held_valid | leave)]
        m.d.comb += [self.fault.eq(leave & held_refused), self.fault_address.eq(held.address)]
        with m.If(leave):
            m.d.sync += held_valid.eq(0)
        with m.If(self.fault):
            m.d.sync += self.refused.eq(self.refused + 1)
        with m.If(self.client.cmd.valid & self.client.cmd.ready):
            m.d.sync += [held.eq(cmd), held_valid.eq(1),
                         held_refused.eq(win.enable & checked & outside)]

        self._answer(m, order, data.View(_Order, order.r_data), extra)
        return m

    def _verdict_fifos(self, m, order):
        return []


class DmaReadWindow(_WindowStage):
    """Window check in front of a read engine (see the module notes).

    Parameters
    ----------
    width : int
        Data width in bits.
    outstanding : int
        Commands between the stage and the client's status at most (the multiplexer's).

    Attributes
    ----------
    client : In(DmaReadPortSignature(width))
    engine : Out(DmaReadPortSignature(width))
    window : In(AddressWindow)
    refused : Out(32)
        Commands refused (wraps).
    fault, fault_address : Out(1), Out(64)
        ``fault`` is high for one cycle as a command is refused; ``fault_address`` is then its
        address.
    """

    def __init__(self, width, *, outstanding=32):
        self.width = width
        super().__init__(DmaReadPortSignature(width), outstanding)

    def _answer(self, m, order, head, extra):
        lanes = self.width // 8
        client, engine = self.client, self.engine
        data_done = Signal()  # the head command's data has been passed (or needs none)
        status_done = Signal()
        sent = Signal(range(MAX_TRANSFER + 1))  # zero bytes of a refused command passed
        remaining = (head.length - sent)[:17]
        has_data = (head.length != 0) & (head.length <= MAX_TRANSFER)
        m.d.comb += [client.data.payload.eq(engine.data.payload),
                     client.status.payload.eq(engine.status.payload)]
        with m.If(order.r_rdy & ~head.refused):
            with m.If(~data_done):
                m.d.comb += [client.data.valid.eq(engine.data.valid),
                             engine.data.ready.eq(client.data.ready)]
            with m.If(~status_done):
                m.d.comb += [client.status.valid.eq(engine.status.valid),
                             engine.status.ready.eq(client.status.ready)]
        with m.If(order.r_rdy & head.refused):
            m.d.comb += [
                client.data.payload.data.eq(0),
                client.data.payload.last.eq(remaining <= lanes),
                client.data.payload.keep.eq(keep_bytes(remaining, lanes)),
                client.data.valid.eq(~data_done),
                client.status.payload.id.eq(head.id),
                client.status.payload.error.eq(DmaError.OUT_OF_WINDOW),
                client.status.valid.eq(~status_done),
            ]
        data_end = (client.data.valid & client.data.ready & client.data.payload.last) | \
            (order.r_rdy & ~has_data)
        status_end = client.status.valid & client.status.ready
        with m.If(client.data.valid & client.data.ready):
            m.d.sync += sent.eq(sent + lanes)
        with m.If(data_end):
            m.d.sync += data_done.eq(1)
        with m.If(status_end):
            m.d.sync += status_done.eq(1)
        with m.If((data_done | data_end) & (status_done | status_end)):
            m.d.comb += order.r_en.eq(1)
            m.d.sync += [data_done.eq(0), status_done.eq(0), sent.eq(0)]


class DmaWriteWindow(_WindowStage):
    """Window check in front of a write engine (see the module notes): parameters and
    attributes as :class:`DmaReadWindow`'s, with write ports
    (:func:`~amnic.dma.ports.DmaWritePortSignature`) for ``client`` and ``engine``."""

    def __init__(self, width, *, outstanding=32):
        self.width = width
        super().__init__(DmaWritePortSignature(width), outstanding)

    def _verdict_fifos(self, m, order):
        # The commands' data comes in command order; its own FIFO of verdicts (popped as each
        # command's data ends) routes it, while `order` waits for the statuses.
        m.submodules.data_order = data_order = fifo.SyncFIFOBuffered(width=1,
                                                                     depth=self.outstanding)
        return [data_order]

    def _answer(self, m, order, head, extra):
        data_order, = extra
        client, engine = self.client, self.engine
        verdict = data.View(_Order, order.w_data)
        m.d.comb += [data_order.w_data.eq(verdict.refused),
                     data_order.w_en.eq(order.w_en & (verdict.length != 0) &
                                        (verdict.length <= MAX_TRANSFER))]
        m.d.comb += engine.data.payload.eq(client.data.payload)
        with m.If(data_order.r_rdy):
            with m.If(data_order.r_data):
                m.d.comb += client.data.ready.eq(1)
            with m.Else():
                m.d.comb += [engine.data.valid.eq(client.data.valid),
                             client.data.ready.eq(engine.data.ready)]
        m.d.comb += data_order.r_en.eq(client.data.valid & client.data.ready &
                                       client.data.payload.last)

        m.d.comb += client.status.payload.eq(engine.status.payload)
        with m.If(order.r_rdy):
            with m.If(head.refused):
                m.d.comb += [client.status.payload.id.eq(head.id),
                             client.status.payload.error.eq(DmaError.OUT_OF_WINDOW),
                             client.status.valid.eq(1),
                             order.r_en.eq(client.status.ready)]
            with m.Else():
                m.d.comb += [client.status.valid.eq(engine.status.valid),
                             engine.status.ready.eq(client.status.ready),
                             order.r_en.eq(engine.status.valid & client.status.ready)]
