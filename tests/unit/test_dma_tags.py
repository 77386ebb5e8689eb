"""lowest_set, the free-tag (and pending-vector) picker: against Python on every 6-bit value and
on random 256-bit ones."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from amnic.dma.tags import lowest_set


def expected(value):
    return (value & -value).bit_length() - 1 if value else None


@pytest.mark.parametrize("width", [1, 5, 6, 256])
def test_lowest_set(width):
    m = Module()
    bits = Signal(width)
    found, index = lowest_set(m, bits)
    found_sig, index_sig = Signal(), Signal(max(1, len(index)))
    m.d.comb += [found_sig.eq(found), index_sig.eq(index)]
    rng = random.Random(width)
    values = (range(1 << width) if width <= 6 else
              [0, 1, 1 << (width - 1)] + [rng.getrandbits(width) >> rng.randrange(width)
                                          for _ in range(300)])

    async def bench(ctx):
        for value in values:
            ctx.set(bits, value)
            found, index = ctx.get(found_sig), ctx.get(index_sig)
            assert (index if found else None) == expected(value), value

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
