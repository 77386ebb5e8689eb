"""CounterBank: RAM counters with a serialising read-modify-write engine, against a dict model."""

import gc
import random
import warnings

import pytest
from amaranth.sim import Simulator

from amnic.csr import CounterBank


def _run(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


async def _send(ctx, dut, mask, amount):
    ctx.set(dut.event.payload, {"mask": mask, "amount": amount})
    ctx.set(dut.event.valid, 1)
    await ctx.tick()
    ctx.set(dut.event.valid, 0)


async def _wait_idle(ctx, dut, limit=10_000):
    for _ in range(limit):
        if ctx.get(dut.idle):
            return
        await ctx.tick()
    raise TimeoutError("counter bank never went idle")


async def _read_all(ctx, dut):
    values = []
    for i in range(dut.count):
        ctx.set(dut.read_addr, i)
        values.append(ctx.get(dut.read_data))
    return values


def _apply(model, dut, mask, amount):
    for i in range(dut.count):
        if mask >> i & 1:
            step = amount if i in dut.weighted else 1
            model[i] = (model[i] + step) % (1 << dut.width)


def test_back_to_back_events_at_one_increment_per_cycle():
    """Events spaced exactly by their increment count are never lost: no bubble between
    events, and counters bumped by consecutive increments (read-after-write) stay exact."""
    rng = random.Random(1)
    dut = CounterBank(12, weighted={2, 7}, fifo_depth=2)
    model = [0] * dut.count
    events = []
    for _ in range(600):
        mask = rng.getrandbits(dut.count) if rng.random() < 0.8 else (1 << rng.randrange(12))
        events.append((mask, rng.getrandbits(16)))

    async def testbench(ctx):
        for mask, amount in events:
            await _send(ctx, dut, mask, amount)
            _apply(model, dut, mask, amount)
            # _send took one cycle; the engine needs max(k, 1) cycles for this event.
            increments = bin(mask).count("1")
            if increments > 1:
                await ctx.tick().repeat(increments - 1)
        await _wait_idle(ctx, dut)
        assert ctx.get(dut.lost) == 0
        assert await _read_all(ctx, dut) == model

    _run(dut, testbench)


def test_random_traffic_with_idle_gaps():
    rng = random.Random(2)
    dut = CounterBank(20, weighted={0, 19}, fifo_depth=8)
    model = [0] * dut.count

    async def testbench(ctx):
        for _ in range(400):
            mask = rng.getrandbits(dut.count) & rng.getrandbits(dut.count)
            amount = rng.choice([0, 1, 64, 1518, 9000, 0xFFFF, rng.getrandbits(16)])
            await _send(ctx, dut, mask, amount)
            _apply(model, dut, mask, amount)
            await ctx.tick().repeat(rng.randrange(1, 12))
        await _wait_idle(ctx, dut)
        assert ctx.get(dut.lost) == 0
        assert await _read_all(ctx, dut) == model

    _run(dut, testbench)


def test_overflow_is_counted_never_silent():
    """Identical events every cycle overrun the engine; every event is either counted or lost."""
    dut = CounterBank(6, weighted={1}, fifo_depth=4)
    mask, amount, sent = 0b111011, 100, 300

    async def testbench(ctx):
        for _ in range(sent):
            await _send(ctx, dut, mask, amount)
        await _wait_idle(ctx, dut)
        lost = ctx.get(dut.lost)
        accepted = sent - lost
        # 5 increments per event: about one event in five fits.
        assert sent // 5 <= accepted <= sent // 5 + dut.fifo_depth + 2
        model = [0] * dut.count
        for _ in range(accepted):
            _apply(model, dut, mask, amount)
        assert await _read_all(ctx, dut) == model

    _run(dut, testbench)


def test_counters_wrap():
    dut = CounterBank(3, width=8, weighted={2})
    model = [0] * dut.count

    async def testbench(ctx):
        for i in range(700):
            await _send(ctx, dut, 0b111, 97 + i % 5)
            _apply(model, dut, 0b111, 97 + i % 5)
            await ctx.tick().repeat(2)
        await _wait_idle(ctx, dut)
        assert await _read_all(ctx, dut) == model
        assert model[0] == 700 % 256

    _run(dut, testbench)


def test_preset_storage_carries_into_high_bits():
    dut = CounterBank(2, weighted={1})

    async def testbench(ctx):
        ctx.set(dut.storage[0], (1 << 64) - 2)
        ctx.set(dut.storage[1], (1 << 32) - 10)
        for _ in range(3):
            await _send(ctx, dut, 0b11, 7)
            await ctx.tick()
        await _wait_idle(ctx, dut)
        assert await _read_all(ctx, dut) == [1, (1 << 32) + 11]

    _run(dut, testbench)


def test_clear_zeroes_everything_and_keeps_later_events():
    rng = random.Random(3)
    dut = CounterBank(10, weighted={4}, fifo_depth=8)

    async def testbench(ctx):
        for _ in range(50):  # overrun it so lost is non-zero too
            await _send(ctx, dut, rng.getrandbits(10) | 1, rng.getrandbits(16))
        assert ctx.get(dut.lost) > 0
        await _wait_idle(ctx, dut)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert ctx.get(dut.clearing)
        assert ctx.get(dut.lost) == 0
        # Events arriving during the clear are counted after it.
        model = [0] * dut.count
        for _ in range(3):
            mask, amount = rng.getrandbits(10), rng.getrandbits(16)
            await _send(ctx, dut, mask, amount)
            _apply(model, dut, mask, amount)
        cycles = 0
        while ctx.get(dut.clearing):
            await ctx.tick()
            cycles += 1
        assert cycles <= dut.count + 2
        await _wait_idle(ctx, dut)
        assert await _read_all(ctx, dut) == model
        assert ctx.get(dut.lost) == 0

    _run(dut, testbench)


def test_clear_waits_for_the_event_being_applied():
    dut = CounterBank(8, fifo_depth=4)

    async def testbench(ctx):
        await _send(ctx, dut, 0xFF, 0)  # 8 increments in flight
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await _wait_idle(ctx, dut)
        # The whole event was applied before the sweep, so nothing survives the clear.
        assert await _read_all(ctx, dut) == [0] * 8

    _run(dut, testbench)


def test_host_reads_during_updates_are_monotonic_and_exact_at_rest():
    dut = CounterBank(4, weighted={3}, fifo_depth=8)
    done = []

    async def reader(ctx):
        last, reads = 0, 0
        ctx.set(dut.read_addr, 3)
        while not done:
            await ctx.tick()
            value = ctx.get(dut.read_data)
            assert value >= last
            last, reads = value, reads + 1
        assert reads > 250 and last > 0

    async def writer(ctx):
        for _ in range(150):
            await _send(ctx, dut, 0b1001, 5)
            await ctx.tick()
        await _wait_idle(ctx, dut)
        done.append(True)
        await ctx.tick().repeat(2)
        assert await _read_all(ctx, dut) == [150, 0, 0, 750]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(reader)
    sim.add_testbench(writer)
    sim.run()


def test_parameters_are_checked():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the half-built components are never elaborated
        for kwargs in ({"count": 0}, {"count": 4, "weighted": {4}}):
            try:
                CounterBank(**kwargs)
            except ValueError:
                pass
            else:
                pytest.fail(f"CounterBank({kwargs}) accepted")
        gc.collect()
