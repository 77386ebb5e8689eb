"""RegisterFile: each access type behaves as the register description says, against a model."""

from amnic.csr import Access, Register, RegisterBlock, fourcc, version
from amnic.csr.file import RegisterFile
from amnic.sim.csr_bus import bus_read, bus_write, read_register, write_register
from amnic.sim.stream_tb import simulate

BLOCK = RegisterBlock("scratch", fourcc("TEST"), version(1, 2), [
    Register("config", 0x10, Access.RW, "A setting.", init=0x1234_5678),
    Register("wide", 0x18, Access.RW, "A 64-bit setting.", width=64),
    Register("command", 0x20, Access.WO, "A command word."),
    Register("level", 0x24, Access.RO, "A value the core drives."),
    Register("events", 0x28, Access.W1C, "Sticky event bits."),
    Register("start", 0x2C, Access.W1S, "Start bits, cleared by the core when done."),
    Register("pending", 0x30, Access.RC, "Cleared by reading."),
    Register("counter", 0x38, Access.RO, "A 64-bit value the core drives.", width=64),
], "A block exercising every access type.")


def test_register_file_access_types():
    dut = RegisterFile(BLOCK)
    seen = {"written": 0, "read": 0}

    async def watch(ctx):
        async for _, _, written, read in ctx.tick().sample(dut.written.command, dut.read.pending):
            seen["written"] += written
            seen["read"] += read

    async def bench(ctx):
        bus = dut.bus
        # Header and reset values.
        assert await read_register(ctx, bus, BLOCK["type_id"]) == fourcc("TEST")
        assert await read_register(ctx, bus, BLOCK["version"]) == version(1, 2)
        assert await read_register(ctx, bus, BLOCK["size"]) == BLOCK.size
        assert await read_register(ctx, bus, BLOCK["config"]) == 0x1234_5678
        assert ctx.get(dut.value.config) == 0x1234_5678
        # RW with byte enables.
        assert not await bus_write(ctx, bus, 0x10, 0xAABB_CCDD, wstrb=0b0101)
        assert await read_register(ctx, bus, BLOCK["config"]) == 0x12BB_56DD
        await write_register(ctx, bus, BLOCK["wide"], 0x0102_0304_0506_0708)
        assert ctx.get(dut.value.wide) == 0x0102_0304_0506_0708
        assert await read_register(ctx, bus, BLOCK["wide"]) == 0x0102_0304_0506_0708
        # RW loaded by the core wins over a bus write in the same cycle.
        ctx.set(dut.load.config, 0xCAFE)
        ctx.set(dut.load_en.config, 1)
        await ctx.tick()
        ctx.set(dut.load_en.config, 0)
        assert await read_register(ctx, bus, BLOCK["config"]) == 0xCAFE
        # WO: strobe once, reads as 0.
        await bus_write(ctx, bus, 0x20, 77)
        assert ctx.get(dut.value.command) == 77
        assert await bus_read(ctx, bus, 0x20) == (0, 0)
        # RO follows the core; writes ignored.
        ctx.set(dut.status.level, 99)
        await bus_write(ctx, bus, 0x24, 5)
        assert await bus_read(ctx, bus, 0x24) == (99, 0)
        # W1C: core sets, software clears by writing 1; a set in the clearing cycle survives.
        ctx.set(dut.set.events, 0b1010)
        await ctx.tick()
        ctx.set(dut.set.events, 0)
        assert await bus_read(ctx, bus, 0x28) == (0b1010, 0)
        await bus_write(ctx, bus, 0x28, 0b0010)
        assert await bus_read(ctx, bus, 0x28) == (0b1000, 0)
        # W1S: software sets, core clears.
        await bus_write(ctx, bus, 0x2C, 0b11)
        assert ctx.get(dut.value.start) == 0b11
        ctx.set(dut.clear.start, 0b01)
        await ctx.tick()
        ctx.set(dut.clear.start, 0)
        assert await bus_read(ctx, bus, 0x2C) == (0b10, 0)
        # RC: a read strobes `read`.
        ctx.set(dut.status.pending, 3)
        assert await bus_read(ctx, bus, 0x30) == (3, 0)
        # 64-bit RO: the low-word read latches the high word.
        ctx.set(dut.status.counter, 0x0000_0001_FFFF_FFFF)
        low, _ = await bus_read(ctx, bus, 0x38)
        ctx.set(dut.status.counter, 0x0000_0002_0000_0000)
        high, _ = await bus_read(ctx, bus, 0x3C)
        assert (high << 32 | low) == 0x0000_0001_FFFF_FFFF
        # Holes answer with an error.
        assert await bus_read(ctx, bus, 0x34) == (0, 1)
        assert await bus_write(ctx, bus, 0x34, 1) == 1
        await ctx.tick().repeat(2)
        assert seen == {"written": 1, "read": 1}

    simulate(dut, [bench], background=[watch])
