# amaranth: UnusedElaboratable=no
"""RxQueues with QueueRegisters and CompletionQueues, against host rings in a memory model
(amnic.sim.dma_rings): many queues with ring and index wrap, drops for a queue without buffers
while the others keep receiving, packets scattered over several buffers, truncation, bad
descriptors, bad packets, DMA errors, bad doorbells; descriptor prefetch for many interleaved
queues, queues reconfigured or disabled while their descriptors are cached or being read, and
descriptor read errors among other reads in flight."""

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
    pack_descriptor,
    rx_placement,
)
from amnic.sim.stream_tb import put_packet, simulate

RX, CQ = QueueKind.RX, QueueKind.CQ


class Top(Elaboratable):
    def __init__(self, width, count, cqs=2, fifo_bytes=4096, **options):
        self.regs = QueueRegisters(tx_queues=1, rx_queues=count, completion_queues=cqs)
        self.rxq = RxQueues(width, count, fifo_bytes=fifo_bytes, **options)
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
                 fifo_bytes=4096, read_latency=20, **options):
        self.width = width
        self.rng = rng
        self.dut = Top(width, count, fifo_bytes=fifo_bytes, **options)
        self.memory = HostMemory(1 << 22)
        self.reader = DmaReadModel(self.dut.rxq.read, self.memory, width, rng,
                                   latency=read_latency, errors=read_errors)
        self.writer = DmaWriteModel(self.dut.rxq.write, self.memory, width, rng, latency=20,
                                    errors=write_errors)
        self.cq_writer = DmaWriteModel(self.dut.cq.write, self.memory, width, rng, latency=20)
        self.buffers = {}  # (queue, descriptor index) -> (address, size)
        # [command cycle, address, status cycle (None until then), error] of each descriptor read
        self.reads = []
        self.held = []  # (first, end) address ranges: reads starting there wait (hold_reads)
        self.cycle = 0

    def run(self, benches, max_cycles=200_000):
        simulate(self.dut, benches, background=self.reader.benches() + self.writer.benches()
                 + self.cq_writer.benches() + [self.watch_reads, self.hold_reads],
                 max_cycles=max_cycles)

    async def watch_reads(self, ctx):
        """Log every descriptor read: its command's cycle and address, its status's cycle and
        error."""
        read = self.dut.rxq.read
        waiting = []
        async for _, _, cv, cr, address, sv, sr, error in ctx.tick().sample(
                read.cmd.valid, read.cmd.ready, read.cmd.payload.address, read.status.valid,
                read.status.ready, read.status.payload.error):
            if sv and sr:
                waiting[0][2:] = [self.cycle, error]
                waiting.pop(0)
            if cv and cr:
                self.reads.append([self.cycle, address, None, None])
                waiting.append(self.reads[-1])
            self.cycle += 1

    async def hold_reads(self, ctx):
        """Keep the data of a read whose address is in ``held`` from starting (and so every
        read behind it) until its range is removed."""
        never = 1 << 62
        while True:
            await ctx.tick()
            for k, (due, address, length, ident) in enumerate(self.reader.commands):
                held = any(first <= address < end for first, end in self.held)
                if held and due < never:
                    self.reader.commands[k] = (never, address, length, ident)
                elif not held and due == never:
                    self.reader.commands[k] = (self.reader.now, address, length, ident)

    def reads_of(self, ring):
        """The logged reads of ``ring``'s descriptors."""
        end = ring.base + ring.size * 16
        return [r for r in self.reads if ring.base <= r[1] < end]

    def max_in_flight(self, rings=None):
        """Most reads (of ``rings``' descriptors, of distinct rings) in flight at one time."""
        def ring_of(address):
            return _ring_of(rings, address)

        most = 0
        for start, *_ in self.reads:
            open_reads = [r for r in self.reads
                          if r[0] <= start and (r[2] is None or r[2] > start)]
            if rings is None:
                most = max(most, len(open_reads))
            else:
                most = max(most, len({ring_of(r[1]) for r in open_reads} - {None}))
        return most

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


@pytest.mark.parametrize("width", [pytest.param(64, marks=pytest.mark.soak), 256, 512])
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


def _ring_of(rings, address):
    """Index of the ring of ``rings`` holding ``address`` (None if none does)."""
    return next((k for k, ring in enumerate(rings)
                 if ring.base <= address < ring.base + ring.size * 16), None)


def _expected(packets, posted, count, dropping):
    """What the queues do with ``packets`` ((queue, payload) in order), given the buffer sizes
    ``posted`` per queue (all posted beforehand) and the queues ``dropping`` (disabled or
    without buffers): per queue the completions (index offset from the ring start, takes,
    status), the drops, and the unqueued packets."""
    done = {q: [] for q in posted}
    drops = {q: 0 for q in list(posted) + list(dropping)}
    used = {q: 0 for q in posted}
    unqueued = 0
    for q, payload in packets:
        if q >= count:
            unqueued += 1
        elif q in dropping or used[q] == len(posted[q]):
            drops[q] += 1
        else:
            takes, status = rx_placement(len(payload), posted[q][used[q]:])
            done[q].append((used[q], takes, status, payload))
            used[q] += len(takes)
    return done, drops, unqueued


@pytest.mark.parametrize("width, options", [
    (64, {}), (256, {}), (512, {}),
    (128, {"cache_entries": 2, "lookahead": 3}),  # the placer's reads evict counted entries
])
def test_interleaved_queues_prefetch(width, options):
    """Packets for 11 queues (more than the descriptor cache has entries), in a shuffled round
    robin and sent back to back, with descriptor reads taking 100 cycles: reads for several
    queues are in flight at once; buffers of 64 to 2048 bytes, so packets span several buffers
    and batches; a queue that runs out of buffers, one without buffers and a disabled one (with
    buffers posted) drop their packets without holding up the others and without a descriptor
    read. Every completion, byte and statistic as :func:`rx_placement` says."""
    rng = random.Random(10 + width)
    count = 16
    h = Harness(width, count, rng, fifo_bytes=32768, read_latency=100, **options)
    sizes = {**{q: [2048] for q in range(4)}, **{q: [128, 256] for q in range(4, 8)},
             8: [64], 9: [64, 1000], 10: [2048]}
    short, empty, disabled, unknown = 10, 12, 13, 40
    packets = []
    for _ in range(6):
        turn = list(sizes) + [empty, disabled]
        rng.shuffle(turn)
        packets += [(q, rng.randbytes(rng.randrange(1, 601))) for q in turn]
    first = next(k for k, (q, _) in enumerate(packets) if q == 8)
    packets[first] = (8, rng.randbytes(600))  # ten 64-byte buffers: more than one batch
    packets.insert(30, (unknown, b"no such queue"))
    rings = {q: DescriptorRing(h.memory, 7, start=rng.choice([0, 65500])) for q in sizes}
    rings[empty] = DescriptorRing(h.memory, 3)
    rings[disabled] = DescriptorRing(h.memory, 3)
    posted = {}
    for q, choices in sizes.items():
        need = sum(len(p) for queue, p in packets if queue == q) + 2048
        posted[q] = []
        while sum(posted[q]) < need and len(posted[q]) < 120:
            posted[q].append(rng.choice(choices))
    posted[short] = [2048] * 3
    expected, drops, unqueued = _expected(packets, posted, count, {empty, disabled})
    assert drops[short] > 0 and any(len(takes) > 8 for done in expected.values()
                                    for _, takes, _, _ in done)
    cq_ring = CompletionRing(h.memory, 7)
    result = {}

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 1, base=cq_ring.base, log_size=7)
        for q, ring in rings.items():
            for size in posted.get(q, [2048] if q == disabled else []):
                h.post(q, ring, size)
            await driver.configure(RX, q, base=ring.base, log_size=ring.log_size, cq=1,
                                   enable=q != disabled, producer=ring.producer,
                                   consumer=ring.start)
        await ctx.tick().repeat(10)
        sent = []  # (completes, FIFO bytes) of each packet sent
        lanes = width // 8
        completing = {id(p) for done in expected.values() for *_, p in done}
        for q, payload in packets:
            # Keep what waits in the receive FIFO (packets after the last one completed)
            # under 24 KB.
            while True:
                cq_ring.poll()
                completed = len(cq_ring.received)
                behind = [k for k, (completes, _) in enumerate(sent) if completes]
                first = behind[completed - 1] + 1 if completed else 0
                if sum(b for _, b in sent[first:]) < 24576:
                    break
                await ctx.tick().repeat(10)
            sent.append((id(payload) in completing, -(-len(payload) // lanes) * lanes))
            user = [q << 1] * -(-len(payload) // lanes)
            await put_packet(ctx, h.dut.rxq.rx, payload, user=user)
        total = sum(map(len, expected.values()))
        while len(cq_ring.poll()) or len(cq_ring.received) < total:
            await ctx.tick().repeat(20)
        await driver.doorbell(CQ, 1, cq_ring.consumer)
        await ctx.tick().repeat(200)
        result["info"] = {q: await driver.read(RX, q) for q in rings}
        result["unqueued"] = await driver.counter("rx_unqueued_drops")

    h.run([host], max_cycles=400_000)
    received = {q: [e for e in cq_ring.received if e.queue == q] for q in rings}
    for q, done in expected.items():
        ring = rings[q]
        assert [(e.index, e.descriptors, e.length, e.status) for e in received[q]] == [
            ((ring.start + first) & 0xFFFF, len(takes), len(payload), status.value)
            for first, takes, status, payload in done], q
        for first, takes, _, payload in done:
            offset = 0
            for k, take in enumerate(takes):
                address, size = h.buffers[q, (ring.start + first + k) & 0xFFFF]
                assert h.memory.read(address, take) == payload[offset:offset + take]
                assert h.memory.read(address + take, size + 8 - take) == b"\xA5" * (
                    size + 8 - take)
                offset += take
        info = result["info"][q]
        counted = [d for d in done if d[2] != CompletionStatus.BAD_DESCRIPTOR]
        assert (info["packets"], info["bytes"], info["drops"]) == (
            len(counted), sum(sum(takes) for _, takes, _, _ in counted), drops[q])
    for q in (empty, disabled):
        assert not received[q] and not h.reads_of(rings[q])
        assert result["info"][q]["drops"] == drops[q] > 0
    assert result["unqueued"] == unqueued == 1
    # Prefetch: reads for at least four queues (all entries) were in flight at one time.
    assert h.max_in_flight(list(rings.values())) >= min(4, options.get("cache_entries", 8))


async def _send_wait(ctx, h, cq_ring, queue, payload, completions=1):
    """Send a packet and wait for the completion entries it brings (none if dropped)."""
    before = len(cq_ring.received)
    await h.send(ctx, queue, payload)
    if not completions:
        await ctx.tick().repeat(200)
        cq_ring.poll()
        assert len(cq_ring.received) == before
        return None
    while len(cq_ring.received) < before + completions:
        cq_ring.poll()
        await ctx.tick().repeat(10)
    return cq_ring.received[-1]


def test_reconfigure_or_disable_while_cached_or_in_flight():
    """A queue's cached descriptors are not used after a configuration write (a new ring, or
    the same ring whose descriptors the host rewrote while the queue was off) or a doorbell
    that disabled it; a descriptor read in flight when its queue is reconfigured or disabled is
    taken and thrown away: the queue's next packet reads afresh, from the new ring."""
    rng = random.Random(7)
    h = Harness(256, 4, rng, read_latency=30)
    A, B = 1, 2
    cq_ring = CompletionRing(h.memory, 5)
    # A's rings, one per step, and B's. The completion model refuses an index seen before, so
    # they start at new indices, but for step 4's: its new ring has the indices of the one
    # whose read is in flight (so a batch of the old ring would be taken for the new one).
    rings = [DescriptorRing(h.memory, 3, start=start) for start in (0, 16, 32, 32, 64)]
    b_rings = [DescriptorRing(h.memory, 3, start=16 * k) for k in range(2)]
    state = {"configure": None, "configured": False}
    log = {}

    def payload():
        return rng.randbytes(rng.randrange(100, 1000))

    def untouched(key, index):
        address, size = h.buffers[key, index]
        return h.memory.read(address, size + 8) == b"\xA5" * (size + 8)

    def landed(entry, key, data):
        address, _ = h.buffers[key, entry.index]
        return (entry.status, entry.length) == (0, len(data)) and h.memory.read(
            address, len(data)) == data

    def rewrite(key, ring, index):
        """The host puts a new buffer in a descriptor the device has not used."""
        address = h.memory.alloc(2064)
        h.memory.write(address, b"\xA5" * 2056)
        h.memory.write(ring.address_of(index), pack_descriptor(address, 2048))
        h.buffers[key, index] = (address, 2048)

    async def configurer(ctx):  # the commands of steps 4 and 5
        for _ in range(2):
            while state["configure"] is None:
                await ctx.tick()
            await state["configure"](h.driver(ctx))
            state["configure"], state["configured"] = None, True

    async def in_flight(ctx, driver, a_ring, b_ring, change):
        """B's packet waits for its descriptor read while A's packet behind it has its read in
        flight; ``change`` (to A) comes during that, and A's read is held until after it."""
        h.held[:] = [(b_ring.base, b_ring.base + 128), (a_ring.base, a_ring.base + 128)]
        for ring, key in ((b_ring, B), (a_ring, (A, a_ring))):
            for _ in range(4):
                h.post(key, ring, 2048)
        for queue, ring in ((B, b_ring), (A, a_ring)):
            await driver.configure(RX, queue, base=ring.base, log_size=3,
                                   producer=ring.producer, consumer=ring.start)
        b_data, a_data = payload(), payload()
        await h.send(ctx, B, b_data)
        await h.send(ctx, A, a_data)
        while not (h.reads_of(a_ring) and h.reads_of(b_ring)):
            await ctx.tick()
        state["configure"], state["configured"] = change, False
        await ctx.tick().repeat(100)
        assert not state["configured"]  # the placer waits for B's descriptors
        h.held.pop(0)
        while not state["configured"]:
            await ctx.tick()
        assert h.reads_of(a_ring)[0][2] is None  # A's read is still in flight
        h.held.clear()
        return b_data, a_data

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=5)
        # 1. A's first packet leaves seven descriptors of its batch cached.
        for _ in range(8):
            h.post((A, 0), rings[0], 2048)
        await driver.configure(RX, A, base=rings[0].base, log_size=3, producer=8, consumer=0)
        data = payload()
        entry = await _send_wait(ctx, h, cq_ring, A, data)
        log["cached"] = (landed(entry, (A, 0), data), len(h.reads_of(rings[0])))
        # 2. Configured with another ring: its packet goes there.
        for _ in range(4):
            h.post((A, 1), rings[1], 2048)
        await driver.configure(RX, A, base=rings[1].base, log_size=3, producer=20,
                               consumer=16)
        data = payload()
        entry = await _send_wait(ctx, h, cq_ring, A, data)
        log["new ring"] = (entry.index, landed(entry, (A, 1), data), untouched((A, 0), 1))
        # 3. Disabled by a bad doorbell while descriptors 1..3 are cached: its packets drop;
        # the host rewrites descriptor 1 and configures the queue again: the new one is used.
        await driver.doorbell(RX, A, 20 + 9)
        await ctx.tick().repeat(20)
        await _send_wait(ctx, h, cq_ring, A, payload(), completions=0)
        old = h.buffers[(A, 1), 17]
        rewrite((A, 1), rings[1], 17)
        await driver.configure(RX, A, base=rings[1].base, log_size=3, producer=20,
                               consumer=17)
        data = payload()
        entry = await _send_wait(ctx, h, cq_ring, A, data)
        log["bad doorbell"] = (entry.index, landed(entry, (A, 1), data),
                               h.memory.read(old[0], 8) == b"\xA5" * 8,
                               (await driver.read(RX, A))["drops"])

        # 4. Reconfigured while its read is in flight: the packet goes to the new ring.
        for _ in range(4):
            h.post((A, 3), rings[3], 2048)

        async def reconfigure(drv):
            await drv.configure(RX, A, base=rings[3].base, log_size=3, producer=36,
                                consumer=32)

        b_data, a_data = await in_flight(ctx, driver, rings[2], b_rings[0], reconfigure)
        while len(cq_ring.poll()) or len(cq_ring.received) < 5:
            await ctx.tick().repeat(10)
        b_entry, a_entry = cq_ring.received[-2:]
        log["reconfigured in flight"] = (
            (b_entry.queue, a_entry.queue, a_entry.index), landed(b_entry, B, b_data),
            landed(a_entry, (A, 3), a_data), untouched((A, rings[2]), 32),
            len(h.reads_of(rings[2])), len(h.reads_of(rings[3])))

        # 5. Disabled while its read is in flight: the packet drops; configured again after
        # the host rewrote descriptor 0, the new descriptor is used.
        async def disable(drv):  # one command (QueueDriver.disable reads first)
            await drv.configure(RX, A, base=rings[4].base, log_size=3, enable=False,
                                producer=68, consumer=64)

        b_data, a_data = await in_flight(ctx, driver, rings[4], b_rings[1], disable)
        while len(cq_ring.poll()) or len(cq_ring.received) < 6:
            await ctx.tick().repeat(10)
        b_entry = cq_ring.received[-1]
        await ctx.tick().repeat(200)
        drops = (await driver.read(RX, A))["drops"]
        old = h.buffers[(A, rings[4]), 64]
        rewrite((A, rings[4]), rings[4], 64)
        await driver.configure(RX, A, base=rings[4].base, log_size=3, producer=68,
                               consumer=64)
        data = payload()
        entry = await _send_wait(ctx, h, cq_ring, A, data)
        log["disabled in flight"] = (
            landed(b_entry, B, b_data), drops, entry.index, landed(entry, (A, rings[4]), data),
            h.memory.read(old[0], 8) == b"\xA5" * 8, len(h.reads_of(rings[4])))
        log["completions"] = len(cq_ring.received)

    h.run([host, configurer], max_cycles=100_000)
    assert log["cached"] == (True, 1)
    assert log["new ring"] == (16, True, True)
    assert log["bad doorbell"] == (17, True, True, 1)
    assert log["reconfigured in flight"] == ((B, A, 32), True, True, True, 1, 1)
    assert log["disabled in flight"] == (True, 2, 64, True, True, 2)
    assert log["completions"] == 7


def test_descriptor_read_errors_among_reads_in_flight():
    """Descriptor reads that fail while reads for other queues are in flight: the packet that
    reaches the failed batch completes DMA_ERROR having used one descriptor, the queue's next
    packet reads its descriptors again from the next one (failing again while the failed
    descriptor is in what it reads), and the other queues are not affected."""
    rng = random.Random(9)
    rings = {}
    failing = {}  # queue -> descriptor index whose read fails

    def errors(address, length):
        for q, index in failing.items():
            if address <= rings[q].address_of(index) < address + length:
                return DmaError.COMPLETION
        return None

    h = Harness(128, 4, rng, read_errors=errors, read_latency=60, fifo_bytes=32768)
    for q in range(4):
        rings[q] = DescriptorRing(h.memory, 4)
    failing.update({0: 0, 1: 8, 2: 3})
    cq_ring = CompletionRing(h.memory, 6)
    result = {}
    packets = [(q, rng.randbytes(rng.randrange(100, 400))) for _ in range(10) for q in range(4)]

    async def host(ctx):
        driver = h.driver(ctx)
        await driver.configure(CQ, 0, base=cq_ring.base, log_size=6)
        for q, ring in rings.items():
            for _ in range(10):
                h.post(q, ring, 2048)
            await driver.configure(RX, q, base=ring.base, log_size=4, producer=10, consumer=0)
        for q, data in packets:
            await h.send(ctx, q, data)
        while len(cq_ring.poll()) or len(cq_ring.received) < len(packets):
            await ctx.tick().repeat(20)
        await ctx.tick().repeat(100)
        result["info"] = {q: await driver.read(RX, q) for q in rings}

    h.run([host])
    S = CompletionStatus
    errors_at = {0: {0}, 1: {8}, 2: {0, 1, 2, 3}, 3: set()}
    for q in rings:
        got = [e for e in cq_ring.received if e.queue == q]
        data = [p for queue, p in packets if queue == q]
        assert [(e.index, e.descriptors, e.status) for e in got] == [
            (i, 1, (S.DMA_ERROR if i in errors_at[q] else S.OK).value) for i in range(10)], q
        for e, payload in zip(got, data):
            address, _ = h.buffers[q, e.index]
            written = h.memory.read(address, len(payload))
            assert (written == payload) == (e.status == S.OK.value)
        info = result["info"][q]
        assert (info["consumer"], info["packets"], info["drops"]) == (10, 10, 0)
        assert info["bytes"] == sum(len(p) for p, e in zip(data, got) if e.status == 0)
    # The first failed read of each queue (a prefetch) was in flight with a read for another
    # queue.
    ring_list = list(rings.values())
    failed = [r for r in h.reads if r[3] != DmaError.OK]
    assert len(failed) == 6  # queue 0: 1, queue 1: 1, queue 2: 4
    for q in (0, 1, 2):
        start, address, end, _ = next(r for r in failed if _ring_of(ring_list, r[1]) == q)
        assert any(r[0] < end and r[2] > start and _ring_of(ring_list, r[1]) != q
                   for r in h.reads)
