"""10G/25G Ethernet MAC on a 64-bit XGMII: transmitter and receiver in their own clock domains.

The same RTL serves 10GBASE-R (XGMII clock 156.25 MHz) and 25GBASE-R (390.625 MHz); only the
clock differs. Line rate is one 64-bit word per clock in both directions.
"""

from amaranth.hdl import DomainRenamer, Module
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketLayout, PacketSignature

from .ieee802_3 import IPG_MIN, MAX_FRAME_LEN, PFC_PRIORITIES
from .pause_rx import PauseReceiver
from .pause_tx import PauseTransmitter, default_refresh_cycles
from .status import FlowControlEvent, RxStatus, TxStatus
from .xgmii import XgmiiSignature
from .xgmii_rx import XgmiiReceiver
from .xgmii_tx import XgmiiTransmitter

__all__ = ["Mac10G", "forward_ports"]

#: One pause quantum (512 bit times) is 8 cycles of the 64-bit datapath at line rate.
QUANTUM_CYCLES = 8



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

    With ``flow_control=True`` (the default) the MAC also implements IEEE 802.3x PAUSE and
    802.1Qbb PFC (see :class:`~amnic.mac.pause_rx.PauseReceiver` and
    :class:`~amnic.mac.pause_tx.PauseTransmitter` for the exact behaviour):

    station_addr : In(48)                 (quasi-static; both domains)
        This port's MAC address, octet 0 in bits 47:40: source of PAUSE/PFC frames sent, and
        accepted as destination of those received. Change it only while the link is idle.
    pause_req, pfc_req, pause_quanta, refresh_cycles, tx_pause_enable, tx_pfc_enable (tx)
        Requests to send link PAUSE (XOFF while high, XON on release) or per-priority PFC.
    rx_pause_enable, rx_pfc_enable : In(1)  (rx domain, init 1)
        Obey received PAUSE / PFC frames. A received link PAUSE stops new frames on ``tx``
        (the frame in flight completes); MAC Control frames never reach ``rx``.
    rx_paused, rx_pfc_paused : Out(1), Out(8)   (rx domain)
        Pause state requested by the link partner; ``tx_pfc_paused`` is the per-priority state
        synchronized to the tx domain, for the transmit scheduler.
    tx_flow, rx_flow : Out(stream.Signature(FlowControlEvent, always_ready=True))
        One event per PAUSE/PFC frame sent (tx domain) or validly received (rx domain).

    Parameters
    ----------
    flow_control : bool
        Include PAUSE/PFC (adds one cycle of receive latency to remove MAC Control frames).
    """

    def __init__(self, *, flow_control=True):
        self.flow_control = flow_control
        members = {
            "tx": In(PacketSignature(64)),
            "rx": Out(stream.Signature(PacketLayout(64), always_ready=True)),
            "xgmii": Out(XgmiiSignature),
            "ifg": In(8, init=IPG_MIN),
            "max_frame": In(16, init=MAX_FRAME_LEN),
            "tx_status": Out(stream.Signature(TxStatus, always_ready=True)),
            "rx_status": Out(stream.Signature(RxStatus, always_ready=True)),
            "tx_start": Out(1),
            "tx_start_lane": Out(1),
            "rx_start": Out(1),
            "rx_start_lane": Out(1),
        }
        if flow_control:
            members.update({
                "station_addr": In(48),
                "pause_req": In(1),
                "pfc_req": In(PFC_PRIORITIES),
                "pause_quanta": In(16, init=0xFFFF),
                "refresh_cycles": In(32, init=default_refresh_cycles(QUANTUM_CYCLES)),
                "tx_pause_enable": In(1, init=1),
                "tx_pfc_enable": In(1, init=1),
                "rx_pause_enable": In(1, init=1),
                "rx_pfc_enable": In(1, init=1),
                "rx_paused": Out(1),
                "rx_pfc_paused": Out(PFC_PRIORITIES),
                "tx_pfc_paused": Out(PFC_PRIORITIES),
                "tx_flow": Out(stream.Signature(FlowControlEvent, always_ready=True)),
                "rx_flow": Out(stream.Signature(FlowControlEvent, always_ready=True)),
            })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.transmitter = tx = DomainRenamer("tx")(XgmiiTransmitter())
        m.submodules.receiver = rx = DomainRenamer("rx")(XgmiiReceiver())

        rx_out = rx.o
        if self.flow_control:
            m.submodules.pause_tx = ptx = DomainRenamer("tx")(
                PauseTransmitter(quantum_cycles=QUANTUM_CYCLES))
            m.submodules.pause_rx = prx = DomainRenamer("rx")(
                PauseReceiver(quantum_cycles=QUANTUM_CYCLES))
            wiring.connect(m, wiring.flipped(self.tx), ptx.i)
            wiring.connect(m, ptx.o, tx.i)
            m.d.comb += [
                prx.i.valid.eq(rx.o.valid),
                prx.i.payload.eq(rx.o.payload),
                ptx.station_addr.eq(self.station_addr),
                prx.station_addr.eq(self.station_addr),
                ptx.pause_req.eq(self.pause_req),
                ptx.pfc_req.eq(self.pfc_req),
                ptx.pause_quanta.eq(self.pause_quanta),
                ptx.refresh_cycles.eq(self.refresh_cycles),
                ptx.tx_pause_enable.eq(self.tx_pause_enable),
                ptx.tx_pfc_enable.eq(self.tx_pfc_enable),
                prx.rx_pause_enable.eq(self.rx_pause_enable),
                prx.rx_pfc_enable.eq(self.rx_pfc_enable),
                self.rx_paused.eq(prx.paused),
                self.rx_pfc_paused.eq(prx.pfc_paused),
                self.tx_flow.valid.eq(ptx.event.valid),
                self.tx_flow.payload.eq(ptx.event.payload),
                self.rx_flow.valid.eq(prx.event.valid),
                self.rx_flow.payload.eq(prx.event.payload),
            ]
            m.submodules.paused_sync = FFSynchronizer(prx.paused, ptx.paused, o_domain="tx")
            m.submodules.pfc_sync = FFSynchronizer(prx.pfc_paused, self.tx_pfc_paused,
                                                   o_domain="tx")
            rx_out = prx.o
        else:
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
            self.rx.valid.eq(rx_out.valid),
            self.rx.payload.eq(rx_out.payload),
            self.rx_status.valid.eq(rx.status.valid),
            self.rx_status.payload.eq(rx.status.payload),
            self.rx_start.eq(rx.start),
            self.rx_start_lane.eq(rx.start_lane),
        ]
        return m


def forward_ports(m, outer, inner, skip=()):
    """Connect every member of ``inner``'s signature, except those named in ``skip``, to the
    member of the same name of ``outer``, for components that wrap :class:`Mac10G` and expose
    its ports unchanged."""
    for name, member in inner.signature.members.items():
        if name in skip:
            continue
        ours, theirs = getattr(outer, name), getattr(inner, name)
        if member.is_port:
            if member.flow == In:
                m.d.comb += theirs.eq(ours)
            else:
                m.d.comb += ours.eq(theirs)
        elif member.flow == In:
            wiring.connect(m, wiring.flipped(ours), theirs)
        else:
            wiring.connect(m, theirs, wiring.flipped(ours))
