"""PacketFifo / AsyncPacketFifo: content, packet release, drop counts, clock crossing."""

import gc
import random
import warnings

import pytest

from amnic.sim.stream_tb import (
    StreamMonitor,
    assert_packets_equal,
    get_packet,
    get_packets,
    packet_to_beats,
    put_packets,
    random_packet,
    simulate,
)
from amnic.stream.fifo import AsyncPacketFifo, PacketFifo


def make_packets(seed, count, bad_prob=0.0, max_len=300):
    rng = random.Random(seed)
    return [(random_packet(rng, 1, max_len), int(rng.random() < bad_prob)) for _ in range(count)]


def beats_of(data, width):
    return len(packet_to_beats(data, width))


def assert_packets_whole(mon_in, mon_out):
    """Every output packet leaves after its last input beat, without gaps inside it."""
    in_spans = mon_in.packet_spans()
    out_spans = mon_out.packet_spans()
    ends = {}
    for pkt, _, last in in_spans:
        ends.setdefault(pkt, []).append(last)
    for n, (pkt, first, _) in enumerate(out_spans):
        assert first > min(ends[pkt]), f"packet {n} left before its last beat was stored"
        ends[pkt].remove(min(ends[pkt]))
    return out_spans


def test_cut_through():
    packets = make_packets(1, 60)
    dut = PacketFifo(64, depth=8)
    got = []

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=0.3, rng=random.Random(2))

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, len(packets), ready_prob=0.4,
                                     rng=random.Random(3)))

    simulate(dut, [source, sink], background=[StreamMonitor(dut.o).run])
    assert_packets_equal(got, packets)


@pytest.mark.parametrize("width,depth", [(64, 64), (32, 128), (512, 8)])
def test_store_and_forward_drops_bad(width, depth):
    packets = make_packets(width, 80, bad_prob=0.3)
    good = [p for p in packets if not p[1] & 1]
    dut = PacketFifo(width, depth=depth, drop_bad=True)
    mon_i, mon_o = StreamMonitor(dut.i), StreamMonitor(dut.o)
    counts = {}

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=0.4, rng=random.Random(4))
        await ctx.tick().repeat(3)
        counts["bad"] = ctx.get(dut.bad_drops)
        counts["overflow"] = ctx.get(dut.overflow_drops)

    async def sink(ctx):
        got = await get_packets(ctx, dut.o, len(good), ready_prob=0.7, rng=random.Random(5))
        assert_packets_equal(got, good)

    simulate(dut, [source, sink], background=[mon_i.run, mon_o.run])
    assert counts == {"bad": len(packets) - len(good), "overflow": 0}
    assert_packets_whole(mon_i, mon_o)


def test_store_and_forward_releases_at_full_rate():
    """A slow, gappy source; a packet, once released, leaves one beat per cycle."""
    packets = make_packets(9, 40, bad_prob=0.2)
    good = [p for p in packets if not p[1]]
    dut = PacketFifo(64, depth=64, drop_bad=True)
    mon_i, mon_o = StreamMonitor(dut.i), StreamMonitor(dut.o)

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=0.6, rng=random.Random(6))

    async def sink(ctx):
        await get_packets(ctx, dut.o, len(good))

    simulate(dut, [source, sink], background=[mon_i.run, mon_o.run])
    spans = assert_packets_whole(mon_i, mon_o)
    assert [pkt for pkt, _, _ in spans] == good
    for (data, _), first, last in spans:
        assert last - first + 1 == beats_of(data, 64), "gap inside a released packet"


def test_oversize_packets_dropped_with_backpressure():
    depth = 16  # 128 bytes at 64 bits
    packets = make_packets(11, 60, bad_prob=0.2)
    fits = [p for p in packets if beats_of(p[0], 64) <= depth]
    good = [p for p in fits if not p[1]]
    dut = PacketFifo(64, depth=depth, drop_bad=True)
    counts = {}

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=0.2, rng=random.Random(7))
        await ctx.tick().repeat(3)
        counts["bad"] = ctx.get(dut.bad_drops)
        counts["overflow"] = ctx.get(dut.overflow_drops)

    async def sink(ctx):
        got = await get_packets(ctx, dut.o, len(good), ready_prob=0.3, rng=random.Random(8))
        assert_packets_equal(got, good)

    simulate(dut, [source, sink], background=[StreamMonitor(dut.o).run])
    assert counts["overflow"] == len(packets) - len(fits) > 0
    assert counts["bad"] == len(fits) - len(good) > 0


def test_drop_when_full_never_stalls():
    depth = 32
    packets = make_packets(12, 120, bad_prob=0.2, max_len=200)
    dut = PacketFifo(64, depth=depth, drop_bad=True, drop_when_full=True)
    mon_i, mon_o = StreamMonitor(dut.i), StreamMonitor(dut.o)
    events = {"bad": 0, "overflow": 0}
    result = {}

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=0.1, rng=random.Random(9))
        await ctx.tick().repeat(depth * 10)  # drain
        result["bad"] = ctx.get(dut.bad_drops)
        result["overflow"] = ctx.get(dut.overflow_drops)

    async def sink(ctx):
        rng = random.Random(10)
        while True:
            await get_packet(ctx, dut.o, ready_prob=0.25, rng=rng)

    async def watch_drops(ctx):
        async for _, _, ready, drop in ctx.tick().sample(dut.i.ready, dut.drop):
            assert ready, "drop_when_full must never back-pressure"
            assert not (drop.bad and drop.overflow)
            events["bad"] += drop.bad
            events["overflow"] += drop.overflow

    simulate(dut, [source], background=[sink, watch_drops, mon_i.run, mon_o.run])
    delivered = mon_o.packets()
    assert events == result
    assert len(delivered) + result["bad"] + result["overflow"] == len(packets)
    assert result["overflow"] > 0 and result["bad"] > 0
    # Delivered packets are good input packets, in input order, byte for byte.
    it = iter(packets)
    for pkt in delivered:
        assert not pkt[1]
        assert any(pkt == p for p in it), "a delivered packet is out of order or corrupted"
    # Good packets can only go missing through overflow.
    missing_good = sum(1 for p in packets if not p[1]) - len(delivered)
    assert missing_good <= result["overflow"]
    assert_packets_whole(mon_i, mon_o)


@pytest.mark.parametrize("w_period,r_period", [(10e-9, 7e-9), (7e-9, 13e-9)])
def test_async_cut_through(w_period, r_period):
    packets = make_packets(13, 40)
    dut = AsyncPacketFifo(64, depth=8)
    got = []

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, domain="write", idle_prob=0.3,
                          rng=random.Random(14))

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, len(packets), domain="read", ready_prob=0.5,
                                     rng=random.Random(15)))

    simulate(dut, [source, sink], clocks={"write": w_period, "read": r_period},
             background=[StreamMonitor(dut.o, domain="read").run])
    assert_packets_equal(got, packets)


@pytest.mark.parametrize("w_period,r_period", [(10e-9, 6e-9), (6e-9, 11e-9)])
def test_async_store_and_forward(w_period, r_period):
    packets = make_packets(16, 60, bad_prob=0.3)
    good = [p for p in packets if not p[1]]
    dut = AsyncPacketFifo(64, depth=64, drop_bad=True, sync_stages=3)
    mon_o = StreamMonitor(dut.o, domain="read")
    counts = {}

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, domain="write", idle_prob=0.5,
                          rng=random.Random(17))
        await ctx.tick("write").repeat(3)
        counts["bad"] = ctx.get(dut.bad_drops)
        counts["overflow"] = ctx.get(dut.overflow_drops)

    async def sink(ctx):
        got = await get_packets(ctx, dut.o, len(good), domain="read")
        assert_packets_equal(got, good)

    simulate(dut, [source, sink], clocks={"write": w_period, "read": r_period},
             background=[mon_o.run])
    assert counts == {"bad": len(packets) - len(good), "overflow": 0}
    # Whole packets only: with the sink always ready, a packet leaves without a gap even when
    # the read clock is faster than the write clock.
    for (data, _), first, last in mon_o.packet_spans():
        assert last - first + 1 == beats_of(data, 64)


def test_async_oversize_dropped():
    depth = 8
    packets = make_packets(18, 50, max_len=120)
    fits = [p for p in packets if beats_of(p[0], 64) <= depth]
    dut = AsyncPacketFifo(64, depth=depth, store_and_forward=True)
    counts = {}

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, domain="write", rng=random.Random(19))
        await ctx.tick("write").repeat(3)
        counts["overflow"] = ctx.get(dut.overflow_drops)
        counts["bad"] = ctx.get(dut.bad_drops)

    async def sink(ctx):
        got = await get_packets(ctx, dut.o, len(fits), domain="read", ready_prob=0.5,
                                rng=random.Random(20))
        assert_packets_equal(got, fits)

    simulate(dut, [source, sink], clocks={"write": 8e-9, "read": 9e-9})
    assert counts == {"overflow": len(packets) - len(fits), "bad": 0}
    assert counts["overflow"] > 0


def test_parameter_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rejected components are never elaborated
        with pytest.raises(ValueError):
            PacketFifo(64, depth=24, drop_bad=True)
        with pytest.raises(ValueError):
            PacketFifo(64, user_width=0, drop_bad=True)
        with pytest.raises(ValueError):
            PacketFifo(64, drop_when_full=True)
        with pytest.raises(ValueError):
            AsyncPacketFifo(64, sync_stages=1)
        gc.collect()
