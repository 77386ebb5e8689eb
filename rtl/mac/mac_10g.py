"""10G/25G Ethernet MAC on a 64-bit XGMII: transmitter and receiver in their own clock domains.

The same RTL serves 10GBASE-R (XGMII clock 156.25 MHz) and 25GBASE-R (390.625 MHz); only the
clock differs. Line rate is one 64-bit word per clock in both directions.
"""

from amaranth.hdl import DomainRenamer, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketLayout, PacketSignature

from .ieee802_3 import IPG_MIN, MAX_FRAME_LEN
from .status import RxStatus, TxStatus
from .xgmii_rx import XgmiiReceiver
from .xgmii_tx import XgmiiTransmitter

__all__ = ["XgmiiSignature", "Mac10G"]

#: Both directions of a 64-bit XGMII, from the MAC's point of view.
XgmiiSignature = wiring.Signature({
    "txd": Out(64), "txc": Out(8), "rxd": In(64), "rxc": In(8),
})


class Mac10G(wiring.Component):
    """Ethernet MAC for 10GBASE-R / 25GBASE-R with a 64-bit XGMII.

    Clock domains: ``tx`` (XGMII transmit clock) and ``rx`` (XGMII receive clock). Every port
    belongs to the domain named in its description. With all inputs left at their reset values
    the MAC passes traffic with a 12-byte mean gap and a 1518-byte maximum frame.

    Attributes
    ----------
    tx : In(PacketSignature(64))          (tx domain)
        Frames to send, destination address first, without FCS. ``user[0]`` on the last beat
        sends the frame deliberately corrupted (ended with /E/). Once a frame has started the
        source must supply one beat per cycle (or the frame is aborted as an underrun).
    rx : Out(stream.Signature(PacketLayout(64), always_ready=True))   (rx domain)
        Received frames without FCS. No back-pressure. ``user[0]`` on the last beat flags a bad
        frame (see ``rx_status``).
    xgmii : Out(XgmiiSignature)
        ``txd``/``txc`` (tx domain, registered) and ``rxd``/``rxc`` (rx domain).
    ifg : In(8)                           (tx domain)
        Mean inter-packet gap in bytes (init 12, at least 12).
    max_frame : In(16)                    (rx domain)
        Largest good received frame including FCS (init 1518, +4 when VLAN-tagged; up to
        65535 for jumbo frames).
    tx_status, rx_status : Out(stream.Signature(TxStatus/RxStatus, always_ready=True))
        One record per frame, in the tx / rx domain.
    tx_start, rx_start : Out(1)
        Strobes in the cycle a frame's /S/ is on ``txd`` / ``rxd`` (for timestamps);
        ``tx_start_lane``/``rx_start_lane`` tell lane 0 (0) or lane 4 (1).
    """

    tx: In(PacketSignature(64))
    rx: Out(stream.Signature(PacketLayout(64), always_ready=True))
    xgmii: Out(XgmiiSignature)
    ifg: In(8, init=IPG_MIN)
    max_frame: In(16, init=MAX_FRAME_LEN)
    tx_status: Out(stream.Signature(TxStatus, always_ready=True))
    rx_status: Out(stream.Signature(RxStatus, always_ready=True))
    tx_start: Out(1)
    tx_start_lane: Out(1)
    rx_start: Out(1)
    rx_start_lane: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.transmitter = tx = DomainRenamer("tx")(XgmiiTransmitter())
        m.submodules.receiver = rx = DomainRenamer("rx")(XgmiiReceiver())

        wiring.connect(m, wiring.flipped(self.tx), tx.i)
        m.d.comb += [
            self.xgmii.txd.eq(tx.xgmii.txd),
            self.xgmii.txc.eq(tx.xgmii.txc),
            tx.ifg.eq(self.ifg),
            self.tx_status.valid.eq(tx.status.valid),
            self.tx_status.payload.eq(tx.status.payload),
            self.tx_start.eq(tx.start),
            self.tx_start_lane.eq(tx.start_lane),

            rx.xgmii.rxd.eq(self.xgmii.rxd),
            rx.xgmii.rxc.eq(self.xgmii.rxc),
            rx.max_frame.eq(self.max_frame),
            self.rx.valid.eq(rx.o.valid),
            self.rx.payload.eq(rx.o.payload),
            self.rx_status.valid.eq(rx.status.valid),
            self.rx_status.payload.eq(rx.status.payload),
            self.rx_start.eq(rx.start),
            self.rx_start_lane.eq(rx.start_lane),
        ]
        return m
