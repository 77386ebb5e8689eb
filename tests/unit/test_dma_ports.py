# amaranth: UnusedElaboratable=no
"""DmaReadMux / DmaWriteMux: several clients share one engine; every client gets exactly its own
data and statuses, in its own command order, whatever the interleaving."""

import random

import pytest
from amaranth.sim import Simulator

from amnic.dma.commands import DmaError
from amnic.dma.ports import DmaReadMux, DmaWriteMux

WIDTH = 256
LANES = WIDTH // 8


def beats(data):
    """Packed beats of ``data``: (data, keep, last)."""
    out = []
    for start in range(0, len(data), LANES):
        chunk = data[start:start + LANES]
        out.append((int.from_bytes(chunk, "little"), (1 << len(chunk)) - 1,
                    start + LANES >= len(data)))
    return out


def memory_bytes(address, length):
    return bytes((address + i * 7) & 0xFF for i in range(length))


async def send_stream(ctx, port, items, rng, gap=0.3):
    for payload in items:
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)
        while rng.random() < gap:
            await ctx.tick()


async def take_stream(ctx, port, count, rng, ready=0.7):
    got = []
    while len(got) < count:
        r = rng.random() < ready
        ctx.set(port.ready, r)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        if r and valid:
            got.append(payload)
    ctx.set(port.ready, 0)
    return got


def commands(rng, client, count):
    return [{"address": rng.randrange(1 << 20), "length": rng.randrange(1, 200),
             "id": client << 8 | n} for n in range(count)]


@pytest.mark.parametrize("clients", [1, 3])
def test_read_mux_routes_data_and_status(clients):
    rng = random.Random(clients)
    dut = DmaReadMux(WIDTH, clients, outstanding=4)
    cmds = [commands(rng, k, 25) for k in range(clients)]
    engine_queue = []
    results = {}

    async def engine_cmd(ctx):
        while True:
            ctx.set(dut.engine.cmd.ready, rng.random() < 0.6)
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.engine.cmd.valid, dut.engine.cmd.ready, dut.engine.cmd.payload)
            if valid and ready:
                engine_queue.append((payload.address, payload.length, payload.id))

    async def engine_answer(ctx):
        while True:
            if not engine_queue:
                await ctx.tick()
                continue
            address, length, ident = engine_queue.pop(0)
            data = memory_bytes(address, length)
            await send_stream(ctx, dut.engine.data, [
                {"data": d, "keep": k, "last": last} for d, k, last in beats(data)], rng)
            error = DmaError.TIMEOUT if ident % 5 == 0 else DmaError.OK
            await send_stream(ctx, dut.engine.status, [{"id": ident, "error": error}], rng)

    def client(k):
        port = getattr(dut, f"c{k}")

        async def issue(ctx):
            await send_stream(ctx, port.cmd, cmds[k], rng, gap=0.5)

        async def collect_data(ctx):
            data = bytearray()
            nbeats = sum(len(beats(memory_bytes(c["address"], c["length"]))) for c in cmds[k])
            for beat in await take_stream(ctx, port.data, nbeats, rng):
                data += beat.data.to_bytes(LANES, "little")[:bin(beat.keep).count("1")]
            results[k, "data"] = bytes(data)

        async def collect_status(ctx):
            got = await take_stream(ctx, port.status, len(cmds[k]), rng)
            results[k, "status"] = [(s.id, s.error) for s in got]
        return issue, collect_data, collect_status

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(engine_cmd, background=True)
    sim.add_testbench(engine_answer, background=True)
    for k in range(clients):
        for bench in client(k):
            sim.add_testbench(bench)
    sim.run()
    for k in range(clients):
        expected = b"".join(memory_bytes(c["address"], c["length"]) for c in cmds[k])
        assert results[k, "data"] == expected
        assert results[k, "status"] == [
            (c["id"], DmaError.TIMEOUT if c["id"] % 5 == 0 else DmaError.OK) for c in cmds[k]]


@pytest.mark.parametrize("clients", [1, 3])
def test_write_mux_takes_each_clients_data_in_order(clients):
    rng = random.Random(10 + clients)
    dut = DmaWriteMux(WIDTH, clients, outstanding=4)
    cmds = [commands(rng, k, 25) for k in range(clients)]
    written = []  # (id, address, bytes) in engine order
    statuses = {k: [] for k in range(clients)}

    async def engine(ctx):
        while True:
            got = await take_stream(ctx, dut.engine.cmd, 1, rng, ready=0.6)
            cmd = got[0]
            data = bytearray()
            while True:
                beat = (await take_stream(ctx, dut.engine.data, 1, rng))[0]
                data += beat.data.to_bytes(LANES, "little")[:bin(beat.keep).count("1")]
                if beat.last:
                    break
            assert len(data) == cmd.length
            written.append((cmd.id, cmd.address, bytes(data)))
            await send_stream(ctx, dut.engine.status, [{"id": cmd.id, "error": DmaError.OK}],
                              rng)

    def client(k):
        port = getattr(dut, f"c{k}")

        async def issue(ctx):
            await send_stream(ctx, port.cmd, cmds[k], rng, gap=0.5)

        async def feed(ctx):
            for c in cmds[k]:
                data = bytes([c["id"] & 0xFF]) * c["length"]
                await send_stream(ctx, port.data, [
                    {"data": d, "keep": kp, "last": last} for d, kp, last in beats(data)], rng)

        async def collect(ctx):
            got = await take_stream(ctx, port.status, len(cmds[k]), rng)
            statuses[k] = [s.id for s in got]
        return issue, feed, collect

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(engine, background=True)
    for k in range(clients):
        for bench in client(k):
            sim.add_testbench(bench)
    sim.run()
    assert len(written) == sum(len(c) for c in cmds)
    for ident, address, data in written:
        k, n = ident >> 8, ident & 0xFF
        assert address == cmds[k][n]["address"]
        assert data == bytes([ident & 0xFF]) * cmds[k][n]["length"]
    for k in range(clients):
        assert statuses[k] == [c["id"] for c in cmds[k]]
        assert [i for i, _, _ in written if i >> 8 == k] == [c["id"] for c in cmds[k]]


def test_read_buffer_never_stalls_the_engine():
    """A client that stops taking data for long stretches: the engine's data and status are
    never refused (commands wait instead), and the client still gets everything in order."""
    from amnic.dma.ports import ReadBuffer

    rng = random.Random(3)
    dut = ReadBuffer(WIDTH, 16, statuses=4)
    cmds = commands(rng, 0, 40)
    queue, got, statuses = [], [], []

    async def engine(ctx):
        while True:
            ctx.set(dut.engine.cmd.ready, 1)
            _, _, valid, payload = await ctx.tick().sample(dut.engine.cmd.valid,
                                                            dut.engine.cmd.payload)
            if valid:
                queue.append((payload.address, payload.length, payload.id))

    async def engine_answer(ctx):
        while True:
            if not queue:
                await ctx.tick()
                continue
            address, length, ident = queue.pop(0)
            for d, k, last in beats(memory_bytes(address, length)):
                ctx.set(dut.engine.data.payload, {"data": d, "keep": k, "last": last})
                ctx.set(dut.engine.data.valid, 1)
                _, _, ready = await ctx.tick().sample(dut.engine.data.ready)
                assert ready, "the buffer refused engine data"
                ctx.set(dut.engine.data.valid, 0)
            ctx.set(dut.engine.status.payload, {"id": ident, "error": DmaError.OK})
            ctx.set(dut.engine.status.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.engine.status.ready)
            assert ready, "the buffer refused a status"
            ctx.set(dut.engine.status.valid, 0)

    async def client(ctx):
        await send_stream(ctx, dut.client.cmd, cmds, rng, gap=0.0)

    async def client_data(ctx):
        total = sum(len(beats(memory_bytes(c["address"], c["length"]))) for c in cmds)
        while len(got) < total:
            if rng.random() < 0.05:  # long pauses
                ctx.set(dut.client.data.ready, 0)
                await ctx.tick().repeat(60)
            got.extend(await take_stream(ctx, dut.client.data, 1, rng, ready=0.5))

    async def client_status(ctx):
        statuses.extend(s.id for s in await take_stream(ctx, dut.client.status, len(cmds), rng))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(engine, background=True)
    sim.add_testbench(engine_answer, background=True)
    for bench in (client, client_data, client_status):
        sim.add_testbench(bench)
    sim.run()
    data = b"".join(b.data.to_bytes(LANES, "little")[:bin(b.keep).count("1")] for b in got)
    assert data == b"".join(memory_bytes(c["address"], c["length"]) for c in cmds)
    assert statuses == [c["id"] for c in cmds]
