"""TagAllocator against a set of outstanding tags, with random allocation and frees."""

import random

import pytest

from amnic.dma.tags import TagAllocator
from amnic.sim.stream_tb import simulate


@pytest.mark.parametrize("tags", [32, 256])
def test_tags_are_unique_and_reused(tags):
    rng = random.Random(tags)
    dut = TagAllocator(tags)
    outstanding = set()
    log = {"allocs": 0, "bad": 0, "full_cycles": 0}

    async def bench(ctx):
        for _ in range(6 * tags):
            want = rng.random() < 0.6
            ctx.set(dut.alloc.ready, want)
            free = None
            if outstanding and rng.random() < 0.45:
                free = rng.choice(sorted(outstanding))
            elif rng.random() < 0.03:
                free = rng.choice([t for t in range(tags) if t not in outstanding] or [0])
            ctx.set(dut.free.valid, free is not None)
            ctx.set(dut.free.payload, free or 0)
            valid, tag, count = ctx.get(dut.alloc.valid), ctx.get(dut.alloc.payload), \
                ctx.get(dut.outstanding)
            assert count == len(outstanding)
            assert valid == (len(outstanding) < tags)
            if valid:
                assert tag not in outstanding
                assert tag == min(set(range(tags)) - outstanding)  # the lowest free one
            else:
                log["full_cycles"] += 1
            await ctx.tick()
            bad = free is not None and free not in outstanding
            assert ctx.get(dut.bad_free) == bad
            log["bad"] += bad
            outstanding.discard(free)
            if valid and want:
                outstanding.add(tag)
                log["allocs"] += 1
        assert log["allocs"] > tags and log["bad"] > 0

    simulate(dut, [bench], max_cycles=10 * tags)
