"""MeterBank against the token-bucket model (RFC 2697 committed bucket, exact fixed point)."""

import random

import pytest

from amnic.csr.ids import METERS
from amnic.flow.meter import REGISTERS, MeterAction, MeterBank, MeterColor
from amnic.sim.acl_model import (
    DROP,
    GREEN,
    MARK,
    MODE_DROP,
    MODE_MARK,
    PASS,
    RATE_FRAC_BITS,
    RED,
    MeterModel,
    rate_value,
)
from amnic.sim.csr_bus import bus_read, read_register, write_register
from amnic.sim.stream_tb import StreamMonitor, get, put, simulate

COMMAND = REGISTERS["command"].offset


async def wait_command(ctx, bus):
    for _ in range(50):
        if await read_register(ctx, bus, REGISTERS["command"]) == 0:
            return
    raise TimeoutError("meter command did not finish")


async def configure(ctx, bus, index, rate, burst, mode=MODE_MARK, enable=True):
    await write_register(ctx, bus, REGISTERS["index"], index)
    await write_register(ctx, bus, REGISTERS["rate"], rate)
    await write_register(ctx, bus, REGISTERS["burst"], burst)
    await write_register(ctx, bus, REGISTERS["control"], int(enable) | mode << 1)
    await write_register(ctx, bus, REGISTERS["command"], 1)


async def read_meter(ctx, bus, index):
    """``(rate, burst, control, tokens, green, red)`` of meter ``index``."""
    await write_register(ctx, bus, REGISTERS["index"], index)
    await write_register(ctx, bus, REGISTERS["command"], 2)
    await wait_command(ctx, bus)
    return tuple([await read_register(ctx, bus, REGISTERS[name]) for name in
                  ("rate", "burst", "control", "tokens", "green_packets", "red_packets")])


class Recorder:
    """Records every accepted request with its time stamp (``now`` in its accept cycle) and
    the clock edge of every configuration write command the register bus takes."""

    def __init__(self, dut):
        self.dut = dut
        self.requests = []  # (edge, index, length, tag, now, bypass)
        self.config_edges = []

    async def run(self, ctx):
        dut, bus = self.dut, self.dut.bus
        edge = 0
        async for _, _, iv, ir, req, now, bv, br, bw, addr, wdata in ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.i.payload, dut.now, bus.valid, bus.ready,
                bus.write, bus.addr, bus.wdata):
            if iv and ir:
                self.requests.append((edge, req.index, req.length, req.tag, now, req.bypass))
            if bv and br and bw and addr == COMMAND and wdata & 1:
                self.config_edges.append(edge)
            edge += 1


def replay(meters, recorder, configs):
    """Expected ``(colour, action)`` per request, and the final model. ``configs`` lists the
    configuration writes ``(index, rate, burst, mode, enable)`` in bus order; the contract is
    that one taken at edge E applies to requests accepted at edge E + 2 and later."""
    model = MeterModel(meters)
    assert len(configs) == len(recorder.config_edges)
    pending = list(zip(recorder.config_edges, configs, strict=True))
    out = []
    for edge, index, length, _, now, bypass in recorder.requests:
        while pending and pending[0][0] + 2 <= edge:
            model.configure(*pending.pop(0)[1])
        out.append((GREEN, PASS) if bypass else model.police(index, length, now))
    for _, cfg in pending:
        model.configure(*cfg)
    return out, model


def as_pair(result):
    return MeterColor(result.color).value, MeterAction(result.action).value


def run(dut, setup, requests, rng, *, idle=0.3, ready=0.7, gap_prob=0.0, gap=300,
        during=None, after=None, max_cycles=100_000):
    """Run ``setup`` (an async function of ctx), then send ``requests`` ``(index, length)`` or
    ``(index, length, bypass)`` (tag = position), with ``during`` running alongside the traffic
    and ``after`` once every result is in. Returns the recorder and the results."""
    rec = Recorder(dut)
    got = []
    started = {"go": False}

    async def source(ctx):
        await setup(ctx)
        started["go"] = True
        for n, (index, length, *bypass) in enumerate(requests):
            if gap_prob and rng.random() < gap_prob:
                await ctx.tick().repeat(gap)
            await put(ctx, dut.i, {"index": index, "length": length, "tag": n & 0xFFFF,
                                   "bypass": int(bool(bypass and bypass[0]))},
                      idle_prob=idle, rng=rng)

    async def sink(ctx):
        for _ in requests:
            got.append(await get(ctx, dut.o, ready_prob=ready, rng=rng))
        if after:
            await after(ctx)

    async def side(ctx):
        while not started["go"]:
            await ctx.tick()
        await during(ctx)

    benches = [source, sink] + ([side] if during else [])
    simulate(dut, benches, background=[rec.run], max_cycles=max_cycles)
    for n, r in enumerate(got):
        assert r.tag == n & 0xFFFF
    return rec, got


def random_config(rng, index):
    return (index, rate_value(rng.uniform(5, 120)) + rng.getrandbits(8),
            rng.randint(1500, 20000), rng.choice([MODE_MARK, MODE_DROP]), rng.random() < 0.9)


def test_random_traffic_matches_model():
    """Random lengths (0, normal, longer than the burst), runs of requests to one meter, idle
    gaps long enough to refill, back-pressure, bypassed requests in between (they must not
    touch any meter); every result and the final counters and tokens against the model."""
    rng = random.Random(1)
    dut = MeterBank(256)
    used = rng.sample(range(256), 6)
    configs = [random_config(rng, i) for i in used]
    configs[0] = configs[0][:4] + (False,)  # one meter disabled
    configs[1] = configs[1][:3] + (MODE_MARK, True)
    configs[2] = configs[2][:3] + (MODE_DROP, True)
    requests = []
    while len(requests) < 2000:
        index = rng.choice(used)
        for _ in range(rng.randint(1, 5)):
            length = rng.choice([0, rng.randint(64, 1518), rng.randint(64, 1518),
                                 rng.randint(20_000, 65_535)])
            requests.append((index, length, rng.random() < 0.1))

    async def setup(ctx):
        for cfg in configs:
            await configure(ctx, dut.bus, *cfg)

    readback = {}
    spare = (used[0] + 1) % 256

    async def read_all(ctx):
        for i in used + [spare]:
            readback[i] = await read_meter(ctx, dut.bus, i)

    rec, got = run(dut, setup, requests, rng, gap_prob=0.01, after=read_all)
    expect, model = replay(256, rec, configs)
    results = [as_pair(r) for r in got]
    assert results == expect
    assert {(GREEN, PASS), (RED, MARK), (RED, DROP)} <= set(results)
    assert sum(r[5] for r in rec.requests) > 100
    for (_, index, length, _, _, bypass), res in zip(rec.requests, results, strict=True):
        cfg = next(c for c in configs if c[0] == index)
        if bypass:
            assert res == (GREEN, PASS)
            continue
        if length > cfg[2] and cfg[4]:
            assert res[0] == RED  # longer than the burst: never conforms
        if length == 0 or not cfg[4]:
            assert res == (GREEN, PASS)
    for index, rate, burst, mode, enable in configs:
        st = model.state[index]
        assert readback[index] == (rate, burst, int(enable) | mode << 1, st.tokens, st.green,
                                   st.red)
    assert readback[spare] == (0, 0, 0, 0, 0, 0)  # untouched meter


@pytest.mark.parametrize("ready", [1.0, 0.5])
def test_back_to_back_same_meter(ready):
    """Requests every cycle in patterns that hit one meter again 1, 2, 3 and 4 requests later,
    so every forwarding path of the read-modify-write pipeline is used."""
    rng = random.Random(2)
    dut = MeterBank(16)
    configs = [(i, rate_value(20 + 7 * i), 1000 + 500 * i, MODE_DROP, True) for i in range(4)]
    patterns = ["A" * 40, "AB" * 30, "AAB" * 20, "ABC" * 20, "ABCD" * 15, "AABBA" * 10,
                "".join(rng.choice("AB") for _ in range(100))]
    requests = [(ord(c) - ord("A"), rng.choice([60, 100, 300])) for p in patterns for c in p]

    async def setup(ctx):
        for cfg in configs:
            await configure(ctx, dut.bus, *cfg)

    rec, got = run(dut, setup, requests, rng, idle=0.0, ready=ready)
    expect, _ = replay(16, rec, configs)
    results = [as_pair(r) for r in got]
    assert results == expect
    assert results.count((GREEN, PASS)) > 50 and results.count((RED, DROP)) > 50
    if ready == 1.0:  # no stall: accepted on consecutive cycles
        edges = [r[0] for r in rec.requests]
        assert edges == list(range(edges[0], edges[0] + len(requests)))


def test_long_run_rate_and_burst():
    """Offered load far above the profile: the green bytes follow the configured rate over a
    long run (within one packet), and no interval ever sees more than burst + rate * time."""
    rng = random.Random(3)
    dut = MeterBank(4)
    profiles = {0: (7.5, 9000), 1: (0.8, 3000)}
    configs = [(i, rate_value(r), b, MODE_DROP if i else MODE_MARK, True)
               for i, (r, b) in profiles.items()]
    requests = [(n % 2, rng.randint(64, 1518)) for n in range(8000)]

    async def setup(ctx):
        for cfg in configs:
            await configure(ctx, dut.bus, *cfg)

    rec, got = run(dut, setup, requests, rng, idle=0.0, ready=1.0)
    expect, _ = replay(4, rec, configs)
    results = [as_pair(r) for r in got]
    assert results == expect
    for index, (_, burst) in profiles.items():
        rate = rate_value(profiles[index][0]) / (1 << RATE_FRAC_BITS)
        mine = [(now, length, res[0] == GREEN)
                for (_, i, length, _, now, _), res in zip(rec.requests, results, strict=True)
                if i == index]
        t0, t1 = mine[0][0], mine[-1][0]
        start = min(rate * t0, burst)  # the bucket filled from tick 0
        green = sum(length for _, length, ok in mine if ok)
        assert start + rate * (t1 - t0) - 1518 <= green <= start + rate * (t1 - t0)
        assert t1 - t0 >= len(requests) - 2  # a long run, one request per cycle
        # Token-bucket envelope from many starting points.
        for s in [0] + rng.sample(range(len(mine)), 40):
            total = 0
            ts = mine[s][0]
            for now, length, ok in mine[s:]:
                total += length * ok
                assert total <= burst + rate * (now - ts) + 1e-6


def test_mark_drop_and_disabled():
    """The same profile in MARK and DROP mode gives the same colours but a red packet is marked
    in one and dropped in the other; a disabled meter passes everything and keeps a full
    bucket."""
    rng = random.Random(4)
    dut = MeterBank(8)
    profile = (rate_value(30), 4000)
    configs = [(1, *profile, MODE_MARK, True), (2, *profile, MODE_DROP, True),
               (3, *profile, MODE_DROP, False)]
    lengths = [rng.randint(64, 1518) for _ in range(300)]
    requests = [(m, n) for n in lengths for m in (1, 2, 3)]
    readback = {}

    async def setup(ctx):
        for cfg in configs:
            await configure(ctx, dut.bus, *cfg)

    async def after(ctx):
        readback[3] = await read_meter(ctx, dut.bus, 3)

    rec, got = run(dut, setup, requests, rng, idle=0.0, ready=1.0, after=after)
    expect, model = replay(8, rec, configs)
    results = [as_pair(r) for r in got]
    assert results == expect
    mark, drop, off = results[0::3], results[1::3], results[2::3]
    assert set(mark) == {(GREEN, PASS), (RED, MARK)}
    assert set(drop) == {(GREEN, PASS), (RED, DROP)}
    assert set(off) == {(GREEN, PASS)}
    assert readback[3][3] == profile[1] << RATE_FRAC_BITS  # disabled: refilled, never drained
    assert readback[3][4:] == (len(lengths), 0)


def test_reconfiguration_while_traffic_flows():
    """Rate, burst, mode and enable rewritten while requests stream to the same meters: each
    request uses the old or the new configuration, switching exactly at the documented cycle
    (requests accepted from the second cycle after the bus takes the write command on)."""
    rng = random.Random(5)
    dut = MeterBank(8)
    initial = [random_config(rng, i) for i in range(4)]
    later = [random_config(rng, rng.randrange(4)) for _ in range(25)]
    requests = [(rng.randrange(4), rng.randint(64, 1518)) for _ in range(2500)]

    async def setup(ctx):
        for cfg in initial:
            await configure(ctx, dut.bus, *cfg)

    async def during(ctx):
        for cfg in later:
            await ctx.tick().repeat(rng.randint(20, 60))
            await configure(ctx, dut.bus, *cfg)

    rec, got = run(dut, setup, requests, rng, idle=0.1, ready=0.9, during=during)
    expect, _ = replay(8, rec, initial + later)
    assert [as_pair(r) for r in got] == expect
    # The switch-over cycles really had traffic to the reconfigured meter around them.
    close = 0
    for edge, (index, *_) in zip(rec.config_edges[len(initial):], later, strict=True):
        close += any(i == index and edge - 3 <= e <= edge + 4 for e, i, *_ in rec.requests)
    assert close > len(later) // 3


def test_throughput_and_latency():
    """One request per cycle, results back to back, four cycles from request to result."""
    rng = random.Random(6)
    dut = MeterBank(256)
    in_mon, out_mon = StreamMonitor(dut.i, name="i"), StreamMonitor(dut.o, name="o")
    requests = [(rng.randrange(3), 100) for _ in range(200)]

    async def setup(ctx):
        await configure(ctx, dut.bus, 0, rate_value(10), 2000)

    rec = Recorder(dut)
    got = []

    async def source(ctx):
        await setup(ctx)
        for n, (index, length) in enumerate(requests):
            await put(ctx, dut.i, {"index": index, "length": length, "tag": n})

    async def sink(ctx):
        for _ in requests:
            got.append(await get(ctx, dut.o))

    simulate(dut, [source, sink], background=[in_mon.run, out_mon.run, rec.run])
    ins = [c for c, _ in in_mon.transfers]
    outs = [c for c, _ in out_mon.transfers]
    assert ins == list(range(ins[0], ins[0] + len(requests)))
    assert outs == list(range(outs[0], outs[0] + len(requests)))
    assert {o - i for i, o in zip(ins, outs, strict=True)} == {4}
    expect, _ = replay(256, rec, [(0, rate_value(10), 2000, MODE_MARK, True)])
    assert [as_pair(r) for r in got] == expect


def test_registers():
    """Header, meter count, configuration read back, an index beyond the bank ignored."""
    dut = MeterBank(16)

    async def bench(ctx):
        bus = dut.bus
        assert await read_register(ctx, bus, REGISTERS["type_id"]) == METERS
        assert await read_register(ctx, bus, REGISTERS["meters"]) == 16
        assert await read_meter(ctx, bus, 5) == (0, 0, 0, 0, 0, 0)  # reset: disabled, empty
        await configure(ctx, bus, 5, 0x1234_5678, 0xABCDEF, MODE_DROP, True)
        await configure(ctx, bus, 6, 77, 0xFFFF_FFFF, MODE_MARK, False)  # burst: 24 bits kept
        await configure(ctx, bus, 16, 99, 99, MODE_DROP, True)  # beyond the bank: ignored
        await wait_command(ctx, bus)
        assert (await read_meter(ctx, bus, 5))[:3] == (0x1234_5678, 0xABCDEF, 0b11)
        assert (await read_meter(ctx, bus, 6))[:3] == (77, 0xFF_FFFF, 0b00)
        assert await read_meter(ctx, bus, 16) == (0, 0, 0, 0, 0, 0)
        assert (await read_meter(ctx, bus, 0))[:3] == (0, 0, 0)
        assert (await bus_read(ctx, bus, 0x24))[1] == 1  # unused offset

    simulate(dut, [bench], max_cycles=10_000)
