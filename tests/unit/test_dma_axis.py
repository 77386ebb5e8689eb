# amaranth: UnusedElaboratable=no
"""The hard-IP stream layouts and the adapters between them and the engine's TLP streams.

The widths are the ones cocotbext-pcie's UltraScale+ model asserts for each bus; the bit
positions are checked against the fields that model packs and unpacks (``tuser`` of a
``UsPcieTransaction``)."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from amnic.dma.axis import Bus, HardIpRx, HardIpTx, user_layout

MODEL_WIDTHS = {
    (Bus.RQ, 256): 62, (Bus.RQ, 512): 137, (Bus.RC, 256): 75, (Bus.RC, 512): 161,
    (Bus.CQ, 256): 88, (Bus.CQ, 512): 183, (Bus.CC, 256): 33, (Bus.CC, 512): 81,
}

# (bus, width, field, lowest bit) as cocotbext-pcie's interface.py places them.
MODEL_OFFSETS = [
    (Bus.RQ, 256, "last_be", 4), (Bus.RQ, 256, "discontinue", 11), (Bus.RQ, 256, "seq_num", 24),
    (Bus.RQ, 256, "parity", 28), (Bus.RQ, 256, "seq_num_hi", 60),
    (Bus.RQ, 512, "last_be", 8), (Bus.RQ, 512, "is_sop", 20), (Bus.RQ, 512, "is_sop_ptr", 22),
    (Bus.RQ, 512, "is_eop", 26), (Bus.RQ, 512, "is_eop_ptr", 28),
    (Bus.RQ, 512, "discontinue", 36), (Bus.RQ, 512, "seq_num", 61), (Bus.RQ, 512, "parity", 73),
    (Bus.RC, 256, "is_sof", 32), (Bus.RC, 256, "is_eof", 34), (Bus.RC, 256, "discontinue", 42),
    (Bus.RC, 256, "parity", 43),
    (Bus.RC, 512, "is_sop", 64), (Bus.RC, 512, "is_sop_ptr", 68), (Bus.RC, 512, "is_eop", 76),
    (Bus.RC, 512, "is_eop_ptr", 80), (Bus.RC, 512, "discontinue", 96),
    (Bus.RC, 512, "parity", 97),
    (Bus.CQ, 256, "byte_en", 8), (Bus.CQ, 256, "sop", 40), (Bus.CQ, 256, "discontinue", 41),
    (Bus.CQ, 256, "parity", 53),
    (Bus.CQ, 512, "last_be", 8), (Bus.CQ, 512, "byte_en", 16), (Bus.CQ, 512, "is_sop", 80),
    (Bus.CQ, 512, "is_sop_ptr", 82), (Bus.CQ, 512, "is_eop", 86),
    (Bus.CQ, 512, "is_eop_ptr", 88), (Bus.CQ, 512, "discontinue", 96),
    (Bus.CQ, 512, "parity", 119),
    (Bus.CC, 256, "discontinue", 0), (Bus.CC, 256, "parity", 1),
    (Bus.CC, 512, "is_sop", 0), (Bus.CC, 512, "is_eop", 6), (Bus.CC, 512, "is_eop_ptr", 8),
    (Bus.CC, 512, "discontinue", 16), (Bus.CC, 512, "parity", 17),
]


@pytest.mark.parametrize(("bus", "width"), list(MODEL_WIDTHS))
def test_user_widths_match_the_model(bus, width):
    assert user_layout(bus, width).size == MODEL_WIDTHS[bus, width]


@pytest.mark.parametrize(("bus", "width", "field", "offset"), MODEL_OFFSETS)
def test_user_field_offsets_match_the_model(bus, width, field, offset):
    assert user_layout(bus, width)[field].offset == offset


def test_bad_width_rejected():
    with pytest.raises(ValueError):
        user_layout(Bus.RQ, 128)
    with pytest.raises(ValueError):
        HardIpTx(Bus.CQ, 256)
    with pytest.raises(ValueError):
        HardIpRx(Bus.RQ, 256)


@pytest.mark.parametrize("width", [256, 512])
def test_tx_frames_tlps_and_rx_recovers_them(width):
    """RQ beats through HardIpTx: the tuser fields a model reads; the same beats through
    HardIpRx (as RC, tuser built like the model's RcSource): keep and last come back."""
    rng = random.Random(width)
    lanes = width // 32
    tlps = [rng.randint(1, 3 * lanes) for _ in range(30)]
    tx, rx = HardIpTx(Bus.RQ, width), HardIpRx(Bus.RC, width)
    seen = []

    async def bench(ctx):
        for n, dwords in enumerate(tlps):
            beats = -(-dwords // lanes)
            for b in range(beats):
                count = lanes if b < beats - 1 else dwords - b * lanes
                keep = (1 << count) - 1
                last = b == beats - 1
                ctx.set(tx.i.payload, {"data": n, "keep": keep, "last": last,
                                       "side": {"first_be": n & 15, "last_be": 15}})
                ctx.set(tx.i.valid, 1)
                ctx.set(tx.o.tready, 1)
                raw = ctx.get(tx.o.tuser.as_value())
                assert ctx.get(tx.o.tkeep) == keep and ctx.get(tx.o.tlast) == last
                assert raw & 15 == (n & 15)  # first_be (of segment 0 at 512 bit)
                if width == 512:
                    assert (raw >> 20) & 1 == (b == 0)  # is_sop[0]
                    assert (raw >> 26) & 1 == last  # is_eop[0]
                    if last:
                        assert (raw >> 28) & 15 == count - 1
                # The same beat as the hard IP would present it on RC.
                if width == 256:
                    ruser = (b == 0) << 32 | (last << 34 | (count - 1) << 35 if last else 0)
                else:
                    ruser = (b == 0) << 64 | (last << 76 | (count - 1) << 80 if last else 0)
                ctx.set(rx.i.tuser.as_value(), ruser)
                ctx.set(rx.i.tkeep, keep)
                ctx.set(rx.i.tlast, last)
                ctx.set(rx.i.tvalid, 1)
                ctx.set(rx.o.ready, 1)
                seen.append((ctx.get(rx.o.payload.keep), ctx.get(rx.o.payload.last)))
                assert seen[-1] == (keep, last)
                await ctx.tick()

    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == sum(-(-d // lanes) for d in tlps)
