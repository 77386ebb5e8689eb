"""Drive a register bus from an Amaranth simulator testbench (simulation only, not hardware).

These coroutines act as the bus initiator described in :mod:`amnic.csr.bus`; pass the
testbench context and the target's bus interface (``dut.bus``). Offsets are byte offsets, as in
a :class:`~amnic.csr.regmap.RegisterBlock`.
"""

__all__ = [
    "RegisterBusError", "bus_read", "bus_write", "read_register", "write_register",
    "SimulatorBackend",
]


class RegisterBusError(Exception):
    """The target answered with its error flag set."""


async def _access(ctx, bus, offset, write, wdata, wstrb, timeout):
    if offset % 4:
        raise ValueError(f"byte offset {offset:#x} is not word aligned")
    ctx.set(bus.addr, offset)
    ctx.set(bus.write, write)
    ctx.set(bus.wdata, wdata)
    ctx.set(bus.wstrb, wstrb)
    ctx.set(bus.valid, 1)
    for _ in range(timeout):
        _, _, ready, done, rdata, error = await ctx.tick().sample(
            bus.ready, bus.done, bus.rdata, bus.error)
        if ready:
            break
    else:
        raise TimeoutError(f"register bus request at {offset:#x} not taken")
    ctx.set(bus.valid, 0)
    for _ in range(timeout):
        if done:  # the response may come in the cycle the request is taken
            return rdata, error
        _, _, done, rdata, error = await ctx.tick().sample(bus.done, bus.rdata, bus.error)
    raise TimeoutError(f"no register bus response for {offset:#x}")


async def bus_read(ctx, bus, offset, *, timeout=64):
    """Read the word at byte ``offset``; returns ``(rdata, error)``."""
    return await _access(ctx, bus, offset, 0, 0, 0, timeout)


async def bus_write(ctx, bus, offset, value, *, wstrb=0xF, timeout=64):
    """Write ``value`` to the word at byte ``offset``; returns the response's error flag."""
    _, error = await _access(ctx, bus, offset, 1, value, wstrb, timeout)
    return error


async def read_register(ctx, bus, register):
    """Read a :class:`~amnic.csr.regmap.Register` (both words of a 64-bit one, low first).

    Raises :class:`RegisterBusError` if the target flags an error.
    """
    value = 0
    for half, offset in enumerate(register.words):
        word, error = await bus_read(ctx, bus, offset)
        if error:
            raise RegisterBusError(f"error reading {register.name} at {offset:#x}")
        value |= word << (32 * half)
    return value


async def write_register(ctx, bus, register, value):
    """Write a :class:`~amnic.csr.regmap.Register` (low word first); raises on error."""
    for half, offset in enumerate(register.words):
        if await bus_write(ctx, bus, offset, (value >> (32 * half)) & 0xFFFF_FFFF):
            raise RegisterBusError(f"error writing {register.name} at {offset:#x}")


class SimulatorBackend:
    """Register access from an Amaranth simulator testbench (``ctx``) over a register bus.

    Raises :class:`~amnic.sim.csr_bus.RegisterBusError` when the target flags an error.
    """

    def __init__(self, ctx, bus, *, base=0):
        self.ctx = ctx
        self.bus = bus
        self.base = base

    async def read(self, offset):
        rdata, error = await bus_read(self.ctx, self.bus, self.base + offset)
        if error:
            raise RegisterBusError(f"error reading offset {offset:#x}")
        return rdata

    async def write(self, offset, value):
        if await bus_write(self.ctx, self.bus, self.base + offset, value):
            raise RegisterBusError(f"error writing offset {offset:#x}")
