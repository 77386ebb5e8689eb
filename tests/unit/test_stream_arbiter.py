"""PacketArbiter: whole packets, per-input order, fairness/priority, throughput, port names."""

import gc
import random
import warnings

import pytest

from amnic.cli.export import axi_ports
from amnic.sim.stream_tb import (
    StreamMonitor,
    get_packets,
    packet_to_beats,
    put_packets,
    simulate,
)
from amnic.stream.arbiter import PacketArbiter


def tagged_packets(rng, source, count, max_len=300):
    """Packets whose first byte names their source, so output packets can be attributed."""
    return [(bytes([source]) + rng.randbytes(rng.randint(0, max_len - 1)), rng.getrandbits(1))
            for _ in range(count)]


def attribute(received, per_source):
    """Map each received packet to its source, checking per-source order; return the sources."""
    heads = [0] * len(per_source)
    order = []
    for n, pkt in enumerate(received):
        src = pkt[0][0]
        assert src < len(per_source), f"packet {n}: unknown source {src}"
        assert heads[src] < len(per_source[src]), f"packet {n}: extra packet from {src}"
        assert pkt == per_source[src][heads[src]], f"packet {n} from {src} is out of order/corrupt"
        heads[src] += 1
        order.append(src)
    assert heads == [len(p) for p in per_source], "packets missing"
    return order


def run(dut, per_source, *, idle, ready, seed):
    mon_o = StreamMonitor(dut.o)
    got = []
    total = sum(len(p) for p in per_source)

    def source(k):
        async def tb(ctx):
            await put_packets(ctx, dut.inputs[k], per_source[k], idle_prob=idle,
                              rng=random.Random(seed + k))
        return tb

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, total, ready_prob=ready,
                                     rng=random.Random(seed - 1)))

    monitors = [StreamMonitor(port, name=f"i{k}").run for k, port in enumerate(dut.inputs)]
    simulate(dut, [sink] + [source(k) for k in range(dut.n)], background=[mon_o.run, *monitors])
    return got, mon_o


@pytest.mark.parametrize("policy", ["round_robin", "priority"])
@pytest.mark.parametrize("n,width", [(3, 64), (2, 512), (4, 32)])
def test_random(policy, n, width):
    rng = random.Random(n * width)
    per_source = [tagged_packets(rng, k, 80 // n) for k in range(n)]
    dut = PacketArbiter(width, n=n, policy=policy)
    got, _ = run(dut, per_source, idle=0.4, ready=0.5, seed=n)
    attribute(got, per_source)


def test_round_robin_order_and_throughput():
    rng = random.Random(31)
    n = 3
    per_source = [tagged_packets(rng, k, 12) for k in range(n)]
    dut = PacketArbiter(64, n=n)
    got, mon = run(dut, per_source, idle=0.0, ready=1.0, seed=5)
    order = attribute(got, per_source)
    assert order == [k % n for k in range(len(order))], "round robin must rotate 0, 1, 2, ..."
    cycles = [c for c, _ in mon.transfers]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), "bubble between packets"
    assert len(cycles) == sum(len(packet_to_beats(d, 64)) for p in per_source for d, _ in p)


def test_priority_order():
    rng = random.Random(32)
    per_source = [tagged_packets(rng, k, 8) for k in range(3)]
    dut = PacketArbiter(64, n=3, policy="priority")
    got, mon = run(dut, per_source, idle=0.0, ready=1.0, seed=6)
    order = attribute(got, per_source)
    assert order == sorted(order), "a continuously valid input 0 must always win"
    cycles = [c for c, _ in mon.transfers]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))


def test_round_robin_serves_late_input():
    """An input that raises valid while others are busy is served within n packets."""
    rng = random.Random(33)
    busy = [tagged_packets(rng, k, 10) for k in range(2)]
    late = tagged_packets(rng, 2, 3)
    dut = PacketArbiter(64, n=3)
    got = []

    def source(k, packets, delay):
        async def tb(ctx):
            await ctx.tick().repeat(delay)
            await put_packets(ctx, dut.inputs[k], packets)
        return tb

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, 23))

    simulate(dut, [sink, source(0, busy[0], 1), source(1, busy[1], 1), source(2, late, 40)])
    order = attribute(got, busy + [late])
    first_late = order.index(2)
    # Between consecutive packets of input 2 at most n - 1 = 2 other packets pass.
    positions = [k for k, s in enumerate(order) if s == 2]
    assert all(b - a <= 3 for a, b in zip(positions, positions[1:], strict=False))
    assert 0 < first_late < len(order) - 3


def test_port_names():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # axi_ports() builds a wrapper it does not elaborate
        names = {p.name for p in axi_ports(PacketArbiter(64, n=3))}
        gc.collect()
    for k in range(3):
        assert {f"s_axis_i{k}_tdata", f"s_axis_i{k}_tready", f"s_axis_i{k}_tlast"} <= names
    assert {"m_axis_o_tdata", "m_axis_o_tkeep", "m_axis_o_tuser", "m_axis_o_tvalid"} <= names
