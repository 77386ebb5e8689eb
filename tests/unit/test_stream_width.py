"""Width converters: bytes, keep/last/user placement, and throughput."""

import gc
import random
import warnings

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from amnic.sim.stream_tb import (
    StreamMonitor,
    assert_packets_equal,
    get_packets,
    packet_to_beats,
    put_beat,
    put_packets,
    random_packet,
    simulate,
)
from amnic.stream.width import WidthDownConverter, WidthUpConverter

RATIOS_UP = [(64, 512), (32, 128), (8, 64), (64, 64)]
RATIOS_DOWN = [(512, 64), (128, 32), (64, 8), (64, 64)]


def make_packets(seed, count, max_len=300):
    rng = random.Random(seed)
    return [(random_packet(rng, 1, max_len), rng.getrandbits(2)) for _ in range(count)]


def run_converter(dut, packets, idle, ready, seed):
    mon_o = StreamMonitor(dut.o)
    got = []

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=idle, rng=random.Random(seed))

    async def sink(ctx):
        # get_packet checks the packet convention: full beats, then a packed last beat.
        got.extend(await get_packets(ctx, dut.o, len(packets), ready_prob=ready,
                                     rng=random.Random(seed + 1)))

    simulate(dut, [source, sink], background=[mon_o.run, StreamMonitor(dut.i).run])
    assert_packets_equal(got, packets)
    return mon_o


@pytest.mark.parametrize("w_in,w_out", RATIOS_UP)
def test_up_random(w_in, w_out):
    packets = make_packets(w_in + w_out, 50 if w_in >= 32 else 25)
    dut = WidthUpConverter(w_in, w_out, user_width=2)
    mon = run_converter(dut, packets, 0.3, 0.4, 1)
    # Each wide beat of a packet except the last is full; the wide beat count is exact.
    wide = sum(len(packet_to_beats(d, w_out)) for d, _ in packets)
    assert len(mon.transfers) == wide


@pytest.mark.parametrize("w_in,w_out", RATIOS_DOWN)
def test_down_random(w_in, w_out):
    packets = make_packets(w_in * 3 + w_out, 50 if w_out >= 32 else 25)
    dut = WidthDownConverter(w_in, w_out, user_width=2)
    mon = run_converter(dut, packets, 0.3, 0.5, 2)
    narrow = sum(len(packet_to_beats(d, w_out)) for d, _ in packets)
    assert len(mon.transfers) == narrow, "no empty narrow beats"


def test_up_user_from_last_merged_beat():
    """Per-beat user values: a wide beat carries the user of the last narrow beat in it."""
    rng = random.Random(21)
    dut = WidthUpConverter(16, 64, user_width=4)
    packets, expected = [], []
    for _ in range(40):
        data = random_packet(rng, 1, 40)
        beats = packet_to_beats(data, 16, [rng.getrandbits(4) for _ in range((len(data) + 1) // 2)])
        packets.append(beats)
        for k in range(0, len(beats), 4):
            expected.append(beats[min(k + 3, len(beats) - 1)].user)
    mon = StreamMonitor(dut.o)

    async def source(ctx):
        for beats in packets:
            for beat in beats:
                await put_beat(ctx, dut.i, beat, idle_prob=0.2, rng=rng)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        while len(mon.transfers) < len(expected):
            await ctx.tick()

    simulate(dut, [source, sink], background=[mon.run])
    assert [b.user for _, b in mon.beats()] == expected


def test_down_user_repeated():
    dut = WidthDownConverter(64, 16, user_width=3)
    rng = random.Random(22)
    packets = make_packets(23, 30, max_len=50)
    packets = [(d, rng.getrandbits(3)) for d, _ in packets]
    mon = run_converter(dut, packets, 0.2, 0.6, 3)
    # The wide input carries user only on its last beat, so the narrow beats cut from the last
    # wide beat carry it and the earlier ones carry 0.
    k = 0
    for data, user in packets:
        n_narrow = len(packet_to_beats(data, 16))
        n_from_last_wide = n_narrow - 4 * (len(packet_to_beats(data, 64)) - 1)
        users = [b.user for _, b in mon.beats()[k:k + n_narrow]]
        assert users == [0] * (n_narrow - n_from_last_wide) + [user] * n_from_last_wide
        k += n_narrow


def run_throughput(dut, packets, w_in):
    mon_i, mon_o = StreamMonitor(dut.i), StreamMonitor(dut.o)

    async def source(ctx):
        await put_packets(ctx, dut.i, packets)

    async def sink(ctx):
        await get_packets(ctx, dut.o, len(packets))

    simulate(dut, [source, sink], background=[mon_i.run, mon_o.run])
    return [c for c, _ in mon_i.transfers], [c for c, _ in mon_o.transfers]


def contiguous(cycles):
    return cycles == list(range(cycles[0], cycles[0] + len(cycles)))


def test_up_full_throughput():
    packets = make_packets(24, 60)
    cycles_in, _ = run_throughput(WidthUpConverter(64, 512), packets, 64)
    assert contiguous(cycles_in), "the up-converter stalled a source while the sink was ready"


def test_down_full_throughput():
    packets = make_packets(25, 60)
    _, cycles_out = run_throughput(WidthDownConverter(512, 64), packets, 512)
    assert contiguous(cycles_out), "a bubble on the narrow side with a ready sink"
    assert len(cycles_out) == sum(len(packet_to_beats(d, 64)) for d, _ in packets)


class _RoundTrip(wiring.Component):
    def __init__(self):
        self.up = WidthUpConverter(64, 256, user_width=2)
        self.down = WidthDownConverter(256, 32, user_width=2)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.up = self.up
        m.submodules.down = self.down
        wiring.connect(m, self.up.o, self.down.i)
        return m


def test_round_trip_64_256_32():
    packets = make_packets(26, 50)
    dut = _RoundTrip()
    got = []

    async def source(ctx):
        await put_packets(ctx, dut.up.i, packets, idle_prob=0.2, rng=random.Random(27))

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.down.o, len(packets), ready_prob=0.7,
                                     rng=random.Random(28)))

    simulate(dut, [source, sink])
    assert_packets_equal(got, packets)


def test_bad_ratio():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rejected component is never elaborated
        with pytest.raises(ValueError):
            WidthUpConverter(64, 96)
        with pytest.raises(ValueError):
            WidthDownConverter(64, 128)
        gc.collect()
