"""CRC-32 (IEEE 802.3 clause 3.2.9) against zlib: the bit-serial reference and the RTL."""

import random
import zlib

import pytest
from amaranth.sim import Simulator

from amnic.mac.crc import Crc32, crc32_update_reference
from amnic.mac.ieee802_3 import CRC32_RESIDUE


def test_reference_matches_zlib():
    rng = random.Random(1)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 200))
        assert crc32_update_reference(0xFFFFFFFF, data) ^ 0xFFFFFFFF == zlib.crc32(data)


def test_residue_of_a_good_frame():
    data = random.Random(2).randbytes(60)
    frame = data + zlib.crc32(data).to_bytes(4, "little")
    assert crc32_update_reference(0xFFFFFFFF, frame) == CRC32_RESIDUE


@pytest.mark.parametrize("width", [8, 32, 64])
def test_rtl_matches_zlib(width):
    lanes = width // 8
    dut = Crc32(width)
    rng = random.Random(width)
    messages = [rng.randbytes(rng.randrange(1, 100)) for _ in range(40)]

    async def bench(ctx):
        for msg in messages:
            words = [msg[i:i + lanes] for i in range(0, len(msg), lanes)]
            for j, word in enumerate(words):
                ctx.set(dut.clear, j == 0)
                ctx.set(dut.valid, 1)
                ctx.set(dut.data, int.from_bytes(word.ljust(lanes, b"\xa5"), "little"))
                ctx.set(dut.count, len(word))
                if j == len(words) - 1:
                    assert ctx.get(dut.next) ^ 0xFFFFFFFF == zlib.crc32(msg), msg.hex()
                await ctx.tick()
            # count 0 leaves the state alone
            ctx.set(dut.clear, 0)
            ctx.set(dut.count, 0)
            assert ctx.get(dut.next) ^ 0xFFFFFFFF == zlib.crc32(msg)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
