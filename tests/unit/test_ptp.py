"""PTP timestamp capture (amnic.mac.ptp) in the Amaranth simulator, against exact arithmetic.

The reference turns a time value into an exact number of nanoseconds (a Fraction), adds the
SFD offset worked out from first principles (/S/ is octet 0, the SFD octet 7, the timestamp
point octet 8; a lane-4 start is 4 octets later; an octet is an eighth of a clock period) and
normalises it back with divmod, so it shares no code with the RTL's compare-and-subtract carry.
"""

import random
from fractions import Fraction

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from amnic.mac.mac_10g_ptp import Mac10GPtp, RxPtpUser, TxPtpUser, TxTimestamp
from amnic.mac.ptp import (
    PtpTimestampCapture,
    sfd_offset_fns,
    sfd_offset_octets,
    timestamp_layout,
    timestamp_width,
)

UNIT = Fraction(1, 1 << 16)  # ns per least significant bit of the timestamps
SECOND = 10**9


def to_ns(value, ts_format):
    """A raw timestamp as an exact number of ns (seconds folded in for tod96)."""
    fns = value & 0xFFFF
    if ts_format == "tod96":
        ns = (value >> 16) & 0xFFFFFFFF
        seconds = value >> 48
        return seconds * SECOND + ns + fns * UNIT
    return (value >> 16) + fns * UNIT


def from_ns(t, ts_format):
    """An exact time in ns (a multiple of UNIT) as a raw timestamp, wrapping like the format."""
    units = t / UNIT
    assert units.denominator == 1
    units = int(units)
    if ts_format == "tod96":
        seconds, rest = divmod(units, SECOND << 16)
        return (seconds % (1 << 48)) << 48 | rest
    return units % (1 << 64)


def reference(tod, lane4, ts_format, period):
    """The expected timestamp: tod plus the exact offset, rounded to the nearest unit."""
    octets = 8 + 4 * lane4
    exact = to_ns(tod, ts_format) + Fraction(period) * octets / 8
    rounded = to_ns(tod, ts_format) + round((exact - to_ns(tod, ts_format)) / UNIT) * UNIT
    assert abs(rounded - exact) <= UNIT / 2
    return from_ns(rounded, ts_format)


def random_tod(rng, ts_format):
    """A valid time, often just below a nanosecond, second or counter wrap."""
    fns = rng.choice([rng.randrange(1 << 16), 0xFFFF, 0, 0xFFF0 + rng.randrange(16)])
    if ts_format == "tod96":
        ns = rng.choice([rng.randrange(SECOND), SECOND - 1, SECOND - 1 - rng.randrange(16),
                         rng.randrange(16)])
        seconds = rng.choice([rng.randrange(1 << 48), (1 << 48) - 1, 0, rng.randrange(100)])
        return seconds << 48 | ns << 16 | fns
    ns = rng.choice([rng.randrange(1 << 48), (1 << 48) - 1 - rng.randrange(16)])
    return ns << 16 | fns


def test_offsets_from_first_principles():
    assert sfd_offset_octets(0) == 8
    assert sfd_offset_octets(1) == 12
    # 6.4 ns: 8 octets = 6.4 ns = 419430.4 units, 12 octets = 9.6 ns = 629145.6 units.
    assert sfd_offset_fns("6.4", 0) == 419430
    assert sfd_offset_fns("6.4", 1) == 629146
    assert sfd_offset_fns(6.4, 1) == 629146
    # 25GBASE-R, 2.56 ns: 167772.16 and 251658.24 units.
    assert sfd_offset_fns("2.56", 0) == 167772
    assert sfd_offset_fns("2.56", 1) == 251658
    with pytest.raises(ValueError):
        sfd_offset_octets(4)
    with pytest.raises(ValueError):
        PtpTimestampCapture("tod80")
    with pytest.raises(ValueError):
        PtpTimestampCapture("tod96", period_ns=0)


def test_layouts():
    assert timestamp_width("tod96") == 96 and timestamp_width("ns64") == 64
    tod = timestamp_layout("tod96")
    assert tod.as_shape()["seconds"].offset == 48 and tod.as_shape()["ns"].offset == 16
    assert RxPtpUser("tod96").size == 97 and RxPtpUser("ns64").size == 65
    assert TxPtpUser(16).size == 17
    assert TxTimestamp("tod96", 16).size == 112 and TxTimestamp("ns64", 0).size == 64


@pytest.mark.parametrize("ts_format,period", [
    ("tod96", "6.4"), ("ns64", "6.4"), ("tod96", "2.56"), ("ns64", "2.56"),
])
def test_capture(ts_format, period):
    """Random starts (often in consecutive cycles) at times next to every rollover."""
    rng = random.Random(f"ptp-{ts_format}-{period}")
    dut = PtpTimestampCapture(ts_format, period)
    cycles = 600
    stimulus = []  # (start, lane, tod) applied in each cycle
    for _ in range(cycles):
        start = rng.random() < 0.5
        stimulus.append((int(start), rng.randrange(2), random_tod(rng, ts_format)))
    stimulus += [(0, 0, 0)] * (PtpTimestampCapture.LATENCY + 1)
    observed = {}  # cycle -> raw timestamp while valid

    async def bench(ctx):
        for cycle, (start, lane, tod) in enumerate(stimulus):
            # Garbage on tod/lane without start must not matter.
            ctx.set(dut.start, start)
            ctx.set(dut.start_lane, lane)
            ctx.set(dut.tod, tod)
            await ctx.tick()
            if ctx.get(dut.timestamp.valid):
                observed[cycle + 1] = ctx.get(dut.timestamp.payload.as_value())

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    expected = {}
    for cycle, (start, lane, tod) in enumerate(stimulus):
        if start:
            expected[cycle + PtpTimestampCapture.LATENCY] = reference(tod, lane, ts_format,
                                                                      Fraction(period))
    assert len(expected) > cycles // 3
    assert observed.keys() == expected.keys(), "timestamps not exactly LATENCY after start"
    for cycle, value in expected.items():
        assert observed[cycle] == value, (cycle, hex(observed[cycle]), hex(value))
    if ts_format == "tod96":
        carried = sum(((v >> 48) != (stimulus[c - 2][2] >> 48)) for c, v in expected.items())
        assert carried > 20, "too few nanosecond carries into the seconds were exercised"


def test_tod96_rollover_cases():
    """Hand-picked carries: ns into seconds, fns into ns, seconds wrap at 2**48."""
    dut = PtpTimestampCapture("tod96", "6.4")
    cases = [
        # (tod, lane4, expected)
        ((5 << 48) | ((SECOND - 3) << 16) | 0x0000, 0, (6 << 48) | (3 << 16) | 0x6666),
        ((5 << 48) | ((SECOND - 7) << 16) | 0xFFFF, 1, (6 << 48) | (3 << 16) | 0x9999),
        ((5 << 48) | ((SECOND - 7) << 16) | 0x0000, 0, (5 << 48) | ((SECOND - 1) << 16) | 0x6666),
        ((((1 << 48) - 1) << 48) | ((SECOND - 1) << 16), 0, (5 << 16) | 0x6666),
        ((0 << 48) | (0 << 16) | 0xCCCC, 1, (10 << 16) | 0x6666),
    ]
    got = []

    async def bench(ctx):
        for tod, lane, _ in cases:
            ctx.set(dut.start, 1)
            ctx.set(dut.start_lane, lane)
            ctx.set(dut.tod, tod)
            await ctx.tick()
            if ctx.get(dut.timestamp.valid):
                got.append(ctx.get(dut.timestamp.payload.as_value()))
        ctx.set(dut.start, 0)
        for _ in range(PtpTimestampCapture.LATENCY):
            await ctx.tick()
            if ctx.get(dut.timestamp.valid):
                got.append(ctx.get(dut.timestamp.payload.as_value()))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # 6.4 ns = 6 ns + 0x6666.6 units, 9.6 ns = 9 ns + 0x9999.A units (rounded up to 0x999A).
    for (tod, lane, want), value in zip(cases, got, strict=True):
        assert value == want, (hex(value), hex(want))
        assert value == reference(tod, lane, "tod96", Fraction("6.4"))


def test_mac_ptp_ports():
    """Port widths, and every Mac10G port forwarded under its own name."""
    mac = Mac10GPtp(ts_format="tod96", tag_width=8)
    for name in ("xgmii", "ifg", "max_frame", "tx_status", "rx_status", "tx_start", "rx_start",
                 "station_addr", "pause_req", "rx_flow"):
        assert name in mac.signature.members, name
    Fragment.get(mac, None)
    assert len(mac.tx.payload.user) == 9
    assert len(mac.rx.payload.user) == 97
    assert len(mac.tx_ptp_ts) == 96 and len(mac.rx_ptp_ts) == 96
    assert len(mac.tx_timestamp.payload.as_value()) == 104
    mac64 = Mac10GPtp(ts_format="ns64", tag_width=0, flow_control=False)
    assert len(mac64.rx.payload.user) == 65 and len(mac64.tx.payload.user) == 1
    assert "pause_req" not in mac64.signature.members
    Fragment.get(mac64, None)
