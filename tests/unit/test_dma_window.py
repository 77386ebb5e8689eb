# amaranth: UnusedElaboratable=no
"""DmaReadWindow / DmaWriteWindow: transfers outside the address window never reach the engine;
they end in order with OUT_OF_WINDOW (reads with zero data), the rest pass untouched."""

import random
from types import SimpleNamespace

import pytest

from amnic.dma.commands import DmaError
from amnic.dma.window import DmaReadWindow, DmaWriteWindow, window_allows
from amnic.sim.dma_rings import DmaReadModel, DmaWriteModel, HostMemory
from amnic.sim.stream_tb import get, get_packet, put, put_packet, simulate

TOP = (1 << 64) - 1


def scenario(rng, memory, count, enable):
    """Window over the middle of ``memory``; commands inside, across either edge, outside,
    and near the top of the address space (refused without touching the 65-bit sum)."""
    lo = memory.base + 4096
    hi = memory.base + len(memory.data) - 4096 - 1
    window = SimpleNamespace(enable=enable, base=lo, limit=hi)
    cmds = []
    for n in range(count):
        length = rng.choice([1, 2, 31, 32, 33, 64, 100, 700, 2000])
        kind = rng.random()
        if kind < 0.5:
            address = rng.randrange(lo, hi - length + 2)
        elif kind < 0.65:
            address = lo - rng.randrange(1, min(length, 64) + 1)
        elif kind < 0.8:
            address = hi - length + 1 + rng.randrange(1, min(length, 64) + 1)
        elif kind < 0.9 or not enable:
            address = rng.choice([memory.base, memory.base + len(memory.data) - length])
        else:
            address = TOP - rng.randrange(0, length - 1) if length > 1 else TOP - 1
        cmds.append({"address": address, "length": length, "id": n})
    allowed = [window_allows(window, c["address"], c["length"]) for c in cmds]
    if not enable:
        assert all(allowed)
    return window, cmds, allowed


def command_bench(dut, window, cmds, rng, idle_prob):
    """A testbench that sets the window and offers ``cmds``."""
    async def commands(ctx):
        ctx.set(dut.window, {"enable": window.enable, "base": window.base,
                             "limit": window.limit})
        for cmd in cmds:
            await put(ctx, dut.client.cmd, cmd, idle_prob=idle_prob, rng=rng)
    return commands


@pytest.mark.parametrize("width", [64, 256])
@pytest.mark.parametrize("enable", [True, False])
def test_read_window(width, enable):
    rng = random.Random(width + enable)
    memory = HostMemory(1 << 16)
    memory.write(memory.base, rng.randbytes(len(memory.data)))
    window, cmds, allowed = scenario(rng, memory, 150, enable)
    dut = DmaReadWindow(width)
    engine = DmaReadModel(dut.engine, memory, width, rng, latency=20)
    got = {"data": [], "status": [], "refused": None}
    commands = command_bench(dut, window, cmds, rng, 0.3)

    async def data(ctx):
        for _ in cmds:
            payload, _ = await get_packet(ctx, dut.client.data, ready_prob=0.7, rng=rng)
            got["data"].append(payload)

    async def status(ctx):
        for _ in cmds:
            st = await get(ctx, dut.client.status, ready_prob=0.6, rng=rng)
            got["status"].append((st.id, st.error))
        for _ in range(4):
            await ctx.tick()
        got["refused"] = ctx.get(dut.refused)

    simulate(dut, [commands, data, status], background=engine.benches(), max_cycles=60_000)
    for cmd, ok, payload in zip(cmds, allowed, got["data"]):
        expected = memory.read(cmd["address"], cmd["length"]) if ok else bytes(cmd["length"])
        assert payload == expected, cmd
    assert got["status"] == [(c["id"], DmaError.OK if ok else DmaError.OUT_OF_WINDOW)
                             for c, ok in zip(cmds, allowed)]
    assert [(a, n) for a, n, _ in engine.log] == \
        [(c["address"], c["length"]) for c, ok in zip(cmds, allowed) if ok]
    assert got["refused"] == allowed.count(False)
    if enable:
        assert 0 < allowed.count(False) < len(cmds)


@pytest.mark.parametrize("width", [64, 512])
def test_write_window(width):
    rng = random.Random(width)
    memory = HostMemory(1 << 16)
    window, cmds, allowed = scenario(rng, memory, 150, True)
    dut = DmaWriteWindow(width)
    engine = DmaWriteModel(dut.engine, memory, width, rng, latency=20)
    payloads = [rng.randbytes(c["length"]) for c in cmds]
    got = {"status": [], "refused": None, "faults": []}
    commands = command_bench(dut, window, cmds, rng, 0.2)

    async def data(ctx):
        for payload in payloads:
            await put_packet(ctx, dut.client.data, payload, idle_prob=0.2, rng=rng)

    async def status(ctx):
        for _ in cmds:
            st = await get(ctx, dut.client.status, ready_prob=0.6, rng=rng)
            got["status"].append((st.id, st.error))
        got["refused"] = ctx.get(dut.refused)

    async def faults(ctx):
        async for _, _, fault, address in ctx.tick().sample(dut.fault, dut.fault_address):
            if fault:
                got["faults"].append(address)

    simulate(dut, [commands, data, status], background=engine.benches() + [faults],
             max_cycles=60_000)
    assert got["status"] == [(c["id"], DmaError.OK if ok else DmaError.OUT_OF_WINDOW)
                             for c, ok in zip(cmds, allowed)]
    assert got["faults"] == [c["address"] for c, ok in zip(cmds, allowed) if not ok]
    assert got["refused"] == allowed.count(False)
    # Memory holds exactly the allowed writes (later ones over earlier ones).
    expected = HostMemory(1 << 16)
    for cmd, ok, payload in zip(cmds, allowed, payloads):
        if ok:
            expected.write(cmd["address"], payload)
    size = len(memory.data)
    assert memory.read(memory.base, size) == expected.read(memory.base, size)
