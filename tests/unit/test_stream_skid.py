"""SkidBuffer: order and content under random stalls, full throughput, registered ready."""

import random

import pytest
from amaranth.hdl import unsigned

from amnic.sim.stream_tb import (
    StreamMonitor,
    assert_packets_equal,
    get,
    get_packets,
    put,
    put_packets,
    random_packet,
    simulate,
)
from amnic.stream.skid import SkidBuffer, StreamSkidBuffer


@pytest.mark.parametrize("width,idle,ready", [(64, 0.3, 0.5), (32, 0.0, 0.3), (512, 0.5, 0.9)])
def test_packets_random_stalls(width, idle, ready):
    rng = random.Random(width)
    packets = [(random_packet(rng), rng.getrandbits(1)) for _ in range(60)]
    dut = SkidBuffer(width)
    mon = StreamMonitor(dut.o, name="o")
    got = []

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=idle, rng=random.Random(1))

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, len(packets), ready_prob=ready,
                                     rng=random.Random(2)))

    simulate(dut, [source, sink], background=[mon.run, StreamMonitor(dut.i, name="i").run])
    assert_packets_equal(got, packets)
    assert_packets_equal(mon.packets(), packets, "monitored")


def test_full_throughput_and_latency():
    dut = SkidBuffer(64)
    beats = 200
    data = bytes(range(256)) * 7
    packet = data[:beats * 8]
    mon = StreamMonitor(dut.o)

    async def source(ctx):
        await put_packets(ctx, dut.i, [(packet, 0)])

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(beats + 5)

    simulate(dut, [source, sink], background=[mon.run])
    cycles = [c for c, _ in mon.transfers]
    assert len(cycles) == beats
    assert cycles == list(range(cycles[0], cycles[0] + beats)), "a bubble in the output"
    assert cycles[0] == 1, "latency must be one cycle"
    assert mon.packets() == [(packet, 0)]


def test_ready_is_registered():
    """``i.ready`` must not follow ``o.ready`` in the same cycle (the point of a skid buffer)."""
    dut = SkidBuffer(16)

    async def tb(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {"data": 1, "keep": 3, "last": 1, "user": 0})
        seen = []
        for cycle in range(12):
            ctx.set(dut.o.ready, 0)
            before = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, 1)
            after = ctx.get(dut.i.ready)
            assert before == after, f"cycle {cycle}: i.ready follows o.ready combinationally"
            ctx.set(dut.o.ready, cycle % 3 == 0)
            seen.append(before)
            await ctx.tick()
        assert 0 in seen and 1 in seen, "the stall pattern must fill the spare entry"

    simulate(dut, [tb])


def test_any_shape():
    rng = random.Random(7)
    values = [rng.getrandbits(12) for _ in range(300)]
    dut = StreamSkidBuffer(unsigned(12))
    got = []

    async def source(ctx):
        for v in values:
            await put(ctx, dut.i, v, idle_prob=0.3, rng=rng)

    async def sink(ctx):
        for _ in values:
            got.append(await get(ctx, dut.o, ready_prob=0.4, rng=random.Random(3)))

    simulate(dut, [source, sink], background=[StreamMonitor(dut.o).run])
    assert got == values
