"""cocotb tests of the generated Mac10GPtp Verilog: PTP timestamps against cocotbext-eth times.

The time inputs are driven by cocotbext-eth's ``PtpClockSimTime``, so a timestamp is a
simulation time. The expected values are cocotbext-eth's own ``sim_time_sfd`` of each frame: the
time at which ``XgmiiSink`` samples the first octet after the SFD (see amnic.mac.ptp for why
that is the IEEE 1588 message timestamp point at the XGMII). On receive, the
``XgmiiSource`` stamps the clock edge that *launches* that octet, one period before the MAC
samples it; the tests check both relations, and a second ``XgmiiSink`` watching ``xgmii_rxd``
gives the sampled time directly.

Works for either time format and with or without a transmit tag: both are read from the port
widths of the model.
"""

import random
import zlib
from fractions import Fraction

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from cocotbext.eth import PtpClockSimTime, XgmiiFrame, XgmiiSink, XgmiiSource

from amnic.sim.frames import build_frame

PERIOD_PS = 6400  # 156.25 MHz, 10GBASE-R
STATION = 0x020000ABCDEF
# A timestamp has 2**-16 ns resolution; PtpClockSimTime truncates to it and the MAC rounds its
# offset to it, so a timestamp is within two units of the exact time.
TOLERANCE_PS = Fraction(2 * 1000, 1 << 16)
PAUSE_DEST = bytes.fromhex("0180c2000001")


def ts_to_ps(value, ts_width):
    """A raw timestamp (96-bit time of day or 64-bit 48.16 ns) in picoseconds, exactly."""
    value = int(value)
    fns = Fraction(value & 0xFFFF, 1 << 16)
    if ts_width == 96:
        ns = (value >> 16) & 0xFFFFFFFF
        assert ns < 10**9, f"nanoseconds field out of range: {ns}"
        return ((value >> 48) * 10**9 + ns + fns) * 1000
    return ((value >> 16) + fns) * 1000


def is_control(payload):
    """A MAC Control frame (Length/Type 0x8808)."""
    return bytes(payload[12:14]) == b"\x88\x08"


def pause_frame(seq):
    """A 60-octet PAUSE frame with pause time 0 (it changes nothing, but the MAC drops it)."""
    return (PAUSE_DEST + bytes([2, 0, 0, 0, 0, seq & 0xFF]) + b"\x88\x08\x00\x01\x00\x00"
            ).ljust(60, b"\0")


class TimestampMonitor:
    """Records every ``tx_timestamp`` transfer (the stream has no tready)."""

    def __init__(self, dut, clock, ts_width):
        self.records = []  # (timestamp, tag)
        self._dut = dut
        self._clock = clock
        self._ts_width = ts_width
        cocotb.start_soon(self._run())

    async def _run(self):
        mask = (1 << self._ts_width) - 1
        while True:
            await RisingEdge(self._clock)
            if self._dut.tx_timestamp_tvalid.value:
                word = int(self._dut.tx_timestamp_tdata.value)
                self.records.append((word & mask, word >> self._ts_width))


class Tb:
    def __init__(self, dut):
        self.dut = dut
        self.ts_width = len(dut.tx_ptp_ts)
        self.tag_width = len(dut.s_axis_tx_tuser) - 1
        self.flow_control = hasattr(dut, "pause_req")
        Clock(dut.tx_clk, PERIOD_PS, unit="ps").start()
        Clock(dut.rx_clk, PERIOD_PS, unit="ps").start()
        self.axis_tx = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_tx"), dut.tx_clk,
                                       dut.tx_rst)
        self.axis_rx = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_rx"), dut.rx_clk,
                                     dut.rx_rst)
        self.xgmii_sink = XgmiiSink(dut.xgmii_txd, dut.xgmii_txc, dut.tx_clk, dut.tx_rst)
        self.xgmii_source = XgmiiSource(dut.xgmii_rxd, dut.xgmii_rxc, dut.rx_clk, dut.rx_rst)
        # Passive: samples rxd like the MAC does.
        self.rx_monitor = XgmiiSink(dut.xgmii_rxd, dut.xgmii_rxc, dut.rx_clk, dut.rx_rst)
        field = "ts_tod" if self.ts_width == 96 else "ts_rel"
        PtpClockSimTime(**{field: dut.tx_ptp_ts}, clock=dut.tx_clk)
        PtpClockSimTime(**{field: dut.rx_ptp_ts}, clock=dut.rx_clk)
        self.timestamps = TimestampMonitor(dut, dut.tx_clk, self.ts_width)
        dut.ifg.value = 12
        dut.max_frame.value = 1518
        if self.flow_control:
            dut.station_addr.value = STATION
            dut.pause_req.value = 0
            dut.pfc_req.value = 0
            dut.pause_quanta.value = 0xFFFF
            dut.refresh_cycles.value = 0xFFFF * 8 // 2
            for name in ("tx_pause_enable", "tx_pfc_enable", "rx_pause_enable",
                         "rx_pfc_enable"):
                getattr(dut, name).value = 1

    async def reset(self):
        self.dut.tx_rst.value = 1
        self.dut.rx_rst.value = 1
        await ClockCycles(self.dut.tx_clk, 4)
        self.dut.tx_rst.value = 0
        self.dut.rx_rst.value = 0
        await ClockCycles(self.dut.tx_clk, 4)

    @staticmethod
    def rx_beats(frame):
        """(bad, timestamp) of the beats of a received AxiStreamFrame (one entry when all beats
        carry the same ``tuser``, as the sink then reports a single value)."""
        tuser = frame.tuser if isinstance(frame.tuser, list) else [frame.tuser]
        return [(int(u) & 1, int(u) >> 1) for u in tuser]


def lane_counts(frames):
    return {lane: sum(f.start_lane == lane for f in frames) for lane in (0, 4)}


@cocotb.test()
async def tx_timestamps(dut):
    """Every frame from tx gets one timestamp, in order, with its tag, equal to the
    XgmiiSink's SFD time, for lane-0 and lane-4 starts, queued back to back or with gaps,
    with PAUSE frames from the MAC in between (they get none)."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(20)
    count = 160
    sent = []  # (payload, tag)

    async def toggle_pause():
        while True:
            await ClockCycles(dut.tx_clk, rng.randrange(20, 300))
            dut.pause_req.value = 1 - int(dut.pause_req.value)

    toggler = cocotb.start_soon(toggle_pause()) if tb.flow_control else None
    for seq in range(count):
        size = rng.choice([rng.randrange(1, 61), rng.randrange(60, 130),
                           rng.randrange(130, 700), 1514])
        data = build_frame(size, rng, seq)
        tag = rng.getrandbits(tb.tag_width) if tb.tag_width else 0
        sent.append((data, tag))
        await tb.axis_tx.send(AxiStreamFrame(data, tuser=tag << 1))
        if rng.random() < 0.25:
            await tb.axis_tx.wait()
            await ClockCycles(dut.tx_clk, rng.randrange(1, 12))

    wire = []
    control = 0
    while len(wire) < count:
        frame = await tb.xgmii_sink.recv()
        assert frame.check_fcs()
        if is_control(frame.get_payload()):
            control += 1
        else:
            wire.append(frame)
    if toggler:
        toggler.cancel()
    await ClockCycles(dut.tx_clk, 20)
    while not tb.xgmii_sink.empty():
        assert is_control(tb.xgmii_sink.recv_nowait().get_payload())
        control += 1

    records = tb.timestamps.records
    assert len(records) == count, f"{len(records)} timestamps for {count} frames"
    for n, ((data, tag), frame, (ts, ts_tag)) in enumerate(zip(sent, wire, records)):
        assert bytes(frame.get_payload())[:len(data)] == data, f"frame {n} differs"
        assert ts_tag == tag, f"frame {n}: tag {ts_tag:#x}, sent {tag:#x}"
        error = ts_to_ps(ts, tb.ts_width) - frame.sim_time_sfd
        assert abs(error) <= TOLERANCE_PS, (
            f"frame {n} (lane {frame.start_lane}): timestamp off by {float(error)} ps")
    lanes = lane_counts(wire)
    assert lanes[0] > 10 and lanes[4] > 10, lanes
    if tb.flow_control:
        assert control >= 4, f"only {control} PAUSE frames were interleaved"


@cocotb.test()
async def rx_timestamps(dut):
    """Each delivered frame carries its own SFD time on every beat, with frames back to back
    at gaps down to 5 octets, lane-0 and lane-4 starts, runts, bad FCS, and frames that start
    but are not delivered (bad preamble, MAC Control) in between."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(21)
    count = 240
    on_wire = []  # every frame the source sent, as sent (with its times), in order
    expected = []  # (index on the wire, payload, bad) of the frames the MAC should deliver

    def sent(frame):
        on_wire.append(frame)

    for seq in range(count):
        kind = rng.choices(["good", "runt", "fcs", "preamble", "control"],
                           weights=[10, 3, 2, 1, 1])[0]
        size = rng.choice([rng.randrange(60, 130), rng.randrange(130, 600), 1514])
        if kind == "runt":
            size = rng.choice([rng.randrange(1, 9), rng.randrange(9, 60)])
        payload = bytes(rng.getrandbits(8) for _ in range(size))
        if kind == "control":
            payload = pause_frame(seq)
        wire = bytearray(b"\x55" * 7 + b"\xd5" + payload
                         + zlib.crc32(payload).to_bytes(4, "little"))
        if kind == "fcs":
            wire[-1] ^= 0x20
        if kind == "preamble":
            wire[rng.randrange(1, 7)] ^= 0x08
        if kind in ("good", "runt", "fcs"):
            expected.append((seq, payload, kind != "good"))
        elif kind == "control" and not tb.flow_control:
            expected.append((seq, payload, False))
        tb.xgmii_source.ifg = rng.choice([5, 6, 7, 8, 9, 10, 11, 12, 12, 12, 13, 20])
        await tb.xgmii_source.send(XgmiiFrame(bytes(wire), tx_complete=sent))

    received = []
    for _ in expected:
        received.append(await tb.axis_rx.recv())
    await tb.xgmii_source.wait()
    await ClockCycles(dut.rx_clk, 20)
    assert tb.axis_rx.empty(), "more frames delivered than expected"

    monitored = []
    while not tb.rx_monitor.empty():
        monitored.append(tb.rx_monitor.recv_nowait())
    assert len(on_wire) == count and len(monitored) == count
    for src, mon in zip(on_wire, monitored):
        # The monitor samples one edge after the source launches.
        assert mon.sim_time_sfd == src.sim_time_sfd + PERIOD_PS, (mon, src)

    for n, ((k, payload, bad), frame) in enumerate(zip(expected, received)):
        assert bytes(frame.tdata) == payload, f"frame {n} differs"
        beats = tb.rx_beats(frame)
        assert beats[-1][0] == bad, f"frame {n}: bad flag {beats[-1][0]}, expected {bad}"
        stamps = {ts for _, ts in beats}
        assert len(stamps) == 1, f"frame {n}: the timestamp changes within the frame"
        ts_ps = ts_to_ps(stamps.pop(), tb.ts_width)
        error = ts_ps - monitored[k].sim_time_sfd
        assert abs(error) <= TOLERANCE_PS, (
            f"frame {n} (lane {on_wire[k].start_lane}): timestamp off by {float(error)} ps")
    lanes = lane_counts([on_wire[k] for k, _, _ in expected])
    assert lanes[0] > 10 and lanes[4] > 10, lanes
    assert sum(len(p) < 8 for _, p, _ in expected) > 3, "too few of the shortest runts"


@cocotb.test()
async def both_directions_back_to_back(dut):
    """Line-rate traffic in both directions at once: minimum-size frames queued back to back
    (the transmitter's minimum gap with the deficit idle count), the same on receive."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(22)
    count = 120
    tx_sent = [bytes(rng.getrandbits(8) for _ in range(rng.choice([60, 61, 62, 63, 64, 65])))
               for _ in range(count)]
    rx_sent = [bytes(rng.getrandbits(8) for _ in range(rng.choice([60, 61, 62, 63, 64, 65])))
               for _ in range(count)]
    tb.xgmii_source.ifg = 12
    for data in tx_sent:
        tb.axis_tx.send_nowait(AxiStreamFrame(data, tuser=0))
    for data in rx_sent:
        tb.xgmii_source.send_nowait(XgmiiFrame.from_payload(data))
    wire = [await tb.xgmii_sink.recv() for _ in tx_sent]
    received = [await tb.axis_rx.recv() for _ in rx_sent]
    await ClockCycles(dut.tx_clk, 20)
    monitored = [tb.rx_monitor.recv_nowait() for _ in rx_sent]

    gaps = [(b.sim_time_start - a.sim_time_end) // (PERIOD_PS // 8)
            for a, b in zip(wire, wire[1:])]
    assert max(gaps) <= 15, "transmit frames were not back to back"
    records = tb.timestamps.records
    assert len(records) == count
    for frame, (ts, _) in zip(wire, records):
        assert abs(ts_to_ps(ts, tb.ts_width) - frame.sim_time_sfd) <= TOLERANCE_PS
    for data, frame, mon in zip(rx_sent, received, monitored):
        assert bytes(frame.tdata) == data
        stamps = {ts for _, ts in tb.rx_beats(frame)}
        assert len(stamps) == 1
        assert abs(ts_to_ps(stamps.pop(), tb.ts_width) - mon.sim_time_sfd) <= TOLERANCE_PS
    assert min(lane_counts(wire).values()) > 10 and min(lane_counts(monitored).values()) > 10
