"""Transmit framing: pad short frames and append the FCS (IEEE 802.3 clauses 3.2.8, 3.2.9, 4.2.3).

The framer sits between the user's packet stream and a line encoder. It turns each packet into
the MAC frame as it goes on the wire after the SFD: the user's bytes, zero padding up to 60
bytes, then the 4-byte frame check sequence (least significant byte first).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketSignature

from .crc import Crc32
from .ieee802_3 import FCS_LEN, MIN_PAYLOAD_LEN

__all__ = ["FramedWord", "TxFramer"]


class FramedWord(data.StructLayout):
    """One word of a framed packet, as the line encoder consumes it.

    ``count`` valid bytes from lane 0 (1..``width``/8); ``last`` ends the frame; ``error`` on the
    last word asks the encoder to end the frame with /E/ so the far end discards it.
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
        lane 0. ``user[0]`` on the last beat marks the packet bad. A beat with ``keep == 0`` is
        treated as carrying no bytes (a zero-byte packet becomes 60 bytes of padding).
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

        count = Signal(range(MIN_PAYLOAD_LEN + lanes + 1))  # bytes framed so far, saturating
        padding = Signal()  # input packet ended short; emitting zero words up to 60 bytes
        fcs_pending = Signal()  # the FCS did not fit; its remaining bytes follow in one word
        fcs_rest = Signal(32)
        fcs_rest_count = Signal(range(FCS_LEN + 1))
        bad = Signal()
        starting = Signal(init=1)  # next word is the first of a frame: restart the CRC

        load = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(load & ~padding & ~fcs_pending)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # Bytes of the word at hand: from the input, or zero padding.
        nbytes = Signal(range(lanes + 1))
        for n in range(lanes + 1):
            with m.If(self.i.payload.keep == (1 << n) - 1):
                m.d.comb += nbytes.eq(n)
        lane_mask = Signal(width)
        for b in range(lanes):
            m.d.comb += lane_mask[8 * b: 8 * b + 8].eq(Mux(b < nbytes, 0xFF, 0))
        word = Mux(padding, 0, self.i.payload.data & lane_mask)
        word_bytes = Mux(padding, 0, nbytes)
        ending = padding | self.i.payload.last

        # Length of the frame before the FCS once this word ends it: at least 60 bytes.
        total = count + word_bytes
        remaining = Signal(range(MIN_PAYLOAD_LEN + lanes + 1))  # bytes of this word to CRC
        with m.If(ending & (total < MIN_PAYLOAD_LEN)):
            m.d.comb += remaining.eq(Mux(MIN_PAYLOAD_LEN - count > lanes, lanes,
                                         MIN_PAYLOAD_LEN - count))
        with m.Else():
            m.d.comb += remaining.eq(word_bytes)
        finishing = ending & (count + remaining >= MIN_PAYLOAD_LEN)

        fcs = ~crc.next
        # The word with the FCS shifted in behind its `remaining` bytes; overflow spills over.
        merged = Signal(width + 32)
        m.d.comb += merged.eq(Cat(word, Const(0, 32)) | (fcs << (remaining * 8)))

        m.d.comb += [
            crc.data.eq(word),
            crc.count.eq(remaining),
            crc.clear.eq(starting),
        ]

        with m.If(load):
            with m.If(fcs_pending):
                m.d.sync += [
                    self.o.valid.eq(1),
                    self.o.payload.data.eq(fcs_rest),
                    self.o.payload.count.eq(fcs_rest_count),
                    self.o.payload.last.eq(1),
                    self.o.payload.error.eq(bad),
                    fcs_pending.eq(0),
                    starting.eq(1),
                ]
            with m.Elif(padding | self.i.valid):
                m.d.comb += crc.valid.eq(1)
                m.d.sync += [
                    self.o.valid.eq(1),
                    starting.eq(0),
                    count.eq(Mux(count + remaining > MIN_PAYLOAD_LEN, MIN_PAYLOAD_LEN,
                                 count + remaining)),
                ]
                with m.If(~padding):
                    m.d.sync += bad.eq(self.i.payload.user[0])
                with m.If(~finishing):
                    # A data word, or padding still short of 60 bytes.
                    m.d.sync += [
                        self.o.payload.data.eq(word),
                        self.o.payload.count.eq(Mux(ending, lanes, word_bytes)),
                        self.o.payload.last.eq(0),
                        self.o.payload.error.eq(0),
                        padding.eq(ending),
                    ]
                with m.Elif(remaining <= lanes - FCS_LEN):
                    # The FCS fits behind the data: the frame ends in this word.
                    m.d.sync += [
                        self.o.payload.data.eq(merged[:width]),
                        self.o.payload.count.eq(remaining + FCS_LEN),
                        self.o.payload.last.eq(1),
                        self.o.payload.error.eq(Mux(padding, bad, self.i.payload.user[0])),
                        padding.eq(0),
                        count.eq(0),
                        starting.eq(1),
                    ]
                with m.Else():
                    # Part of the FCS spills into one more word.
                    m.d.sync += [
                        self.o.payload.data.eq(merged[:width]),
                        self.o.payload.count.eq(lanes),
                        self.o.payload.last.eq(0),
                        self.o.payload.error.eq(0),
                        padding.eq(0),
                        count.eq(0),
                        fcs_pending.eq(1),
                        fcs_rest.eq(merged[width:]),
                        fcs_rest_count.eq(remaining - (lanes - FCS_LEN)),
                    ]
                    with m.If(~padding):
                        m.d.sync += bad.eq(self.i.payload.user[0])
        return m
