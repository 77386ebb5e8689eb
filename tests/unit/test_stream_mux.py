"""PacketMux / PacketDemux: selection sampled at packet starts, whole packets, throughput."""

import random

import pytest

from amnic.sim.stream_tb import (
    StreamMonitor,
    get_packet,
    get_packets,
    packet_to_beats,
    put_packets,
    random_packet,
    simulate,
)
from amnic.stream.mux import PacketDemux, PacketMux


def tagged_packets(rng, source, count, max_len=300):
    return [(bytes([source]) + rng.randbytes(rng.randint(0, max_len - 1)), rng.getrandbits(1))
            for _ in range(count)]


def sel_driver(dut, rng, values, log, hold_prob=0.0):
    """Background testbench: a new random ``sel`` every cycle; logs the value at each edge."""
    async def tb(ctx):
        while True:
            if rng.random() >= hold_prob:
                ctx.set(dut.sel, rng.choice(values))
            _, _, sel = await ctx.tick().sample(dut.sel)
            log.append(sel)
    return tb


@pytest.mark.parametrize("n,width", [(3, 64), (2, 512)])
def test_mux_random_sel(n, width):
    rng = random.Random(n + width)
    per_source = [tagged_packets(rng, k, 60 // n) for k in range(n)]
    dut = PacketMux(width, n=n)
    sel_log = []
    monitors = [StreamMonitor(port, name=f"i{k}") for k, port in enumerate(dut.inputs)]
    got = []

    def source(k):
        async def tb(ctx):
            await put_packets(ctx, dut.inputs[k], per_source[k], idle_prob=0.3,
                              rng=random.Random(40 + k))
        return tb

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, sum(map(len, per_source)), ready_prob=0.6,
                                     rng=random.Random(50)))

    # sel also takes the out-of-range value n when n is not a power of two: "select nothing".
    values = list(range(n + (1 if n & (n - 1) else 0)))
    simulate(dut, [sink] + [source(k) for k in range(n)],
             background=[sel_driver(dut, random.Random(60), values, sel_log, 0.7),
                         StreamMonitor(dut.o).run] + [mon.run for mon in monitors])

    # Per-input order is kept and packets are whole.
    heads = [0] * n
    for pkt in got:
        src = pkt[0][0]
        assert pkt == per_source[src][heads[src]]
        heads[src] += 1
    # Every packet started from the input that `sel` named at the edge of its first beat.
    for k, mon in enumerate(monitors):
        for _, first, _ in mon.packet_spans():
            assert sel_log[first] == k, f"input {k} started a packet while sel={sel_log[first]}"


def test_mux_switch_without_bubble():
    rng = random.Random(41)
    per_source = [tagged_packets(rng, k, 20) for k in range(2)]
    dut = PacketMux(64, n=2)
    mon_o = StreamMonitor(dut.o)
    sel_log = []

    def source(k):
        async def tb(ctx):
            await put_packets(ctx, dut.inputs[k], per_source[k])
        return tb

    async def sink(ctx):
        await get_packets(ctx, dut.o, 20)

    # Each input holds more packets than the sink takes, so neither runs dry.
    simulate(dut, [sink], background=[source(0), source(1), mon_o.run,
                                      sel_driver(dut, random.Random(42), [0, 1], sel_log)])
    cycles = [c for c, _ in mon_o.transfers]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))
    sources = [pkt[0][0] for pkt in mon_o.packets()]
    assert 0 in sources[:5] and 1 in sources[:5], "sel changes must switch inputs"


@pytest.mark.parametrize("n,width", [(3, 64), (4, 128)])
def test_demux_random(n, width):
    rng = random.Random(n * width)
    packets = [(random_packet(rng), rng.getrandbits(1)) for _ in range(70)]
    dut = PacketDemux(width, n=n)
    mon_i = StreamMonitor(dut.i)
    mon_o = [StreamMonitor(port, name=f"o{k}") for k, port in enumerate(dut.outputs)]
    sel_log = []

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=0.3, rng=random.Random(43))
        await ctx.tick().repeat(100)

    def sink(k):
        async def tb(ctx):
            r = random.Random(70 + k)
            while True:
                await get_packet(ctx, dut.outputs[k], ready_prob=0.5, rng=r)
        return tb

    values = list(range(n + (1 if n & (n - 1) else 0)))
    simulate(dut, [source],
             background=[sel_driver(dut, random.Random(44), values, sel_log), mon_i.run]
             + [sink(k) for k in range(n)] + [mon.run for mon in mon_o])
    expected = [[] for _ in range(len(values))]
    for pkt, first, _ in mon_i.packet_spans():
        expected[sel_log[first]].append(pkt)
    for k in range(n):
        assert mon_o[k].packets() == expected[k], f"output {k}"
    if len(values) > n:
        assert expected[n], "the test must exercise discarding"
    assert sum(len(e) for e in expected) == len(packets)


def test_demux_full_throughput():
    rng = random.Random(45)
    packets = [(random_packet(rng), 0) for _ in range(40)]
    dut = PacketDemux(64, n=2)
    mon_i = StreamMonitor(dut.i)
    sel_log = []

    async def source(ctx):
        ctx.set(dut.o0.ready, 1)
        ctx.set(dut.o1.ready, 1)
        await put_packets(ctx, dut.i, packets)

    simulate(dut, [source], background=[sel_driver(dut, random.Random(46), [0, 1], sel_log),
                                        mon_i.run])
    cycles = [c for c, _ in mon_i.transfers]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))
    assert len(cycles) == sum(len(packet_to_beats(d, 64)) for d, _ in packets)
