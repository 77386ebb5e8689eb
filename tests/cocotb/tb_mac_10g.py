"""cocotb tests of the generated 10G MAC Verilog against cocotbext-eth and cocotbext-axi models."""

import os
import random
import shutil
import subprocess
import zlib

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from cocotbext.eth import XgmiiFrame, XgmiiSink, XgmiiSource

from amnic.mac.status import RxStatus, TxStatus
from amnic.sim.frames import build_frame, decode_status, write_pcap
from amnic.sim.xgmii_model import encode

PERIOD_PS = 6400  # 156.25 MHz, 10GBASE-R
STATION = 0x020000ABCDEF
SIZES = list(range(1, 129)) + [256, 512, 1500, 9000]


class StatusMonitor:
    """Collects the per-frame status records of one direction."""

    def __init__(self, dut, prefix, clock, layout):
        self.records = []
        self._valid = getattr(dut, f"{prefix}_tvalid")
        self._data = getattr(dut, f"{prefix}_tdata")
        self._clock = clock
        self._layout = layout
        cocotb.start_soon(self._run())

    async def _run(self):
        # Records are one-cycle pulses at least a frame apart: wake only on their edges.
        while True:
            await RisingEdge(self._valid)
            await ReadOnly()
            self.records.append(decode_status(self._layout, self._data.value))

    def count(self, **flags):
        return sum(all(r[k] == v for k, v in flags.items()) for r in self.records)


def configure(dut):
    """Drive every configuration input to the reset value the core documents, and idle the
    receive XGMII."""
    dut.ifg.value = 12
    dut.max_frame.value = 1518
    dut.station_addr.value = STATION
    dut.pause_req.value = 0
    dut.pfc_req.value = 0
    dut.pause_quanta.value = 0xFFFF
    dut.refresh_cycles.value = 0xFFFF * 8 // 2
    for name in ("tx_pause_enable", "tx_pfc_enable", "rx_pause_enable", "rx_pfc_enable"):
        getattr(dut, name).value = 1
    dut.xgmii_rxd.value = 0x0707070707070707
    dut.xgmii_rxc.value = 0xFF


class Tb:
    def __init__(self, dut):
        self.dut = dut
        Clock(dut.tx_clk, PERIOD_PS, unit="ps").start()
        Clock(dut.rx_clk, PERIOD_PS, unit="ps").start()
        self.axis_tx = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_tx"), dut.tx_clk,
                                       dut.tx_rst)
        self.axis_rx = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_rx"), dut.rx_clk,
                                     dut.rx_rst)
        self.xgmii_sink = XgmiiSink(dut.xgmii_txd, dut.xgmii_txc, dut.tx_clk, dut.tx_rst)
        self.tx_status = StatusMonitor(dut, "tx_status", dut.tx_clk, TxStatus)
        self.rx_status = StatusMonitor(dut, "rx_status", dut.rx_clk, RxStatus)
        configure(dut)

    def xgmii_source(self):
        return XgmiiSource(self.dut.xgmii_rxd, self.dut.xgmii_rxc, self.dut.rx_clk,
                           self.dut.rx_rst)

    async def reset(self):
        self.dut.tx_rst.value = 1
        self.dut.rx_rst.value = 1
        await ClockCycles(self.dut.tx_clk, 4)
        self.dut.tx_rst.value = 0
        self.dut.rx_rst.value = 0
        await ClockCycles(self.dut.tx_clk, 4)

    async def drive_raw(self, words):
        """Drive raw (data, ctrl) words onto the receive XGMII, one per rx clock."""
        for d, c in words:
            self.dut.xgmii_rxd.value = d
            self.dut.xgmii_rxc.value = c
            await RisingEdge(self.dut.rx_clk)


def padded(data):
    return data.ljust(60, b"\0")


def check_wire_frame(frame, data):
    assert frame.ctrl is None, f"control characters inside a good frame: {frame}"
    assert frame.get_preamble() == b"\x55" * 7 + b"\xd5"
    assert frame.check_fcs(), "bad FCS on the wire"
    assert frame.get_payload() == padded(data), (len(frame.get_payload()), len(data))
    assert frame.start_lane in (0, 4)


def last_tuser(frame):
    """``tuser`` of a received frame's last beat."""
    return frame.tuser[-1] if isinstance(frame.tuser, list) else frame.tuser


def tshark_check(pcap):
    """Dissect ``pcap`` with tshark: no malformed frame, every FCS good."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark is required (tools/setup.sh installs it)"
    args = [tshark, "-n", "-r", pcap, "-o", "eth.fcs:Always", "-o", "eth.check_fcs:TRUE"]
    total = subprocess.run(args + ["-T", "fields", "-e", "frame.number"], capture_output=True,
                           text=True, check=True).stdout.split()
    bad = subprocess.run(args + ["-Y", "_ws.malformed || _ws.expert.severity >= error || "
                                 "eth.fcs.status != 1"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return len(total), bad


@cocotb.test()
async def tx_all_sizes(dut):
    """Every size 1..128 plus 256/512/1500/9000, with random idle gaps between frames."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(10)
    sent = []
    for seq, size in enumerate(SIZES):
        data = build_frame(size, rng, seq)
        sent.append(data)
        await tb.axis_tx.send(AxiStreamFrame(data, tuser=0))
        if rng.random() < 0.5:
            await tb.axis_tx.wait()
            await ClockCycles(dut.tx_clk, rng.randrange(1, 20))
    wire = []
    for data in sent:
        frame = await tb.xgmii_sink.recv()
        check_wire_frame(frame, data)
        wire.append(bytes(frame.get_payload(strip_fcs=False)))
    await ClockCycles(dut.tx_clk, 10)
    assert len(tb.tx_status.records) == len(sent)
    for data, rec in zip(sent, tb.tx_status.records, strict=True):
        assert rec["good"] == 1 and rec["length"] == len(padded(data)) + 4, rec
    pcap = os.path.abspath("tx_wire.pcap")
    write_pcap(pcap, wire)
    total, bad = tshark_check(pcap)
    assert total == len(sent) and not bad, f"tshark found problems:\n{bad}"


@cocotb.test()
async def tx_back_to_back_min_ifg(dut):
    """Queued frames leave back to back: gap >= 9 bytes each, mean gap exactly 12."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(11)
    sizes = [rng.choice([60, 61, 62, 63, 64, 65, 66, 67, 100, 127, 1514]) for _ in range(300)]
    frames = [build_frame(s, rng, i) for i, s in enumerate(sizes)]
    for data in frames:
        await tb.axis_tx.send(AxiStreamFrame(data))
    got = [await tb.xgmii_sink.recv() for _ in frames]
    byte_ps = PERIOD_PS // 8
    gaps = []
    for a, b in zip(got, got[1:]):
        gaps.append((b.sim_time_start - a.sim_time_end) // byte_ps)
    for data, frame in zip(frames, got, strict=True):
        check_wire_frame(frame, data)
    assert min(gaps) >= 9, min(gaps)
    # The deficit idle count keeps the sum within 3 bytes of 12 per gap.
    assert abs(sum(gaps) - 12 * len(gaps)) <= 3, (sum(gaps), len(gaps))


@cocotb.test()
async def tx_line_rate_speed(dut):
    """Back-to-back 64..1518-byte frames through TX at line rate, for simulation-speed
    measurement (frames prepared before the clock starts); every frame checked."""
    Clock(dut.tx_clk, PERIOD_PS, unit="ps").start()
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_tx"), dut.tx_clk, dut.tx_rst)
    sink = XgmiiSink(dut.xgmii_txd, dut.xgmii_txc, dut.tx_clk, dut.tx_rst)
    configure(dut)
    dut.rx_clk.value = 0
    dut.rx_rst.value = 1
    dut.tx_rst.value = 1
    await ClockCycles(dut.tx_clk, 4)
    dut.tx_rst.value = 0
    rng = random.Random(17)
    frames = [rng.randbytes(rng.choice([60, 124, 508, 1514])) for _ in range(400)]
    for data in frames:
        source.send_nowait(AxiStreamFrame(data))
    for data in frames:
        wire = await sink.recv()
        assert wire.check_fcs() and bytes(wire.get_payload()) == padded(data)


@cocotb.test()
async def tx_bad_frame_and_underrun(dut):
    """A frame marked bad and a frame hit by an underrun end in /E/; the next frame is good."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(12)
    good1, bad, good2 = (build_frame(s, rng, i) for i, s in enumerate([100, 200, 80]))
    await tb.axis_tx.send(AxiStreamFrame(good1))
    await tb.axis_tx.send(AxiStreamFrame(bad, tuser=1))
    await tb.axis_tx.send(AxiStreamFrame(good2))
    f1, fbad, f2 = [await tb.xgmii_sink.recv() for _ in range(3)]
    check_wire_frame(f1, good1)
    check_wire_frame(f2, good2)
    assert fbad.ctrl is not None and 0xFE in [
        d for d, c in zip(fbad.data, fbad.ctrl) if c], "bad frame not ended with /E/"

    # Underrun: the source stalls in the middle of a frame.
    victim = build_frame(300, rng, 7)
    after = build_frame(120, rng, 8)
    await tb.axis_tx.send(AxiStreamFrame(victim))
    while not (dut.s_axis_tx_tvalid.value and dut.s_axis_tx_tready.value):
        await RisingEdge(dut.tx_clk)
    await ClockCycles(dut.tx_clk, 5)
    tb.axis_tx.pause = True
    await ClockCycles(dut.tx_clk, 3)
    tb.axis_tx.pause = False
    await tb.axis_tx.send(AxiStreamFrame(after))
    fu = await tb.xgmii_sink.recv()
    fa = await tb.xgmii_sink.recv()
    assert fu.ctrl is not None and 0xFE in [d for d, c in zip(fu.data, fu.ctrl) if c]
    check_wire_frame(fa, after)
    await ClockCycles(dut.tx_clk, 10)
    recs = tb.tx_status.records
    assert [r["good"] for r in recs] == [1, 0, 1, 0, 1], recs
    assert recs[1]["bad"] == 1 and recs[3]["underrun"] == 1


@cocotb.test()
async def rx_all_sizes(dut):
    """Every size 1..128 plus 256/512/1500/9000 (jumbo enabled); under 64 bytes is a runt."""
    tb = Tb(dut)
    dut.max_frame.value = 9600
    source = tb.xgmii_source()
    await tb.reset()
    rng = random.Random(13)
    sent = []
    for seq, size in enumerate(SIZES):
        data = build_frame(size, rng, seq)
        sent.append(data)
        source.ifg = rng.choice([12, 12, 13, 16, 40])
        await source.send(XgmiiFrame.from_payload(data, min_len=0))
    for data in sent:
        frame = await tb.axis_rx.recv()
        assert bytes(frame.tdata) == data, (len(frame.tdata), len(data))
        assert last_tuser(frame) == int(len(data) + 4 < 64)
    await ClockCycles(dut.rx_clk, 10)
    recs = tb.rx_status.records
    assert len(recs) == len(sent)
    for data, rec in zip(sent, recs, strict=True):
        runt = len(data) + 4 < 64
        assert rec["length"] == len(data) + 4 and rec["runt"] == runt and rec["good"] != runt


@cocotb.test()
async def rx_random_frames_zero_loss(dut):
    """10,000 random frames, random gaps and start lanes: every one received intact."""
    tb = Tb(dut)
    source = tb.xgmii_source()
    await tb.reset()
    rng = random.Random(14)
    count = int(os.environ.get("AMNIC_RX_FRAMES", "10000"))
    sent = []

    async def feed():
        for _ in range(count):
            size = rng.choice([60, 64, 65, 100, 128, 200, 300]) if rng.random() < 0.9 \
                else rng.randrange(60, 1515)
            data = bytes(rng.getrandbits(8) for _ in range(size))
            sent.append(data)
            source.ifg = rng.choice([12, 12, 12, 13, 14, 15, 20, 33])
            await source.send(XgmiiFrame.from_payload(data))

    cocotb.start_soon(feed())
    for i in range(count):
        frame = await tb.axis_rx.recv()
        assert bytes(frame.tdata) == sent[i], f"frame {i} differs"
    await ClockCycles(dut.rx_clk, 10)
    assert tb.rx_status.count(good=1) == count == len(tb.rx_status.records)


@cocotb.test()
async def rx_bad_input(dut):
    """Bad FCS, /E/, runt, oversize, truncated and misaligned frames: flagged, counted,
    and the next good frame still arrives."""
    tb = Tb(dut)
    await tb.reset()
    rng = random.Random(15)

    def good(seq):
        return build_frame(rng.choice([64, 100, 333]), rng, seq)

    def with_fcs(data):
        return data + zlib.crc32(data).to_bytes(4, "little")

    cases = []  # (wire bytes or None, expected status flags or None) in order
    goods = []
    g = good(0)
    goods.append(g)
    cases.append(("good", with_fcs(g)))
    bad_fcs = bytearray(with_fcs(good(1)))
    bad_fcs[20] ^= 0x40
    cases.append(("fcs_error", bytes(bad_fcs)))
    cases.append(("runt", with_fcs(good(2)[:30])))
    cases.append(("oversize", with_fcs(bytes(rng.getrandbits(8) for _ in range(1600)))))
    cases.append(("runt", with_fcs(good(3)[:3])))  # truncated before the header ends
    words = []
    expected = []
    for kind, wire in cases:
        words += encode([wire], gaps=[12])
        expected.append(kind)
        g = good(len(goods) + 10)
        goods.append(g)
        words += encode([with_fcs(g)], gaps=[12])
        expected.append("good")

    # An /E/ inside a frame, then a frame without /T/ cut short by /E/.
    def patched(lane_offset, char):
        w = encode([with_fcs(good(50))], gaps=[12])
        d, c = w[lane_offset]
        return w[:lane_offset] + [((d & ~0xFF) | char, c | 1)] + w[lane_offset + 1:]

    for idx in (3, 5):
        words += patched(idx, 0xFE)
        expected.append("framing_error")
        g = good(60 + idx)
        goods.append(g)
        words += encode([with_fcs(g)], gaps=[12])
        expected.append("good")
    # Misaligned starts: /S/ on lanes 1, 2, 3, 5, 6, 7.
    for lane in (1, 2, 3, 5, 6, 7):
        d = 0
        raw = bytes([0x07] * lane + [0xFB] + [0x55] * (7 - lane))
        d = int.from_bytes(raw, "little")
        c = (1 << (lane + 1)) - 1
        frame_words = encode([with_fcs(good(70 + lane))], gaps=[12])
        words += [(0x0707070707070707, 0xFF), (d, c)] + frame_words[2:]
        expected.append("framing_error")
        g = good(80 + lane)
        goods.append(g)
        words += encode([with_fcs(g)], gaps=[12])
        expected.append("good")

    await tb.drive_raw(words)
    await ClockCycles(dut.rx_clk, 20)

    recs = tb.rx_status.records
    kinds = []
    for r in recs:
        if r["good"]:
            kinds.append("good")
        else:
            kinds.append(next(k for k in ("framing_error", "oversize", "runt", "fcs_error")
                              if r[k]))
    # Each misaligned /S/ is reported once; the bytes that follow it carry no valid /S/.
    assert kinds == expected, list(zip(kinds, expected))
    delivered = []
    while not tb.axis_rx.empty():
        f = await tb.axis_rx.recv()
        if not last_tuser(f):
            delivered.append(bytes(f.tdata))
    assert delivered == goods


async def xoff_then_xon(tb, request, value):
    """Raise the MAC's pause request ``request`` to ``value``, then drop it: the two MAC
    control frames sent (XOFF, XON) as scapy packets with the pause time each should carry,
    after checking their FCS, destination, EtherType and source (802.3 annex 31B)."""
    from scapy.layers.l2 import Ether

    request.value = value
    xoff = await tb.xgmii_sink.recv()
    request.value = 0
    xon = await tb.xgmii_sink.recv()
    frames = []
    for wire, time in ((xoff, 0xFFFF), (xon, 0)):
        assert wire.check_fcs()
        pkt = Ether(bytes(wire.get_payload()))
        assert pkt.dst == "01:80:c2:00:00:01" and pkt.type == 0x8808
        assert pkt.src == "02:00:00:ab:cd:ef"
        frames.append((pkt, time))
    return frames


@cocotb.test()
async def flow_control_pause(dut):
    """A received PAUSE stops new TX frames for quanta x 8 cycles and is not delivered; a
    pause request sends PAUSE frames that scapy parses; FCS-bad PAUSE frames are ignored."""
    from scapy.contrib.mac_control import MACControlPause
    from scapy.layers.l2 import Ether

    tb = Tb(dut)
    source = tb.xgmii_source()
    await tb.reset()
    rng = random.Random(16)
    quanta = 40

    pause = bytes(Ether(dst="01:80:c2:00:00:01", src="02:00:00:00:00:09", type=0x8808)
                  / MACControlPause(pause_time=quanta)).ljust(60, b"\0")
    bad = bytearray(XgmiiFrame.from_payload(pause).data)
    bad[-1] ^= 0xFF  # corrupt the FCS: must be ignored
    await source.send(XgmiiFrame(bytes(bad)))
    await source.wait()
    await ClockCycles(dut.rx_clk, 4)
    assert not dut.rx_paused.value, "a PAUSE frame with a bad FCS was obeyed"

    await source.send(XgmiiFrame.from_payload(pause))
    await source.wait()
    while not dut.rx_paused.value:
        await RisingEdge(dut.rx_clk)
    paused_at = cocotb.utils.get_sim_time("ps") // PERIOD_PS
    frame = build_frame(100, rng, 1)
    await tb.axis_tx.send(AxiStreamFrame(frame))
    sent = await tb.xgmii_sink.recv()
    check_wire_frame(sent, frame)
    waited = sent.sim_time_start // PERIOD_PS - paused_at
    assert quanta * 8 <= waited <= quanta * 8 + 8, waited
    # Neither PAUSE frame reached the user; the good one was counted as an event.
    user = build_frame(80, rng, 2)
    await source.send(XgmiiFrame.from_payload(user))
    got = await tb.axis_rx.recv()
    assert bytes(got.tdata) == user

    # Sending PAUSE: XOFF while requested, XON (time 0) on release.
    for pkt, time in await xoff_then_xon(tb, dut.pause_req, 1):
        assert pkt[MACControlPause].pause_time == time, pkt.show(dump=True)


@cocotb.test()
async def flow_control_pfc(dut):
    """802.1Qbb PFC on the generated Verilog: a received PFC frame pauses exactly the enabled
    priorities for their own quanta x 8 cycles and is not delivered; PFC requests send PFC
    frames (XOFF with the configured quanta, then XON) that scapy parses."""
    from scapy.contrib.mac_control import MACControlClassBasedFlowControl
    from scapy.layers.l2 import Ether

    tb = Tb(dut)
    source = tb.xgmii_source()
    await tb.reset()
    rng = random.Random(17)
    times = {1: 30, 5: 60}

    pfc = Ether(dst="01:80:c2:00:00:01", src="02:00:00:00:00:09", type=0x8808) \
        / MACControlClassBasedFlowControl(
            **{f"c{p}_enabled": 1 for p in times},
            **{f"c{p}_pause_time": t for p, t in times.items()})
    await source.send(XgmiiFrame.from_payload(bytes(pfc).ljust(60, b"\0")))
    await source.wait()
    expected = sum(1 << p for p in times)
    while int(dut.rx_pfc_paused.value) != expected:
        await RisingEdge(dut.rx_clk)
    assert not dut.rx_paused.value, "PFC paused the whole link"
    paused_at = cocotb.utils.get_sim_time("ps") // PERIOD_PS
    released = {}
    while len(released) < len(times):
        await RisingEdge(dut.rx_clk)
        now = cocotb.utils.get_sim_time("ps") // PERIOD_PS
        state = int(dut.rx_pfc_paused.value)
        for p in times:
            if p not in released and not state >> p & 1:
                released[p] = now - paused_at
    for p, quanta in times.items():
        assert quanta * 8 - 8 <= released[p] <= quanta * 8 + 8, (p, released[p])
    # The PFC frame was consumed; the next user frame is the first one delivered.
    user = build_frame(90, rng, 3)
    await source.send(XgmiiFrame.from_payload(user))
    got = await tb.axis_rx.recv()
    assert bytes(got.tdata) == user

    # Sending PFC: XOFF for priorities 0 and 3 while requested, then XON for them.
    for pkt, time in await xoff_then_xon(tb, dut.pfc_req, 0b0000_1001):
        layer = pkt[MACControlClassBasedFlowControl]
        enabled = [getattr(layer, f"c{p}_enabled") for p in range(8)]
        assert enabled == [1, 0, 0, 1, 0, 0, 0, 0], pkt.show(dump=True)
        assert [getattr(layer, f"c{p}_pause_time") for p in (0, 3)] == [time, time]
