# amaranth: UnusedElaboratable=no
"""CompletionQueues behind QueueRegisters, against the host ring model of amnic.sim.dma_rings:
entries land in order with the right phase across ring and index wrap, full and disabled rings
drop and count without stalling the others, bad doorbells stop a ring until it is reconfigured.
"""

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring

from amnic.dma.commands import DmaError
from amnic.dma.completions import CompletionQueues
from amnic.dma.queues import CompletionStatus, QueueError, QueueKind, QueueRegisters
from amnic.sim.csr_bus import SimulatorBackend
from amnic.sim.dma_rings import CompletionRing, DmaWriteModel, HostMemory, QueueDriver
from amnic.sim.stream_tb import get, put, simulate

CQ = QueueKind.CQ


class Top(Elaboratable):
    def __init__(self, width, count):
        self.regs = QueueRegisters(tx_queues=1, rx_queues=1, completion_queues=count)
        self.cq = CompletionQueues(width, count)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = self.regs
        m.submodules.cq = self.cq
        wiring.connect(m, self.regs.cq, self.cq.host)
        return m


def request(cq, queue, n, status=CompletionStatus.OK):
    return {"cq": cq, "queue": queue, "kind": n % 2, "status": status, "index": n & 0xFFFF,
            "length": (n * 97) % 9601}


def event_counter(dut, rng, events):
    async def bench(ctx):
        while True:
            cq = await get(ctx, dut.cq.events, ready_prob=0.7, rng=rng)
            events[cq] = events.get(cq, 0) + 1
    return bench


@pytest.mark.parametrize("width", [64, 256])
def test_entries_in_order_with_phase_across_wraps(width):
    rng = random.Random(width)
    dut = Top(width, count=8)
    memory = HostMemory()
    writer = DmaWriteModel(dut.cq.write, memory, width, rng, latency=20, ready=0.7)
    # CQ 5 starts just below the 16-bit wrap, so its indices pass 65535.
    rings = {0: CompletionRing(memory, 2), 3: CompletionRing(memory, 3),
             5: CompletionRing(memory, 1, start=65530)}
    per_ring = 40
    starts = {cq: ring.consumer for cq, ring in rings.items()}
    acked = {cq: 0 for cq in rings}  # entries the host has acknowledged with a doorbell
    sent = {cq: 0 for cq in rings}
    configured = []
    events = {}

    async def host(ctx):
        driver = QueueDriver(SimulatorBackend(ctx, dut.regs.bus))
        for cq, ring in rings.items():
            await driver.configure(CQ, cq, base=ring.base, log_size=ring.log_size,
                                   producer=ring.consumer, cq=cq + 10)
        configured.append(True)
        while sum(len(r.received) for r in rings.values()) < per_ring * len(rings):
            for cq, ring in rings.items():
                if ring.poll():
                    await driver.doorbell(CQ, cq, ring.consumer)
                    # Once the engine has surely taken the doorbell, the feeder may refill.
                    await ctx.tick().repeat(12)
                    acked[cq] = len(ring.received)
            await ctx.tick().repeat(rng.randrange(1, 10))
        for cq, ring in rings.items():
            info = await driver.read(CQ, cq)
            assert info["packets"] == per_ring and info["drops"] == 0
            assert info["producer"] == info["consumer"] == ring.consumer
            assert info["cq"] == cq + 10 and info["enable"] == 1
        await ctx.tick().repeat(100)

    async def feeder(ctx):
        while not configured:
            await ctx.tick()
        while any(n < per_ring for n in sent.values()):
            cq = rng.choice([c for c, n in sent.items() if n < per_ring])
            if sent[cq] - acked[cq] >= rings[cq].size:
                await ctx.tick()
                continue
            n = sent[cq]
            await put(ctx, dut.cq.entries, request(cq, cq * 3, starts[cq] + n),
                      idle_prob=0.3, rng=rng)
            sent[cq] += 1

    simulate(dut, [host, feeder], background=writer.benches() + [event_counter(dut, rng, events)],
             max_cycles=60_000)
    for cq, ring in rings.items():
        got = ring.received
        assert len(got) == per_ring
        for n, entry in enumerate(got):
            want = request(cq, cq * 3, starts[cq] + n)
            assert (entry.queue, entry.kind, entry.status, entry.index, entry.length) == (
                want["queue"], want["kind"], want["status"].value, want["index"],
                want["length"])
        assert events[cq] == per_ring
    # The start near 65530 made CQ 5's indices wrap and its 2-entry ring lap 20 times.
    assert rings[5].consumer == (65530 + per_ring) & 0xFFFF


def test_full_and_disabled_rings_drop_without_stalling_others():
    rng = random.Random(7)
    dut = Top(128, count=4)
    memory = HostMemory()
    writer = DmaWriteModel(dut.cq.write, memory, 128, rng, latency=30)
    small, busy, off = CompletionRing(memory, 2), CompletionRing(memory, 4), CompletionRing(
        memory, 2)
    events = {}
    result = {}

    async def host(ctx):
        driver = QueueDriver(SimulatorBackend(ctx, dut.regs.bus))
        await driver.configure(CQ, 0, base=small.base, log_size=2)
        await driver.configure(CQ, 1, base=busy.base, log_size=4)
        await driver.configure(CQ, 2, base=off.base, log_size=2, enable=False)
        # 10 entries for the 4-entry ring nobody consumes, 12 for ring 1, 3 for the disabled
        # ring 2 and 2 for a queue number beyond the count, interleaved.
        order = [0] * 10 + [1] * 12 + [2] * 3 + [9] * 2
        rng.shuffle(order)
        for n, cq in enumerate(order):
            await put(ctx, dut.cq.entries, request(cq, 1, n), idle_prob=0.2, rng=rng)
        await ctx.tick().repeat(300)
        result["small"] = await driver.read(CQ, 0)
        result["busy"] = await driver.read(CQ, 1)
        result["off"] = await driver.read(CQ, 2)
        result["unqueued"] = await driver.counter("cq_unqueued_drops")
        small.poll()
        busy.poll()
        off.poll()

    simulate(dut, [host], background=writer.benches() + [event_counter(dut, rng, events)],
             max_cycles=20_000)
    assert len(small.received) == 4 and len(busy.received) == 12 and not off.received
    assert (result["small"]["packets"], result["small"]["drops"]) == (4, 6)
    assert (result["busy"]["packets"], result["busy"]["drops"]) == (12, 0)
    assert (result["off"]["packets"], result["off"]["drops"]) == (0, 3)
    assert result["unqueued"] == 2
    assert events == {0: 4, 1: 12}
    # The full ring kept the first four entries, in order.
    assert [e.index for e in small.received] == sorted(e.index for e in small.received)


def test_bad_doorbell_stops_ring_until_reconfigured():
    rng = random.Random(3)
    dut = Top(64, count=2)
    memory = HostMemory()
    failing = {"on": False}
    writer = DmaWriteModel(dut.cq.write, memory, 64, rng, latency=10,
                           errors=lambda a, n: DmaError.TIMEOUT if failing["on"] else None)
    ring = CompletionRing(memory, 3)
    events = {}
    result = {}

    async def host(ctx):
        driver = QueueDriver(SimulatorBackend(ctx, dut.regs.bus))
        await driver.configure(CQ, 1, base=ring.base, log_size=3)
        for n in range(3):
            await put(ctx, dut.cq.entries, request(1, 4, n))
        await ctx.tick().repeat(100)
        ring.poll()
        # Consumer 5 with producer 3: producer - consumer wraps to 65534 > 8 entries.
        await driver.doorbell(CQ, 1, 5)
        await ctx.tick().repeat(10)
        result["bad"] = await driver.read(CQ, 1)
        result["count"] = await driver.counter("bad_doorbells")
        await put(ctx, dut.cq.entries, request(1, 4, 3))  # dropped: the ring is disabled
        await ctx.tick().repeat(50)
        result["dropped"] = await driver.read(CQ, 1)
        await driver.configure(CQ, 1, base=ring.base, log_size=3, producer=3)
        await put(ctx, dut.cq.entries, request(1, 4, 4))
        await ctx.tick().repeat(100)
        ring.poll()
        result["after"] = await driver.read(CQ, 1)
        failing["on"] = True
        await put(ctx, dut.cq.entries, request(1, 4, 5))
        await ctx.tick().repeat(100)
        result["write_errors"] = ctx.get(dut.cq.write_errors)

    simulate(dut, [host], background=writer.benches() + [event_counter(dut, rng, events)],
             max_cycles=20_000)
    assert result["bad"]["error"] == QueueError.BAD_INDEX.value
    assert result["bad"]["enable"] == 0 and result["count"] == 1
    assert result["dropped"]["drops"] == 1
    assert result["after"]["error"] == QueueError.NONE.value and result["after"]["enable"] == 1
    assert [e.index for e in ring.received] == [0, 1, 2, 4]
    assert result["write_errors"] == 1
    assert events == {1: 4}  # the failed write raised no event
