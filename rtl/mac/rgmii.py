"""RGMII adapter: GMII (8 bits, one edge) to RGMII (4 bits, both edges) and back.

RGMII v2.0 (section 3.3) carries a GMII byte on four data wires and one control wire per
direction, clocked on both edges of a 125 MHz clock:

=============  ==========================  ===================================
edge of clock  TXD / RXD                   TX_CTL / RX_CTL
=============  ==========================  ===================================
rising         bits 3:0                    TX_EN / RX_DV
falling        bits 7:4                    TX_EN xor TX_ER / RX_DV xor RX_ER
=============  ==========================  ===================================

Between frames (RX_DV and RX_ER both low) a PHY may send in-band status on RXD (section 3.4.1).

The double data rate registers themselves live in the I/O cells. This module keeps them apart
from the framing logic:

* :class:`RgmiiTx` and :class:`RgmiiRx` convert between GMII and *per-edge halves*: for every
  clock cycle, the nibble and control bit of the rising edge and of the falling edge, as plain
  single-rate signals. They contain no DDR primitive, so they simulate anywhere and convert to
  generic Verilog whose ``*_rise``/``*_fall`` ports feed a board's DDR registers.
* :class:`RgmiiDdrIo` attaches the halves to the pins with :class:`amaranth.lib.io.DDRBuffer`,
  which the platform maps to its I/O registers (``ODDRX1F``/``IDDRX1F`` on ECP5). It needs a
  platform; it does not simulate.

Only 1000 Mb/s operation is supported (no 10/100 Mb/s nibble mode).
"""

from amaranth.hdl import Cat, Const, Module
from amaranth.lib import data, enum, io, wiring
from amaranth.lib.wiring import In, Out

from .gmii_rx import GmiiRxSignature
from .gmii_tx import GmiiTxSignature

__all__ = [
    "RgmiiTxHalvesSignature", "RgmiiRxHalvesSignature", "RgmiiSpeed", "RgmiiInbandStatus",
    "RgmiiTx", "RgmiiRx", "RgmiiDdrIo",
]


def RgmiiTxHalvesSignature():
    """The transmit pins split per clock edge, as driven by the MAC.

    In each cycle of the transmit clock, ``*_rise`` is what the pins show for the rising edge
    and ``*_fall`` for the falling edge that follows; the DDR output register captures both at
    the rising edge (``o[0]``/``o[1]`` of :class:`~amaranth.lib.io.DDRBuffer`).
    """
    return wiring.Signature({
        "txd_rise": Out(4),
        "txd_fall": Out(4),
        "tx_ctl_rise": Out(1),
        "tx_ctl_fall": Out(1),
    })


def RgmiiRxHalvesSignature():
    """The receive pins split per clock edge, as driven by the DDR input register.

    In each cycle of the receive clock, ``*_rise`` is the sample taken at a rising edge of RXC
    and ``*_fall`` the sample taken at the falling edge that follows it; together they are one
    byte (``i[0]``/``i[1]`` of :class:`~amaranth.lib.io.DDRBuffer`).
    """
    return wiring.Signature({
        "rxd_rise": Out(4),
        "rxd_fall": Out(4),
        "rx_ctl_rise": Out(1),
        "rx_ctl_fall": Out(1),
    })


class RgmiiSpeed(enum.Enum, shape=2):
    """RXC clock speed reported by RGMII in-band status (RGMII v2.0 section 3.4.1)."""

    MBPS_10 = 0  # 2.5 MHz
    MBPS_100 = 1  # 25 MHz
    MBPS_1000 = 2  # 125 MHz


class RgmiiInbandStatus(data.Struct):
    """Link state a PHY reports on RXD between frames (RGMII v2.0 section 3.4.1)."""

    link_up: 1  # RXD[0]
    speed: RgmiiSpeed  # RXD[2:1]
    full_duplex: 1  # RXD[3]


class RgmiiTx(wiring.Component):
    """GMII transmit signals to RGMII per-edge halves (combinational).

    Attributes
    ----------
    gmii : In(GmiiTxSignature())
        From the transmitter; its outputs are registers, so the path to the DDR register is
        short.
    ddr : Out(RgmiiTxHalvesSignature())
        ``txd_rise = txd[3:0]``, ``txd_fall = txd[7:4]``, ``tx_ctl_rise = tx_en``,
        ``tx_ctl_fall = tx_en ^ tx_er``.
    """

    def __init__(self):
        super().__init__({
            "gmii": In(GmiiTxSignature()),
            "ddr": Out(RgmiiTxHalvesSignature()),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.ddr.txd_rise.eq(self.gmii.txd[:4]),
            self.ddr.txd_fall.eq(self.gmii.txd[4:]),
            self.ddr.tx_ctl_rise.eq(self.gmii.tx_en),
            self.ddr.tx_ctl_fall.eq(self.gmii.tx_en ^ self.gmii.tx_er),
        ]
        return m


class RgmiiRx(wiring.Component):
    """RGMII per-edge halves to GMII receive signals, plus the in-band link status.

    Clocked by ``sync`` (the receive clock, for ``inband`` only).

    Attributes
    ----------
    ddr : In(RgmiiRxHalvesSignature())
        From the DDR input register.
    gmii : Out(GmiiRxSignature())
        ``rxd = {rxd_fall, rxd_rise}``, ``rx_dv = rx_ctl_rise``,
        ``rx_er = rx_ctl_rise ^ rx_ctl_fall`` (combinational).
    inband : Out(RgmiiInbandStatus)
        The in-band status last seen between frames (both control halves low), updated one
        cycle later. All zero (link down) until the PHY first sends it.
    """

    def __init__(self):
        super().__init__({
            "ddr": In(RgmiiRxHalvesSignature()),
            "gmii": Out(GmiiRxSignature()),
            "inband": Out(RgmiiInbandStatus),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.gmii.rxd.eq(Cat(self.ddr.rxd_rise, self.ddr.rxd_fall)),
            self.gmii.rx_dv.eq(self.ddr.rx_ctl_rise),
            self.gmii.rx_er.eq(self.ddr.rx_ctl_rise ^ self.ddr.rx_ctl_fall),
        ]
        with m.If(~self.ddr.rx_ctl_rise & ~self.ddr.rx_ctl_fall):
            m.d.sync += self.inband.as_value().eq(self.ddr.rxd_rise)
        return m


class RgmiiDdrIo(wiring.Component):
    """The RGMII pins, driven and sampled by the platform's DDR I/O registers.

    Needs a platform that provides DDR buffers (:meth:`get_io_buffer`); elaborating it without
    one raises :exc:`NotImplementedError`. In simulation and for generic Verilog, use the
    per-edge halves of :class:`RgmiiTx`/:class:`RgmiiRx` directly.

    The board must clock ``rx_domain`` from RXC (RGMII v2.0 section 3.3 leaves the 1.5-2 ns
    clock-to-data skew to the PHY's internal delay, the board traces or an input delay).
    TXC is generated by a DDR output register in ``txc_domain`` (``1`` on the rising edge, ``0``
    on the falling edge): use the transmit domain itself when the PHY delays TXC internally
    (RGMII-ID), or a domain at the same frequency shifted by 90 degrees otherwise.

    Parameters
    ----------
    txc, txd, tx_ctl, rxd, rx_ctl : :class:`amaranth.lib.io.PortLike`
        The pins (widths 1, 4, 1, 4, 1).
    tx_domain, txc_domain, rx_domain : str
        Clock domains of the transmit data, of TXC and of the receive data.

    Attributes
    ----------
    tx : In(RgmiiTxHalvesSignature())
        Transmit halves, captured at each rising edge of ``tx_domain``; they reach the pins one
        cycle later.
    rx : Out(RgmiiRxHalvesSignature())
        Receive halves of one RXC cycle, presented together (the platform's DDR input latency,
        usually one cycle, applies).
    """

    def __init__(self, *, txc, txd, tx_ctl, rxd, rx_ctl,
                 tx_domain="tx", txc_domain=None, rx_domain="rx"):
        for name, port, width in (("txc", txc, 1), ("txd", txd, 4), ("tx_ctl", tx_ctl, 1),
                                  ("rxd", rxd, 4), ("rx_ctl", rx_ctl, 1)):
            if len(port) != width:
                raise ValueError(f"RGMII {name} must be {width} bits wide, not {len(port)}")
        self._ports = {"txc": txc, "txd": txd, "tx_ctl": tx_ctl, "rxd": rxd, "rx_ctl": rx_ctl}
        self._tx_domain = tx_domain
        self._txc_domain = txc_domain or tx_domain
        self._rx_domain = rx_domain
        super().__init__({
            "tx": In(RgmiiTxHalvesSignature()),
            "rx": Out(RgmiiRxHalvesSignature()),
        })

    def elaborate(self, platform):
        if not hasattr(platform, "get_io_buffer"):
            raise NotImplementedError(
                "RgmiiDdrIo needs a platform with DDR I/O buffers; without one, connect the "
                "per-edge halves of RgmiiTx/RgmiiRx to DDR registers instead")
        m = Module()
        out = io.Direction.Output
        inp = io.Direction.Input
        p = self._ports
        m.submodules.txc = txc = io.DDRBuffer(out, p["txc"], o_domain=self._txc_domain)
        m.submodules.txd = txd = io.DDRBuffer(out, p["txd"], o_domain=self._tx_domain)
        m.submodules.tx_ctl = tx_ctl = io.DDRBuffer(out, p["tx_ctl"], o_domain=self._tx_domain)
        m.submodules.rxd = rxd = io.DDRBuffer(inp, p["rxd"], i_domain=self._rx_domain)
        m.submodules.rx_ctl = rx_ctl = io.DDRBuffer(inp, p["rx_ctl"], i_domain=self._rx_domain)
        m.d.comb += [
            txc.o[0].eq(Const(1)),
            txc.o[1].eq(Const(0)),
            txd.o[0].eq(self.tx.txd_rise),
            txd.o[1].eq(self.tx.txd_fall),
            tx_ctl.o[0].eq(self.tx.tx_ctl_rise),
            tx_ctl.o[1].eq(self.tx.tx_ctl_fall),
            self.rx.rxd_rise.eq(rxd.i[0]),
            self.rx.rxd_fall.eq(rxd.i[1]),
            self.rx.rx_ctl_rise.eq(rx_ctl.i[0]),
            self.rx.rx_ctl_fall.eq(rx_ctl.i[1]),
        ]
        return m
