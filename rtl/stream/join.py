"""Join packed segments into packed packets, realigning bytes across beat boundaries."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import PacketSignature, keep_bytes

__all__ = ["SegmentJoiner"]


class SegmentJoiner(wiring.Component):
    """Concatenate segments into packets (scatter-gather transmit, for example).

    Input: a stream of *segments*, each packed by itself (``last`` ends a segment; only a
    segment's last beat may be partial, its lanes contiguous from 0). ``user`` bit 0, read on a
    segment's last beat, is *final*: the packet ends with this segment. ``user[1:]`` is side
    information passed through.

    Output: the packets, packed (:mod:`amnic.stream`): the bytes of a packet's segments back to
    back, ``last`` on the final beat. Every output beat carries the ``user[1:]`` of the most
    recent input beat taken before it, so the last beat of a packet carries that of its final
    segment's last beat (where a producer marks a packet bad).

    Throughput: one input beat per cycle while the output takes one beat per cycle; a packet's
    last output beat may leave in the cycle its successor's first input beat is taken. Latency
    is one cycle. A segment of zero bytes (``keep`` all zero) is allowed except as a packet's
    only content.

    Parameters
    ----------
    width : int
        Data width in bits.
    user_width : int
        Width of the passed-through ``user`` bits.

    Attributes
    ----------
    i : In(PacketSignature(width, user_width + 1))
    o : Out(PacketSignature(width, user_width))
    """

    def __init__(self, width, user_width=0):
        self.width = width
        self.user_width = user_width
        super().__init__({
            "i": In(PacketSignature(width, user_width + 1)),
            "o": Out(PacketSignature(width, user_width)),
        })

    def elaborate(self, platform):
        m = Module()
        width = self.width
        lanes = width // 8
        buf = Signal(2 * width)  # bytes 0..count-1 held, higher bytes zero
        count = Signal(range(2 * lanes + 1))
        flushing = Signal()  # the final segment is in: drain the rest, then the packet ends
        user = Signal(self.user_width)

        o, i = self.o, self.i
        m.d.comb += [
            o.valid.eq((count >= lanes) | (flushing & (count != 0))),
            o.payload.data.eq(buf[:width]),
            o.payload.keep.eq(keep_bytes(count, lanes)),
            o.payload.last.eq(flushing & (count <= lanes)),
            o.payload.user.eq(user),
        ]
        out_fire = o.valid & o.ready
        after = Signal.like(count)  # bytes left once this cycle's output beat has gone
        buf_after = Signal.like(buf)
        m.d.comb += [
            after.eq(Mux(out_fire, Mux(count >= lanes, count - lanes, 0), count)),
            buf_after.eq(Mux(out_fire, buf >> width, buf)),
        ]
        ends = out_fire & o.payload.last
        m.d.comb += i.ready.eq((~flushing | ends) & (after <= lanes))

        taken = sum(i.payload.keep[n] for n in range(lanes))
        in_fire = i.valid & i.ready
        mask = Cat(k.replicate(8) for k in i.payload.keep)
        shifted = ((i.payload.data & mask) << (after * 8))[:2 * width]
        with m.If(in_fire):
            m.d.sync += [
                buf.eq(buf_after | shifted),
                count.eq(after + taken),
                user.eq(i.payload.user[1:]),
                flushing.eq(i.payload.last & i.payload.user[0] & (after + taken != 0)),
            ]
        with m.Else():
            m.d.sync += [buf.eq(buf_after), count.eq(after)]
            with m.If(ends):
                m.d.sync += flushing.eq(0)
        return m
