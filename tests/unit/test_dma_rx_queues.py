# amaranth: UnusedElaboratable=no
"""RxQueues with QueueRegisters and CompletionQueues, against host rings in a memory model
(amnic.sim.dma_rings): many queues with ring and index wrap, drops for a queue without buffers
while the others keep receiving, packets scattered over several buffers, truncation, bad
descriptors, bad packets, DMA errors, bad doorbells."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring

from amnic.dma.commands import DmaError
from amnic.dma.completions import CompletionQueues
from amnic.dma.queues import CompletionStatus, QueueError, QueueKind, QueueRegisters
from amnic.dma.rx_queues import RxQueues
from amnic.sim.csr_bus import SimulatorBackend
from amnic.sim.dma_rings import (
    CompletionRing,
    DescriptorRing,
    DmaReadModel,
    DmaWriteModel,
    HostMemory,
    QueueDriver,
    rx_placement,
)
from amnic.sim.stream_tb import put_packet, simulate

RX, CQ = QueueKind.RX, QueueKind.CQ


class Top(Elaboratable):
    def __init__(self, width, count, cqs=2, fifo_bytes=4096):
        self.regs = QueueRegisters(tx_queues=1, rx_queues=count, completion_queues=cqs)
        self.rxq = RxQueues(width, count, fifo_bytes=fifo_bytes)
        self.cq = CompletionQueues(width, cqs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = self.regs
        m.submodules.rxq = self.rxq
        m.submodules.cq = self.cq
        wiring.connect(m, self.regs.rx, self.rxq.host)
        wiring.connect(m, self.regs.cq, self.cq.host)
        wiring.connect(m, self.rxq.completions, self.cq.entries)
        m.d.comb += self.cq.events.ready.eq(1)
        return m


class Harness:
    def __init__(self, width, count, rng, *, read_errors=None, write_errors=None,
                 fifo_bytes=4096):
        self.width = width
        self.rng = rng
        self.dut = Top(width, count, fifo_bytes=fifo_bytes)
        self.memory = HostMemory(1 << 22)
        self.reader = DmaReadModel(self.dut.rxq.read, self.memory, width, rng, latency=20,
                                   errors=read_errors)
        self.writer = DmaWriteModel(self.dut.rxq.write, self.memory, width, rng, latency=20,
                                    errors=write_errors)
        self.cq_writer = DmaWriteModel(self.dut.cq.write, self.memory, width, rng, latency=20)
        self.buffers = {}  # (queue, descriptor index) -> (address, size)

    def run(self, benches, max_cycles=200_000):
        simulate(self.dut, benches, background=self.reader.benches() + self.writer.benches()
                 + self.cq_writer.benches(), max_cycles=max_cycles)

    def driver(self, ctx):
        return QueueDriver(SimulatorBackend(ctx, self.dut.regs.bus))

    def post(self, queue, ring, size):
        address = self.memory.alloc(size + 16, align=1) + self.rng.randrange(4)
        self.buffers[queue, ring.producer] = (address, size)
        # A guard pattern after the buffer shows writes past its end.
        self.memory.write(address, b"\xA5" * (size + 8))
        return ring.post(address, size)

    async def send(self, ctx, queue, payload, *, bad=False):
        """One packet for ``queue`` (``user`` bits 16:1), marked bad on its last beat."""
        beats = -(-len(payload) // (self.width // 8))
        user = [queue << 1] * (beats - 1) + [queue << 1 | bad]
        await put_packet(ctx, self.dut.rxq.rx, payload, user=user, idle_prob=0.1, rng=self.rng)


@pytest.mark.parametrize("width", [64, 256, 512])
def test_many_queues_wrap_and_drop_when_empty(width):
    rng = random.Random(width)
    h = Harness(width, count=8, rng=rng)
    rings = {1: DescriptorRing(h.memory, 2), 4: DescriptorRing(h.memory, 3, start=65531),
             7: DescriptorRing(h.memory, 1)}
    empty = 2  # enabled, never given a buffer
    cq_ring = CompletionRing(h.memory, 4)
    per_queue = 14
    state = {"ready": False, "posted": {q: 0 for q in rings}, "sent": {q: 0 for q in rings}}
    expected = {q: [] for q in rings}
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 1, base=cq_ring.base, log_size=4)
        for q, ring in rings.items():
            await driver.configure(RX, q, base=ring.base, log_size=ring.log_size, cq=1,
                                   producer=ring.producer)
        spare = DescriptorRing(h.memory, 2)
        await driver.configure(RX, empty, base=spare.base, log_size=2, cq=1)
        used = state["used"] = {q: 0 for q in rings}
        while sum(used.values()) < per_queue * len(rings):
            for q, ring in rings.items():
                if ring.posted - used[q] < ring.size and ring.posted < per_queue:
                    h.post(q, ring, 1500)
                    await driver.doorbell(RX, q, ring.producer)
                    await ctx.tick().repeat(10)  # the engine has taken the doorbell
                    state["posted"][q] = ring.posted
            state["ready"] = True
            new = cq_ring.poll()
            for entry in new:
                used[entry.queue] += 1
            if new:
                await driver.doorbell(CQ, 1, cq_ring.consumer)
            await ctx.tick().repeat(10)
        await ctx.tick().repeat(100)
        result["info"] = {q: await driver.read(RX, q) for q in list(rings) + [empty]}
        result["unqueued"] = await driver.counter("rx_unqueued_drops")

    async def sender(ctx):
        while not state["ready"]:
            await ctx.tick()
        extra = 0
        while any(n < per_queue for n in state["sent"].values()):
            choices = [q for q in rings if state["sent"][q] < state["posted"][q]]
            # At most two packets waiting: the 4 KiB receive FIFO would drop more.
            backlog = sum(state["sent"].values()) - sum(state["used"].values())
            if not choices or backlog >= 2:
                await ctx.tick()
                continue
            q = rng.choice(choices)
            payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1501)))
            expected[q].append(payload)
            state["sent"][q] += 1
            await h.send(ctx, q, payload)
            if rng.random() < 0.3:  # traffic for the queue without buffers, never waited for
                await h.send(ctx, empty, bytes(rng.randrange(1, 300)))
                extra += 1
        await h.send(ctx, 200, b"unknown queue")
        result["extra"] = extra

    h.run([host, sender])
    got = {q: [] for q in rings}
    for entry in cq_ring.received:
        assert entry.kind == QueueKind.RX.value and entry.status == CompletionStatus.OK.value
        address, size = h.buffers[entry.queue, entry.index]
        got[entry.queue].append(h.memory.read(address, entry.length))
        assert h.memory.read(address + entry.length, 8 + size - entry.length) == b"\xA5" * (
            8 + size - entry.length)
    for q in rings:
        assert got[q] == expected[q]
        info = result["info"][q]
        assert info["packets"] == per_queue and info["drops"] == 0
        assert info["bytes"] == sum(map(len, expected[q]))
    assert result["info"][empty]["drops"] == result["extra"] > 0
    assert result["info"][empty]["packets"] == 0
    assert result["unqueued"] == 1
    assert rings[4].producer < 100  # wrapped past 65535


@pytest.mark.parametrize("width", [64, 256, 512])
def test_scatter_over_buffers(width):
    """Packets of 1..12000 bytes over buffers of many sizes, some too few (TRUNCATED), some
    empty or too short to continue into (BAD_DESCRIPTOR): placement, completion status,
    descriptor count and every byte of every buffer as :func:`rx_placement` says."""
    rng = random.Random(width + 1)
    h = Harness(width, count=2, rng=rng, fifo_bytes=16384)
    ring = DescriptorRing(h.memory, 7, start=65530)
    cq_ring = CompletionRing(h.memory, 4)
    cases = []
    left = []  # sizes of the buffers posted and not used, as the plan goes
    for n in range(24):
        length = rng.choice([1, 63, 64, 65, 1500, 4096, rng.randrange(1, 12001)])
        sizes = []
        while sum(left + sizes) < length + 200:
            sizes.append(rng.choice([64, 100, 130, 1000, 2048, 4096, 9000]))
        if n % 6 == 5 and sum(left) < 10000:
            length, sizes = 12000, [rng.choice([64, 100, 2048])]  # too few: truncated
        if n % 8 == 3:
            sizes.insert(rng.randrange(len(sizes)), rng.choice([0, 40]))
        cases.append((bytes(rng.randrange(256) for _ in range(length)), sizes))
        takes, _ = rx_placement(length, left + sizes)
        left = (left + sizes)[len(takes):]
    results = []

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=4)
        await driver.configure(RX, 1, base=ring.base, log_size=7, producer=ring.producer)
        for payload, sizes in cases:
            for size in sizes:
                h.post(1, ring, size)
            await driver.doorbell(RX, 1, ring.producer)
            await ctx.tick().repeat(10)
            await h.send(ctx, 1, payload)
            while not (new := cq_ring.poll()):
                await ctx.tick().repeat(10)
            await driver.doorbell(CQ, 0, cq_ring.consumer)
            assert len(new) == 1
            results.append(new[0])
        results.append(await driver.read(RX, 1))

    h.run([host], max_cycles=400_000)
    info = results.pop()
    posted = []  # indices of the buffers posted and not yet used
    index = 65530
    packets = total = drops = 0
    for (payload, sizes), entry in zip(cases, results):
        posted += [(index + k) & 0xFFFF for k in range(len(sizes))]
        index += len(sizes)
        takes, status = rx_placement(len(payload), [h.buffers[1, i][1] for i in posted])
        assert (entry.index, entry.length, entry.status, entry.descriptors) == (
            posted[0], len(payload), status.value, len(takes)), (len(payload), sizes)
        offset = 0
        for i, take in zip(posted, takes):
            address, size = h.buffers[1, i]
            assert h.memory.read(address, take) == payload[offset:offset + take]
            assert h.memory.read(address + take, size + 8 - take) == b"\xA5" * (size + 8 - take)
            offset += take
        del posted[:len(takes)]
        if status == CompletionStatus.BAD_DESCRIPTOR:
            drops += 1
        else:
            packets += 1
            total += offset
    assert {CompletionStatus(e.status) for e in results} == set(CompletionStatus) - {
        CompletionStatus.DMA_ERROR}
    assert (info["packets"], info["bytes"], info["drops"]) == (packets, total, drops)
    assert info["consumer"] == (posted[0] if posted else info["producer"])


def test_bad_packets_and_dma_errors():
    """A packet marked bad is dropped and counted without using a buffer; a failed descriptor
    read uses one descriptor and completes DMA_ERROR; a failed data write completes DMA_ERROR
    (after the statuses of all the packet's writes); a disabled queue drops."""
    rng = random.Random(2)
    failing = set()

    def errors(address, length):
        hit = any(address <= f < address + length for f in failing)
        return DmaError.COMPLETION if hit else None

    h = Harness(128, count=2, rng=rng, read_errors=errors, write_errors=errors)
    ring = DescriptorRing(h.memory, 3)
    cq_ring = CompletionRing(h.memory, 3)
    result = {}
    payload = bytes(rng.randrange(256) for _ in range(3000))

    async def step(ctx, driver, sizes, *, fail_descriptor=None, fail_buffer=None, bad=False):
        first = ring.producer
        for size in sizes:
            h.post(0, ring, size)
        if fail_descriptor is not None:
            failing.add(ring.address_of(first + fail_descriptor))
        if fail_buffer is not None:
            failing.add(h.buffers[0, first + fail_buffer][0])
        await driver.doorbell(RX, 0, ring.producer)
        await ctx.tick().repeat(20)
        await h.send(ctx, 0, payload, bad=bad)

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=3)
        await driver.configure(RX, 0, base=ring.base, log_size=3)
        await step(ctx, driver, [2048, 2048], bad=True)  # no completion; buffers stay
        await ctx.tick().repeat(100)
        result["bad_drops"] = ctx.get(h.dut.rxq.bad_drops)
        await h.send(ctx, 0, payload)  # uses the two buffers the bad packet left
        await step(ctx, driver, [1024, 4096], fail_buffer=1)
        await step(ctx, driver, [4096], fail_descriptor=0)
        while len(cq_ring.received) < 3:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        await driver.doorbell(CQ, 0, cq_ring.consumer)
        await driver.disable(RX, 0)
        await h.send(ctx, 0, b"dropped: queue disabled")
        await ctx.tick().repeat(100)
        result["info"] = await driver.read(RX, 0)

    h.run([host])
    S = CompletionStatus
    assert result["bad_drops"] == 1
    assert [(c.index, c.status, c.length, c.descriptors) for c in cq_ring.received] == [
        (0, S.OK.value, 3000, 2), (2, S.DMA_ERROR.value, 3000, 2),
        (4, S.DMA_ERROR.value, 3000, 1)]
    address, _ = h.buffers[0, 0]
    assert h.memory.read(address, 2048) == payload[:2048]
    address, _ = h.buffers[0, 2]
    assert h.memory.read(address, 1024) == payload[:1024]  # the write that did not fail
    info = result["info"]
    assert info["consumer"] == 5 and info["enable"] == 0
    assert (info["packets"], info["bytes"], info["drops"]) == (3, 3000 + 3000, 1)


def test_bad_doorbell_and_recovery():
    rng = random.Random(4)
    h = Harness(64, count=2, rng=rng)
    ring = DescriptorRing(h.memory, 2, start=65534)
    cq_ring = CompletionRing(h.memory, 2)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=2)
        await driver.configure(RX, 1, base=ring.base, log_size=2, producer=65534)
        await driver.doorbell(RX, 1, 65534 + 5)  # five buffers in a four-entry ring
        await ctx.tick().repeat(20)
        result["bad"] = await driver.read(RX, 1)
        result["count"] = await driver.counter("bad_doorbells")
        await h.send(ctx, 1, b"no queue")
        await ctx.tick().repeat(100)
        result["reads"] = len(h.reader.log)
        await driver.configure(RX, 1, base=ring.base, log_size=2, producer=65534)
        h.post(1, ring, 64)
        await driver.doorbell(RX, 1, ring.producer)
        await ctx.tick().repeat(20)
        await h.send(ctx, 1, b"after recovery")
        while not cq_ring.received:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        result["after"] = await driver.read(RX, 1)

    h.run([host])
    assert result["bad"]["error"] == QueueError.BAD_INDEX.value
    assert result["bad"]["enable"] == 0 and result["count"] == 1
    assert result["reads"] == 0
    entry = cq_ring.received[0]
    assert (entry.index, entry.length, entry.status) == (65534, 14, 0)
    assert h.memory.read(h.buffers[1, 65534][0], 14) == b"after recovery"
    assert result["after"]["drops"] == 1 and result["after"]["error"] == 0
    assert result["after"]["consumer"] == 65535
