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
                 + [self._tx], max_cycles=max_cycles)

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


@pytest.mark.parametrize("queues", [1, 16])
def test_throughput_64_byte_packets(queues):
    """64-byte packets, 50-cycle DMA latency, no back-pressure: packets per 1000 cycles."""
    rng = random.Random(queues)
    h = Harness(64, count=16, rng=rng, latency=50, ready=1.0, gap=0.0, tx_ready=1.0, cqs=1)
    rings = {q: DescriptorRing(h.memory, 8) for q in range(queues)}
    cq_ring = CompletionRing(h.memory, 10)
    per_queue = 160 // queues

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=10)
        for q, ring in rings.items():
            await driver.configure(TX, q, base=ring.base, log_size=8, weight=16)
            for _ in range(per_queue):
                post_packet(h.memory, ring, rng, 64, 1)
        for q, ring in rings.items():
            await driver.doorbell(TX, q, ring.producer)
        while len(h.sent) < queues * per_queue:
            await ctx.tick().repeat(20)

    h.run(host)
    # Steady state: from the 20th packet to the last.
    first, last = h.sent[20][4], h.sent[-1][4]
    rate = 1000 * (len(h.sent) - 21) / (last - first)
    print(f"TX 64 B, {queues} queue(s), latency 50: {rate:.1f} packets per 1000 cycles")
    assert rate > 45
