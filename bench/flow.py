"""``amnic bench flow``: throughput, latency and resources of the match-action blocks.

Throughput and latency are cycle-exact: the designs run in the Amaranth simulator and every
figure counts clock edges, never wall-clock time. Outputs are always ready and inputs are
offered in every cycle, so a block that keeps up takes one request per cycle.

Sections (each a function ``NAME_rows(quick)`` that returns a list of row dicts, listed in
:data:`SECTIONS`, printed as one Markdown table and written under its name to the JSON file):

``pipeline``
    The whole match-action pipeline (:mod:`amnic.bench._pipeline`): packets back to back with
    the flow table 90 % full and host updates running; every output packet is compared with
    the reference model.
``flow_table``
    :class:`~amnic.flow.table.FlowTable` filled to 90 % by the host driver
    (:class:`~amnic.sim.flow_table_driver.FlowTableDriver`, cuckoo insertions over the register
    bus), then one lookup offered per cycle (a random mix of hits and misses) while the host
    keeps inserting, modifying and deleting entries. Reported: lookups accepted per cycle,
    latency from the request handshake to the result, host updates per 1000 cycles, and the
    check of every result against the driver's shadow (a result is correct when it shows a
    state its key had while the lookup was in flight; any other result fails the benchmark).
``blocks``
    ACL, RSS and meters on their own: requests per cycle and latency (request handshake to
    result handshake), every result compared with the reference models of
    :mod:`amnic.sim.acl_model` and :mod:`amnic.sim.rss_model`.
``capacity``
    Flow-table block RAM against entry count, from Yosys. A size whose synthesis fails or
    exceeds :data:`CAPACITY_TIMEOUT` is extrapolated from the largest measured size (RAM bits
    per entry) and labelled so.
``resources``
    LUT/FF/BRAM/DSP of each block from Yosys.

Resources come from pyosys, ``synth_xilinx -family xcup -flatten -noiopad``
(:func:`amnic.bench.synth.synthesize`), one Yosys process at a time; nothing is cached on
disk. ``--quick`` shrinks the simulations, skips the capacity section and synthesizes one
small block; ``--section NAME`` (repeatable) runs only the sections named.

The exit status is 1 when a row reports ``ok`` false (a result that does not match its model)
or a section fails, else 0.
"""

import random
import sys
import time

from amnic.bench._sections import Column, Section, text_column
from amnic.bench._sections import run as run_sections

__all__ = [
    "Column", "Section", "SECTIONS",
    "pipeline_rows", "flow_table_rows", "block_rows", "capacity_rows", "resource_rows",
    "measure_flow_table", "lookup_mismatches", "measure_acl", "measure_rss", "measure_meters",
    "synthesize_component", "flow_table_capacity", "extrapolate_capacity", "main",
]

#: Seconds a flow-table capacity synthesis may take before the size is extrapolated instead.
CAPACITY_TIMEOUT = 3600
#: Seconds any other synthesis may take.
SYNTH_TIMEOUT = 3600
#: Flow-table sizes of the capacity section (skipped with ``--quick``; 256 entries when
#: :func:`capacity_rows` is called with ``quick``).
FULL_CAPACITY = (1024, 4096, 16384, 65536)
QUICK_CAPACITY = (256,)
#: Bits of one RAMB36 block (36 Kb including parity).
BRAM36_BITS = 36 * 1024


def progress(msg):
    """Report progress on stderr (stdout carries the tables)."""
    print(f"[bench flow] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Simulation helpers


class _Clock:
    """Counts clock edges (a background testbench), so testbenches can timestamp events."""

    def __init__(self):
        self.cycle = 0

    async def run(self, ctx):
        async for _ in ctx.tick():
            self.cycle += 1


class _Recorder:
    """Records every transfer of a stream as ``(cycle, payload, *extra)``; ``extra`` are more
    signals sampled at the edge of the transfer. ``cycle`` counts edges from the start."""

    def __init__(self, stream, extra=()):
        self.stream = stream
        self.extra = tuple(extra)
        self.transfers = []

    async def run(self, ctx):
        s = self.stream
        cycle = 0
        async for _, _, valid, ready, payload, *extra in ctx.tick().sample(
                s.valid, s.ready, s.payload, *self.extra):
            if valid and ready:
                self.transfers.append((cycle, payload, *extra))
            cycle += 1


def _back_to_back(dut, requests, *, setup=None, extra=(), max_cycles=200_000):
    """Run ``setup(ctx)`` (register writes), then offer ``requests`` (payload dicts) to
    ``dut.i`` in every cycle with ``dut.o`` always ready, until every result is out.

    Returns the recorded input and output transfers (:class:`_Recorder`); the input records
    also carry ``extra`` sampled at the edge of each request.
    """
    from amnic.sim.stream_tb import simulate

    rec_i, rec_o = _Recorder(dut.i, extra), _Recorder(dut.o)

    async def source(ctx):
        ctx.set(dut.o.ready, 1)
        if setup is not None:
            await setup(ctx)
        for req in requests:
            ctx.set(dut.i.payload, req)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        while len(rec_o.transfers) < len(requests):
            await ctx.tick()

    simulate(dut, [source], background=[rec_i.run, rec_o.run], max_cycles=max_cycles)
    return rec_i.transfers, rec_o.transfers


def _rate_and_latency(ins, outs):
    """Requests per cycle (over the longer of the input and output spans) and the latency
    range, from the transfer records of one back-to-back run."""
    n = len(ins)
    assert n and len(outs) == n, f"{n} requests, {len(outs)} results"
    span = max(ins[-1][0] - ins[0][0], outs[-1][0] - outs[0][0]) + 1
    latencies = [o[0] - i[0] for i, o in zip(ins, outs, strict=True)]
    return {"requests": n, "cycles": span, "requests_per_cycle": round(n / span, 4),
            "latency_min": min(latencies), "latency_max": max(latencies)}


def _random_flow_key(rng):
    """A flow key as the parser builds it: IPv4 or IPv6, TCP or UDP, sometimes VLAN/VXLAN."""
    from amnic.flow.key import flow_key_value

    ipv6 = rng.random() < 0.3
    bits = 128 if ipv6 else 32
    return flow_key_value(
        port=rng.randrange(4), vlan=rng.choice([0, 0, rng.randrange(1, 4095)]),
        vni=rng.choice([0, 0, 0, rng.randrange(1 << 24)]), ipv6=int(ipv6),
        protocol=rng.choice([6, 17]), src_addr=rng.getrandbits(bits),
        dst_addr=rng.getrandbits(bits), src_port=rng.getrandbits(16),
        dst_port=rng.getrandbits(16))


def _distinct_keys(rng, count):
    keys = {}
    while len(keys) < count:
        keys[_random_flow_key(rng)] = None
    return list(keys)


# ---------------------------------------------------------------------------------------------
# Section: the whole pipeline (measured by amnic.bench._pipeline, which owns its method)


FRAME_SIZES = (64, 256, 1500)


def pipeline_rows(quick):
    """Line rate and latency of the whole pipeline per data width and frame size."""
    from amnic.bench._pipeline import measure

    rows = []
    for width in (64, 512):
        for size in FRAME_SIZES[:1] if quick else FRAME_SIZES:
            packets = 120 if quick else (400 if size == 64 else 150)
            entries = 256 if quick else 1024
            r = measure(width, packets=packets, entries=entries, load=0.9, size=size)
            stages = ", ".join(f"{k} {v}" for k, v in r.stage_latency.items())
            rows.append({
                "width": width, "frame_bytes": size, "packets": r.packets,
                "packets_per_cycle": round(r.packets_per_cycle, 4),
                "line_rate_pct": round(100 * r.line_rate, 2),
                "latency_cycles_min": r.latency_min, "latency_cycles_max": r.latency_max,
                "table_entries": r.table_entries, "table_load_pct": round(100 * r.table_load, 1),
                "host_updates": r.host_updates, "mismatches": r.mismatches,
                "stage_latency_cycles": r.stage_latency, "stage_latency": stages,
                "ok": r.mismatches == 0,
            })
            progress(f"pipeline, width {width}, {size}-byte packets: "
                     f"{rows[-1]['line_rate_pct']} % of line rate")
    return rows


# ---------------------------------------------------------------------------------------------
# Section: flow table under load


def _table_state(driver):
    """``{key: (index, action)}`` of every entry in the driver's shadow."""
    shadow = driver.shadow
    return {k: (i, shadow.actions[k]) for k, i in shadow.where.items()}


def lookup_mismatches(requests, results, initial, history, *, slack=2):
    """Check lookup results against the table states the host went through.

    Parameters
    ----------
    requests : list of (cycle, key, tag)
        Accepted lookups, in order.
    results : list of (cycle, hit, action, index, tag)
        Results, in order.
    initial : dict
        ``{key: (index, action)}`` when the lookups started.
    history : dict
        ``{key: [(start, end, before, after), ...]}``: each host operation that changed the
        key, with the cycles it ran between and the key's ``(index, action)`` (or ``None``
        when absent) before and after; in time order.
    slack : int
        Cycles by which an operation's window is widened on both sides (timestamps of the host
        and of the lookups come from different testbenches).

    Returns
    -------
    list of (request, result)
        The lookups whose result shows no state its key had from the request to the result
        (a miss is ``(0, 0, 0)``, a hit ``(1, action, index)``), plus every pair whose tags
        differ (a lost or reordered result).
    """
    bad = []
    for req, res in zip(requests, results, strict=True):
        first, key, tag = req
        last, hit, action, index, rtag = res
        if tag != rtag:
            bad.append((req, res))
            continue
        state = initial.get(key)
        allowed = set()
        for start, end, before, after in history.get(key, ()):
            if end + slack < first:
                state = after
            elif start - slack <= last:
                allowed.update((before, after))
        allowed.add(state)
        seen = (hit, action, index) if hit else (0, 0, 0)
        ok = {(1, s[1], s[0]) if s is not None else (0, 0, 0) for s in allowed}
        if seen not in ok:
            bad.append((req, res))
    return bad


def measure_flow_table(entries=1024, lookups=20_000, *, load=0.9, hit_ratio=0.6, seed=1):
    """Fill a :class:`~amnic.flow.table.FlowTable` to ``load`` and look keys up, one offer per
    cycle, while the host keeps changing entries.

    The table has the pipeline's action width (:data:`amnic.flow.action.ACTION_BITS`) and
    ``now`` held at 0. The host driver inserts distinct random keys until ``load`` is reached
    (insertions the cuckoo search cannot place are counted and skipped). Then ``lookups``
    requests are offered back to back, a key from those ever inserted with probability
    ``hit_ratio`` (hits unless since deleted) and otherwise one never inserted; meanwhile the
    host runs, one after another: modify (40 %) or, to hold the load, insert (below ``load``)
    or delete (at or above it). Every result is checked with :func:`lookup_mismatches`.

    Returns
    -------
    dict
        ``entries``, ``load_pct`` (at the start of the lookups), ``lookups``,
        ``offered_cycles``, ``lookups_per_cycle``, ``latency_min``, ``latency_max``,
        ``hit_pct``, ``host_updates`` (inserts, modifies, deletes completed while lookups
        were offered) and their split, ``updates_per_1000_cycles``, ``cuckoo_moves`` (moves
        made by those inserts), ``bus_accesses_per_update``, ``fill_cycles``,
        ``fill_moves``, ``full_rejects``, ``mismatches``, ``ok``.
    """
    from amnic.flow.action import ACTION_BITS
    from amnic.flow.key import FlowKey
    from amnic.flow.table import FlowTable
    from amnic.sim.csr_bus import SimulatorBackend
    from amnic.sim.flow_table_driver import FlowTableDriver, TableFullError
    from amnic.sim.stream_tb import simulate

    rng = random.Random(seed)
    dut = FlowTable(entries, ACTION_BITS)
    target = int(entries * load)
    pool = _distinct_keys(rng, entries + target + 256)
    fill_keys, spare, never = pool[:entries], pool[entries:entries + target], pool[-256:]
    key_layout = FlowKey.as_shape()
    clock = _Clock()
    st = {"measuring": False, "done": False, "full": 0, "ops": [], "accesses": 0}
    history = {}
    requests, results = [], []

    class CountingBackend(SimulatorBackend):
        async def read(self, offset):
            st["accesses"] += 1
            return await super().read(offset)

        async def write(self, offset, value):
            st["accesses"] += 1
            await super().write(offset, value)

    async def host(ctx):
        drv = await FlowTableDriver.open(CountingBackend(ctx, dut.bus))
        for key in fill_keys:
            if len(drv) >= target:
                break
            try:
                await drv.insert(key, rng.getrandbits(ACTION_BITS))
            except TableFullError:
                st["full"] += 1
        st.update(fill_cycles=clock.cycle, fill_moves=drv.moves, load=drv.load)
        known = [k for k in fill_keys if k in drv]  # keys the lookups pick hits from
        st["known"] = known
        fresh = iter(spare)
        st["initial"] = _table_state(drv)
        st["measuring"] = True
        while not st["done"]:
            op = rng.random()
            new = next(fresh, None) if op >= 0.4 and drv.load < load else None
            if new is not None:
                kind = "insert"
                coro = drv.insert(new, rng.getrandbits(ACTION_BITS))
                known.append(new)
            elif op < 0.4 or drv.load < load:
                kind, key = "modify", rng.choice(list(drv.shadow.where))
                coro = drv.modify(key, rng.getrandbits(ACTION_BITS))
            else:
                kind, key = "delete", rng.choice(list(drv.shadow.where))
                coro = drv.delete(key)
            before, moves, accesses, start = (_table_state(drv), drv.moves, st["accesses"],
                                              clock.cycle)
            try:
                await coro
            except TableFullError:
                st["full"] += 1
                kind = "full"
            after = _table_state(drv)
            for k in before.keys() | after.keys():
                if before.get(k) != after.get(k):
                    history.setdefault(k, []).append((start, clock.cycle, before.get(k),
                                                       after.get(k)))
            st["ops"].append((kind, start, clock.cycle, drv.moves - moves,
                              st["accesses"] - accesses))

    # The source and the sink count edges themselves (both run from the first edge), so
    # their timestamps agree exactly; the host's come from `clock`, within a cycle of them.
    async def source(ctx):
        cycle = 0
        while not st["measuring"]:
            await ctx.tick()
            cycle += 1
        known, tag = st["known"], 0
        st["first_offer"] = cycle
        while len(requests) < lookups:
            key = rng.choice(known) if rng.random() < hit_ratio else rng.choice(never)
            ctx.set(dut.i.payload.key, key_layout.from_bits(key))
            ctx.set(dut.i.payload.tag, tag & 0xFF)
            ctx.set(dut.i.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                requests.append((cycle, key, tag & 0xFF))
                tag += 1
            cycle += 1
        ctx.set(dut.i.valid, 0)
        st["last_offer"] = cycle
        while len(results) < lookups:
            await ctx.tick()
        st["done"] = True

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = 0
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                results.append((cycle, payload.hit, payload.action, payload.index,
                                payload.tag))
            cycle += 1

    # Fill: about 60 cycles per insertion; lookups: one per cycle, plus the last update.
    simulate(dut, [host, source], background=[clock.run, sink],
             max_cycles=200 * entries + 2 * lookups + 50_000)

    bad = lookup_mismatches(requests, results, st["initial"], history)
    window = [op for op in st["ops"] if op[2] <= st["last_offer"]]
    updates = [op for op in window if op[0] != "full"]
    span = st["last_offer"] - st["first_offer"]
    latencies = [res[0] - req[0] for req, res in zip(requests, results, strict=True)]
    count = {name: sum(op[0] == kind for op in updates)
             for kind, name in (("insert", "inserts"), ("modify", "modifies"),
                                ("delete", "deletes"))}
    return {
        "entries": entries,
        "load_pct": round(100 * st["load"], 1),
        "lookups": len(requests),
        "offered_cycles": span,
        "lookups_per_cycle": round(len(requests) / span, 4),
        "latency_min": min(latencies),
        "latency_max": max(latencies),
        "hit_pct": round(100 * sum(r[1] for r in results) / len(results), 1),
        "host_updates": len(updates),
        **count,
        "updates_per_1000_cycles": round(1000 * len(updates) / span, 2),
        "cuckoo_moves": sum(op[3] for op in updates),
        "bus_accesses_per_update": round(sum(op[4] for op in updates) / max(len(updates), 1),
                                         1),
        "fill_cycles": st["fill_cycles"],
        "fill_moves": st["fill_moves"],
        "full_rejects": st["full"],
        "mismatches": len(bad),
        "ok": not bad,
    }


def flow_table_rows(quick):
    """One row: the flow table under lookups and host updates (:func:`measure_flow_table`)."""
    entries, lookups = (256, 3000) if quick else (1024, 20_000)
    row = measure_flow_table(entries, lookups)
    progress(f"flow table, {entries} entries: {row['lookups_per_cycle']} lookups per cycle, "
             f"{row['updates_per_1000_cycles']} updates per 1000 cycles, "
             f"{row['mismatches']} mismatches")
    return [row]


# ---------------------------------------------------------------------------------------------
# Section: ACL, RSS and meters on their own


async def _wait_clear(ctx, bus, register, limit=200):
    from amnic.sim.csr_bus import read_register

    for _ in range(limit):
        if await read_register(ctx, bus, register) == 0:
            return
    raise TimeoutError(f"{register.name} stayed busy")


def measure_acl(rules=64, requests=2000, *, installed=32, seed=2):
    """Back-to-back lookups through an :class:`~amnic.flow.acl.Acl` with ``installed`` rules
    written over the register bus; about half the keys are built to match a rule. Results
    are compared with :class:`amnic.sim.acl_model.AclModel`."""
    from amnic.flow.acl import KEY_WORDS, REGISTERS, Acl, AclVerdict, acl_action_value
    from amnic.flow.key import FLOW_KEY_BITS, FlowKey
    from amnic.sim.acl_model import ALLOW, DENY, AclModel, AclRule
    from amnic.sim.csr_bus import write_register

    rng = random.Random(seed)
    fields = {name: f for name, f in FlowKey.as_shape()}
    every = (1 << FLOW_KEY_BITS) - 1

    def random_rule():
        mask = 0
        for name in rng.sample(sorted(fields), rng.randint(1, 3)):
            f = fields[name]
            plen = rng.randint(f.width // 2 + 1, f.width)
            mask |= (((1 << plen) - 1) << (f.width - plen)) << f.offset  # a prefix
        return AclRule(_random_flow_key(rng), mask, rng.choice([ALLOW, DENY]),
                       rng.randrange(4096), rng.randint(0, 4096))

    model = AclModel(rules)
    slots = rng.sample(range(rules), installed)
    for slot in slots:
        model.write(slot, random_rule())
    keys = []
    for _ in range(requests):
        key = _random_flow_key(rng)
        if rng.random() < 0.5:
            rule = model.rules[rng.choice(slots)]
            key = (rule.value & rule.mask) | (key & ~rule.mask & every)
        keys.append(key)

    dut = Acl(rules)

    async def setup(ctx):
        bus = dut.bus
        for slot in slots:
            rule = model.rules[slot]
            await write_register(ctx, bus, REGISTERS["index"], slot)
            for w in range(KEY_WORDS):
                await write_register(ctx, bus, REGISTERS[f"value_{w}"],
                                     rule.value >> (32 * w) & 0xFFFF_FFFF)
                await write_register(ctx, bus, REGISTERS[f"mask_{w}"],
                                     rule.mask >> (32 * w) & 0xFFFF_FFFF)
            await write_register(ctx, bus, REGISTERS["action"], acl_action_value(
                rule.verdict, rule.queue_first, rule.queue_count))
            await write_register(ctx, bus, REGISTERS["command"], 1)
            await _wait_clear(ctx, bus, REGISTERS["command"])

    layout = FlowKey.as_shape()
    reqs = [{"key": layout.from_bits(k), "tag": n & 0xFFFF} for n, k in enumerate(keys)]
    ins, outs = _back_to_back(dut, reqs, setup=setup)
    wrong = 0
    for n, ((_, got), key) in enumerate(zip(outs, keys, strict=True)):
        want = model.lookup(key)
        seen = (got.hit, got.index, AclVerdict(got.action.verdict).value,
                got.action.queue_first, got.action.queue_count, got.tag)
        wrong += seen != (int(want.hit), want.index, want.verdict, want.queue_first,
                          want.queue_count, n & 0xFFFF)
    hits = sum(got.hit for _, got in outs)
    return {"block": "ACL", "size": f"{rules} rules ({installed} installed)",
            **_rate_and_latency(ins, outs), "hit_pct": round(100 * hits / len(outs), 1),
            "mismatches": wrong, "ok": wrong == 0}


def measure_rss(requests=2000, *, seed=3):
    """Back-to-back requests through :class:`~amnic.flow.rss.Rss` (128-entry table written
    over the bus, every hash type enabled), answers compared with
    :class:`amnic.sim.rss_model.RssModel`."""
    from amnic.flow.rss import REGISTERS, Rss
    from amnic.sim.csr_bus import write_register
    from amnic.sim.rss_model import MS_KEY, HashTypes, RssModel

    rng = random.Random(seed)
    dut = Rss()
    table = [rng.randrange(1 << dut.queue_bits) for _ in range(dut.entries)]
    model = RssModel(key=MS_KEY, table=table, types=HashTypes())
    reqs = []
    for n in range(requests):
        ipv6 = rng.random() < 0.4
        bits = 128 if ipv6 else 32
        reqs.append({"ipv6": int(ipv6), "protocol": rng.choice([6, 17, 6, 17, 1, 47]),
                     "src_addr": rng.getrandbits(bits), "dst_addr": rng.getrandbits(bits),
                     "src_port": rng.getrandbits(16), "dst_port": rng.getrandbits(16),
                     "l4_valid": int(rng.random() < 0.9), "tag": n & 0xFF})

    async def setup(ctx):
        bus = dut.bus
        control = 0
        for field in REGISTERS["control"].fields:
            control |= 1 << field.offset  # RSS on, every hash type
        await write_register(ctx, bus, REGISTERS["control"], control)
        for index, queue in enumerate(table):
            await write_register(ctx, bus, REGISTERS["reta_index"], index)
            await write_register(ctx, bus, REGISTERS["reta_data"], queue)
            await write_register(ctx, bus, REGISTERS["reta_cmd"], 1)
            await _wait_clear(ctx, bus, REGISTERS["reta_cmd"])

    ins, outs = _back_to_back(dut, reqs, setup=setup)
    wrong = 0
    for (_, got), req in zip(outs, reqs, strict=True):
        fields = {k: v for k, v in req.items() if k != "tag"}
        want = model.process(**fields)
        wrong += (got.hash, got.queue, got.hashed, got.tag) != (*want, req["tag"])
    return {"block": "RSS", "size": f"{dut.entries}-entry table", **_rate_and_latency(ins, outs),
            "hit_pct": None, "mismatches": wrong, "ok": wrong == 0}


def measure_meters(meters=256, requests=2000, *, configured=16, seed=4):
    """Back-to-back requests through a :class:`~amnic.flow.meter.MeterBank` with
    ``configured`` meters set up over the bus (rates and bursts low enough that some packets
    are red, half in DROP mode); the others stay disabled. Results are compared with
    :class:`amnic.sim.acl_model.MeterModel`, fed the ``now`` of each request's accept cycle."""
    from amnic.flow.meter import REGISTERS, MeterBank
    from amnic.sim.acl_model import MeterModel, rate_value
    from amnic.sim.csr_bus import write_register

    rng = random.Random(seed)
    dut = MeterBank(meters)
    model = MeterModel(meters)
    setups = []
    for index in rng.sample(range(meters), configured):
        cfg = (index, rate_value(rng.uniform(0.5, 8)), rng.randrange(1500, 6000),
               rng.randrange(2))
        setups.append(cfg)
        model.configure(*cfg)
    targets = [c[0] for c in setups]
    reqs = [{"index": rng.choice(targets) if rng.random() < 0.8 else rng.randrange(meters),
             "length": rng.randrange(64, 1519), "tag": n & 0xFFFF, "bypass": 0}
            for n in range(requests)]

    async def setup(ctx):
        bus = dut.bus
        for index, rate, burst, mode in setups:
            await write_register(ctx, bus, REGISTERS["index"], index)
            await write_register(ctx, bus, REGISTERS["rate"], rate)
            await write_register(ctx, bus, REGISTERS["burst"], burst)
            await write_register(ctx, bus, REGISTERS["control"], 1 | mode << 1)
            await write_register(ctx, bus, REGISTERS["command"], 1)
            await _wait_clear(ctx, bus, REGISTERS["command"])
        for _ in range(4):  # the last configuration applies from the second cycle on
            await ctx.tick()

    ins, outs = _back_to_back(dut, reqs, setup=setup, extra=(dut.now,))
    wrong = red = 0
    for (_, req, now), (_, got) in zip(ins, outs, strict=True):
        colour, action = model.police(req.index, req.length, now)
        red += colour
        wrong += (got.color.value, got.action.value, got.tag) != (colour, action, req.tag)
    return {"block": "meters", "size": f"{meters} meters ({configured} configured)",
            **_rate_and_latency(ins, outs), "hit_pct": None, "red_pct":
            round(100 * red / len(outs), 1), "mismatches": wrong, "ok": wrong == 0}


def block_rows(quick):
    """One row per block: ACL (64 rules), RSS, meters (256)."""
    n = 300 if quick else 3000
    rows = []
    for measure in (lambda: measure_acl(64, n), lambda: measure_rss(n),
                    lambda: measure_meters(256, n)):
        rows.append(measure())
        r = rows[-1]
        progress(f"{r['block']}: {r['requests_per_cycle']} requests per cycle, latency "
                 f"{r['latency_min']}-{r['latency_max']}, {r['mismatches']} mismatches")
    return rows


# ---------------------------------------------------------------------------------------------
# Synthesis


_RESOURCE_KEYS = ("LUT", "FF", "CARRY", "MUXF", "BRAM36", "BRAM18", "URAM", "LUTRAM", "SRL",
                  "DSP")


def synthesize_component(component, *, timeout=SYNTH_TIMEOUT):
    """Resource counts of an Amaranth component from Yosys (``synth_xilinx -family xcup``).

    Returns ``{LUT, FF, CARRY, MUXF, BRAM36, BRAM18, URAM, LUTRAM, SRL, DSP, BRAM36_eq,
    synthesis_s}``; ``BRAM36_eq`` counts a RAMB18 as half a RAMB36. Raises
    :class:`amnic.bench.synth.ToolError` on failure or timeout.
    """
    from amnic.bench.synth import synthesize
    from amnic.cli.export import export_verilog

    start = time.monotonic()
    verilog, _ = export_verilog(component, "top")
    stats = synthesize(verilog, "top", timeout=timeout)
    out = {k: stats.get(k, 0) for k in _RESOURCE_KEYS}
    out["BRAM36_eq"] = out["BRAM36"] + out["BRAM18"] / 2
    out["synthesis_s"] = round(time.monotonic() - start, 1)
    return out


def _entry_bits(action_width):
    """Bits one flow-table entry stores: slot ``{valid, key, action}`` and counters."""
    from amnic.flow.table import FlowCountersLayout, FlowSlotLayout

    return FlowSlotLayout(action_width).size + FlowCountersLayout().size


#: Flow-table syntheses of this run, ``{entries: stats or ToolError}``, so the capacity and the
#: resources sections share the 65536-entry one (kept in memory only).
_flow_table_runs = {}


def _flow_table_stats(entries, timeout=CAPACITY_TIMEOUT):
    from amnic.bench.synth import ToolError
    from amnic.flow.action import ACTION_BITS
    from amnic.flow.table import FlowTable

    if entries not in _flow_table_runs:
        try:
            stats = synthesize_component(FlowTable(entries, ACTION_BITS), timeout=timeout)
        except ToolError as e:
            stats = e
        _flow_table_runs[entries] = stats
    stats = _flow_table_runs[entries]
    if isinstance(stats, Exception):
        raise stats
    return stats


def flow_table_capacity(entries, *, timeout=CAPACITY_TIMEOUT):
    """Synthesize a :class:`~amnic.flow.table.FlowTable` of ``entries`` slots with the
    pipeline's action width; return a capacity row (resources, bits per entry, entries per
    RAMB36)."""
    from amnic.flow.action import ACTION_BITS

    return _capacity_row(entries, _flow_table_stats(entries, timeout), ACTION_BITS,
                         "measured")


def _capacity_row(entries, stats, action_width, source):
    bram = stats["BRAM36_eq"]
    ram_bits = bram * BRAM36_BITS + stats["URAM"] * 288 * 1024
    return {
        "entries": entries, "source": source, "BRAM36_eq": bram, "URAM": stats["URAM"],
        "LUT": stats["LUT"], "FF": stats["FF"], "LUTRAM": stats["LUTRAM"],
        "entry_bits": _entry_bits(action_width),
        "ram_bits_per_entry": round(ram_bits / entries, 1),
        "entries_per_BRAM36": round(entries / bram, 1) if bram else None,
        "synthesis_s": stats.get("synthesis_s"),
    }


def extrapolate_capacity(row, entries):
    """A capacity row for ``entries`` scaled from a measured ``row``: block RAM in proportion
    to the entry count (same RAM bits per entry, rounded up to whole RAMB36); LUT and FF are
    not extrapolated (``None``)."""
    scale = entries / row["entries"]
    bram = -(-row["BRAM36_eq"] * scale // 1)
    uram = -(-row["URAM"] * scale // 1)
    return {**row, "entries": entries, "source": f"extrapolated from {row['entries']}",
            "BRAM36_eq": bram, "URAM": uram, "LUT": None, "FF": None, "LUTRAM": None,
            "entries_per_BRAM36": round(entries / bram, 1) if bram else None,
            "synthesis_s": None}


def capacity_rows(quick):
    """Flow-table block RAM for 1K, 4K, 16K and 64K entries (quick: 256); a size whose
    synthesis fails or exceeds :data:`CAPACITY_TIMEOUT` is extrapolated from the largest one
    measured (the error is in the row's ``note``)."""
    from amnic.bench.synth import ToolError

    rows = []
    for entries in QUICK_CAPACITY if quick else FULL_CAPACITY:
        try:
            rows.append(flow_table_capacity(entries))
        except ToolError as e:
            if not rows:
                raise
            progress(f"flow table with {entries} entries: {e}; extrapolating")
            measured = [r for r in rows if r["source"] == "measured"][-1]
            rows.append({**extrapolate_capacity(measured, entries), "note": str(e)})
        r = rows[-1]
        progress(f"flow table, {entries} entries: {r['BRAM36_eq']} RAMB36, {r['URAM']} URAM "
                 f"({r['source']}, {r['synthesis_s']} s)")
    return rows


def _designs(quick):
    """The synthesized blocks: label -> component factory, or an entry count for a flow
    table with the pipeline's action width."""
    from amnic.flow.acl import Acl
    from amnic.flow.action import ACTION_BITS
    from amnic.flow.meter import MeterBank
    from amnic.flow.rss import Rss
    from amnic.flow.vxlan import ENCAP_MAX_BYTES, EncapHeaderBuilder
    from amnic.net.checksum import ChecksumInserter
    from amnic.net.editor import PacketEditor
    from amnic.net.parser import PacketParser

    def editor(width):  # as the pipeline instantiates it
        return PacketEditor(width, 1, max_insert=ENCAP_MAX_BYTES, max_remove=255, overwrites=2)

    designs = {
        "PacketParser, 64 bit": lambda: PacketParser(64),
        "PacketParser, 512 bit": lambda: PacketParser(512),
        "Acl, 64 rules": lambda: Acl(64),
        "Acl, 256 rules": lambda: Acl(256),
        "Rss, 128 entries": lambda: Rss(),
        "MeterBank, 256 meters": lambda: MeterBank(256),
        f"FlowTable, 65536 entries, {ACTION_BITS}-bit action": 65536,
        "EncapHeaderBuilder": lambda: EncapHeaderBuilder(),
        "PacketEditor, 64 bit": lambda: editor(64),
        "PacketEditor, 512 bit": lambda: editor(512),
        "ChecksumInserter, 64 bit": lambda: ChecksumInserter(64),
        "ChecksumInserter, 512 bit": lambda: ChecksumInserter(512),
    }
    if quick:
        designs = {"EncapHeaderBuilder": designs["EncapHeaderBuilder"]}
    return designs


def resource_rows(quick):
    """Resources of each block (quick: one small block). A flow table (an entry count in
    :func:`_designs`) reuses the capacity section's synthesis of that size. A synthesis that
    times out gives a row without figures and a ``note``; other tool errors fail the section.
    """
    from amnic.bench.synth import ToolError

    rows = []
    for label, design in _designs(quick).items():
        try:
            if isinstance(design, int):
                stats = _flow_table_stats(design)
            else:
                stats = synthesize_component(design())
        except ToolError as e:
            if "timed out" not in str(e):
                raise
            rows.append({"design": label, "note": str(e)})
            progress(f"{label}: {e}")
            continue
        rows.append({"design": label, **stats})
        progress(f"synthesized {label}: {stats['LUT']} LUT, {stats['FF']} FF, "
                 f"{stats['synthesis_s']} s")
    return rows


# ---------------------------------------------------------------------------------------------
# Tables


_text = text_column


_RESOURCE_COLUMNS = (Column("LUT", "LUT"), Column("FF", "FF"), Column("CARRY", "CARRY8"),
                     Column("BRAM36_eq", "RAMB36 (eq.)", "g"), Column("URAM", "URAM"),
                     Column("LUTRAM", "LUTRAM"), Column("SRL", "SRL"), Column("DSP", "DSP"),
                     Column("synthesis_s", "Yosys s", "g"))

#: The sections, in run order. The pipeline section comes first; a further section is a
#: ``Section`` whose ``rows(quick)`` returns row dicts (with ``ok`` where a result is checked).
SECTIONS = (
    Section("pipeline",
            "Match-action pipeline (table 90 % full, host updates running)",
            pipeline_rows,
            (Column("width", "width"), Column("frame_bytes", "frame (B)"),
             Column("packets_per_cycle", "packets / cycle"),
             Column("line_rate_pct", "% of line rate"),
             Column("latency_cycles_min", "latency min"),
             Column("latency_cycles_max", "latency max"),
             Column("table_entries", "table entries"),
             Column("table_load_pct", "load %"), Column("host_updates", "host updates"),
             Column("ok", "output = model", align=":---:"),
             _text("stage_latency", "latency per block (cycles)")),
            "Latency: a packet's last input beat to its first output beat, in cycles."),
    Section("flow_table",
            "Flow table: lookups under host updates (cycle-exact simulation)",
            flow_table_rows,
            (Column("entries", "entries (simulated)"), Column("load_pct", "load %"),
             Column("lookups", "lookups"), Column("lookups_per_cycle", "lookups / cycle"),
             Column("latency_min", "latency min"), Column("latency_max", "latency max"),
             Column("hit_pct", "hits %"),
             Column("updates_per_1000_cycles", "host updates / 1000 cycles"),
             Column("inserts", "inserts"), Column("modifies", "modifies"),
             Column("deletes", "deletes"), Column("cuckoo_moves", "cuckoo moves"),
             Column("bus_accesses_per_update", "bus accesses / update"),
             Column("mismatches", "mismatches"),
             Column("ok", "results = shadow", align=":---:")),
            "A small table in simulation (the hardware default is 65536 entries). Latency: "
            "request handshake to result handshake with the result always taken. Host "
            "updates: inserts (with cuckoo moves), modifies and deletes through the register "
            "bus, one after another, while a lookup is offered in every cycle."),
    Section("blocks",
            "ACL, RSS and meters: throughput and latency (cycle-exact simulation)",
            block_rows,
            (_text("block", "block"), _text("size", "size"), Column("requests", "requests"),
             Column("requests_per_cycle", "requests / cycle"),
             Column("latency_min", "latency min"), Column("latency_max", "latency max"),
             Column("mismatches", "mismatches"),
             Column("ok", "results = model", align=":---:")),
            "Requests offered in every cycle, output always ready; latency from the request "
            "handshake to the result handshake."),
    Section("capacity",
            "Flow-table capacity against block RAM (Yosys synth_xilinx -family xcup)",
            capacity_rows,
            (Column("entries", "entries"), _text("source", "figures"),
             Column("BRAM36_eq", "RAMB36 (eq.)", "g"), Column("URAM", "URAM"),
             Column("LUT", "LUT"), Column("FF", "FF"),
             Column("entry_bits", "bits / entry (stored)"),
             Column("ram_bits_per_entry", "RAM bits / entry (used)", "g"),
             Column("entries_per_BRAM36", "entries / RAMB36", "g"),
             Column("synthesis_s", "Yosys s", "g"), _text("note", "note")),
            "Bits per entry (stored): slot (valid, 341-bit key, action) plus counters (packets, "
            "bytes, last hit). RAM bits per entry (used): RAMB36 x 36 Kb (+ URAM x 288 Kb) / "
            "entries. RAMB18 count as half a RAMB36.", full_only=True),
    Section("resources",
            "Resources (pyosys, synth_xilinx -family xcup -flatten -noiopad)",
            resource_rows,
            (_text("design", "design"), *_RESOURCE_COLUMNS, _text("note", "note")),
            "Out-of-context synthesis of each block with its register bus as plain ports."),
)


def main(argv=None):
    _flow_table_runs.clear()
    return run_sections("flow", __doc__, SECTIONS, argv, progress=progress,
                        quick_help="small simulations, two small syntheses (about two minutes)")


if __name__ == "__main__":
    sys.exit(main())
