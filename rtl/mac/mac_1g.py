"""1 Gb/s Ethernet MAC: GMII (or RGMII per-edge halves) on one side, byte streams on the other.

The MAC is the two independent datapaths :class:`~amnic.mac.gmii_tx.GmiiTransmitter` (clock
domain ``tx``) and :class:`~amnic.mac.gmii_rx.GmiiReceiver` (clock domain ``rx``). Nothing
crosses between the two domains.
"""

from amaranth.hdl import DomainRenamer, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketLayout, PacketSignature
from .gmii_rx import GmiiReceiver
from .gmii_tx import GmiiTransmitter
from .ieee802_3 import IPG_MIN, MAX_FRAME_LEN
from .rgmii import RgmiiRx, RgmiiTx
from .status import RxStatus, TxStatus

__all__ = ["GmiiSignature", "RgmiiHalvesSignature", "Mac1G"]


def GmiiSignature():
    """Both directions of GMII as seen from the MAC (IEEE 802.3 clause 35.2.2)."""
    return wiring.Signature({
        "txd": Out(8),
        "tx_en": Out(1),
        "tx_er": Out(1),
        "rxd": In(8),
        "rx_dv": In(1),
        "rx_er": In(1),
    })


def RgmiiHalvesSignature():
    """Both directions of RGMII as per-edge halves, as seen from the MAC.

    See :mod:`amnic.mac.rgmii` for what ``*_rise`` and ``*_fall`` mean; a board connects them
    to DDR I/O registers. ``link_up``, ``speed`` and ``full_duplex`` are the PHY's in-band
    status (RGMII v2.0 section 3.4.1), in the ``rx`` domain.
    """
    return wiring.Signature({
        "txd_rise": Out(4),
        "txd_fall": Out(4),
        "tx_ctl_rise": Out(1),
        "tx_ctl_fall": Out(1),
        "rxd_rise": In(4),
        "rxd_fall": In(4),
        "rx_ctl_rise": In(1),
        "rx_ctl_fall": In(1),
        "link_up": Out(1),
        "speed": Out(2),
        "full_duplex": Out(1),
    })


class Mac1G(wiring.Component):
    """1 Gb/s Ethernet MAC with separate transmit and receive clock domains.

    Clock domains: ``tx`` (the 125 MHz GMII transmit clock, GTX_CLK) and ``rx`` (the receive
    clock recovered by the PHY, RX_CLK). Each member below is in the domain named in its entry.

    Parameters
    ----------
    phy : "gmii" or "rgmii"
        The PHY interface: GMII signals, or RGMII as per-edge halves for the board's DDR
        registers (:mod:`amnic.mac.rgmii`).

    Attributes
    ----------
    tx : In(PacketSignature(8, user_width=1)), ``tx`` domain
        Frames to send (destination address through payload; the MAC adds preamble, padding
        and FCS). A frame must flow without gaps once started; ``user[0]`` on the last beat
        aborts it. See :class:`~amnic.mac.gmii_tx.GmiiTransmitter`.
    rx : Out(stream.Signature(PacketLayout(8, 1), always_ready=True)), ``rx`` domain
        Received frames without preamble and FCS; no back-pressure, ``user[0]`` on the last
        beat marks a bad frame. See :class:`~amnic.mac.gmii_rx.GmiiReceiver`.
    tx_status : Out(stream.Signature(TxStatus, always_ready=True)), ``tx`` domain
    rx_status : Out(stream.Signature(RxStatus, always_ready=True)), ``rx`` domain
        One record per frame.
    ifg : In(8, init=12), ``tx`` domain
        Inter-packet gap in bytes (at least 12 is used).
    max_frame : In(16, init=1518), ``rx`` domain
        Longest good received frame, FCS included.
    gmii : Out(GmiiSignature())
        With ``phy="gmii"``: transmit signals in ``tx``, receive signals in ``rx``.
    rgmii : Out(RgmiiHalvesSignature())
        With ``phy="rgmii"``: transmit halves in ``tx``, receive halves and status in ``rx``.
    """

    #: Clock domains for :func:`amnic.cli.export.export_verilog`.
    DOMAINS = (("tx", "GMII transmit clock 125 MHz"), ("rx", "GMII receive clock"))

    def __init__(self, *, phy="gmii"):
        if phy not in ("gmii", "rgmii"):
            raise ValueError(f"phy must be 'gmii' or 'rgmii', not {phy!r}")
        self._phy = phy
        members = {
            "tx": In(PacketSignature(8, user_width=1)),
            "rx": Out(stream.Signature(PacketLayout(8, user_width=1), always_ready=True)),
            "tx_status": Out(stream.Signature(TxStatus, always_ready=True)),
            "rx_status": Out(stream.Signature(RxStatus, always_ready=True)),
            "ifg": In(8, init=IPG_MIN),
            "max_frame": In(16, init=MAX_FRAME_LEN),
        }
        if phy == "gmii":
            members["gmii"] = Out(GmiiSignature())
        else:
            members["rgmii"] = Out(RgmiiHalvesSignature())
        super().__init__(members)

    @property
    def phy(self):
        return self._phy

    def elaborate(self, platform):
        m = Module()
        m.submodules.transmitter = tx = DomainRenamer("tx")(GmiiTransmitter())
        m.submodules.receiver = rx = DomainRenamer("rx")(GmiiReceiver())

        wiring.connect(m, wiring.flipped(self.tx), tx.i)
        m.d.comb += [
            self.rx.valid.eq(rx.o.valid),
            self.rx.payload.eq(rx.o.payload),
            self.tx_status.valid.eq(tx.status.valid),
            self.tx_status.payload.eq(tx.status.payload),
            self.rx_status.valid.eq(rx.status.valid),
            self.rx_status.payload.eq(rx.status.payload),
            tx.ifg.eq(self.ifg),
            rx.max_frame.eq(self.max_frame),
        ]

        if self._phy == "gmii":
            m.d.comb += [
                self.gmii.txd.eq(tx.gmii.txd),
                self.gmii.tx_en.eq(tx.gmii.tx_en),
                self.gmii.tx_er.eq(tx.gmii.tx_er),
                rx.gmii.rxd.eq(self.gmii.rxd),
                rx.gmii.rx_dv.eq(self.gmii.rx_dv),
                rx.gmii.rx_er.eq(self.gmii.rx_er),
            ]
        else:
            m.submodules.rgmii_tx = rgmii_tx = RgmiiTx()
            m.submodules.rgmii_rx = rgmii_rx = DomainRenamer("rx")(RgmiiRx())
            wiring.connect(m, tx.gmii, rgmii_tx.gmii)
            wiring.connect(m, rgmii_rx.gmii, rx.gmii)
            pins = self.rgmii
            m.d.comb += [
                pins.txd_rise.eq(rgmii_tx.ddr.txd_rise),
                pins.txd_fall.eq(rgmii_tx.ddr.txd_fall),
                pins.tx_ctl_rise.eq(rgmii_tx.ddr.tx_ctl_rise),
                pins.tx_ctl_fall.eq(rgmii_tx.ddr.tx_ctl_fall),
                rgmii_rx.ddr.rxd_rise.eq(pins.rxd_rise),
                rgmii_rx.ddr.rxd_fall.eq(pins.rxd_fall),
                rgmii_rx.ddr.rx_ctl_rise.eq(pins.rx_ctl_rise),
                rgmii_rx.ddr.rx_ctl_fall.eq(pins.rx_ctl_fall),
                pins.link_up.eq(rgmii_rx.inband.link_up),
                pins.speed.eq(rgmii_rx.inband.speed),
                pins.full_duplex.eq(rgmii_rx.inband.full_duplex),
            ]
        return m

    def to_verilog(self, name=None):
        """Generate Verilog with AXI port names; returns ``(text, ports)``.

        Ports: ``tx_clk``/``tx_rst``, ``rx_clk``/``rx_rst``, ``s_axis_tx_*``, ``m_axis_rx_*``
        (no ``tready``), ``tx_status_tdata/tvalid``, ``rx_status_tdata/tvalid``, ``ifg``,
        ``max_frame`` and ``gmii_*`` or ``rgmii_*``. Verilog inputs have no defaults: tie
        ``ifg`` to 12 and ``max_frame`` to 1518 for standard behaviour.
        """
        from amnic.cli.export import export_verilog

        name = name or f"amnic_mac_1g_{self._phy}"
        return export_verilog(self, name, domains=self.DOMAINS, parameters={"phy": self._phy})
