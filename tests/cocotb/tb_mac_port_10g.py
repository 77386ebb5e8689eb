"""cocotb tests of the generated MacPort10G Verilog: user-clock FIFOs with random gaps and
back-pressure, and the statistics registers read over AXI4-Lite with cocotbext-axi."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)
from cocotbext.eth import XgmiiFrame, XgmiiSink, XgmiiSource
from tb_mac_10g import configure, padded

from amnic.csr.export import as_dict
from amnic.mac.stats import REGISTERS
from amnic.sim.frames import build_frame

MAC_PERIOD_PS = 6400
USER_PERIOD_PS = 4000  # 250 MHz user clock
OFFSETS = {name: reg["offset"] for name, reg in as_dict(REGISTERS)["registers"].items()}
BINS = [(64, 64), (65, 127), (128, 255), (256, 511), (512, 1023), (1024, 1518)]


def pause_pattern(rng, busy):
    while True:
        yield rng.random() < busy


class Tb:
    def __init__(self, dut):
        self.dut = dut
        Clock(dut.clk, USER_PERIOD_PS, unit="ps").start()
        Clock(dut.tx_clk, MAC_PERIOD_PS, unit="ps").start()
        Clock(dut.rx_clk, MAC_PERIOD_PS, unit="ps").start()
        self.axis_tx = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_tx"), dut.clk,
                                       dut.rst)
        self.axis_rx = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_rx"), dut.clk,
                                     dut.rst)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.wire_tx = XgmiiSink(dut.xgmii_txd, dut.xgmii_txc, dut.tx_clk, dut.tx_rst)
        configure(dut)
        self.wire_rx = XgmiiSource(dut.xgmii_rxd, dut.xgmii_rxc, dut.rx_clk, dut.rx_rst)

    async def reset(self):
        for name in ("rst", "tx_rst", "rx_rst"):
            getattr(self.dut, name).value = 1
        await ClockCycles(self.dut.tx_clk, 6)
        for name in ("rst", "tx_rst", "rx_rst"):
            getattr(self.dut, name).value = 0
        await ClockCycles(self.dut.tx_clk, 6)

    async def counter(self, name):
        """A 64-bit counter: low word first (latches the high word), then high word."""
        low = int.from_bytes(await self.axil.read(OFFSETS[name], 4), "little")
        high = int.from_bytes(await self.axil.read(OFFSETS[name] + 4, 4), "little")
        return high << 32 | low


def size_bin(length):
    for lo, hi in BINS:
        if lo <= length <= hi:
            return f"{lo}_{hi}" if lo != hi else "64"
    return "1519_max" if length > 1518 else None


@cocotb.test()
async def fifos_and_statistics(dut):
    """TX source pauses inside frames and RX sink back-pressures: nothing is lost or
    corrupted, bad received frames are dropped, and every statistics counter that the traffic
    touches matches a model of that traffic."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(20)
    tb.axis_tx.set_pause_generator(pause_pattern(rng, 0.3))
    tb.axis_rx.set_pause_generator(pause_pattern(rng, 0.3))

    assert int.from_bytes(await tb.axil.read(OFFSETS["type_id"], 4), "little") == \
        REGISTERS.type_id

    # Transmit: 120 frames; the store-and-forward FIFO hides the source's gaps.
    tx_frames = [build_frame(rng.choice([60, 61, 100, 200, 600, 1200, 1514]), rng, i)
                 for i in range(120)]
    for data in tx_frames:
        await tb.axis_tx.send(AxiStreamFrame(data))
    # Receive: good frames, bad FCS, runts and oversize ones mixed.
    rx_cases = []
    for i in range(150):
        kind = rng.choices(["good", "fcs", "runt", "oversize"], [80, 10, 6, 4])[0]
        size = {"good": rng.choice([60, 64, 100, 300, 1000, 1514]), "fcs": 200,
                "runt": rng.randrange(20, 59), "oversize": 1600}[kind]
        data = build_frame(size, rng, 1000 + i)
        frame = XgmiiFrame.from_payload(data, min_len=0)
        if kind == "fcs":
            frame.data[-1] ^= 0x5A
        rx_cases.append((kind, data))
        await tb.wire_rx.send(frame)

    for data in tx_frames:
        wire = await tb.wire_tx.recv()
        assert wire.ctrl is None and wire.check_fcs()
        assert bytes(wire.get_payload()) == padded(data)
    good_rx = [d for k, d in rx_cases if k == "good"]
    for data in good_rx:
        got = await tb.axis_rx.recv()
        assert bytes(got.tdata) == data
    await tb.wire_rx.wait()
    await ClockCycles(dut.clk, 200)
    assert tb.axis_rx.empty(), "a bad frame was delivered"
    assert dut.rx_bad_drops.value == len(rx_cases) - len(good_rx)
    assert dut.rx_overflow_drops.value == 0 and dut.tx_overflow_drops.value == 0

    # The counters, against a model of the traffic.
    expect = {}

    def add(name, n=1):
        expect[name] = expect.get(name, 0) + n

    for data in tx_frames:
        length = len(padded(data)) + 4
        add("tx_frames_good")
        add("tx_octets_good", length)
        add(f"tx_frames_{size_bin(length)}")
        if data[0] == 0xFF and data[:6] == b"\xff" * 6:
            add("tx_broadcast")
        elif data[0] & 1:
            add("tx_multicast")
    for kind, data in rx_cases:
        length = len(data) + 4
        if kind == "good":
            add("rx_frames_good")
            add("rx_octets_good", length)
            if data[:6] == b"\xff" * 6:
                add("rx_broadcast")
            elif data[0] & 1:
                add("rx_multicast")
            if data[12:14] == b"\x81\x00":
                add("rx_vlan")
        else:
            add("rx_frames_bad")
            add("rx_octets_bad", min(length, 0xFFFF))
            add({"fcs": "rx_fcs_errors", "runt": "rx_runts", "oversize": "rx_oversize"}[kind])
        if size_bin(length):
            add(f"rx_frames_{size_bin(length)}")
    names = sorted(set(expect) | {"rx_framing_errors", "tx_underruns", "tx_frames_bad",
                                  "rx_status_lost", "tx_status_lost"})
    mismatches = {}
    for name in names:
        if name.endswith("_lost"):
            got = int.from_bytes(await tb.axil.read(OFFSETS[name], 4), "little")
        else:
            got = await tb.counter(name)
        if got != expect.get(name, 0):
            mismatches[name] = (got, expect.get(name, 0))
    assert not mismatches, f"counter (read, expected): {mismatches}"
