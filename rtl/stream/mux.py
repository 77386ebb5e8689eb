"""Packet multiplexer and demultiplexer that switch only between packets.

Ports are numbered members (``i0``, ``i1``, ... or ``o0``, ``o1``, ...) rather than an array,
so the generated Verilog has ``s_axis_i0_*``, ``s_axis_i1_*``, ... ports. The lists are also
available as :attr:`PacketMux.inputs` and :attr:`PacketDemux.outputs`.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import PacketLayout, PacketSignature

__all__ = ["PacketMux", "PacketDemux", "forward_packets"]


def forward_packets(m, inputs, o, choice, choice_valid):
    """Elaborate a registered packet selector from ``inputs`` to ``o`` into ``m``.

    Between packets, the input ``choice`` is connected (if ``choice_valid``); once the first beat
    of a packet has moved, the selector stays on that input until the packet's last beat has
    moved. ``o.valid``/``o.payload`` are registered and loaded with ``~o.valid | o.ready``, so
    packets from different inputs follow each other without a gap.

    Parameters
    ----------
    m : Module
    inputs : list of stream interfaces
        Sources (``In`` members of the component).
    o : stream interface
        Destination (``Out`` member of the component).
    choice : Value
        Index of the input to start the next packet from; may change every cycle.
    choice_valid : Value
        ``choice`` names an input.

    Returns
    -------
    Signal
        High in the cycle in which the first beat of a packet moves from input ``choice``.
    """
    n = len(inputs)
    busy = Signal()  # inside a packet from input `current`
    current = Signal(range(n))
    src = Signal(range(n))
    src_ok = Signal()
    src_valid = Signal()
    src_beat = Signal.like(o.payload)
    can_load = Signal()
    moved = Signal()
    start = Signal()
    m.d.comb += [
        src.eq(Mux(busy, current, choice)),
        src_ok.eq(busy | choice_valid),
        can_load.eq(~o.valid | o.ready),
        moved.eq(can_load & src_ok & src_valid),
        start.eq(moved & ~busy),
    ]
    with m.Switch(src):
        for k, port in enumerate(inputs):
            with m.Case(k):
                m.d.comb += [
                    src_valid.eq(port.valid),
                    src_beat.eq(port.payload),
                    port.ready.eq(can_load & src_ok),
                ]
    with m.If(can_load):
        m.d.sync += o.valid.eq(moved)
        with m.If(moved):
            m.d.sync += o.payload.eq(src_beat)
    with m.If(moved):
        m.d.sync += [
            busy.eq(~src_beat.last),
            current.eq(src),
        ]
    return start


def _check(width, user_width, n):
    PacketLayout(width, user_width)
    if n < 1:
        raise ValueError(f"need at least one port, not {n}")


class PacketMux(wiring.Component):
    """Forwards packets from the input chosen by ``sel``; changes input only between packets.

    Parameters
    ----------
    width : int
        Data width in bits.
    user_width : int
        Width of the ``user`` sideband.
    n : int
        Number of inputs.

    Attributes
    ----------
    i0 ... i<n-1> : In(PacketSignature(width, user_width))
        Inputs. Only the selected input sees ``ready``.
    sel : In(range(n))
        Input to take the next packet from. Between packets the input that ``sel`` names in a
        cycle is the one connected in that cycle; once a first beat has moved, ``sel`` is
        ignored until that packet's last beat has moved. A value ``>= n`` selects nothing.
    o : Out(PacketSignature(width, user_width))
        Output, registered; full throughput, also across a change of input.
    """

    def __init__(self, width, user_width=1, n=2):
        _check(width, user_width, n)
        self.n = n
        members = {f"i{k}": In(PacketSignature(width, user_width)) for k in range(n)}
        members["sel"] = In(range(n))
        members["o"] = Out(PacketSignature(width, user_width))
        super().__init__(members)

    @property
    def inputs(self):
        return [getattr(self, f"i{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        forward_packets(m, self.inputs, self.o, self.sel, self.sel < self.n)
        return m


class PacketDemux(wiring.Component):
    """Routes each packet to the output named by ``sel`` at its first beat.

    Parameters
    ----------
    width : int
        Data width in bits.
    user_width : int
        Width of the ``user`` sideband.
    n : int
        Number of outputs.

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
        Input packets.
    sel : In(range(n))
        Destination of the packet whose first beat is on ``i``; sampled when that beat moves
        and ignored for the rest of the packet. A value ``>= n`` (possible when ``n`` is not a
        power of two) discards the packet.
    o0 ... o<n-1> : Out(PacketSignature(width, user_width))
        Outputs. Payload and valid are registered (one beat register shared by all outputs);
        full throughput while the destination output is ready.
    """

    def __init__(self, width, user_width=1, n=2):
        _check(width, user_width, n)
        self.n = n
        members = {"i": In(PacketSignature(width, user_width)), "sel": In(range(n))}
        members.update({f"o{k}": Out(PacketSignature(width, user_width)) for k in range(n)})
        super().__init__(members)

    @property
    def outputs(self):
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        i = self.i
        beat = Signal.like(i.payload)
        valid = Signal()
        dest = Signal.like(self.sel)
        busy = Signal()
        current = Signal.like(self.sel)
        target = Signal.like(self.sel)
        dest_ready = Signal()
        can_load = Signal()

        for k, port in enumerate(self.outputs):
            m.d.comb += [
                port.payload.eq(beat),
                port.valid.eq(valid & (dest == k)),
            ]
        with m.Switch(dest):
            for k, port in enumerate(self.outputs):
                with m.Case(k):
                    m.d.comb += dest_ready.eq(port.ready)
        m.d.comb += [
            target.eq(Mux(busy, current, self.sel)),
            can_load.eq(~valid | dest_ready),
            i.ready.eq(can_load),
        ]
        with m.If(i.valid & i.ready):
            m.d.sync += [
                beat.eq(i.payload),
                valid.eq(target < self.n),
                dest.eq(target),
                busy.eq(~i.payload.last),
                current.eq(target),
            ]
        with m.Elif(can_load):
            m.d.sync += valid.eq(0)
        return m
