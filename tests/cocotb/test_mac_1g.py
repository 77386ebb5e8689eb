"""pytest launchers for ``tb_mac_1g``: one test per cocotb testcase, each model built once.

The GMII model is :class:`amnic.mac.mac_1g.Mac1G` exported as-is. The RGMII model is a
test-only top: ``Mac1G(phy="rgmii")`` whose per-edge halves feed behavioural DDR registers, so
cocotbext-eth's RGMII models can drive and sample real double data rate pins. Those DDR models
stand in for a board's I/O registers (``ODDRX1F``/``IDDRX1F`` through ``lib.io``) and are not
part of the MAC.
"""

from functools import cache

import pytest
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.cli.export import export_verilog
from amnic.mac.mac_1g import Mac1G
from amnic.mac.status import RxStatus, TxStatus
from amnic.sim.cocotb_runner import build, run
from amnic.stream import PacketLayout, PacketSignature


class _DdrOutputModel(wiring.Component):
    """Behaviour of a DDR output register: ``o0``/``o1`` are captured at a rising edge of
    ``domain``; the pin shows ``o0`` while the clock is high and ``o1`` while it is low."""

    def __init__(self, domain, width):
        self._domain = domain
        super().__init__({"o0": In(width), "o1": In(width), "pin": Out(width)})

    def elaborate(self, platform):
        m = Module()
        fall = f"{self._domain}_fall"
        m.domains += ClockDomain(fall, clk_edge="neg", reset_less=True, local=True)
        m.d.comb += ClockSignal(fall).eq(ClockSignal(self._domain))
        q0 = Signal.like(self.o0)
        q1 = Signal.like(self.o1)
        q1_fall = Signal.like(self.o1)
        m.d[self._domain] += [q0.eq(self.o0), q1.eq(self.o1)]
        m.d[fall] += q1_fall.eq(q1)
        m.d.comb += self.pin.eq(Mux(ClockSignal(self._domain), q0, q1_fall))
        return m


class _DdrInputModel(wiring.Component):
    """Behaviour of a DDR input register: ``i0`` is the pin sampled at a rising edge of
    ``domain``, ``i1`` at the falling edge after it; both appear together one cycle later."""

    def __init__(self, domain, width):
        self._domain = domain
        super().__init__({"pin": In(width), "i0": Out(width), "i1": Out(width)})

    def elaborate(self, platform):
        m = Module()
        fall = f"{self._domain}_fall"
        m.domains += ClockDomain(fall, clk_edge="neg", reset_less=True, local=True)
        m.d.comb += ClockSignal(fall).eq(ClockSignal(self._domain))
        rise_sample = Signal.like(self.pin)
        fall_sample = Signal.like(self.pin)
        m.d[self._domain] += rise_sample.eq(self.pin)
        m.d[fall] += fall_sample.eq(self.pin)
        m.d[self._domain] += [self.i0.eq(rise_sample), self.i1.eq(fall_sample)]
        return m


class RgmiiSimTop(wiring.Component):
    """Mac1G on RGMII pins through behavioural DDR registers (simulation only).

    TXC is the ``tx90`` clock (the transmit clock shifted by 90 degrees) passed through a DDR
    output register, as a board without PHY-side TX delay would generate it.
    """

    def __init__(self):
        super().__init__({
            "tx": In(PacketSignature(8, user_width=1)),
            "rx": Out(stream.Signature(PacketLayout(8, user_width=1), always_ready=True)),
            "tx_status": Out(stream.Signature(TxStatus, always_ready=True)),
            "rx_status": Out(stream.Signature(RxStatus, always_ready=True)),
            "ifg": In(8, init=12),
            "max_frame": In(16, init=1518),
            "rgmii": Out(wiring.Signature({
                "txc": Out(1), "txd": Out(4), "tx_ctl": Out(1),
                "rxd": In(4), "rx_ctl": In(1),
                "link_up": Out(1), "speed": Out(2), "full_duplex": Out(1),
            })),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = Mac1G(phy="rgmii")
        m.submodules.tx_ddr = tx_ddr = _DdrOutputModel("tx", 5)
        m.submodules.txc_ddr = txc_ddr = _DdrOutputModel("tx90", 1)
        m.submodules.rx_ddr = rx_ddr = _DdrInputModel("rx", 5)
        wiring.connect(m, wiring.flipped(self.tx), mac.tx)
        for name in ("rx", "tx_status", "rx_status"):
            src, dst = getattr(mac, name), getattr(self, name)
            m.d.comb += [dst.valid.eq(src.valid), dst.payload.eq(src.payload)]
        pins, halves = self.rgmii, mac.rgmii
        m.d.comb += [
            mac.ifg.eq(self.ifg),
            mac.max_frame.eq(self.max_frame),
            tx_ddr.o0.eq(Cat(halves.txd_rise, halves.tx_ctl_rise)),
            tx_ddr.o1.eq(Cat(halves.txd_fall, halves.tx_ctl_fall)),
            Cat(pins.txd, pins.tx_ctl).eq(tx_ddr.pin),
            txc_ddr.o0.eq(1),
            txc_ddr.o1.eq(0),
            pins.txc.eq(txc_ddr.pin),
            rx_ddr.pin.eq(Cat(pins.rxd, pins.rx_ctl)),
            Cat(halves.rxd_rise, halves.rx_ctl_rise).eq(rx_ddr.i0),
            Cat(halves.rxd_fall, halves.rx_ctl_fall).eq(rx_ddr.i1),
            pins.link_up.eq(halves.link_up),
            pins.speed.eq(halves.speed),
            pins.full_duplex.eq(halves.full_duplex),
        ]
        return m


@cache
def gmii_model():
    text, _ = Mac1G(phy="gmii").to_verilog("amnic_mac_1g_gmii")
    return build("amnic_mac_1g_gmii", text)


@cache
def rgmii_model():
    domains = Mac1G.DOMAINS + (("tx90", "transmit clock shifted by 90 degrees, for TXC"),)
    text, _ = export_verilog(RgmiiSimTop(), "amnic_mac_1g_rgmii_sim", domains=domains)
    return build("amnic_mac_1g_rgmii_sim", text)


@pytest.mark.parametrize("testcase", [
    "gmii_tx_frames", "gmii_tx_ifg", "gmii_tx_bad_and_underrun", "gmii_rx_frames",
    "gmii_rx_errors",
])
def test_gmii(testcase):
    result = run(gmii_model(), "tb_mac_1g", testcase)
    assert result.passed, result.report


@pytest.mark.parametrize("testcase", ["rgmii_tx_pins", "rgmii_rx_pins"])
def test_rgmii(testcase):
    result = run(rgmii_model(), "tb_mac_1g", testcase)
    assert result.passed, result.report
