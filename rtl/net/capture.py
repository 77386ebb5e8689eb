"""Header capture: the first bytes of each packet, its length and the checksum of the rest.

The capture stage watches the beats of a packet stream and, at each packet's last beat, hands
the parse pipeline a :class:`CaptureLayout` record: the first ``window`` bytes of the packet
(bytes past the end of the packet read zero), the packet length, and the 16-bit ones'-complement
sum (RFC 1071) of every byte at or beyond the window. With that sum the parser verifies TCP/UDP
checksums of segments that run past the window without storing them.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketLayout
from .window import balanced_sum, byte

__all__ = ["LENGTH_BITS", "REST_SUM_BITS", "CaptureLayout", "HeaderCapture", "window_length"]

#: Width of the captured length; it saturates at ``2**LENGTH_BITS - 1`` bytes.
LENGTH_BITS = 17
#: Width of the unfolded sum of the bytes past the window (folded a little on every beat).
REST_SUM_BITS = 24


def window_length(width, window):
    """The window length actually captured: ``window`` rounded up to whole beats."""
    lanes = width // 8
    return -(-window // lanes) * lanes


class CaptureLayout(data.StructLayout):
    """What the capture stage knows of one packet when its last beat passes.

    Attributes
    ----------
    window : unsigned(8 * window_len)
        Bytes 0 .. ``window_len - 1`` of the packet, byte 0 in bits 7:0; zero past its end.
    length : unsigned(LENGTH_BITS)
        Bytes in the packet, saturating.
    rest_sum : unsigned(REST_SUM_BITS)
        Sum of the 16-bit big-endian words at byte offsets ``window_len`` and up (words aligned
        to the start of the packet, an odd last byte padded with zero), not yet folded to 16
        bits: ``fold16(rest_sum)`` is the ones'-complement sum.
    frame_sum : unsigned(REST_SUM_BITS)
        The same sum over the whole packet.
    """

    def __init__(self, window_len):
        self.window_len = window_len
        super().__init__({
            "window": 8 * window_len,
            "length": LENGTH_BITS,
            "rest_sum": REST_SUM_BITS,
            "frame_sum": REST_SUM_BITS,
        })


class HeaderCapture(wiring.Component):
    """Collect the first bytes of each packet into a window.

    Parameters
    ----------
    width : int
        Data width of the watched packet stream (a multiple of 16 bits).
    window : int
        Bytes to capture; rounded up to a whole number of beats (:func:`window_length`).
    user_width : int

    Attributes
    ----------
    i : In(stream.Signature(PacketLayout, always_ready=True))
        The beats to watch: drive ``valid`` for each beat that moves on the watched stream.
        Lanes above ``keep`` are ignored; only the last beat of a packet may be partial (the
        packet-stream convention), and a last beat with ``keep`` zero adds no byte (a packet
        of length zero).
    o : Out(stream.Signature(CaptureLayout, always_ready=True))
        One record per packet, valid for one cycle, the cycle after the packet's last beat on
        ``i``. There is no back-pressure: the consumer takes every record.
    """

    def __init__(self, width, window=192, user_width=1):
        if width % 16:
            raise ValueError(f"capture needs a data width that is a multiple of 16, not {width}")
        self.width = width
        self.lanes = width // 8
        self.window_len = window_length(width, window)
        self.slots = self.window_len // self.lanes
        super().__init__({
            "i": In(stream.Signature(PacketLayout(width, user_width), always_ready=True)),
            "o": Out(stream.Signature(CaptureLayout(self.window_len), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, slots = self.lanes, self.slots
        beat = self.i.payload

        slot = Signal(range(slots + 1))  # beat number within the packet, saturating at `slots`
        length = Signal(LENGTH_BITS)
        rest = Signal(REST_SUM_BITS)
        stored = [Signal(8 * lanes, name=f"slot{k}") for k in range(slots)]

        # The beat with lanes past `keep` cleared, its byte count and its word sum.
        data = Signal(8 * lanes)
        m.d.comb += data.eq(Cat(*(byte(beat.data, k) & beat.keep[k].replicate(8)
                                  for k in range(lanes))))
        count = balanced_sum(list(beat.keep), m, "keep_count")
        words = [Cat(byte(data, k + 1), byte(data, k)) for k in range(0, lanes, 2)]
        beat_sum = Signal(range(0xFFFF * len(words) + 1))
        m.d.comb += beat_sum.eq(balanced_sum(words, m, "beat_sum"))

        in_window = slot < slots
        new_length = Signal(LENGTH_BITS + 1)
        m.d.comb += new_length.eq(length + count)
        length_sat = Mux(new_length[-1], Const(2 ** LENGTH_BITS - 1, LENGTH_BITS),
                         new_length[:LENGTH_BITS])
        new_rest = Signal(REST_SUM_BITS)
        m.d.comb += new_rest.eq(rest[:16] + rest[16:] + Mux(in_window, 0, beat_sum))
        total = Signal(REST_SUM_BITS)
        new_total = Signal(REST_SUM_BITS)
        m.d.comb += new_total.eq(total[:16] + total[16:] + beat_sum)

        # The record is read straight from the slot registers, one cycle after the last beat:
        # the first beat of a packet clears the slots it does not write (the flip-flops' reset
        # input), so slots past the end of the packet read zero. A first beat of the next packet
        # in that cycle changes the slots only at the end of it.
        m.d.comb += self.o.payload.window.eq(Cat(*stored))
        m.d.sync += self.o.valid.eq(self.i.valid & beat.last)
        with m.If(self.i.valid & beat.last):
            m.d.sync += [
                self.o.payload.length.eq(length_sat),
                self.o.payload.rest_sum.eq(new_rest),
                self.o.payload.frame_sum.eq(new_total),
            ]

        with m.If(self.i.valid):
            for k in range(slots):
                with m.If(slot == k):
                    m.d.sync += stored[k].eq(data)
                if k:
                    with m.If(slot == 0):
                        m.d.sync += stored[k].eq(0)
            with m.If(beat.last):
                m.d.sync += [slot.eq(0), length.eq(0), rest.eq(0), total.eq(0)]
            with m.Else():
                m.d.sync += [
                    slot.eq(Mux(in_window, slot + 1, slot)),
                    length.eq(length_sat),
                    rest.eq(new_rest),
                    total.eq(new_total),
                ]
        return m
