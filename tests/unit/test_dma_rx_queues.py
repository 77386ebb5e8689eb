# amaranth: UnusedElaboratable=no
"""RxQueues with QueueRegisters and CompletionQueues, against host rings in a memory model
(amnic.sim.dma_rings): many queues with ring and index wrap, drops for a queue without buffers
while the others keep receiving, truncation, bad descriptors, DMA errors, bad doorbells."""

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
)
from amnic.sim.stream_tb import put_packet, simulate

RX, CQ = QueueKind.RX, QueueKind.CQ


class Top(Elaboratable):
    def __init__(self, width, count, cqs=2):
        self.regs = QueueRegisters(tx_queues=1, rx_queues=count, completion_queues=cqs)
        self.rxq = RxQueues(width, count, fifo_bytes=4096)
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
    def __init__(self, width, count, rng, *, read_errors=None, write_errors=None):
        self.width = width
        self.rng = rng
        self.dut = Top(width, count)
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

    async def send(self, ctx, queue, payload):
        await put_packet(ctx, self.dut.rxq.rx, payload,
                         user=[queue] * -(-len(payload) // (self.width // 8)),
                         idle_prob=0.1, rng=self.rng)


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


def test_truncation_bad_descriptors_and_dma_errors():
    rng = random.Random(2)
    failing = set()

    def errors(address, length):
        return DmaError.COMPLETION if address in failing else None

    h = Harness(128, count=2, rng=rng, read_errors=errors, write_errors=errors)
    ring = DescriptorRing(h.memory, 3)
    cq_ring = CompletionRing(h.memory, 3)
    packets = [bytes(rng.randrange(256) for _ in range(n)) for n in (300, 50, 60, 70, 80)]
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=3)
        await driver.configure(RX, 0, base=ring.base, log_size=3)
        h.post(0, ring, 100)  # truncates the 300-byte packet
        ring.post(h.memory.alloc(64), 0)  # zero length: bad descriptor
        failing.add(ring.address_of(ring.producer))
        h.post(0, ring, 200)  # its descriptor read fails
        bad = h.post(0, ring, 200)  # the data write fails
        failing.add(h.buffers[0, bad][0])
        h.post(0, ring, 200)
        await driver.doorbell(RX, 0, ring.producer)
        await ctx.tick().repeat(20)
        for payload in packets:
            await h.send(ctx, 0, payload)
        while len(cq_ring.received) < 5:
            cq_ring.poll()
            await ctx.tick().repeat(20)
        await driver.disable(RX, 0)
        await h.send(ctx, 0, b"dropped: queue disabled")
        await ctx.tick().repeat(100)
        result["info"] = await driver.read(RX, 0)

    h.run([host])
    S = CompletionStatus
    assert [(c.index, c.status, c.length) for c in cq_ring.received] == [
        (0, S.TRUNCATED.value, 300), (1, S.BAD_DESCRIPTOR.value, 50),
        (2, S.DMA_ERROR.value, 60), (3, S.DMA_ERROR.value, 70), (4, S.OK.value, 80)]
    address, _ = h.buffers[0, 0]
    assert h.memory.read(address, 108) == packets[0][:100] + b"\xA5" * 8
    address, _ = h.buffers[0, 4]
    assert h.memory.read(address, 80) == packets[4]
    info = result["info"]
    assert info["consumer"] == 5 and info["enable"] == 0
    assert (info["packets"], info["bytes"], info["drops"]) == (4, 180, 2)


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
