"""RegisterBusDecoder: requests reach the right target with window-relative addresses, responses
come back in order, holes answer with an error — behind the AXI4-Lite adapter too."""

import dataclasses
import gc
import random
import warnings

import pytest
from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from amnic.csr import RegisterBusDecoder, RegisterBusSignature
from amnic.mac.stats import REGISTERS as STATS
from amnic.mac.stats import MacStatistics
from amnic.sim.csr_bus import bus_read, bus_write, read_register
from amnic.stream.axil import AxiLiteSignature, AxiLiteToRegisterBus, AxiResp


class ScratchTarget(wiring.Component):
    """A test target: ``words`` read/write words answering after ``latency`` cycles (0: in the
    cycle the request is taken). Each word reads back ``tag << 24 | value`` so a read shows
    which target answered."""

    def __init__(self, addr_width, words, latency, tag):
        self.words, self.latency, self.tag = words, latency, tag
        super().__init__({"bus": In(RegisterBusSignature(addr_width))})

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        store = Array(Signal(24, name=f"w{i}") for i in range(self.words))
        index = bus.addr[2:]
        known = index < self.words
        if self.latency == 0:
            m.d.comb += [
                bus.ready.eq(1),
                bus.done.eq(bus.valid),
                bus.error.eq(~known),
                bus.rdata.eq(Mux(known, (self.tag << 24) | store[index], 0)),
            ]
            with m.If(bus.valid & bus.write & known):
                m.d.sync += store[index].eq(bus.wdata[:24])
            return m
        count = Signal(range(self.latency + 1))
        busy = Signal()
        held_index = Signal.like(index)
        held_known = Signal()
        m.d.comb += bus.ready.eq(~busy)
        m.d.sync += bus.done.eq(0)
        with m.If(bus.valid & ~busy):
            m.d.sync += [busy.eq(1), count.eq(self.latency - 1), held_index.eq(index),
                         held_known.eq(known)]
            with m.If(bus.write & known):
                m.d.sync += store[index].eq(bus.wdata[:24])
        with m.If(busy):
            with m.If(count == 0):
                m.d.sync += [
                    busy.eq(0),
                    bus.done.eq(1),
                    bus.error.eq(~held_known),
                    bus.rdata.eq(Mux(held_known, (self.tag << 24) | store[held_index], 0)),
                ]
            with m.Else():
                m.d.sync += count.eq(count - 1)
        return m


class System(wiring.Component):
    """Decoder in front of three scratch targets and the MAC statistics block."""

    WINDOWS = [(0x0000, 0x10), (0x0100, 0x100), (0x0800, STATS.size), (0x1000, 0x40)]

    def __init__(self):
        self.decoder = RegisterBusDecoder(13, self.WINDOWS)
        self.scratch = {0: ScratchTarget(4, 4, 0, 0xA0), 1: ScratchTarget(8, 8, 3, 0xB0),
                        3: ScratchTarget(6, 16, 1, 0xD0)}
        self.stats = MacStatistics()
        super().__init__({"bus": In(RegisterBusSignature(13))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = self.decoder
        wiring.connect(m, wiring.flipped(self.bus), self.decoder.bus)
        for i, target in self.scratch.items():
            m.submodules[f"scratch{i}"] = target
            wiring.connect(m, self.decoder.target(i), target.bus)
        m.submodules.stats = self.stats
        wiring.connect(m, self.decoder.target(2), self.stats.bus)
        return m


def _window_of(address):
    for i, (base, size) in enumerate(System.WINDOWS):
        if base <= address < base + size:
            return i, address - base
    return None, None


def test_random_accesses_through_the_decoder():
    rng = random.Random(4)
    dut = System()
    model = {i: [0] * t.words for i, t in dut.scratch.items()}

    async def testbench(ctx):
        # The statistics header is reachable at its base.
        for register in list(STATS)[:3]:
            rdata, error = await bus_read(ctx, dut.bus, 0x800 + register.offset)
            assert (rdata, error) == (register.init, 0)
        for _ in range(400):
            address = rng.choice([rng.randrange(0, 1 << 13, 4),
                                  rng.choice([0x0, 0xC, 0x100, 0x11C, 0x120, 0x1000, 0x103C])])
            window, offset = _window_of(address)
            if rng.random() < 0.5:
                value = rng.getrandbits(32)
                error = await bus_write(ctx, dut.bus, address, value)
                if window is None:
                    assert error == 1
                elif window in model:
                    words = model[window]
                    assert error == (offset // 4 >= len(words))
                    if offset // 4 < len(words):
                        words[offset // 4] = value & 0xFF_FFFF
            else:
                rdata, error = await bus_read(ctx, dut.bus, address)
                if window is None:
                    assert (rdata, error) == (0, 1)
                elif window in model:
                    words = model[window]
                    if offset // 4 < len(words):
                        assert (rdata, error) == (dut.scratch[window].tag << 24
                                                  | words[offset // 4], 0)
                    else:
                        assert (rdata, error) == (0, 1)
                else:
                    assert error == (STATS.word_at(offset) is None)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_statistics_counter_through_the_decoder():
    dut = System()
    frames = STATS["tx_frames_good"]

    async def testbench(ctx):
        stats = dut.stats
        for _ in range(3):
            ctx.set(stats.tx_status.payload, {"length": 300, "good": 1})
            ctx.set(stats.tx_status.valid, 1)
            await ctx.tick()
        ctx.set(stats.tx_status.valid, 0)
        await ctx.tick().repeat(30)
        shifted = dataclasses.replace(frames, offset=0x800 + frames.offset)
        assert await read_register(ctx, dut.bus, shifted) == 3

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_one_request_at_a_time_across_targets():
    """A slow target's response is not overtaken: the decoder holds ready low until done."""
    dut = System()

    async def testbench(ctx):
        bus = dut.bus
        ctx.set(bus.addr, 0x100)  # scratch 1, three cycles
        ctx.set(bus.valid, 1)
        await ctx.tick().until(bus.ready)
        ctx.set(bus.addr, 0x0)  # scratch 0 answers at once, but must wait its turn
        trace = []
        for _ in range(8):
            _, _, ready, done = await ctx.tick().sample(bus.ready, bus.done)
            trace.append((ready, done))
            if ready:
                break
        ctx.set(bus.valid, 0)
        first_done = [d for _, d in trace].index(1)
        first_ready = [r for r, _ in trace].index(1)
        assert first_ready >= first_done >= 2, trace
        # The fast target answers in the cycle it takes the request.
        assert trace[first_ready] == (1, 1) and sum(d for _, d in trace) == 2

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("windows, match", [
    ([(0x10, 0x20)], "aligned"),
    ([(0x0, 0x30)], "power of two"),
    ([(0x0, 0x100), (0x80, 0x40)], "overlaps"),
    ([(0x1000, 0x1000)], "outside"),
    ([], "at least one"),
])
def test_bad_windows_are_refused(windows, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refused component is never elaborated
        with pytest.raises(ValueError, match=match):
            RegisterBusDecoder(12, windows)
        gc.collect()


class AxiSystem(wiring.Component):
    """The AXI4-Lite adapter driving the statistics block directly."""

    def __init__(self):
        self.adapter = AxiLiteToRegisterBus(addr_width=STATS.addr_width)
        self.stats = MacStatistics()
        super().__init__({"s_axil": In(AxiLiteSignature(STATS.addr_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.adapter = self.adapter
        m.submodules.stats = self.stats
        wiring.connect(m, wiring.flipped(self.s_axil), self.adapter.s_axil)
        wiring.connect(m, self.adapter.bus, self.stats.bus)
        return m


async def _axi_read(ctx, axi, address):
    ctx.set(axi.araddr, address)
    ctx.set(axi.arvalid, 1)
    await ctx.tick().until(axi.arready)
    ctx.set(axi.arvalid, 0)
    ctx.set(axi.rready, 1)
    rdata, rresp = await ctx.tick().sample(axi.rdata, axi.rresp).until(axi.rvalid)
    ctx.set(axi.rready, 0)
    return rdata, AxiResp(rresp)


async def _axi_write(ctx, axi, address, value):
    ctx.set(axi.awaddr, address)
    ctx.set(axi.awvalid, 1)
    ctx.set(axi.wdata, value)
    ctx.set(axi.wstrb, 0xF)
    ctx.set(axi.wvalid, 1)
    await ctx.tick().until(axi.awready & axi.wready)
    ctx.set(axi.awvalid, 0)
    ctx.set(axi.wvalid, 0)
    ctx.set(axi.bready, 1)
    (bresp,) = await ctx.tick().sample(axi.bresp).until(axi.bvalid)
    ctx.set(axi.bready, 0)
    return AxiResp(bresp)


def test_axi_lite_reaches_statistics():
    dut = AxiSystem()
    octets = STATS["rx_octets_good"]

    async def testbench(ctx):
        axi = dut.s_axil
        for register in list(STATS)[:3]:
            assert await _axi_read(ctx, axi, register.offset) == (register.init, AxiResp.OKAY)
        stats = dut.stats
        for length in (64, 1500, 9000):
            ctx.set(stats.rx_status.payload, {"length": length, "good": 1})
            ctx.set(stats.rx_status.valid, 1)
            await ctx.tick()
        ctx.set(stats.rx_status.valid, 0)
        await ctx.tick().repeat(30)
        assert await _axi_read(ctx, axi, octets.words[0]) == (64 + 1500 + 9000, AxiResp.OKAY)
        assert await _axi_read(ctx, axi, octets.words[1]) == (0, AxiResp.OKAY)
        assert await _axi_read(ctx, axi, 0x0C) == (0, AxiResp.SLVERR)
        assert await _axi_write(ctx, axi, 0x0C, 1) == AxiResp.SLVERR
        assert await _axi_write(ctx, axi, STATS["control"].offset, 1) == AxiResp.OKAY
        await ctx.tick().repeat(80)
        assert await _axi_read(ctx, axi, octets.words[0]) == (0, AxiResp.OKAY)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
