# amaranth: UnusedElaboratable=no
"""FlowTable and its driver model against a dict model of the table, in the Amaranth simulator.

Keys are placed by :class:`~amnic.sim.flow_table_driver.FlowTableDriver` through the register
bus; lookups stream through the pipeline while a scoreboard compares every result with the
model, and counters read back over the bus are compared with the hits the scoreboard saw.
"""

import random

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from amnic.csr.ids import FLOW_TABLE
from amnic.flow.hash import DEFAULT_SEED, FlowHashes, FlowHashUnit, h3_masks, splitmix64
from amnic.flow.key import FLOW_KEY_BITS, FlowKey, flow_key_value
from amnic.flow.table import (
    BYTES_BITS,
    LATENCY,
    PACKETS_BITS,
    REGISTERS,
    TIME_BITS,
    Command,
    FlowTable,
)
from amnic.sim.csr_bus import SimulatorBackend, bus_read, bus_write
from amnic.sim.flow_table_driver import (
    CommandRejectedError,
    CuckooShadow,
    DuplicateKeyError,
    FlowCounters,
    FlowTableDriver,
    TableFullError,
)
from amnic.sim.stream_tb import simulate

# -- helpers ------------------------------------------------------------------------------------


def random_key(rng, ipv6=None):
    """A flow key as the parser would build it: IPv4 or IPv6, TCP or UDP, maybe VLAN/VXLAN."""
    if ipv6 is None:
        ipv6 = rng.random() < 0.3
    addr_bits = 128 if ipv6 else 32
    return flow_key_value(
        port=rng.randrange(4), vlan=rng.choice([0, rng.randrange(1, 4095)]),
        vni=rng.choice([0, 0, rng.randrange(1 << 24)]), ipv6=int(ipv6),
        protocol=rng.choice([6, 17]), src_addr=rng.getrandbits(addr_bits),
        dst_addr=rng.getrandbits(addr_bits), src_port=rng.getrandbits(16),
        dst_port=rng.getrandbits(16))


def distinct_keys(rng, n, **kwargs):
    keys = {}
    while len(keys) < n:
        keys[random_key(rng, **kwargs)] = None
    return list(keys)


class Harness(wiring.Component):
    """A FlowTable whose ``now`` is a free-running cycle counter (also an output)."""

    def __init__(self, **kwargs):
        self.table = FlowTable(**kwargs)
        members = dict(self.table.signature.members)
        members["now"] = Out(TIME_BITS)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = table = self.table
        for name in ("i", "o", "bus"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(table, name))
        m.d.sync += self.now.eq(self.now + 1)
        m.d.comb += table.now.eq(self.now)
        return m


class Clock:
    """Counts clock edges, so testbenches can timestamp what they do."""

    def __init__(self):
        self.cycle = 0

    async def run(self, ctx):
        async for _ in ctx.tick():
            self.cycle += 1


class Traffic:
    """Lookup source and result sink with a scoreboard record of every transfer.

    ``requests`` holds ``(cycle, key, length, tag)`` per accepted request and ``results``
    ``(cycle, now, hit, action, index, tag)`` per result, both in transfer order; ``cycle``
    counts edges from the start of the simulation and ``now`` is the time base sampled at the
    edge of the transfer (the value a counted hit stores as its last-hit time).
    """

    def __init__(self, dut, rng, *, idle_prob=0.0, ready_prob=1.0):
        self.dut = dut
        self.rng = rng
        self.idle_prob = idle_prob
        self.ready_prob = ready_prob
        self.queue = []  # (key, length) still to send
        self.requests = []
        self.results = []
        self.stopped = False
        self.cut = False
        self.ready_cycles = 0  # cycles in which the source offered and i.ready was high

    def send(self, items):
        self.queue.extend(items)

    async def source(self, ctx):
        """Offer queued requests; an offer holds until taken. ``cut`` drops the rest of the
        queue once no offer is pending."""
        dut, tag, cycle, pending = self.dut, 0, 0, False
        while pending or not self.stopped or self.queue:
            if self.cut and not pending:
                self.queue.clear()
            offer = pending or (bool(self.queue) and not (
                self.idle_prob and self.rng.random() < self.idle_prob))
            if offer and not pending:
                key, length = self.queue[0]
                ctx.set(dut.i.payload, {"key": FlowKey.as_shape().from_bits(key),
                                        "length": length, "tag": tag & 0xFF})
            ctx.set(dut.i.valid, offer)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            pending = offer and not ready
            if offer and ready:
                self.queue.pop(0)
                self.requests.append((cycle, key, length, tag & 0xFF))
                tag += 1
            cycle += 1
        ctx.set(dut.i.valid, 0)

    async def sink(self, ctx):
        dut = self.dut
        cycle = 0
        while True:
            ready = self.ready_prob >= 1 or self.rng.random() < self.ready_prob
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, now = await ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                dut.now)
            if valid and ready:
                self.results.append((cycle, now, payload.hit, payload.action, payload.index,
                                     payload.tag))
            cycle += 1

    async def drain(self, ctx, extra=LATENCY + 2):
        """Wait until every queued request has a result."""
        while self.queue or len(self.results) < len(self.requests):
            await ctx.tick()
        for _ in range(extra):
            await ctx.tick()

    def pairs(self):
        assert len(self.results) == len(self.requests)
        for req, res in zip(self.requests, self.results, strict=True):
            assert res[5] == req[3], f"result tag {res[5]} for request tag {req[3]}: reordered"
            yield req, res


def expected_counters(traffic, key_filter=None):
    """``{key: FlowCounters}`` from the hits the scoreboard saw."""
    out = {}
    for (_, key, length, _), (_, now, hit, _, _, _) in traffic.pairs():
        if hit and (key_filter is None or key_filter(key)):
            c = out.get(key, FlowCounters(0, 0, None))
            out[key] = FlowCounters(c.packets + 1, c.bytes + length, now)
    return out


def run(dut, testbench, traffic=None, *, max_cycles=200_000, clock=None):
    background = [clock.run] if clock else []
    if traffic:
        background += [traffic.sink]
    simulate(dut, [testbench] + ([traffic.source] if traffic else []), background=background,
             max_cycles=max_cycles)


# -- hash functions -----------------------------------------------------------------------------


def test_splitmix64_reference_vector():
    # Outputs of the SplitMix64 reference generator seeded with 1234567.
    state, out = 1234567, []
    for _ in range(3):
        value, state = splitmix64(state)
        out.append(value)
    assert out == [6457827717110365317, 3203168211198807973, 9817491932198370423]


def test_hash_python_properties():
    rng = random.Random(1)
    hashes = FlowHashes()
    masks = h3_masks(DEFAULT_SEED)
    assert len(masks) == 2 and all(len(rows) == 32 for rows in masks)
    assert all(0 < m < 1 << FLOW_KEY_BITS for rows in masks for m in rows)
    assert masks[0] != masks[1]
    for _ in range(200):
        a, b = rng.getrandbits(FLOW_KEY_BITS), rng.getrandbits(FLOW_KEY_BITS)
        for j in (0, 1):  # H3 is linear over GF(2)
            assert hashes(a ^ b, j) == hashes(a, j) ^ hashes(b, j)
    # Keys that differ in one field spread over the buckets of a 64K table (8192 buckets of 4).
    keys = distinct_keys(rng, 4000, ipv6=False)
    for j in (0, 1):
        used = {hashes.bucket(k, j, 8192) for k in keys}
        assert len(used) > 3000  # ~3138 expected for uniform hashing
    same = sum(hashes.bucket(k, 0, 8192) == hashes.bucket(k, 1, 8192) for k in keys)
    assert same < 10  # independent functions: ~0.5 expected
    with pytest.raises(ValueError):
        hashes(1 << FLOW_KEY_BITS, 0)


def test_hash_rtl_matches_python():
    rng = random.Random(2)
    for width, seed in ((32, DEFAULT_SEED), (9, 0x1234_5678)):
        dut = FlowHashUnit(width, seed=seed)
        ref = FlowHashes(seed)
        keys = [0, (1 << FLOW_KEY_BITS) - 1] + [1 << b for b in range(0, FLOW_KEY_BITS, 37)]
        keys += [rng.getrandbits(FLOW_KEY_BITS) for _ in range(100)]
        keys += distinct_keys(rng, 50)

        async def bench(ctx, dut=dut, ref=ref, keys=keys, width=width):
            for key in keys:
                ctx.set(dut.key, FlowKey.as_shape().from_bits(key))
                got = ctx.get(dut.hashes)
                for j in (0, 1):
                    assert got[j] == ref(key, j) & ((1 << width) - 1), (hex(key), j)

        sim = Simulator(dut)
        sim.add_testbench(bench)
        sim.run()


# -- lookups and counters -----------------------------------------------------------------------


def test_lookups_and_counters():
    """Hits, misses, actions and indices against a dict; counters against the hits seen, with
    random stalls and with back-to-back hits to one entry at the full rate."""
    rng = random.Random(3)
    dut = Harness(entries=1024, action_width=32)
    keys = distinct_keys(rng, 300)
    model = {k: rng.getrandbits(32) for k in keys}
    absent = distinct_keys(random.Random(4), 100)
    assert not set(absent) & set(keys)
    traffic = Traffic(dut, rng, idle_prob=0.2, ready_prob=0.6)
    counters = {}  # key -> (read back, expected)
    placed = {}

    def stream(n):
        out = []
        while len(out) < n:
            key = rng.choice(keys) if rng.random() < 0.7 else rng.choice(absent)
            burst = rng.choice([1, 1, 1, 2, 5])  # runs of one key
            out += [(key, rng.randrange(40, 9600))] * burst
        return out

    async def bench(ctx):
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, dut.bus))
        for k in keys:
            await drv.insert(k, model[k])
        assert len(drv) == len(keys)
        placed.update((k, drv.lookup(k)) for k in keys)
        traffic.send(stream(600))
        await traffic.drain(ctx)
        # Full rate: source always valid, sink always ready, long runs of one key.
        traffic.idle_prob, traffic.ready_prob = 0.0, 1.0
        hot = rng.sample(keys, 3)
        traffic.send([(hot[0], 64)] * 40 + [(hot[1], 1500), (hot[2], 100)] * 20
                     + [(hot[0], 9000)] * 7)
        await traffic.drain(ctx)
        traffic.stopped = True
        expected = expected_counters(traffic)
        for k in hot + rng.sample(keys, 40):
            counters[k] = (await drv.counters(k), expected.get(k, FlowCounters(0, 0, None)))

    run(dut, bench, traffic)

    hits = 0
    for (_, key, _, _), (_, _, hit, action, index, _) in traffic.pairs():
        if key in model:
            assert (hit, index, action) == (1, *placed[key]) and action == model[key]
            hits += 1
        else:
            assert (hit, action, index) == (0, 0, 0)
    assert hits > 400 and len(traffic.results) > 650
    for key, (got, want) in counters.items():
        assert got == want, f"counters of {key:#x}: {got} != {want}"
    assert max(got.packets for got, _ in counters.values()) >= 47


@pytest.mark.parametrize("ways", [1, 4])
def test_throughput_and_latency(ways):
    """One lookup per cycle with no stall, every result exactly LATENCY cycles later."""
    rng = random.Random(5)
    dut = Harness(entries=64, action_width=8, ways=ways)
    keys = distinct_keys(rng, 16)
    traffic = Traffic(dut, rng)
    n = 300

    async def bench(ctx):
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, dut.bus))
        for k in keys[:8]:
            await drv.insert(k, k & 0xFF)
        traffic.send([(rng.choice(keys), 64) for _ in range(n)])
        await traffic.drain(ctx)
        traffic.stopped = True

    run(dut, bench, traffic)
    cycles_in = [r[0] for r in traffic.requests]
    cycles_out = [r[0] for r in traffic.results]
    assert len(cycles_out) == n
    assert cycles_in == list(range(cycles_in[0], cycles_in[0] + n)), "a request waited"
    assert cycles_out == list(range(cycles_out[0], cycles_out[0] + n)), "a result gap"
    assert {o - i for i, o in zip(cycles_in, cycles_out)} == {LATENCY}
    for (_, key, _, _), (_, _, hit, action, _, _) in traffic.pairs():
        assert hit == (key in keys[:8]) and action == (key & 0xFF if hit else 0)


# -- updates while traffic flows ----------------------------------------------------------------


class Timeline:
    """The table states software went through, with the cycles each command ran between."""

    def __init__(self, clock, drv):
        self.clock = clock
        self.drv = drv
        self.versions = [(-1, self.snapshot())]  # (cycle the change started, state)
        self.ends = []  # cycle each change had finished

    def snapshot(self):
        return {k: (i, self.drv.shadow.actions[k]) for k, i in self.drv.shadow.where.items()}

    async def apply(self, coroutine):
        start = self.clock.cycle
        try:
            return await coroutine
        finally:
            self.versions.append((start, self.snapshot()))
            self.ends.append(self.clock.cycle)

    def allowed(self, key, first, last, slack=2):
        """Results a lookup of ``key`` in flight from cycle ``first`` to ``last`` may see."""
        out = set()
        for v, (start, state) in enumerate(self.versions):
            end = self.ends[v] if v < len(self.ends) else 1 << 62  # replaced by change v+1
            if start - slack <= last and first <= end + slack:
                index, action = state.get(key, (0, 0))
                out.add((int(key in state), action, index))
        return out


def test_updates_while_lookups_flow():
    """Inserts (with cuckoo moves), modifies and deletes while a lookup enters every cycle:
    every result is a state the entry had while the lookup was in flight, a present key never
    misses, and no hit is lost from the counters across moves."""
    rng = random.Random(6)
    dut = Harness(entries=64, action_width=16, ways=4)
    clock = Clock()
    pool = distinct_keys(rng, 120)
    initial, later, never = pool[:44], pool[44:100], pool[100:]
    traffic = Traffic(dut, rng)
    results = {}

    async def bench(ctx):
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, dut.bus))
        for k in initial:
            await drv.insert(k, rng.getrandbits(16))
        timeline = Timeline(clock, drv)
        results["timeline"] = timeline
        deleted = {}
        moves0 = drv.moves

        def lookups(n):
            out = []
            for _ in range(n):
                present = list(drv.shadow.where)
                group = rng.random()
                if group < 0.55 and present:
                    out.append((rng.choice(present), rng.randrange(60, 1500)))
                elif group < 0.8:
                    out.append((rng.choice(later), 100))
                else:
                    out.append((rng.choice(never), 100))
            return out

        traffic.send(lookups(50))
        for _ in range(70):
            if len(traffic.queue) < 200:
                traffic.send(lookups(300))
            op = rng.random()
            present = list(drv.shadow.where)
            candidates = [k for k in later if k not in drv and k not in deleted]
            if op < 0.5 and candidates:
                key = rng.choice(candidates)
                try:
                    await timeline.apply(drv.insert(key, rng.getrandbits(16)))
                except TableFullError:
                    pass
            elif op < 0.75 and present:
                await timeline.apply(drv.modify(rng.choice(present), rng.getrandbits(16)))
            elif present:
                key = rng.choice(present)
                deleted[key] = await timeline.apply(drv.delete(key))
        results["moves"] = drv.moves - moves0
        traffic.stopped = traffic.cut = True
        await traffic.drain(ctx)
        results["deleted"] = deleted
        results["counters"] = {k: await drv.counters(k) for k in drv.shadow.where}
        results["load"] = drv.load

    run(dut, bench, traffic, clock=clock)

    timeline = results["timeline"]
    assert results["moves"] >= 5, f"only {results['moves']} cuckoo moves under traffic"
    assert len(timeline.ends) >= 60
    assert not traffic.queue
    n = 0
    for (t_in, key, _, _), (t_out, _, hit, action, index, _) in traffic.pairs():
        allowed = timeline.allowed(key, t_in, t_out)
        assert (hit, action, index) in allowed, (
            f"lookup of {key:#x} in cycles {t_in}..{t_out} saw {(hit, action, index)}, "
            f"allowed {allowed}")
        n += 1
    assert n > 2000
    print(f"\n{n} lookups during {len(timeline.ends)} table changes, {results['moves']} cuckoo "
          f"moves, final load {results['load']:.2f}")
    # Cycles with a request offered all had one taken (the source never waited).
    cycles = [r[0] for r in traffic.requests]
    assert cycles[-1] - cycles[0] + 1 == len(cycles)
    expected = expected_counters(traffic)
    for key, got in {**results["deleted"], **results["counters"]}.items():
        assert got == expected.get(key, FlowCounters(0, 0, None)), f"counters of {key:#x}"


# -- command semantics ---------------------------------------------------------------------------


async def read_reg(ctx, bus, name):
    value = 0
    for half, offset in enumerate(REGISTERS[name].words):
        word, error = await bus_read(ctx, bus, offset)
        assert not error
        value |= word << (32 * half)
    return value


async def write_reg(ctx, bus, name, value):
    assert not await bus_write(ctx, bus, REGISTERS[name].offset, value)


async def wait_idle(ctx, bus, limit=50):
    for _ in range(limit):
        status = await read_reg(ctx, bus, "status")
        if not status & 1:
            return status
    raise AssertionError("command did not complete")


def test_registers_and_rejected_commands():
    dut = FlowTable(entries=64, action_width=75, ways=2, seed=0xABCD)

    async def bench(ctx):
        bus = dut.bus
        assert await read_reg(ctx, bus, "type_id") == FLOW_TABLE
        assert await read_reg(ctx, bus, "entries") == 64
        assert await read_reg(ctx, bus, "ways") == 2
        assert await read_reg(ctx, bus, "key_width") == FLOW_KEY_BITS
        assert await read_reg(ctx, bus, "action_width") == 75
        assert await read_reg(ctx, bus, "hash_seed") == 0xABCD
        assert await read_reg(ctx, bus, "counter_widths") == (
            PACKETS_BITS | BYTES_BITS << 8 | TIME_BITS << 16)
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, bus))
        key = random_key(random.Random(7))
        action = (1 << 74) | 0x1234_5678_9ABC
        index = await drv.insert(key, action)
        slot = await drv.read_slot(index)
        assert (slot.valid, slot.key, slot.action) == (True, key, action)
        assert (slot.packets, slot.bytes) == (0, 0)
        # An index beyond the table: the command is dropped and flagged.
        for bad in (64, 1000, 0xFFFF_FFFF):
            await write_reg(ctx, bus, "index", bad)
            await write_reg(ctx, bus, "command", 1 << Command.CLEAR | 1 << Command.READ)
            assert await wait_idle(ctx, bus) == 0b10
        drv.forget_staging()
        assert (await drv.read_slot(index)).valid  # nothing was cleared; flag cleared again
        assert await read_reg(ctx, bus, "status") == 0
        with pytest.raises(IndexError):
            await drv.read_slot(64)
        with pytest.raises(DuplicateKeyError):
            await drv.insert(key, 1)
        with pytest.raises(KeyError):
            await drv.modify(key ^ 1, 1)
        with pytest.raises(ValueError):
            await drv.insert(key ^ 1, 1 << 75)
        # Empty slots read back invalid; clear+read in one write runs both in order.
        empty = next(i for i in range(64) if drv.shadow.slots[i] is None)
        assert not (await drv.read_slot(empty)).valid
        final = await drv.delete(key)
        assert final == FlowCounters(0, 0, None) and len(drv) == 0
        assert not (await drv.read_slot(index)).valid
        # scan() adopts what the hardware holds.
        await drv.insert(key, 5)
        other = await FlowTableDriver.open(drv.backend)
        await other.scan()
        assert other.lookup(key) == drv.lookup(key) and len(other) == 1

    simulate(dut, [bench], max_cycles=20_000)


def test_open_rejects_other_blocks():
    class Fake:
        async def read(self, offset):
            return 0x1234

        async def write(self, offset, value):
            raise AssertionError("no writes expected")

    async def bench(ctx):
        with pytest.raises(CommandRejectedError):
            await FlowTableDriver.open(Fake())

    sim = Simulator(Module())
    sim.add_testbench(bench)
    sim.run()


def test_slot_changes_under_hits():
    """Change a slot while its key is looked up, in rounds with different hit densities and
    back-pressure, so that each kind of change meets lookups in flight in every stage.

    ``write`` (same key, new action) zeroes the counters and does not count lookups that had
    read the old entry: afterwards the packet counter equals the number of results showing the
    new action. ``update`` keeps counting every hit. ``clear`` completes only after the hits in
    flight are counted: the final count equals every hit result, and later lookups miss.
    """
    rng = random.Random(8)
    dut = Harness(entries=64, action_width=16, ways=4)
    # Per command: three rounds of one hit every third cycle at full rate, the command issued
    # in each phase of the pattern (so that it meets the hit in each early stage), and three
    # rounds of dense random hits under heavy back-pressure (commands during stalls).
    plans = [(command, phase) for command in ("write", "update", "clear")
             for phase in (0, 1, 2, None, None, None)]
    cold, *hots = distinct_keys(rng, len(plans) + 1)
    traffic = Traffic(dut, rng)
    rounds = []

    async def bench(ctx):
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, dut.bus))
        for (command, phase), hot in zip(plans, hots):
            await drv.insert(hot, 0x1111)  # leaves the key and index staged
            first = len(traffic.requests)
            if phase is None:
                traffic.ready_prob = rng.choice([0.25, 0.5])
                density = rng.choice([0.5, 0.9])
                traffic.send([(hot if rng.random() < density else cold, 100)
                              for _ in range(70)])
                target = len(traffic.results) + rng.randrange(15, 30)
                while len(traffic.results) < target:
                    await ctx.tick()
            else:
                traffic.ready_prob = 1.0
                traffic.send([(hot, 100), (cold, 100), (cold, 100)] * 20)
                while len(traffic.requests) < first + 18 or (
                        len(traffic.requests) - first) % 3 != phase:
                    await ctx.tick()
            if command == "write":  # a slot write over a live entry (not a driver operation)
                await write_reg(ctx, dut.bus, "action_0", 0x2222)
                await write_reg(ctx, dut.bus, "command", 1 << Command.WRITE)
                assert await wait_idle(ctx, dut.bus) == 0
                drv.forget_staging()
            elif command == "update":
                await drv.modify(hot, 0x2222)
            else:
                final = await drv.delete(hot)
            await traffic.drain(ctx)
            if command != "clear":
                final = await drv.read_slot(drv.shadow.where[hot])
            rounds.append((command, hot, final.packets))
        traffic.stopped = True

    run(dut, bench, traffic)
    for command, hot, packets in rounds:
        new = (1, 0x2222) if command != "clear" else (0, 0)
        seen = [(res[2], res[3]) for (_, key, _, _), res in traffic.pairs() if key == hot]
        # Atomic and monotonic: old results, then new ones.
        first_new = seen.index(new)
        assert 0 < first_new < len(seen) - 1
        assert seen == [(1, 0x1111)] * first_new + [new] * (len(seen) - first_new), seen
        if command == "write":
            assert packets == len(seen) - first_new
        elif command == "update":
            assert packets == len(seen)
        else:
            assert packets == first_new


def test_host_commands_wait_for_a_free_counter_port():
    """``read`` needs the counter port a hit uses: it waits out a run of one hit per cycle and
    completes in the first cycle without one; ``update`` never waits."""
    rng = random.Random(9)
    dut = Harness(entries=64, action_width=8, ways=4)
    hot = random_key(rng)
    traffic = Traffic(dut, rng)
    log = {}

    async def bench(ctx):
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, dut.bus))
        index = await drv.insert(hot, 1)
        traffic.send([(hot, 64)] * 200)
        while len(traffic.results) < 10:
            await ctx.tick()
        await write_reg(ctx, dut.bus, "index", index)
        await write_reg(ctx, dut.bus, "command", 1 << Command.READ)
        busy = 0
        while (await read_reg(ctx, dut.bus, "status")) & 1:
            busy += 1
        log["busy_polls"] = busy
        log["done_at"] = len(traffic.results)
        log["read"] = await read_reg(ctx, dut.bus, "read_packets")
        traffic.send([(hot, 64)] * 100)
        while len(traffic.results) < 220:
            await ctx.tick()
        await drv.modify(hot, 2)  # completes while hits flow
        log["modified_at"] = len(traffic.results)
        await traffic.drain(ctx)
        traffic.stopped = True

    run(dut, bench, traffic)
    assert log["busy_polls"] > 50
    assert log["done_at"] == 200 and log["read"] == 200
    assert log["modified_at"] < 300
    actions = [r[3] for r in traffic.results]
    assert actions == [1] * actions.index(2) + [2] * (300 - actions.index(2))


# -- capacity -----------------------------------------------------------------------------------


def test_fill_to_first_failure():
    """Fill a 512-entry table until an insertion fails; the table stays consistent and every
    key still looks up at its slot at one lookup per cycle."""
    rng = random.Random(10)
    dut = Harness(entries=512, action_width=16, ways=4)
    keys = distinct_keys(rng, 560, ipv6=False)
    traffic = Traffic(dut, rng)
    out = {}

    async def bench(ctx):
        drv = await FlowTableDriver.open(SimulatorBackend(ctx, dut.bus))
        for n, key in enumerate(keys):
            try:
                await drv.insert(key, n & 0xFFFF)
            except TableFullError:
                out["failed"] = key
                break
        out["load"] = drv.load
        out["moves"] = drv.moves
        out["where"] = {k: drv.lookup(k) for k in keys}
        traffic.send([(k, 64) for k in keys])
        await traffic.drain(ctx)
        traffic.stopped = True

    run(dut, bench, traffic, max_cycles=400_000)
    print(f"\n512-entry table, 4 ways: first insertion failure at load {out['load']:.3f} "
          f"after {out['moves']} cuckoo moves")
    assert out["load"] >= 0.90
    assert out["where"][out["failed"]] is None
    placed = {k: v for k, v in out["where"].items() if v is not None}
    assert len(placed) == round(out["load"] * 512)
    assert len({index for index, _ in placed.values()}) == len(placed)
    for (_, key, _, _), (_, _, hit, action, index, _) in traffic.pairs():
        if key in placed:
            assert (hit, index, action) == (1, *placed[key])
        else:
            assert not hit
    cycles = [r[0] for r in traffic.results]
    assert cycles == list(range(cycles[0], cycles[0] + len(keys)))


@pytest.mark.parametrize(("entries", "ways", "least"), [(4096, 4, 0.95), (4096, 2, 0.85),
                                                         (1024, 1, 0.40)])
def test_cuckoo_placement_load(entries, ways, least):
    """The driver's placement alone (no hardware): load at the first failed insertion, and
    every key in one of its candidate slots. One slot per bucket fills only to about half."""
    rng = random.Random(entries + ways)
    shadow = CuckooShadow(entries, ways, FlowHashes())
    while True:
        key = rng.getrandbits(FLOW_KEY_BITS)
        try:
            path = shadow.plan(key)
        except TableFullError:
            break
        assert path[0] in shadow.candidates(key) and shadow.slots[path[-1]] is None
        for src, dst in reversed(list(zip(path, path[1:]))):
            assert dst in shadow.candidates(shadow.slots[src])
            shadow.move(src, dst)
        shadow.place(key, 0, path[0])
    assert shadow.load >= least
    assert all(shadow.where[k] == i for i, k in enumerate(shadow.slots) if k is not None)
    assert all(i in shadow.candidates(k) for k, i in shadow.where.items())


def test_default_geometry_elaborates():
    dut = FlowTable()
    assert (dut.entries, dut.ways, dut.buckets, dut.hash_width) == (65536, 4, 8192, 13)
    Fragment.get(dut, None).prepare()
    with pytest.raises(ValueError):
        FlowTable(1000)
    with pytest.raises(ValueError):
        FlowTable(16, ways=8)
    with pytest.raises(ValueError):
        FlowTable(64, action_width=129)

