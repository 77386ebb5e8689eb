"""GMII receive framing for a 1 Gb/s MAC (IEEE 802.3 clauses 3, 4 and 35).

:class:`GmiiReceiver` turns GMII receive signals into a byte-wide packet stream with the
preamble, SFD and FCS removed, checks each frame and reports it. :class:`FrameClassifier`
recognises broadcast, multicast and VLAN-tagged frames from their first bytes; the transmitter
uses it too.
"""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketLayout
from .crc import Crc32
from .ieee802_3 import CRC32_RESIDUE, FCS_LEN, MAX_FRAME_LEN, MIN_FRAME_LEN, PREAMBLE_BYTE, SFD
from .status import RxStatus

__all__ = ["GmiiRxSignature", "FrameClassifier", "GmiiReceiver"]

VLAN_TPID = (0x81, 0x00)  # IEEE 802.1Q tag protocol identifier, in wire order
ADDRESS_LEN = 6


def GmiiRxSignature():
    """The GMII receive signals as driven by the PHY (IEEE 802.3 clause 35.2.2).

    Members
    -------
    rxd : Out(8)
        Receive data, bit 0 first on the wire.
    rx_dv : Out(1)
        Set from the first preamble (or SFD) byte through the last FCS byte.
    rx_er : Out(1)
        With ``rx_dv``: the PHY decoded an invalid code group inside the frame (clause
        35.2.2.9). Without ``rx_dv`` it signals carrier extension or false carrier, which the
        MAC ignores.
    """
    return wiring.Signature({"rxd": Out(8), "rx_dv": Out(1), "rx_er": Out(1)})


class FrameClassifier(wiring.Component):
    """Classify a frame by its destination address and EtherType, one byte per cycle.

    Bytes are numbered from the first destination address byte (IEEE 802.3 clause 3.2.3).

    Attributes
    ----------
    clear : In(1)
        Forget the current frame: the next byte with ``valid`` is byte 0. Must not be asserted
        together with ``valid``.
    valid : In(1)
        ``data`` is the next byte of the frame.
    data : In(8)
    broadcast : Out(1)
        The destination address is ff:ff:ff:ff:ff:ff (all six bytes seen).
    multicast : Out(1)
        The destination is a group address (bit 0 of byte 0, clause 3.2.3) other than
        broadcast.
    vlan : Out(1)
        Bytes 12-13 are the IEEE 802.1Q TPID 0x8100.

    The outputs describe the bytes taken up to the previous cycle; they stay as they are after
    byte 13.
    """

    def __init__(self):
        super().__init__({
            "clear": In(1),
            "valid": In(1),
            "data": In(8),
            "broadcast": Out(1),
            "multicast": Out(1),
            "vlan": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        position = Signal(range(15))
        all_ones = Signal()
        group = Signal()
        tpid_high = Signal()
        with m.If(self.clear):
            m.d.sync += [position.eq(0), all_ones.eq(1), group.eq(0), self.vlan.eq(0)]
        with m.Elif(self.valid & (position != 14)):
            m.d.sync += position.eq(position + 1)
            with m.If((position < ADDRESS_LEN) & (self.data != 0xFF)):
                m.d.sync += all_ones.eq(0)
            with m.If(position == 0):
                m.d.sync += group.eq(self.data[0])
            with m.If(position == 12):
                m.d.sync += tpid_high.eq(self.data == VLAN_TPID[0])
            with m.If(position == 13):
                m.d.sync += self.vlan.eq(tpid_high & (self.data == VLAN_TPID[1]))
        m.d.comb += [
            self.broadcast.eq(all_ones & (position >= ADDRESS_LEN)),
            self.multicast.eq(group & ~self.broadcast),
        ]
        return m


class GmiiReceiver(wiring.Component):
    """Frame receiver reading GMII, one byte per cycle of the 125 MHz receive clock.

    Clocked by ``sync``; rename it to the GMII receive domain (``DomainRenamer("rx")``). The
    GMII inputs are registered once before use.

    A frame (IEEE 802.3 clause 35.2.3.2, 4.2.9) starts at the SFD ``0xD5`` while ``rx_dv`` is
    set; any number of preamble bytes ``0x55`` may come first, including none (a PHY may shorten
    the preamble). A carrier event in which some other byte precedes the SFD is not a frame and
    is ignored without a record. The frame ends when ``rx_dv`` falls.

    Checks (each sets its flag in the status record and marks the frame bad):

    * ``fcs_error``: the CRC over the frame including its FCS is not the residue 0xDEBB20E3
      (clause 3.2.9);
    * ``framing_error``: ``rx_er`` was set while ``rx_dv`` was, from the preamble on;
    * ``runt``: fewer than 64 bytes including the FCS (clause 4.2.4.2.2);
    * ``oversize``: more than ``max_frame`` bytes including the FCS. Delivery stops there (see
      ``o``); the CRC and the length keep counting until ``rx_dv`` falls.

    Attributes
    ----------
    gmii : In(GmiiRxSignature())
        GMII receive signals.
    max_frame : In(16, init=1518)
        Longest good frame in bytes, including the FCS (clause 4.4.2: 1518 untagged, 1522
        tagged; larger for jumbo frames). Keep it at least 64; change it between frames.
    o : Out(stream.Signature(PacketLayout(8, user_width=1), always_ready=True))
        The frame's bytes from the destination address on, **without the FCS**: a frame of
        ``n`` bytes on the wire gives ``n - 4`` beats. Each beat is valid for exactly one cycle;
        there is no back-pressure (``ready`` is a constant 1), so the consumer must take a beat
        in every cycle it is offered, e.g. into a FIFO that drops whole frames when full.
        ``keep`` is always 1. ``last`` marks the final beat; ``user[0]`` on it is set when the
        frame is bad. A byte is delivered once the five bytes after it have arrived (four
        could be the FCS, and the fifth proves it is not the last data byte), seven cycles
        after it was on ``rxd``; the last beat comes two cycles after the first cycle with
        ``rx_dv`` low (one input register, one output register). An
        oversize frame delivers its first ``max_frame - 4`` bytes, the last of them marked bad.
        A frame of four bytes or fewer has nothing to deliver and shows only in ``status``.
    status : Out(stream.Signature(RxStatus, always_ready=True))
        One record per frame, valid for a single cycle, two cycles after the first cycle with
        ``rx_dv`` low (in the same cycle as the last beat of the frame, if it had one).
        ``length`` counts every byte after the SFD, FCS included, saturating at 65535.
        ``frames = good + bad`` holds on it.
    """

    def __init__(self):
        super().__init__({
            "gmii": In(GmiiRxSignature()),
            "max_frame": In(16, init=MAX_FRAME_LEN),
            "o": Out(stream.Signature(PacketLayout(8, user_width=1), always_ready=True)),
            "status": Out(stream.Signature(RxStatus, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = Crc32(width=8)
        m.submodules.classify = classify = FrameClassifier()

        rxd = Signal(8)
        rx_dv = Signal()
        rx_er = Signal()
        m.d.sync += [rxd.eq(self.gmii.rxd), rx_dv.eq(self.gmii.rx_dv), rx_er.eq(self.gmii.rx_er)]

        # The last FCS_LEN + 1 bytes: a byte is delivered once FCS_LEN bytes follow it, and it
        # is known to be the last one only when rx_dv falls after those.
        depth = FCS_LEN + 1
        delay = Array(Signal(8, name=f"delay{k}") for k in range(depth))
        filled = Signal(range(depth + 1))
        oldest = delay[0]

        length = Signal(16)
        framing_error = Signal()
        oversize = Signal()
        fcs_error = Signal()
        runt = Signal()
        m.d.comb += [
            fcs_error.eq(crc.crc != CRC32_RESIDUE),
            runt.eq(length < MIN_FRAME_LEN),
        ]

        emit = Signal()
        emit_last = Signal()
        emit_bad = Signal()
        m.d.sync += [
            self.o.valid.eq(emit),
            self.o.payload.data.eq(oldest),
            self.o.payload.keep.eq(1),
            self.o.payload.last.eq(emit_last),
            self.o.payload.user.eq(emit_bad),
        ]

        take = Signal()  # the registered byte belongs to the frame
        m.d.comb += [crc.data.eq(rxd), crc.count.eq(1), crc.valid.eq(take)]
        m.d.comb += [classify.data.eq(rxd), classify.valid.eq(take)]
        with m.If(take & (length != 0xFFFF)):
            m.d.sync += length.eq(length + 1)
        with m.If(rx_dv & rx_er):
            m.d.sync += framing_error.eq(1)

        start = Signal()  # the registered byte is the SFD
        with m.If(start):
            m.d.comb += [crc.clear.eq(1), classify.clear.eq(1)]
            m.d.sync += [length.eq(0), filled.eq(0), oversize.eq(0)]

        finished = Signal()

        with m.FSM():
            with m.State("IDLE"):
                with m.If(rx_dv):
                    m.d.sync += framing_error.eq(rx_er)
                    with m.If(rxd == SFD):
                        m.d.comb += start.eq(1)
                        m.next = "DATA"
                    with m.Elif(rxd == PREAMBLE_BYTE):
                        m.next = "PREAMBLE"
                    with m.Else():
                        m.next = "SKIP"

            with m.State("PREAMBLE"):
                with m.If(~rx_dv):
                    m.next = "IDLE"
                with m.Elif(rxd == SFD):
                    m.d.comb += start.eq(1)
                    m.next = "DATA"
                with m.Elif(rxd != PREAMBLE_BYTE):
                    m.next = "SKIP"

            with m.State("DATA"):
                with m.If(~rx_dv):
                    m.d.comb += [finished.eq(1), emit.eq(filled == depth), emit_last.eq(1)]
                    m.d.comb += emit_bad.eq(fcs_error | framing_error | runt)
                    m.next = "IDLE"
                with m.Elif(length == self.max_frame):
                    m.d.comb += take.eq(1)
                    m.d.comb += [emit.eq(filled == depth), emit_last.eq(1), emit_bad.eq(1)]
                    m.d.sync += oversize.eq(1)
                    m.next = "DROP"
                with m.Else():
                    m.d.comb += [take.eq(1), emit.eq(filled == depth)]
                    m.d.sync += [delay[k].eq(delay[k + 1]) for k in range(depth - 1)]
                    m.d.sync += delay[depth - 1].eq(rxd)
                    with m.If(filled != depth):
                        m.d.sync += filled.eq(filled + 1)

            with m.State("DROP"):
                with m.If(rx_dv):
                    m.d.comb += take.eq(1)
                with m.Else():
                    m.d.comb += finished.eq(1)
                    m.next = "IDLE"

            with m.State("SKIP"):
                with m.If(~rx_dv):
                    m.next = "IDLE"

        # The flags are final in the cycle rx_dv falls and hold for at least the next cycle
        # (a new frame clears them only on its SFD).
        m.d.sync += self.status.valid.eq(finished)
        m.d.comb += [
            self.status.payload.length.eq(length),
            self.status.payload.fcs_error.eq(fcs_error),
            self.status.payload.framing_error.eq(framing_error),
            self.status.payload.runt.eq(runt),
            self.status.payload.oversize.eq(oversize),
            self.status.payload.good.eq(~(fcs_error | framing_error | runt | oversize)),
            self.status.payload.broadcast.eq(classify.broadcast),
            self.status.payload.multicast.eq(classify.multicast),
            self.status.payload.vlan.eq(classify.vlan),
        ]
        return m
