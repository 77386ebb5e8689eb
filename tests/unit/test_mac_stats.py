"""MacStatistics against a Python model of every counter, read back over the register bus."""

import collections
import random

import pytest
from amaranth.sim import Simulator

from amnic.mac.stats import COUNTER_BANKS, REGISTERS, MacStatistics
from amnic.mac.status import FlowControlKind
from amnic.sim.csr_bus import bus_read, bus_write, read_register

MAX_FRAME = 9600  # the receive maximum the generated traffic assumes
# RMON size bins (RFC 2819), the last open-ended; below 64 octets no bin counts a frame.
BINS = (("64", 64, 64), ("65_127", 65, 127), ("128_255", 128, 255), ("256_511", 256, 511),
        ("512_1023", 512, 1023), ("1024_1518", 1024, 1518), ("1519_max", 1519, 1 << 16))
PORTS = ("rx_status", "tx_status", "rx_flow", "tx_flow")


# -- reference model ------------------------------------------------------------------------------

def count_rx(c, st):
    n = st["length"]
    if st["good"]:
        c["rx_frames_good"] += 1
        c["rx_octets_good"] += n
        c["rx_broadcast"] += st["broadcast"]
        c["rx_multicast"] += st["multicast"]
        c["rx_vlan"] += st["vlan"]
    else:
        c["rx_frames_bad"] += 1
        c["rx_octets_bad"] += n
    c["rx_fcs_errors"] += st["fcs_error"]
    c["rx_framing_errors"] += st["framing_error"]
    c["rx_runts"] += st["runt"]
    c["rx_oversize"] += st["oversize"]
    for name, lo, hi in BINS:
        c[f"rx_frames_{name}"] += lo <= n <= hi


def count_tx(c, st):
    n = st["length"]
    if st["good"]:
        c["tx_frames_good"] += 1
        c["tx_octets_good"] += n
        c["tx_broadcast"] += st["broadcast"]
        c["tx_multicast"] += st["multicast"]
        c["tx_vlan"] += st["vlan"]
    else:
        c["tx_frames_bad"] += 1
        c["tx_octets_bad"] += n
    c["tx_underruns"] += st["underrun"]
    c["tx_user_bad"] += st["bad"]
    c["tx_undersize"] += n < 64
    for name, lo, hi in BINS:
        c[f"tx_frames_{name}"] += lo <= n <= hi


def count_flow(c, direction, ev):
    if ev["kind"] == FlowControlKind.PAUSE:
        c[f"{direction}_pause"] += 1
    else:
        for p in range(8):
            c[f"{direction}_pfc_{p}"] += ev["priorities"] >> p & 1


MODEL = {
    "rx_status": count_rx,
    "tx_status": count_tx,
    "rx_flow": lambda c, ev: count_flow(c, "rx", ev),
    "tx_flow": lambda c, ev: count_flow(c, "tx", ev),
}

COUNTERS = [r for r in REGISTERS if r.width == 64]


def test_model_and_register_map_name_the_same_counters():
    c = collections.Counter()
    rng = random.Random(0)
    for _ in range(3000):
        for port in PORTS:
            MODEL[port](c, GENERATORS[port](rng))
    assert set(c) == {r.name for r in COUNTERS}


# -- traffic ----------------------------------------------------------------------------------

def _destination(rng, st):
    kind = rng.choice(["unicast", "unicast", "broadcast", "multicast"])
    st["broadcast"] = int(kind == "broadcast")
    st["multicast"] = int(kind == "multicast")
    st["vlan"] = int(rng.random() < 0.3)
    return st


def random_rx(rng):
    n = rng.choice([rng.randint(1, 63), 64, rng.randint(65, 127), rng.randint(128, 1518), 1518,
                    1519, rng.randint(1519, MAX_FRAME), MAX_FRAME + 1, 0xFFFF])
    st = {
        "length": n,
        "runt": int(n < 64),
        "oversize": int(n > MAX_FRAME),
        "fcs_error": int(rng.random() < 0.15),
        "framing_error": int(rng.random() < 0.05),
    }
    st["good"] = int(not (st["runt"] | st["oversize"] | st["fcs_error"] | st["framing_error"]))
    return _destination(rng, st)


def random_tx(rng):
    n = rng.choice([64, rng.randint(60, 63), rng.randint(65, 1518), rng.randint(1519, MAX_FRAME)])
    st = {"length": n, "underrun": int(rng.random() < 0.05), "bad": int(rng.random() < 0.1)}
    st["good"] = int(not (st["underrun"] | st["bad"]))
    return _destination(rng, st)


def random_flow(rng):
    if rng.random() < 0.4:
        return {"kind": FlowControlKind.PAUSE, "priorities": 0xFF}
    return {"kind": FlowControlKind.PFC, "priorities": rng.getrandbits(8)}


GENERATORS = {"rx_status": random_rx, "tx_status": random_tx, "rx_flow": random_flow,
              "tx_flow": random_flow}


def worst_rx(rng):
    """Receive records that bump the most counters (6 or 7 each)."""
    if rng.random() < 0.5:  # every flag at once, long enough to land in a bin: 7 increments
        return {"length": rng.randint(64, 0xFFFF), "good": 0, "fcs_error": 1, "framing_error": 1,
                "runt": 1, "oversize": 1, "broadcast": 0, "multicast": 1, "vlan": 1}
    st = random_rx(rng)
    if rng.random() < 0.5:  # a good minimum-size frame, tagged and multicast: 5 increments
        st.update(length=64, good=1, fcs_error=0, framing_error=0, runt=0, oversize=0,
                  multicast=1, broadcast=0, vlan=1)
    return st


def worst_tx(rng):
    if rng.random() < 0.6:  # bad, both reasons, in a bin: 5 increments
        return {"length": rng.randint(64, 9000), "good": 0, "underrun": 1, "bad": 1,
                "broadcast": 1, "multicast": 0, "vlan": 1}
    return {"length": 64, "good": 1, "underrun": 0, "bad": 0, "broadcast": 1, "multicast": 0,
            "vlan": 1}


def worst_flow(rng):
    """PFC naming every priority: 8 increments."""
    if rng.random() < 0.9:
        return {"kind": FlowControlKind.PFC, "priorities": 0xFF}
    return random_flow(rng)


# -- testbench helpers --------------------------------------------------------------------------

def _run(dut, *testbenches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


async def drive(ctx, dut, schedule, model):
    """Play ``schedule`` (a list, one dict ``{port: record}`` per cycle) into ``dut``."""
    for cycle in schedule:
        for port in PORTS:
            stream = getattr(dut, port)
            if port in cycle:
                ctx.set(stream.payload, cycle[port])
                ctx.set(stream.valid, 1)
                if model is not None:
                    MODEL[port](model, cycle[port])
            else:
                ctx.set(stream.valid, 0)
        await ctx.tick()
    for port in PORTS:
        ctx.set(getattr(dut, port).valid, 0)


async def settle(ctx, dut, limit=2000):
    for _ in range(limit):
        if all(ctx.get(bank.idle) for bank in dut.banks):
            return
        await ctx.tick()
    raise TimeoutError("statistics never went idle")


async def read_counters(ctx, dut):
    return {r.name: await read_register(ctx, dut.bus, r) for r in COUNTERS}


async def read_lost(ctx, dut):
    return {port: await read_register(ctx, dut.bus, REGISTERS[f"{port}_lost"]) for port in PORTS}


def expected(model):
    return {r.name: model[r.name] % (1 << 64) for r in COUNTERS}


# -- tests --------------------------------------------------------------------------------------

def test_every_word_of_the_window():
    """Header values come from the description; unmapped words, and only those, answer with
    an error; writes to read-only words are ignored without error."""
    dut = MacStatistics()

    async def testbench(ctx):
        for offset in range(0, REGISTERS.size, 4):
            rdata, error = await bus_read(ctx, dut.bus, offset)
            hit = REGISTERS.word_at(offset)
            assert error == (hit is None), hex(offset)
            if hit is None:
                assert rdata == 0
            else:
                register, half = hit
                assert rdata == register.init >> (32 * half) & 0xFFFF_FFFF, register.name
        await drive(ctx, dut, [{"rx_status": random_rx(random.Random(5)) | {"good": 1}}], None)
        await settle(ctx, dut)
        before = await read_counters(ctx, dut)
        for name in ("type_id", "version", "size", "rx_status_lost", "rx_frames_good"):
            for offset in REGISTERS[name].words:
                assert await bus_write(ctx, dut.bus, offset, 0xFFFF_FFFF) == 0
        assert await bus_write(ctx, dut.bus, 0x0C, 0) == 1
        assert await read_register(ctx, dut.bus, REGISTERS["type_id"]) == REGISTERS.type_id
        assert await read_register(ctx, dut.bus, REGISTERS["rx_status_lost"]) == 0
        assert await read_counters(ctx, dut) == before
        assert before["rx_frames_good"] == 1

    _run(dut, testbench)


def test_random_traffic():
    rng = random.Random(11)
    dut = MacStatistics()
    model = collections.Counter()
    schedule = []
    for _ in range(6000):
        cycle = {}
        for port, chance in (("rx_status", 0.1), ("tx_status", 0.1), ("rx_flow", 0.02),
                             ("tx_flow", 0.02)):
            if rng.random() < chance:
                cycle[port] = GENERATORS[port](rng)
        schedule.append(cycle)
    assert sum(len(c) for c in schedule) > 1000

    async def testbench(ctx):
        await drive(ctx, dut, schedule, model)
        await settle(ctx, dut)
        assert await read_lost(ctx, dut) == dict.fromkeys(PORTS, 0)
        assert await read_counters(ctx, dut) == expected(model)

    _run(dut, testbench)


@pytest.mark.parametrize("phase", [(0, 0, 0, 0), (0, 3, 5, 7)], ids=["aligned", "staggered"])
def test_sustained_minimum_frame_rate(phase):
    """One record on every input every 8 cycles (64-byte frames at 10 Gb/s on a 64-bit
    datapath), each bumping as many counters as a record can, for a long burst: nothing is
    lost and every counter is exact."""
    rng = random.Random(sum(phase) + 23)
    dut = MacStatistics(fifo_depth=4)
    model = collections.Counter()
    events = 1200
    schedule = [{} for _ in range(8 * events + 8)]
    makers = {"rx_status": worst_rx, "tx_status": worst_tx, "rx_flow": worst_flow,
              "tx_flow": worst_flow}
    for port, offset in zip(PORTS, phase, strict=True):
        for k in range(events):
            schedule[8 * k + offset][port] = makers[port](rng)

    async def testbench(ctx):
        await drive(ctx, dut, schedule, model)
        await settle(ctx, dut)
        assert await read_lost(ctx, dut) == dict.fromkeys(PORTS, 0)
        got = await read_counters(ctx, dut)
        assert got == expected(model)
        assert got["rx_frames_good"] + got["rx_frames_bad"] == events
        assert got["tx_frames_good"] + got["tx_frames_bad"] == events

    _run(dut, testbench)


def test_overload_is_counted_as_lost():
    """Records every cycle overrun the engines; each one is either counted or lost."""
    dut = MacStatistics(fifo_depth=4)
    rx = worst_rx(random.Random(1)) | {"length": 100, "runt": 0}
    flow = {"kind": FlowControlKind.PFC, "priorities": 0b1010_0110}
    sent = 400
    schedule = [{"rx_status": rx, "tx_flow": flow} for _ in range(sent)]

    async def testbench(ctx):
        await drive(ctx, dut, schedule, None)
        await settle(ctx, dut)
        lost = await read_lost(ctx, dut)
        assert lost["tx_status"] == lost["rx_flow"] == 0
        assert 0 < lost["rx_status"] < sent and 0 < lost["tx_flow"] < sent
        model = collections.Counter()
        for _ in range(sent - lost["rx_status"]):
            count_rx(model, rx)
        for _ in range(sent - lost["tx_flow"]):
            count_flow(model, "tx", flow)
        assert await read_counters(ctx, dut) == expected(model)

    _run(dut, testbench)


def _bank_and_index(name):
    for b, spec in enumerate(COUNTER_BANKS):
        for j, counter in enumerate(spec.counters):
            if counter.name == name:
                return b, j
    raise KeyError(name)


def test_64_bit_reads_are_atomic_and_counters_wrap():
    dut = MacStatistics()
    octets = REGISTERS["rx_octets_good"]
    frames = REGISTERS["rx_frames_good"]
    bad = REGISTERS["tx_frames_bad"]
    good_64 = {"length": 64, "good": 1}

    async def testbench(ctx):
        b, j = _bank_and_index("rx_octets_good")
        ctx.set(dut.banks[b].storage[j], 0x1_FFFF_FFF0)
        b, j = _bank_and_index("tx_frames_bad")
        ctx.set(dut.banks[b].storage[j], (1 << 64) - 1)
        lo, _ = await bus_read(ctx, dut.bus, octets.words[0])
        assert lo == 0xFFFF_FFF0
        await drive(ctx, dut, [{"rx_status": good_64}], None)
        await settle(ctx, dut)
        # The counter is now 0x2_0000_0030, but the high word latched with the low one holds.
        assert await bus_read(ctx, dut.bus, octets.words[1]) == (1, 0)
        assert await read_register(ctx, dut.bus, octets) == 0x2_0000_0030
        # The holding register belongs to the block: the latest low-word read sets it.
        await bus_read(ctx, dut.bus, octets.words[0])
        await bus_read(ctx, dut.bus, frames.words[0])
        assert await bus_read(ctx, dut.bus, octets.words[1]) == (0, 0)
        # Wrap at 2**64.
        await drive(ctx, dut, [{"tx_status": {"length": 80, "good": 0, "bad": 1}}, {}], None)
        await settle(ctx, dut)
        assert await read_register(ctx, dut.bus, bad) == 0

    _run(dut, testbench)


def test_clear_all():
    rng = random.Random(7)
    dut = MacStatistics(fifo_depth=4)
    control = REGISTERS["control"]
    clear_bit = {f.name: f for f in control.fields}["clear"].mask

    async def testbench(ctx):
        # Count traffic, including an overload so the lost counts are non-zero.
        burst = [{port: GENERATORS[port](rng) for port in PORTS} for _ in range(60)]
        await drive(ctx, dut, burst, None)
        await settle(ctx, dut)
        assert all((await read_lost(ctx, dut)).values())
        assert any((await read_counters(ctx, dut)).values())
        assert await bus_write(ctx, dut.bus, control.offset, clear_bit) == 0
        # Traffic arriving while the banks clear is counted after the clear.
        model = collections.Counter()
        during = [{port: GENERATORS[port](rng)} for port in PORTS]
        await drive(ctx, dut, during, model)
        busy, _ = await bus_read(ctx, dut.bus, control.offset)
        assert busy & clear_bit
        for _ in range(100):
            busy, _ = await bus_read(ctx, dut.bus, control.offset)
            if not busy & clear_bit:
                break
        assert not busy & clear_bit
        await settle(ctx, dut)
        assert await read_lost(ctx, dut) == dict.fromkeys(PORTS, 0)
        assert await read_counters(ctx, dut) == expected(model)

    _run(dut, testbench)


def test_write_without_clear_bit_or_byte_enable_does_nothing():
    dut = MacStatistics()
    control = REGISTERS["control"]

    async def testbench(ctx):
        await drive(ctx, dut, [{"rx_status": {"length": 70, "good": 1}}], None)
        await settle(ctx, dut)
        assert await bus_write(ctx, dut.bus, control.offset, 0xFFFF_FFFE) == 0
        assert await bus_write(ctx, dut.bus, control.offset, 0x1, wstrb=0b1110) == 0
        assert (await bus_read(ctx, dut.bus, control.offset))[0] == 0
        await ctx.tick().repeat(80)
        assert await read_register(ctx, dut.bus, REGISTERS["rx_frames_65_127"]) == 1

    _run(dut, testbench)
