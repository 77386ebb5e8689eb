"""Every stream block converts to Verilog with AXI4-Stream / AXI4-Lite port names."""

import pytest

from amnic.cli.export import export_verilog
from amnic.stream import (
    AsyncPacketFifo,
    AxiLiteToRegisterBus,
    PacketArbiter,
    PacketDemux,
    PacketFifo,
    PacketMux,
    SkidBuffer,
    WidthDownConverter,
    WidthUpConverter,
)

SYNC = (("sync", "core clock"),)
RW = (("read", "read clock"), ("write", "write clock"))


def axis(prefix, name):
    return {f"{prefix}_axis_{name}_t{s}" for s in ("data", "keep", "valid", "ready", "last")}


CASES = [
    ("fifo", lambda: PacketFifo(64, depth=16), SYNC, axis("s", "i") | axis("m", "o")),
    ("async_fifo", lambda: AsyncPacketFifo(64, depth=16), RW,
     axis("s", "i") | axis("m", "o") | {"read_clk", "write_rst"}),
    ("skid", lambda: SkidBuffer(512), SYNC, axis("s", "i") | axis("m", "o")),
    ("up", lambda: WidthUpConverter(64, 512), SYNC, axis("s", "i") | axis("m", "o")),
    ("down", lambda: WidthDownConverter(512, 64), SYNC, axis("s", "i") | axis("m", "o")),
    ("arbiter", lambda: PacketArbiter(64, n=3), SYNC,
     axis("s", "i0") | axis("s", "i2") | axis("m", "o")),
    ("mux", lambda: PacketMux(64, n=3), SYNC, axis("s", "i1") | axis("m", "o") | {"sel"}),
    ("demux", lambda: PacketDemux(64, n=3), SYNC, axis("s", "i") | axis("m", "o2") | {"sel"}),
    ("sf_fifo", lambda: PacketFifo(64, depth=64, drop_bad=True), SYNC,
     axis("s", "i") | axis("m", "o") | {"bad_drops", "overflow_drops", "drop"}),
    ("async_sf_fifo", lambda: AsyncPacketFifo(64, depth=64, drop_bad=True), RW,
     axis("s", "i") | axis("m", "o") | {"bad_drops", "overflow_drops", "drop"}),
    ("axil", lambda: AxiLiteToRegisterBus(16, 32), SYNC,
     {"s_axil_awaddr", "s_axil_wstrb", "s_axil_bresp", "s_axil_rdata", "bus_addr", "bus_done"}),
]


@pytest.mark.parametrize("name,make,domains,expected", CASES)
def test_export(name, make, domains, expected):
    text, ports = export_verilog(make(), f"amnic_{name}", domains=domains)
    names = {p.name for p in ports}
    assert expected <= names, expected - names
    assert f"module amnic_{name}(" in text
    for port in expected:
        assert port in text


def test_member_named_for_its_direction_keeps_its_name():
    """``m_axis_tx`` / ``s_axis_rx`` members give ``m_axis_tx_tdata``, not ``m_axis_m_axis_...``."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from amnic.stream import PacketSignature

    class Loop(wiring.Component):
        s_axis_rx: In(PacketSignature(64))
        m_axis_tx: Out(PacketSignature(64))

        def elaborate(self, platform):
            m = Module()
            wiring.connect(m, wiring.flipped(self.s_axis_rx), wiring.flipped(self.m_axis_tx))
            return m

    _, ports = export_verilog(Loop(), "amnic_loop", domains=SYNC)
    names = {p.name for p in ports}
    assert axis("s", "rx") | axis("m", "tx") <= names, names
    assert not any("axis_m_axis" in n or "axis_s_axis" in n for n in names)
