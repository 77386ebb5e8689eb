"""GMII transmit framing for a 1 Gb/s MAC (IEEE 802.3 clauses 3, 4 and 35).

:class:`GmiiTransmitter` turns a byte-wide packet stream into GMII transmit signals: preamble
and SFD, the frame, padding to the minimum size, the FCS and the inter-packet gap.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketSignature
from .crc import Crc32
from .gmii_rx import FrameClassifier
from .ieee802_3 import FCS_LEN, IPG_MIN, MIN_PAYLOAD_LEN, PREAMBLE_BYTE, PREAMBLE_LEN, SFD
from .status import TxStatus

__all__ = ["GmiiTxSignature", "GmiiTransmitter"]


def GmiiTxSignature():
    """The GMII transmit signals as driven by the MAC (IEEE 802.3 clause 35.2.2).

    Members
    -------
    txd : Out(8)
        Transmit data, bit 0 first on the wire.
    tx_en : Out(1)
        Set from the first preamble byte through the last FCS byte.
    tx_er : Out(1)
        With ``tx_en``: the PHY replaces the byte by an error code (clause 35.2.2.5), so every
        receiver discards the frame.
    """
    return wiring.Signature({"txd": Out(8), "tx_en": Out(1), "tx_er": Out(1)})


class GmiiTransmitter(wiring.Component):
    """Frame transmitter driving GMII, one byte per cycle of the 125 MHz transmit clock.

    Clocked by ``sync``; rename it to the GMII transmit domain (``DomainRenamer("tx")``).

    For each packet on ``i`` the wire carries (IEEE 802.3 clause 3.2, 4.2.3, 35.2.2): seven
    preamble bytes ``0x55``, the SFD ``0xD5``, the packet bytes, zero padding up to 60 bytes
    (clause 4.2.3.3), the FCS (clause 3.2.9), then at least ``max(ifg, 12)`` idle bytes before
    the next preamble (clause 4.4.2), exactly that many when the next packet is already
    waiting. All GMII outputs come straight from registers.

    Attributes
    ----------
    i : In(PacketSignature(8, user_width=1))
        Packets to send, one byte per beat. ``keep`` is ignored (every beat carries one byte).
        ``user[0]`` on the last beat marks the packet bad: that byte goes out with ``tx_er``
        set and the frame ends there (no padding, no FCS). Once the first beat of a packet has
        been taken the source must offer a beat every cycle until ``last``; a cycle without
        ``valid`` is an underrun: the MAC sends one byte with ``tx_er`` set, ends the frame, and
        takes and discards the rest of the packet up to ``last``. ``ready`` is low during the
        preamble, padding, FCS and gap, and depends only on internal state.
    gmii : Out(GmiiTxSignature())
        GMII transmit signals.
    ifg : In(8, init=12)
        Inter-packet gap in bytes (byte times); values below 12 act as 12. Sampled whenever a
        frame may start; change it between frames.
    status : Out(stream.Signature(TxStatus, always_ready=True))
        One record per frame, valid for a single cycle: the cycle in which the frame's last
        byte (the last FCS byte, or the error byte) is on the GMII outputs. ``length`` counts
        the bytes after the SFD as sent (padding and FCS included, and for a bad or underrun
        frame up to its error byte), saturating at 65535.
    """

    def __init__(self):
        super().__init__({
            "i": In(PacketSignature(8, user_width=1)),
            "gmii": Out(GmiiTxSignature()),
            "ifg": In(8, init=IPG_MIN),
            "status": Out(stream.Signature(TxStatus, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = Crc32(width=8)
        m.submodules.classify = classify = FrameClassifier()

        # What the GMII registers show next cycle (idle unless a state says otherwise).
        txd = Signal(8)
        tx_en = Signal()
        tx_er = Signal()
        m.d.sync += [self.gmii.txd.eq(txd), self.gmii.tx_en.eq(tx_en), self.gmii.tx_er.eq(tx_er)]

        # Idle bytes on the wire since the last frame (saturating); starts satisfied after reset.
        gap = Signal(8, init=255)
        with m.If(tx_en):
            m.d.sync += gap.eq(0)
        with m.Elif(gap != 255):
            m.d.sync += gap.eq(gap + 1)
        ifg = Signal(8)
        m.d.comb += ifg.eq(Mux(self.ifg < IPG_MIN, IPG_MIN, self.ifg))

        count = Signal(range(PREAMBLE_LEN + 1))  # preamble and FCS bytes sent
        length = Signal(16)  # bytes after the SFD, saturating
        bad = Signal()
        underrun = Signal()
        finished = Signal()  # the frame's last byte is registered this cycle

        sent = Signal()  # a post-SFD byte (data, pad, FCS or error) goes out this cycle
        with m.If(sent & (length != 0xFFFF)):
            m.d.sync += length.eq(length + 1)

        # The FCS and the classifier take each byte from the output register, a cycle after it
        # was chosen, which keeps the byte multiplexer and the CRC in separate register stages.
        # The first FCS byte is taken from the CRC state that includes the last data byte.
        summed = Signal()  # this cycle's txd is covered by the FCS
        summed_out = Signal()  # ... the byte on the outputs now
        started = Signal()  # a frame's first preamble byte is on the outputs: restart the FCS
        m.d.sync += [summed_out.eq(summed), started.eq(0)]
        m.d.comb += [
            crc.clear.eq(started),
            classify.clear.eq(started),
            crc.data.eq(self.gmii.txd),
            crc.count.eq(1),
            crc.valid.eq(summed_out),
            classify.data.eq(self.gmii.txd),
            classify.valid.eq(summed_out),
        ]
        fcs = ~Mux(summed_out, crc.next, crc.crc)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.i.valid & (gap >= ifg)):
                    m.d.comb += [txd.eq(PREAMBLE_BYTE), tx_en.eq(1)]
                    m.d.sync += started.eq(1)
                    m.d.sync += [count.eq(1), length.eq(0), bad.eq(0), underrun.eq(0)]
                    m.next = "PREAMBLE"

            with m.State("PREAMBLE"):
                m.d.comb += tx_en.eq(1)
                with m.If(count == PREAMBLE_LEN):
                    m.d.comb += txd.eq(SFD)
                    m.next = "DATA"
                with m.Else():
                    m.d.comb += txd.eq(PREAMBLE_BYTE)
                    m.d.sync += count.eq(count + 1)

            with m.State("DATA"):
                m.d.comb += [self.i.ready.eq(1), tx_en.eq(1), sent.eq(1)]
                with m.If(~self.i.valid):
                    m.d.comb += tx_er.eq(1)
                    m.d.sync += underrun.eq(1)
                    m.d.comb += finished.eq(1)
                    m.next = "DISCARD"
                with m.Elif(self.i.payload.last & self.i.payload.user[0]):
                    m.d.comb += [txd.eq(self.i.payload.data), tx_er.eq(1)]
                    m.d.sync += bad.eq(1)
                    m.d.comb += finished.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [txd.eq(self.i.payload.data), summed.eq(1)]
                    with m.If(self.i.payload.last):
                        m.d.sync += count.eq(0)
                        with m.If(length + 1 < MIN_PAYLOAD_LEN):
                            m.next = "PAD"
                        with m.Else():
                            m.next = "FCS"

            with m.State("PAD"):
                m.d.comb += [txd.eq(0), tx_en.eq(1), sent.eq(1), summed.eq(1)]
                with m.If(length + 1 == MIN_PAYLOAD_LEN):
                    m.next = "FCS"

            with m.State("FCS"):
                m.d.comb += [tx_en.eq(1), sent.eq(1)]
                with m.Switch(count):
                    for k in range(FCS_LEN):
                        with m.Case(k):
                            m.d.comb += txd.eq(fcs.word_select(k, 8))
                m.d.sync += count.eq(count + 1)
                with m.If(count == FCS_LEN - 1):
                    m.d.comb += finished.eq(1)
                    m.next = "IDLE"

            with m.State("DISCARD"):
                # The frame already ended on the wire with an error byte; drop the rest.
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & self.i.payload.last):
                    m.next = "IDLE"

        # The record describes registers that are final one cycle after the last byte, and that
        # stay put until the next frame starts (at least 12 idle bytes later).
        m.d.sync += self.status.valid.eq(finished)
        m.d.comb += [
            self.status.payload.length.eq(length),
            self.status.payload.bad.eq(bad),
            self.status.payload.underrun.eq(underrun),
            self.status.payload.good.eq(~bad & ~underrun),
            self.status.payload.broadcast.eq(classify.broadcast),
            self.status.payload.multicast.eq(classify.multicast),
            self.status.payload.vlan.eq(classify.vlan),
        ]
        return m
