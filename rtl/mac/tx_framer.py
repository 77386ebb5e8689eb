"""Transmit framing: pad short frames and append the FCS (IEEE 802.3 clauses 3.2.8, 3.2.9, 4.2.3).

The framer sits between the user's packet stream and a line encoder. It turns each packet into
the MAC frame as it goes on the wire after the SFD: the user's bytes, zero padding up to 60
bytes, then the 4-byte frame check sequence (least significant byte first).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketSignature

from .crc import Crc32
from .ieee802_3 import FCS_LEN, MIN_PAYLOAD_LEN

__all__ = ["FramedWord", "TxFramer"]


class FramedWord(data.StructLayout):
    """One word of a framed packet, as the line encoder consumes it.

    ``count`` valid bytes from lane 0 (1..``width``/8; every word but the last is full);
    ``last`` ends the frame; ``error`` on the last word asks the encoder to end the frame with
    /E/ so the far end discards it. Lanes at and above ``count`` carry no meaning.
    """

    def __init__(self, width):
        super().__init__({
            "data": width,
            "count": range(width // 8 + 1),
            "last": 1,
            "error": 1,
        })


class TxFramer(wiring.Component):
    """Pad and append the FCS to each packet, one word per cycle.

    Parameters
    ----------
    width : int
        Data width in bits (64 for XGMII; any multiple of 32 works).

    Attributes
    ----------
    i : In(PacketSignature(width))
        User packets. Only the last beat may be partial; its ``keep`` lanes are contiguous from
        lane 0. ``user[0]`` on the last beat marks the packet bad. A last beat with
        ``keep == 0`` carries no bytes (a zero-byte packet becomes 60 bytes of padding).
    o : Out(stream.Signature(FramedWord(width)))
        Framed words. Throughput is one word per cycle; the framer inserts a word (holding
        ``i.ready`` low) only where padding or the FCS need one.
    """

    def __init__(self, width=64):
        if width % 32:
            raise ValueError("framer width must be a multiple of 32 bits")
        self._width = width
        super().__init__({
            "i": In(PacketSignature(width)),
            "o": Out(stream.Signature(FramedWord(width))),
        })

    def elaborate(self, platform):
        m = Module()
        width, lanes = self._width, self._width // 8
        m.submodules.crc = crc = Crc32(width)

        # Every word before the last is full, so the frame length so far is a whole number of
        # words: count words, saturating at the first count that reaches the 60-byte minimum.
        enough = -(-MIN_PAYLOAD_LEN // lanes)  # words that make a frame long enough
        tail = MIN_PAYLOAD_LEN - (enough - 1) * lanes  # bytes the word after `enough - 1` owes
        words = Signal(range(enough + 1))  # words framed so far, saturating at `enough`
        padding = Signal()  # input packet ended short; emitting zero words up to 60 bytes
        fcs_pending = Signal()  # the FCS did not fit; its remaining bytes follow in one word
        fcs_left = Signal(range(1, FCS_LEN + 1))  # how many, with `fcs_pending`
        bad = Signal()

        load = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(load & ~padding & ~fcs_pending)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # Bytes of the word at hand: from the input (``keep`` is contiguous from lane 0, so its
        # bits are the lane mask and its count follows from its top bit), or none when padding
        # or sending the rest of the FCS.
        keep = self.i.payload.keep
        nbytes = Signal(range(lanes + 1))
        for n in range(1, lanes + 1):
            with m.If(keep[n - 1]):
                m.d.comb += nbytes.eq(n)
        word = Signal(width)
        m.d.comb += word.eq(Mux(padding | fcs_pending, 0, self.i.payload.data
                                & Cat(*[Mux(keep[b], 0xFF, 0x00) for b in range(lanes)])))
        word_bytes = Mux(padding, 0, nbytes)
        ending = padding | self.i.payload.last

        # A word that ends the packet finishes the frame once the frame is long enough with it;
        # before that it is followed by padding. The word that finishes the frame covers at
        # least the bytes still owed to the minimum length (a short tail is padded with zeros).
        finishing = ending & (words >= enough - 1)
        remaining = Signal(range(lanes + 1))  # bytes of this word before the FCS
        with m.If(~finishing):
            m.d.comb += remaining.eq(lanes)
        with m.Elif((words == enough - 1) & (word_bytes < tail)):
            m.d.comb += remaining.eq(tail)
        with m.Else():
            m.d.comb += remaining.eq(word_bytes)

        m.d.comb += [
            crc.data.eq(word),
            crc.count.eq(remaining),
            # The word at hand is the first of a frame. (Not while the FCS spills: the state
            # holds the finished CRC until that word has gone.)
            crc.clear.eq((words == 0) & ~fcs_pending),
        ]

        # The lane just past the FCS in the outgoing word. The FCS follows the word's
        # `remaining` bytes; the rest of a spilled FCS ends at lane `fcs_left` (its first bytes,
        # sent already, fall below lane 0). Past the word's last lane, the word is full and the
        # frame goes on: that is also where a word that does not finish the frame puts it.
        fcs_end = Mux(fcs_pending, fcs_left, remaining + FCS_LEN)
        fcs = ~crc.next  # the same FCS again while it spills: the CRC state holds still
        ends_here = fcs_end <= lanes

        with m.If(load & (fcs_pending | padding | self.i.valid)):
            m.d.comb += crc.valid.eq(~fcs_pending)
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.data.eq(word | (fcs << (fcs_end * 8))[32: 32 + width]),
                self.o.payload.count.eq(Mux(ends_here, fcs_end, lanes)),
                self.o.payload.last.eq(ends_here),
                self.o.payload.error.eq(
                    ends_here & Mux(fcs_pending | padding, bad, self.i.payload.user[0])),
            ]
            with m.If(fcs_pending):
                m.d.sync += fcs_pending.eq(0)
            with m.Else():
                with m.If(~padding):
                    m.d.sync += bad.eq(self.i.payload.user[0])
                with m.If(~finishing):
                    # A data word, or padding still short of 60 bytes.
                    m.d.sync += [
                        padding.eq(ending),
                        words.eq(Mux(words == enough, enough, words + 1)),
                    ]
                with m.Else():
                    m.d.sync += [padding.eq(0), words.eq(0)]
                    with m.If(~ends_here):
                        # Part of the FCS spills into one more word.
                        m.d.sync += [fcs_pending.eq(1), fcs_left.eq(fcs_end - lanes)]
        return m
