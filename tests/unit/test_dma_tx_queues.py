# amaranth: UnusedElaboratable=no
"""TxQueues with QueueRegisters and CompletionQueues, against host rings in a memory model
(amnic.sim.dma_rings): scatter-gather packets from many queues, ring and index wrap, weighted
round robin, bad descriptors, DMA errors, bad doorbells; throughput figures."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring

from amnic.dma.commands import DmaError
from amnic.dma.completions import CompletionQueues
from amnic.dma.queues import CompletionStatus, QueueError, QueueKind, QueueRegisters
from amnic.dma.tx_queues import TxQueues
from amnic.sim.csr_bus import SimulatorBackend
from amnic.sim.dma_rings import (
    MORE,
    CompletionRing,
    DescriptorRing,
    DmaReadModel,
    DmaWriteModel,
    HostMemory,
    QueueDriver,
)
from amnic.sim.stream_tb import simulate

TX, CQ = QueueKind.TX, QueueKind.CQ
MAX_PACKET = 9600


class Top(Elaboratable):
    def __init__(self, width, count, cqs=2, **kwargs):
        self.regs = QueueRegisters(tx_queues=count, rx_queues=1, completion_queues=cqs)
        self.txq = TxQueues(width, count, max_packet=MAX_PACKET, **kwargs)
        self.cq = CompletionQueues(width, cqs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = self.regs
        m.submodules.txq = self.txq
        m.submodules.cq = self.cq
        wiring.connect(m, self.regs.tx, self.txq.host)
        wiring.connect(m, self.regs.cq, self.cq.host)
        wiring.connect(m, self.txq.completions, self.cq.entries)
        m.d.comb += self.cq.events.ready.eq(1)
        return m


class Harness:
    """The design, host memory, DMA models and a record of everything transmitted."""

    def __init__(self, width, count, rng, *, latency=30, ready=0.8, gap=0.1, tx_ready=0.8,
                 errors=None, cqs=2, **kwargs):
        self.width = width
        self.rng = rng
        self.dut = Top(width, count, cqs, **kwargs)
        self.memory = HostMemory(1 << 23)
        self.reader = DmaReadModel(self.dut.txq.read, self.memory, width, rng, latency=latency,
                                   ready=ready, gap=gap, errors=errors)
        self.writer = DmaWriteModel(self.dut.cq.write, self.memory, width, rng, latency=latency,
                                    ready=ready, gap=gap)
        self.tx_ready = tx_ready
        self.sent = []  # (queue, bytes, bad, first cycle, last cycle)
        self.cycle = 0
        self.reads = []  # [cycle of the command, address, length, cycle of the last data beat]

    async def _read_log(self, ctx):
        """Record every read command and when its data ended (the port answers in order)."""
        read = self.dut.txq.read
        ending = 0
        async for _, _, cv, cr, cmd, dv, dr, dlast in ctx.tick().sample(
                read.cmd.valid, read.cmd.ready, read.cmd.payload, read.data.valid,
                read.data.ready, read.data.payload.last):
            if cv and cr:
                self.reads.append([self.cycle, cmd.address, cmd.length, None])
            if dv and dr and dlast:
                self.reads[ending][3] = self.cycle
                ending += 1

    async def _tx(self, ctx):
        tx = self.dut.txq.tx
        lanes = self.width // 8
        data, queue, first = bytearray(), None, None
        while True:
            ready = self.tx_ready >= 1 or self.rng.random() < self.tx_ready
            ctx.set(tx.ready, ready)
            _, _, valid, beat, bad = await ctx.tick().sample(tx.valid, tx.payload,
                                                             self.dut.txq.tx_bad)
            self.cycle += 1
            if not (valid and ready):
                continue
            if queue is None:
                queue, first = beat.user, self.cycle
            assert beat.user == queue, "user changed within a packet"
            n = beat.keep.bit_length()
            assert beat.keep == (1 << n) - 1 and (beat.last or n == lanes), "not packed"
            data += beat.data.to_bytes(lanes, "little")[:n]
            if beat.last:
                self.sent.append((queue, bytes(data), bool(bad), first, self.cycle))
                data, queue = bytearray(), None

    def run(self, host, max_cycles=200_000):
        simulate(self.dut, [host], background=self.reader.benches() + self.writer.benches()
                 + [self._tx, self._read_log], max_cycles=max_cycles)

    def driver(self, ctx):
        return QueueDriver(SimulatorBackend(ctx, self.dut.regs.bus))


def post_packet(memory, ring, rng, total, segments):
    """Post one packet of ``total`` random bytes cut into ``segments`` buffers; returns
    (first index, descriptors, bytes)."""
    cuts = sorted(rng.sample(range(1, total), segments - 1)) if segments > 1 else []
    bounds = [0] + cuts + [total]
    payload = bytes(rng.randrange(256) for _ in range(total))
    first = None
    for k in range(segments):
        part = payload[bounds[k]:bounds[k + 1]]
        address = memory.alloc(len(part), align=1) + rng.randrange(8)
        memory.alloc(8, align=1)
        memory.write(address, part)
        index = ring.post(address, len(part), MORE if k < segments - 1 else 0)
        first = index if first is None else first
    return first, segments, payload


def packet_plan(rng, n):
    """Random (total, segments): mostly short packets, some up to MAX_PACKET bytes."""
    plan = []
    for _ in range(n):
        total = rng.choice([rng.randrange(1, 200), rng.randrange(1, 1600),
                            rng.randrange(1, MAX_PACKET + 1)] + [rng.randrange(1, 120)] * 3)
        plan.append((total, rng.randrange(1, min(4, total) + 1)))
    return plan


async def stream_queues(ctx, h, rings, cq_ring, plans, *, weights=None, cq=1):
    """Configure ``rings`` and completion ring ``cq_ring``, post each queue's packet plan as
    ring space allows, ring doorbells, consume completions; returns the expected packets
    per queue in order and the completions received."""
    driver = h.driver(ctx)
    await driver.configure(CQ, cq, base=cq_ring.base, log_size=cq_ring.log_size,
                           producer=cq_ring.consumer)
    for q, ring in rings.items():
        await driver.configure(TX, q, base=ring.base, log_size=ring.log_size,
                               producer=ring.producer, cq=cq,
                               weight=(weights or {}).get(q, 4))
    expected = {q: [] for q in rings}
    outstanding = {q: {} for q in rings}  # first index -> descriptors
    in_ring = {q: 0 for q in rings}
    todo = {q: list(plan) for q, plan in plans.items()}
    completions = []
    while any(todo.values()) or any(outstanding.values()):
        for q, ring in rings.items():
            posted = False
            while todo[q] and in_ring[q] + todo[q][0][1] <= ring.size:
                total, segments = todo[q].pop(0)
                first, n, payload = post_packet(h.memory, ring, h.rng, total, segments)
                expected[q].append((first, payload, n))
                outstanding[q][first] = n
                in_ring[q] += n
                posted = True
            if posted:
                await driver.doorbell(TX, q, ring.producer)
        new = cq_ring.poll()
        for entry in new:
            completions.append(entry)
            in_ring[entry.queue] -= outstanding[entry.queue].pop(entry.index)
        if new:
            await driver.doorbell(CQ, cq, cq_ring.consumer)
        await ctx.tick().repeat(20)
    return expected, completions


def check_stream(h, expected, completions, rings):
    for q in rings:
        got = [(data, bad) for queue, data, bad, _, _ in h.sent if queue == q]
        assert [d for d, _ in got] == [p for _, p, _ in expected[q]], f"queue {q} data"
        assert not any(bad for _, bad in got)
        mine = [c for c in completions if c.queue == q]
        assert [(c.index, c.descriptors, c.length, c.status, c.kind) for c in mine] == [
            (first, n, len(p), CompletionStatus.OK.value, QueueKind.TX.value)
            for first, p, n in expected[q]]


@pytest.mark.parametrize("width", [64, 256, 512])
def test_many_queues_scatter_gather_and_wrap(width):
    rng = random.Random(width)
    h = Harness(width, count=8, rng=rng)
    # Queue 6 starts near the 16-bit index wrap; small rings wrap many times.
    rings = {0: DescriptorRing(h.memory, 3), 2: DescriptorRing(h.memory, 4),
             5: DescriptorRing(h.memory, 2), 6: DescriptorRing(h.memory, 3, start=65530)}
    cq_ring = CompletionRing(h.memory, 3, start=65533)
    plans = {q: packet_plan(rng, 12) for q in rings}
    result = {}

    async def host(ctx):
        expected, completions = await stream_queues(ctx, h, rings, cq_ring, plans)
        result["expected"], result["completions"] = expected, completions
        driver = h.driver(ctx)
        result["info"] = {q: await driver.read(TX, q) for q in rings}

    h.run(host)
    check_stream(h, result["expected"], result["completions"], rings)
    for q, ring in rings.items():
        info = result["info"][q]
        assert info["packets"] == len(plans[q]) and info["drops"] == 0
        assert info["bytes"] == sum(len(p) for _, p, _ in result["expected"][q])
        assert info["consumer"] == info["producer"] == ring.producer
    assert rings[6].producer < 65530  # the index wrapped past 65535
    assert cq_ring.consumer < 65533


def test_weighted_round_robin():
    rng = random.Random(5)
    weights = {1: 1, 2: 3, 3: 12}
    h = Harness(128, count=4, rng=rng, latency=10, ready=1.0, gap=0.0, tx_ready=1.0)
    rings = {q: DescriptorRing(h.memory, 6) for q in weights}
    cq_ring = CompletionRing(h.memory, 8)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=cq_ring.log_size)
        for q, ring in rings.items():
            await driver.configure(TX, q, base=ring.base, log_size=6, weight=weights[q])
            for _ in range(48):
                post_packet(h.memory, ring, rng, rng.randrange(1, 64), 1)
        for q, ring in rings.items():
            await driver.doorbell(TX, q, ring.producer)
        while len(cq_ring.received) < 3 * 48:
            cq_ring.poll()
            await ctx.tick().repeat(50)
        result["completions"] = cq_ring.received

    h.run(host)
    order = [q for q, _, _, _, _ in h.sent]
    runs = []
    for q in order:
        if runs and runs[-1][0] == q:
            runs[-1][1] += 1
        else:
            runs.append([q, 1])
    # While all three queues have packets, every turn is exactly the queue's weight.
    seen = {q: 0 for q in weights}
    for q, length in runs:
        if all(seen[k] < 48 for k in weights) and seen[q] + length < 48:
            assert length == weights[q], runs
        seen[q] += length
    assert seen == {q: 48 for q in weights}
    assert len(result["completions"]) == 3 * 48


def test_bad_descriptors_and_dma_errors():
    rng = random.Random(9)
    failing = set()
    h = Harness(128, count=2, rng=rng, batch=4,
                errors=lambda address, length: DmaError.COMPLETION if address in failing
                else None)
    ring = DescriptorRing(h.memory, 4)
    cq_ring = CompletionRing(h.memory, 4)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=4)
        await driver.configure(TX, 1, base=ring.base, log_size=4, weight=2)
        good = []
        _, _, p = post_packet(h.memory, ring, rng, 100, 1)
        good.append(p)
        ring.post(h.memory.alloc(64), 0)  # zero length
        ring.post(h.memory.alloc(64), MAX_PACKET + 1)  # too long
        ring.post(h.memory.alloc(64), 5000, MORE)  # chain longer than the maximum
        ring.post(h.memory.alloc(64), 5000)
        for _ in range(4):  # five descriptors: more than a batch of four
            ring.post(h.memory.alloc(64), 10, MORE)
        ring.post(h.memory.alloc(64), 10)
        bad_buffer = h.memory.alloc(64)
        failing.add(bad_buffer)
        ring.post(bad_buffer, 50)  # DMA error: sent, marked bad
        _, _, p = post_packet(h.memory, ring, rng, 300, 2)
        good.append(p)
        await driver.doorbell(TX, 1, ring.producer)
        while len(cq_ring.received) < 8:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        await ctx.tick().repeat(50)
        result["good"] = good
        result["info"] = await driver.read(TX, 1)

    h.run(host)
    statuses = [(c.index, c.status, c.length) for c in cq_ring.received]
    B, E, OK = (CompletionStatus.BAD_DESCRIPTOR.value, CompletionStatus.DMA_ERROR.value,
                CompletionStatus.OK.value)
    assert statuses == [(0, OK, 100), (1, B, 0), (2, B, MAX_PACKET + 1), (3, B, 10000),
                        (5, B, 40), (9, OK, 10), (10, E, 50), (11, OK, 300)]
    # Descriptors each completion stands for (the over-long chain: the batch of four).
    assert [c.descriptors for c in cq_ring.received] == [1, 1, 1, 2, 4, 1, 1, 2]
    sent = [(data, bad) for _, data, bad, _, _ in h.sent]
    assert [len(d) for d, _ in sent] == [100, 10, 50, 300]
    assert sent[0] == (result["good"][0], False) and sent[3] == (result["good"][1], False)
    assert [bad for _, bad in sent] == [False, False, True, False]
    info = result["info"]
    assert (info["packets"], info["drops"]) == (4, 4)
    assert info["bytes"] == 460 and info["error"] == 0 and info["consumer"] == 13


def test_bad_doorbell_disables_until_reconfigured():
    rng = random.Random(11)
    h = Harness(64, count=4, rng=rng)
    ring = DescriptorRing(h.memory, 2)
    cq_ring = CompletionRing(h.memory, 3)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=3)
        await driver.configure(TX, 3, base=ring.base, log_size=2, producer=100)
        ring.producer = 100
        payloads = [post_packet(h.memory, ring, rng, 60, 1)[2] for _ in range(3)]
        await driver.doorbell(TX, 3, 100 + 5)  # 5 > 4 entries: bad index
        await ctx.tick().repeat(200)
        result["bad"] = await driver.read(TX, 3)
        result["count"] = await driver.counter("bad_doorbells")
        result["reads"] = len(h.reader.log)
        await driver.doorbell(TX, 3, 103)  # ignored: the queue is disabled
        await ctx.tick().repeat(200)
        result["ignored"] = len(h.sent)
        await driver.configure(TX, 3, base=ring.base, log_size=2, producer=100)
        await driver.doorbell(TX, 3, 103)
        while len(cq_ring.received) < 3:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        result["payloads"] = payloads
        result["after"] = await driver.read(TX, 3)

    h.run(host)
    bad = result["bad"]
    assert bad["error"] == QueueError.BAD_INDEX.value and bad["enable"] == 0
    assert bad["producer"] == 100 and result["count"] == 1
    assert result["reads"] == 0 and result["ignored"] == 0
    assert [d for _, d, _, _, _ in h.sent] == result["payloads"]
    assert [c.index for c in cq_ring.received] == [100, 101, 102]
    assert result["after"]["error"] == 0 and result["after"]["consumer"] == 103


def packet_rate(width, queues, per_queue, *, weight, latency, log_size, skip):
    """64-byte packets, ``per_queue`` posted on each of ``queues`` queues of ``weight``, every
    doorbell rung, DMA answered ``latency`` cycles later, no back-pressure: the order packets
    left in (queue numbers) and the rate in packets per 1000 cycles from packet ``skip`` on."""
    rng = random.Random(queues + weight)
    h = Harness(width, count=16, rng=rng, latency=latency, ready=1.0, gap=0.0, tx_ready=1.0,
                cqs=1)
    rings = {q: DescriptorRing(h.memory, log_size) for q in range(queues)}
    cq_ring = CompletionRing(h.memory, 10)

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=10)
        for q, ring in rings.items():
            await driver.configure(TX, q, base=ring.base, log_size=log_size, weight=weight)
            for _ in range(per_queue):
                post_packet(h.memory, ring, rng, 64, 1)
        for q, ring in rings.items():
            await driver.doorbell(TX, q, ring.producer)
        while len(h.sent) < queues * per_queue:
            await ctx.tick().repeat(20)

    h.run(host)
    first, last = h.sent[skip][4], h.sent[-1][4]
    return [q for q, *_ in h.sent], 1000 * (len(h.sent) - skip - 1) / (last - first)


@pytest.mark.parametrize("queues", [1, 16])
def test_throughput_64_byte_packets(queues):
    """64-byte packets, 50-cycle DMA latency, weight 16: packets per 1000 cycles."""
    _, rate = packet_rate(64, queues, 160 // queues, weight=16, latency=50, log_size=8,
                          skip=20)
    print(f"TX 64 B, {queues} queue(s), latency 50: {rate:.1f} packets per 1000 cycles")
    assert rate > 45


# ---------------------------------------------------------------------------------------------
# Descriptor fetches of several queues in flight


def descriptor_reads(h, rings):
    """The descriptor reads in command order: (queue, command cycle, end cycle, address,
    length)."""
    found = []
    for issued, address, length, ended in h.reads:
        for q, ring in rings.items():
            if ring.base <= address < ring.base + ring.size * 16:
                found.append((q, issued, ended, address, length))
    return found


def fetches_in_flight(h, rings, at):
    """Queues with a descriptor read in flight at cycle ``at`` (issued, data not ended), each
    with its reads."""
    flying = {}
    for q, issued, ended, address, length in descriptor_reads(h, rings):
        if issued <= at and (ended is None or ended > at):
            flying.setdefault(q, []).append((address, length))
    return flying


def check_fetch_overlap(h, rings, fetches):
    """At every descriptor read command: at most ``fetches`` queues have one in flight, and a
    queue has two only for a batch that wraps (the ring's last entries, then its first).
    Returns the most queues seen in flight at once."""
    most = 0
    for _, issued, _, _, _ in descriptor_reads(h, rings):
        flying = fetches_in_flight(h, rings, issued)
        assert len(flying) <= fetches
        for q, reads in flying.items():
            ring = rings[q]
            if len(reads) > 1:
                (a0, n0), (a1, _) = reads
                assert len(reads) == 2 and a0 + n0 == ring.base + ring.size * 16, reads
                assert a1 == ring.base, reads
        most = max(most, len(flying))
    return most


@pytest.mark.parametrize("width,fetches", [(64, 8), (256, 1), (512, 4)])
def test_interleaved_fetches_many_queues(width, fetches):
    """16 queues with small weights and batches: descriptor batches of different queues in
    flight at once (and refetches within a turn), scatter-gather packets intact and in order,
    completions and statistics right."""
    rng = random.Random(100 + width)
    h = Harness(width, count=16, rng=rng, latency=60, batch=4, fetches=fetches)
    rings = {q: DescriptorRing(h.memory, rng.choice([2, 3, 4]), start=rng.randrange(65536))
             for q in range(16)}
    cq_ring = CompletionRing(h.memory, 6)
    plans = {q: [(rng.randrange(3, 300), rng.randrange(1, 4)) for _ in range(5)] for q in rings}
    weights = {q: rng.choice([1, 1, 2, 3]) for q in rings}
    result = {}

    async def host(ctx):
        expected, completions = await stream_queues(ctx, h, rings, cq_ring, plans,
                                                    weights=weights)
        result["expected"], result["completions"] = expected, completions
        driver = h.driver(ctx)
        result["info"] = {q: await driver.read(TX, q) for q in rings}

    h.run(host, max_cycles=400_000)
    check_stream(h, result["expected"], result["completions"], rings)
    for q, ring in rings.items():
        info = result["info"][q]
        assert (info["packets"], info["drops"], info["error"]) == (5, 0, 0)
        assert info["consumer"] == info["producer"] == ring.producer
    most = check_fetch_overlap(h, rings, fetches)
    assert most == fetches if fetches == 1 else most >= 3


def wait_for_fetch(h, ring):
    """An async condition: a descriptor read of ``ring`` has been issued (returns it)."""
    async def wait(ctx):
        while True:
            for read in h.reads:
                if ring.base <= read[1] < ring.base + ring.size * 16 and read[3] is None:
                    return read
            await ctx.tick()
    return wait


def test_reconfigure_and_disable_during_fetch():
    """A queue configured anew, or disabled, while its descriptor read is in flight sends none
    of the descriptors that read brings; another queue in flight at the same time is not
    touched; the written state stands and the queue is scheduled again from it."""
    rng = random.Random(21)
    h = Harness(256, count=4, rng=rng, latency=400, ready=1.0, gap=0.0, tx_ready=1.0)
    old, new, other = (DescriptorRing(h.memory, 4) for _ in range(3))
    cq_ring = CompletionRing(h.memory, 5)
    result = {"cycles": {}}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=5)
        await driver.configure(TX, 1, base=old.base, log_size=4, weight=8)
        await driver.configure(TX, 2, base=other.base, log_size=4, weight=8)
        stale = [post_packet(h.memory, old, rng, 100, 1)[2] for _ in range(3)]
        kept = [post_packet(h.memory, other, rng, 80, 2)[2] for _ in range(3)]
        await driver.doorbell(TX, 1, old.producer)
        await driver.doorbell(TX, 2, other.producer)
        # Queue 1 moves to another ring while the read of the old one is in flight.
        read = await wait_for_fetch(h, old)(ctx)
        await wait_for_fetch(h, other)(ctx)
        new.producer = new.start = 40
        fresh = [post_packet(h.memory, new, rng, 60, 1)[2] for _ in range(2)]
        await driver.configure(TX, 1, base=new.base, log_size=4, weight=8, producer=40)
        result["cycles"]["moved"] = h.cycle
        result["moved_read"] = read
        await driver.doorbell(TX, 1, new.producer)
        while len(cq_ring.received) < 5:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        # Then it is disabled while the read of its next packets is in flight.
        later = [post_packet(h.memory, new, rng, 70, 1)[2] for _ in range(2)]
        await driver.doorbell(TX, 1, new.producer)
        read = await wait_for_fetch(h, new)(ctx)
        await driver.disable(TX, 1)
        result["cycles"]["disabled"] = h.cycle
        result["disabled_read"] = read
        await ctx.tick().repeat(1500)
        cq_ring.poll()
        result["while_disabled"] = (len(h.sent), len(cq_ring.received))
        result["disabled"] = await driver.read(TX, 1)
        # Enabled again: its packets are fetched afresh.
        await driver.configure(TX, 1, base=new.base, log_size=4, weight=8, producer=44,
                               consumer=42)
        while len(cq_ring.received) < 7:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        await ctx.tick().repeat(50)
        result["info"] = {q: await driver.read(TX, q) for q in (1, 2)}
        result["payloads"] = stale, kept, fresh, later

    h.run(host)
    stale, kept, fresh, later = result["payloads"]
    # The reads really were in flight when the configuration changed.
    assert result["moved_read"][3] > result["cycles"]["moved"]
    assert result["disabled_read"][3] > result["cycles"]["disabled"]
    sent = {q: [d for queue, d, _, _, _ in h.sent if queue == q] for q in (1, 2)}
    assert sent[2] == kept
    assert sent[1] == fresh + later
    assert not any(stale_packet in sent[1] for stale_packet in stale)
    assert result["while_disabled"] == (5, 5)
    disabled = result["disabled"]
    assert (disabled["enable"], disabled["error"], disabled["consumer"]) == (0, 0, 42)
    assert [(c.queue, c.index) for c in cq_ring.received if c.queue == 1] == [
        (1, 40), (1, 41), (1, 42), (1, 43)]
    info = result["info"]
    assert (info[1]["packets"], info[1]["consumer"], info[1]["enable"]) == (4, 44, 1)
    assert (info[2]["packets"], info[2]["consumer"]) == (3, 6)


def test_doorbells_during_fetch():
    """A doorbell that completes a packet while the fetch that found it incomplete is in flight
    is not lost; a bad-index doorbell during a fetch disables the queue and nothing of the
    fetch is sent."""
    rng = random.Random(23)
    h = Harness(128, count=4, rng=rng, latency=300, ready=1.0, gap=0.0, tx_ready=1.0)
    split, doomed = DescriptorRing(h.memory, 3), DescriptorRing(h.memory, 2)
    cq_ring = CompletionRing(h.memory, 4)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=4)
        await driver.configure(TX, 0, base=split.base, log_size=3, weight=4)
        await driver.configure(TX, 3, base=doomed.base, log_size=2, weight=4)
        payload = bytes(rng.randrange(256) for _ in range(90))
        parts = [h.memory.alloc(64), h.memory.alloc(64)]
        h.memory.write(parts[0], payload[:50])
        h.memory.write(parts[1], payload[50:])
        split.post(parts[0], 50, MORE)
        await driver.doorbell(TX, 0, split.producer)
        for _ in range(2):
            post_packet(h.memory, doomed, rng, 40, 1)
        await driver.doorbell(TX, 3, doomed.producer)
        await wait_for_fetch(h, split)(ctx)
        read = await wait_for_fetch(h, doomed)(ctx)
        split.post(parts[1], 40)
        await driver.doorbell(TX, 0, split.producer)
        await driver.doorbell(TX, 3, doomed.producer + 3)  # 5 > 4 entries: bad index
        result["bad_at"] = h.cycle
        result["read"] = read
        while len(cq_ring.received) < 1:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        await ctx.tick().repeat(1000)
        cq_ring.poll()
        result["payload"] = payload
        result["info"] = {q: await driver.read(TX, q) for q in (0, 3)}
        result["bad_doorbells"] = await driver.counter("bad_doorbells")

    h.run(host)
    assert result["read"][3] > result["bad_at"]
    assert [(q, d) for q, d, _, _, _ in h.sent] == [(0, result["payload"])]
    assert [(c.queue, c.index, c.length) for c in cq_ring.received] == [(0, 0, 90)]
    info = result["info"]
    assert (info[0]["consumer"], info[0]["producer"], info[0]["packets"]) == (2, 2, 1)
    assert (info[3]["enable"], info[3]["error"]) == (0, QueueError.BAD_INDEX.value)
    assert (info[3]["consumer"], info[3]["producer"], info[3]["packets"]) == (0, 2, 0)
    assert result["bad_doorbells"] == 1


def test_descriptor_read_errors_with_other_fetches_in_flight():
    """A failed descriptor read (a turn's first batch, a later turn's, a refetch within a turn)
    stops only its queue, with DESCRIPTOR_DMA and no completion; the fetches of the other
    queues in flight around it go on."""
    rng = random.Random(27)
    failing = set()
    h = Harness(256, count=8, rng=rng, latency=80, batch=4,
                errors=lambda address, length: DmaError.COMPLETION if address in failing
                else None)
    rings = {q: DescriptorRing(h.memory, 4) for q in range(8)}
    cq_ring = CompletionRing(h.memory, 7)
    segments = {q: 3 if q == 6 else 1 for q in rings}
    weights = {q: 8 if q == 6 else 2 for q in rings}
    failing.add(rings[3].address_of(0))  # queue 3: its first fetch
    failing.add(rings[5].address_of(4))  # queue 5: its third turn
    failing.add(rings[6].address_of(3))  # queue 6: the refetch after its first packet
    sent_before = {3: 0, 5: 4, 6: 1}
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=7)
        expected = {}
        for q, ring in rings.items():
            await driver.configure(TX, q, base=ring.base, log_size=4, weight=weights[q])
            expected[q] = [post_packet(h.memory, ring, rng, rng.randrange(20, 200),
                                       segments[q])[2] for _ in range(5)]
        for q, ring in rings.items():
            await driver.doorbell(TX, q, ring.producer)
        total = 5 * 5 + sum(sent_before.values())
        while len(cq_ring.received) < total:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        await ctx.tick().repeat(500)
        cq_ring.poll()
        result["expected"] = expected
        result["info"] = {q: await driver.read(TX, q) for q in rings}

    h.run(host)
    expected = result["expected"]
    for q in rings:
        got = [d for queue, d, bad, _, _ in h.sent if queue == q and not bad]
        mine = [c for c in cq_ring.received if c.queue == q]
        info = result["info"][q]
        if q in sent_before:
            n = sent_before[q]
            assert got == expected[q][:n] and len(mine) == n
            assert (info["enable"], info["error"]) == (0, QueueError.DESCRIPTOR_DMA.value)
            assert info["consumer"] == n * segments[q] and info["packets"] == n
        else:
            assert got == expected[q] and len(mine) == 5
            assert (info["enable"], info["error"], info["consumer"]) == (1, 0, 5)
    assert len(h.sent) == len(cq_ring.received)
    # Each failing read had other queues' fetches in flight with it.
    for q, issued, _, address, _ in descriptor_reads(h, rings):
        if address in failing:
            assert len(fetches_in_flight(h, rings, issued)) >= 2, (q, address)


def test_throughput_queues_in_turn():
    """64-byte packets from 16 queues in turn (weight 1: every packet from another queue),
    256 bit, DMA answered 125 cycles later: the queues' descriptor round trips overlap."""
    order, rate = packet_rate(256, 16, 8, weight=1, latency=125, log_size=4, skip=16)
    assert order == list(range(16)) * 8
    print(f"TX 64 B, 16 queues in turn, latency 125: {rate:.1f} packets per 1000 cycles")
    assert rate > 35


def test_consumer_index_during_a_turn():
    """While a turn is under way (here waiting for the refetch of its second batch) the state
    RAM still holds the consumer index the turn began at; a doorbell for descriptors posted
    into ring space its completed packets freed is checked against the turn's own index (it is
    no bad index), and a host read reports that index."""
    rng = random.Random(33)
    h = Harness(128, count=2, rng=rng, latency=60, ready=1.0, gap=0.0, tx_ready=0.05,
                batch=4)
    ring = DescriptorRing(h.memory, 3)
    cq_ring = CompletionRing(h.memory, 4)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=4)
        await driver.configure(TX, 1, base=ring.base, log_size=3, weight=8)
        payloads = [post_packet(h.memory, ring, rng, 64, 1)[2] for _ in range(8)]
        await driver.doorbell(TX, 1, ring.producer)
        while not cq_ring.poll():
            await ctx.tick()
        payloads.append(post_packet(h.memory, ring, rng, 64, 1)[2])  # into the freed entry
        await driver.doorbell(TX, 1, ring.producer)
        result["doorbell"] = h.cycle
        result["during"] = await driver.read(TX, 1)
        for _ in range(500):
            cq_ring.poll()
            if len(cq_ring.received) == 9:
                break
            await ctx.tick().repeat(20)
        result["payloads"] = payloads
        result["after"] = await driver.read(TX, 1)
        result["bad_doorbells"] = await driver.counter("bad_doorbells")

    h.run(host)
    second = [r for r in h.reads if r[1] == ring.address_of(4)]
    assert second and second[0][3] > result["doorbell"]  # the turn was still under way
    assert result["during"]["consumer"] == 4 and result["during"]["producer"] == 9
    assert result["bad_doorbells"] == 0
    assert [d for _, d, _, _, _ in h.sent] == result["payloads"]
    assert [c.index for c in cq_ring.received] == list(range(9))
    assert (result["after"]["consumer"], result["after"]["error"]) == (9, 0)
