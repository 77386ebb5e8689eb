"""Packet stream width converters (for example 64 <-> 512 bits).

Both converters keep the packet convention of :mod:`amnic.stream` (the AXI4-Stream "packed"
byte stream of ARM IHI 0051, with ``TKEEP`` null bytes only at the end of a packet): every beat
but the last of a packet is full, and the last beat's valid byte lanes are contiguous from lane
0. Byte order is preserved: byte lane 0 of the first narrow beat is byte lane 0 of the wide
beat.

``user`` is per-packet status carried on the last beat (bit 0 = bad packet), so a wide beat
built from several narrow beats takes the ``user`` of the last of them, and each narrow beat cut
from a wide beat repeats the wide beat's ``user``. Either way the last beat of a packet keeps
the ``user`` it had.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import PacketLayout, PacketSignature

__all__ = ["WidthUpConverter", "WidthDownConverter"]


def _ratio(narrow, wide):
    PacketLayout(narrow)
    PacketLayout(wide)
    if wide % narrow:
        raise ValueError(f"wide width {wide} is not a multiple of narrow width {narrow}")
    return wide // narrow


class WidthUpConverter(wiring.Component):
    """Packs ``in_width``-bit beats into ``out_width``-bit beats (``out_width = n * in_width``).

    Narrow beats fill wide lanes in order; a packet's last narrow beat closes the wide beat early,
    leaving the remaining lanes with ``keep`` 0 (their ``data`` is unspecified). A new packet
    always starts in lane 0. Input is taken at one beat per cycle while ``o.ready`` is high; the
    output register and a second wide register let the input keep filling while the output
    waits.

    Parameters
    ----------
    in_width, out_width : int
        Data widths in bits; ``out_width`` is a multiple of ``in_width``.
    user_width : int
        Width of the ``user`` sideband.

    Attributes
    ----------
    i : In(PacketSignature(in_width, user_width))
        Narrow input beats.
    o : Out(PacketSignature(out_width, user_width))
        Wide output beats, registered. Latency is one cycle after the beat that completes a wide
        beat.
    """

    def __init__(self, in_width, out_width, user_width=1):
        self.ratio = _ratio(in_width, out_width)
        self.in_width = in_width
        self.out_width = out_width
        self.user_width = user_width
        super().__init__({
            "i": In(PacketSignature(in_width, user_width)),
            "o": Out(PacketSignature(out_width, user_width)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o, n = self.i, self.o, self.ratio
        lane_bytes = self.in_width // 8

        acc = Signal(PacketLayout(self.out_width, self.user_width))  # wide beat being filled
        acc_full = Signal()  # acc holds a finished wide beat that the output could not take
        lane = Signal(range(n))  # the lane the next narrow beat goes to

        # The wide beat with the incoming narrow beat merged into its lane. Starting a wide beat
        # (lane 0) clears the keep bits left over from the previous one.
        word = Signal.like(acc)
        data_lanes, keep_lanes = [], []
        for k in range(n):
            old_keep = acc.keep[k * lane_bytes:(k + 1) * lane_bytes]
            data_lanes.append(Mux(lane == k, i.payload.data,
                                  acc.data[k * self.in_width:(k + 1) * self.in_width]))
            keep_lanes.append(Mux(lane == k, i.payload.keep, Mux(lane == 0, 0, old_keep)))
        m.d.comb += [
            word.data.eq(Cat(*data_lanes)),
            word.keep.eq(Cat(*keep_lanes)),
            word.last.eq(i.payload.last),
            word.user.eq(i.payload.user),
        ]

        can_load = Signal()
        accept = Signal()
        complete = Signal()
        m.d.comb += [
            can_load.eq(~o.valid | o.ready),
            i.ready.eq(~acc_full | can_load),
            accept.eq(i.valid & i.ready),
            complete.eq(accept & (i.payload.last | (lane == n - 1))),
        ]

        with m.If(can_load):
            with m.If(acc_full):
                m.d.sync += [o.payload.eq(acc), o.valid.eq(1)]
            with m.Elif(complete):
                m.d.sync += [o.payload.eq(word), o.valid.eq(1)]
            with m.Else():
                m.d.sync += o.valid.eq(0)

        with m.If(accept):
            m.d.sync += acc.eq(word)
            with m.If(complete):
                m.d.sync += lane.eq(0)
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        # A finished wide beat waits in acc unless it went straight to the output.
        with m.If(can_load):
            m.d.sync += acc_full.eq(acc_full & complete)
        with m.Else():
            m.d.sync += acc_full.eq(acc_full | complete)
        return m


class WidthDownConverter(wiring.Component):
    """Cuts ``in_width``-bit beats into ``out_width``-bit beats (``in_width = n * out_width``).

    Each wide beat yields its lanes in order; on a packet's last wide beat the output stops after
    the last lane that holds valid bytes, and that narrow beat carries ``last``. The output moves
    one narrow beat per cycle while ``o.ready`` is high, with no gap between wide beats. A wide
    beat that is not a packet's last is assumed full (the packet convention) and yields all
    ``n`` lanes.

    Parameters
    ----------
    in_width, out_width : int
        Data widths in bits; ``in_width`` is a multiple of ``out_width``.
    user_width : int
        Width of the ``user`` sideband.

    Attributes
    ----------
    i : In(PacketSignature(in_width, user_width))
        Wide input beats. ``i.ready`` follows ``o.ready`` combinationally while the final lane
        of the held beat is on the output.
    o : Out(PacketSignature(out_width, user_width))
        Narrow output beats. ``o.valid`` is a register; ``o.payload`` is the current lane of the
        held wide beat.
    """

    def __init__(self, in_width, out_width, user_width=1):
        self.ratio = _ratio(out_width, in_width)
        self.in_width = in_width
        self.out_width = out_width
        self.user_width = user_width
        super().__init__({
            "i": In(PacketSignature(in_width, user_width)),
            "o": Out(PacketSignature(out_width, user_width)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o, n = self.i, self.o, self.ratio
        lane_bytes = self.out_width // 8

        held = Signal(PacketLayout(self.in_width, self.user_width))
        lane = Signal(range(n))
        # Whether lane k + 1 of the held beat has any valid byte (lanes fill from lane 0).
        next_used = Cat(*(held.keep[(k + 1) * lane_bytes] for k in range(n - 1)), Const(0, 1))
        final = Signal()  # the lane on the output is the held beat's last one
        m.d.comb += [
            final.eq((lane == n - 1) | (held.last & ~next_used.bit_select(lane, 1))),
            o.payload.data.eq(held.data.word_select(lane, self.out_width)),
            o.payload.keep.eq(held.keep.word_select(lane, lane_bytes)),
            o.payload.last.eq(held.last & final),
            o.payload.user.eq(held.user),
            i.ready.eq(~o.valid | (o.ready & final)),
        ]
        with m.If(i.valid & i.ready):
            m.d.sync += [held.eq(i.payload), o.valid.eq(1), lane.eq(0)]
        with m.Elif(o.valid & o.ready):
            with m.If(final):
                m.d.sync += [o.valid.eq(0), lane.eq(0)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        return m
