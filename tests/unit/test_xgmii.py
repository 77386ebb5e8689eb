"""10G XGMII transmitter and receiver in the Amaranth simulator against the Python wire model
(sim/xgmii_model.py) and zlib."""

import random

from amaranth.sim import Simulator

from amnic.mac.xgmii_rx import XgmiiReceiver
from amnic.mac.xgmii_tx import XgmiiTransmitter
from amnic.sim.stream_tb import put_packets
from amnic.sim.xgmii_model import decode, encode, fcs


def run_tx(packets, cycles, ifg=12):
    dut = XgmiiTransmitter()
    words = []

    async def source(ctx):
        ctx.set(dut.ifg, ifg)
        await put_packets(ctx, dut.i, [(p, 0) for p in packets])

    async def monitor(ctx):
        for _ in range(cycles):
            _, _, d, c = await ctx.tick().sample(dut.xgmii.txd, dut.xgmii.txc)
            words.append((d, c))

    sim = Simulator(dut)
    sim.add_clock(6.4e-9)
    sim.add_testbench(source, background=True)
    sim.add_testbench(monitor)
    sim.run()
    return decode(words)


def test_tx_frames_pad_fcs_and_dic():
    rng = random.Random(1)
    packets = [rng.randbytes(n) for n in list(range(1, 80)) + [1500] + [64, 65, 66, 67] * 10]
    frames = run_tx(packets, 4000)
    assert len(frames) == len(packets)
    for p, f in zip(packets, frames, strict=True):
        expected = p.ljust(60, b"\0")
        assert f.data == expected + fcs(expected) and f.preamble_ok and not f.errors
        assert f.start_lane in (0, 4)
    gaps = [b.start_byte - a.end_byte for a, b in zip(frames, frames[1:])]
    assert min(gaps) >= 9
    assert abs(sum(gaps) - 12 * len(gaps)) <= 3


def test_tx_larger_ifg_is_kept_on_average():
    rng = random.Random(2)
    packets = [rng.randbytes(rng.randrange(60, 200)) for _ in range(40)]
    frames = run_tx(packets, 2000, ifg=17)
    gaps = [b.start_byte - a.end_byte for a, b in zip(frames, frames[1:])]
    assert min(gaps) >= 14 and abs(sum(gaps) - 17 * len(gaps)) <= 3


def run_rx(words):
    """Drive ``words`` into a receiver; returns its delivered ``(bytes, user)`` frames and its
    status records."""
    dut = XgmiiReceiver()
    got, stats = [], []

    async def drive(ctx):
        for d, c in words:
            ctx.set(dut.xgmii.rxd, d)
            ctx.set(dut.xgmii.rxc, c)
            await ctx.tick()

    async def monitor(ctx):
        cur = b""
        while True:
            _, _, valid, beat, st_valid, st = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.status.valid, dut.status.payload)
            if valid:
                n = bin(beat.keep).count("1")
                assert beat.keep == (1 << n) - 1
                cur += beat.data.to_bytes(8, "little")[:n]
                if beat.last:
                    got.append((cur, beat.user))
                    cur = b""
            if st_valid:
                stats.append(st)

    sim = Simulator(dut)
    sim.add_clock(6.4e-9)
    sim.add_testbench(drive)
    sim.add_testbench(monitor, background=True)
    sim.run()
    return got, stats


def test_rx_frames_and_status():
    rng = random.Random(3)
    packets = [rng.randbytes(n) for n in [60] * 4 + list(range(1, 130)) + [1514, 1500, 9000]]
    words = encode([p + fcs(p) for p in packets],
                   gaps=[rng.choice([9, 10, 11, 12, 13, 20]) for _ in packets])
    got, stats = run_rx(words)
    assert len(got) == len(stats) == len(packets)
    for (data, user), p, st in zip(got, packets, stats, strict=True):
        length = len(p) + 4
        good = 64 <= length <= 1518
        assert st.good == good and st.runt == (length < 64) and st.oversize == (length > 1518)
        assert user == (not good)
        assert st.fcs_error == 0 and st.framing_error == 0
        if length <= 1518:
            assert data == p and st.length == length


def test_rx_badly_started_frames_report_no_length_or_flags():
    """A frame with a broken preamble and a misaligned /S/ (802.3 clause 46.3.1.2) each give
    one framing-error status with length 0 and no cast/VLAN flags, whatever came before."""
    tagged_broadcast = b"\xff" * 6 + bytes(range(6)) + b"\x81\x00\x00\x05\x08\x00" + bytes(100)
    follower = bytes(range(1, 61))
    frames = [tagged_broadcast, tagged_broadcast, follower]
    words = encode([p + fcs(p) for p in frames], gaps=[40, 40, 12], start_lanes=[0, 0, 0])
    starts = [i for i, (d, c) in enumerate(words) if c & 1 and d & 0xFF == 0xFB]
    d, c = words[starts[1]]
    words[starts[1]] = (d ^ (0xFF << 24), c)  # the second frame's preamble is broken
    gap = starts[2] - 2  # an idle word before the third frame: /S/ on lane 2
    d, c = words[gap]
    assert c == 0xFF
    words[gap] = (d & ~(0xFF << 16) | 0xFB << 16, c)
    _, stats = run_rx(words)
    assert len(stats) == 4
    first, broken, misaligned, last = stats
    assert first.good and first.broadcast and first.vlan and first.length == 122
    for st in (broken, misaligned):
        assert st.framing_error and not st.good
        assert (st.length, st.broadcast, st.multicast, st.vlan) == (0, 0, 0, 0)
    assert last.good and last.length == 64 and not last.broadcast and not last.vlan
