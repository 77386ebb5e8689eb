"""GMII transmitter/receiver and the RGMII adapter in the Amaranth simulator.

References are independent of the RTL: the wire image of a frame is built from zlib's CRC-32,
received frames come from scapy, and a frame's FCS is judged good by zlib's residue
(``crc32(frame + fcs) == 0x2144DF1C``).
"""

import random
import struct
import zlib
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw, raw

from amnic.mac.gmii_rx import GmiiReceiver
from amnic.mac.gmii_tx import GmiiTransmitter
from amnic.mac.mac_1g import Mac1G
from amnic.mac.rgmii import RgmiiDdrIo, RgmiiRx, RgmiiSpeed, RgmiiTx
from amnic.sim.stream_tb import packet_to_beats, put_beat, put_packet, simulate

PREAMBLE = bytes([0x55] * 7 + [0xD5])
ZLIB_RESIDUE = 0x2144DF1C  # zlib.crc32 over a frame and its correct FCS
BROADCAST = "ff:ff:ff:ff:ff:ff"
MULTICAST = "01:00:5e:01:02:03"
UNICAST = "02:00:00:00:00:01"


# -- Python references ---------------------------------------------------------------------------

def with_fcs(frame):
    return frame + struct.pack("<I", zlib.crc32(frame))


def tx_wire_image(frame):
    """What IEEE 802.3 puts on GMII for ``frame``: preamble, SFD, frame padded to 60, FCS."""
    return PREAMBLE + with_fcs(frame + bytes(max(0, 60 - len(frame))))


def addressing(frame):
    """(broadcast, multicast, vlan) of ``frame`` as sent (destination address, TPID)."""
    broadcast = len(frame) >= 6 and frame[:6] == b"\xff" * 6
    multicast = len(frame) >= 1 and bool(frame[0] & 1) and not broadcast
    vlan = len(frame) >= 14 and frame[12:14] == b"\x81\x00"
    return broadcast, multicast, vlan


def scapy_frame(rng, size):
    """A frame of exactly ``size`` bytes (before the FCS) that starts with a scapy header."""
    dst = rng.choice([BROADCAST, MULTICAST, UNICAST])
    pkt = Ether(dst=dst, src="02:aa:bb:cc:dd:ee")
    if rng.random() < 0.3:
        pkt = pkt / Dot1Q(vlan=rng.randrange(4096), type=0x0800)
    else:
        pkt.type = 0x0800
    pkt = pkt / Raw(bytes(rng.randrange(256) for _ in range(max(0, size))))
    return raw(pkt)[:size]


def random_frame(rng, size):
    frame = bytearray(rng.randrange(256) for _ in range(size))
    kind = rng.random()
    if kind < 0.2:
        frame[:6] = b"\xff" * min(6, size)
    elif kind < 0.4 and size:
        frame[0] |= 1
    if rng.random() < 0.3 and size >= 14:
        frame[12:14] = b"\x81\x00"
    return bytes(frame)


def run(dut, *testbenches, background=()):
    simulate(dut, testbenches, clocks={"sync": 8e-9}, background=background, max_cycles=200_000)


# -- transmit ------------------------------------------------------------------------------------

@dataclass
class TxFrame:
    data: bytes
    bad: bool = False
    underrun_at: int = None  # drop valid for one cycle before this byte index


@dataclass
class WireFrame:
    data: bytes
    errors: list
    start: int  # cycle of the first byte with tx_en
    end: int  # cycle of the last byte with tx_en


@dataclass
class TxMonitor:
    frames: list = field(default_factory=list)
    status: list = field(default_factory=list)

    def testbench(self, gmii, status):
        async def monitor(ctx):
            cycle = 0
            current = None
            while True:
                await ctx.tick()
                cycle += 1
                en, er, txd = ctx.get(gmii.tx_en), ctx.get(gmii.tx_er), ctx.get(gmii.txd)
                if en:
                    if current is None:
                        current = WireFrame(bytearray(), [], cycle, cycle)
                    current.data.append(txd)
                    current.errors.append(er)
                    current.end = cycle
                elif current is not None:
                    self.frames.append(current)
                    current = None
                if ctx.get(status.valid):
                    self.status.append(ctx.get(status.payload))
        return monitor


def tx_driver(dut, frames, tail=100):
    async def drive(ctx):
        for frame in frames:
            if frame.underrun_at is None:
                await put_packet(ctx, dut.i, frame.data, int(frame.bad))
                continue
            for k, beat in enumerate(packet_to_beats(frame.data, 8)):
                if k == frame.underrun_at:
                    await ctx.tick()  # valid stays low for a cycle: the source ran dry
                await put_beat(ctx, dut.i, beat)
        await ctx.tick().repeat(tail)
    return drive


def run_tx(frames, ifg=None):
    dut = GmiiTransmitter()
    mon = TxMonitor()
    benches = [tx_driver(dut, frames)]
    if ifg is not None:
        async def set_ifg(ctx):
            ctx.set(dut.ifg, ifg)
        benches.insert(0, set_ifg)
    run(dut, *benches, background=[mon.testbench(dut.gmii, dut.status)])
    return mon


def check_tx_status(status, length, *, good=True, bad=False, underrun=False, sent=None):
    assert status.length == length
    assert (status.good, status.bad, status.underrun) == (good, bad, underrun)
    if sent is not None:
        assert (status.broadcast, status.multicast, status.vlan) == addressing(sent)


def test_tx_every_size_matches_reference():
    rng = random.Random(1)
    sizes = list(range(1, 129)) + [500, 1514, 1600]
    frames = [TxFrame(random_frame(rng, n)) for n in sizes]
    mon = run_tx(frames)
    assert len(mon.frames) == len(frames)
    assert len(mon.status) == len(frames)
    for frame, wire, status in zip(frames, mon.frames, mon.status, strict=True):
        expected = tx_wire_image(frame.data)
        assert bytes(wire.data) == expected, f"frame of {len(frame.data)} bytes"
        assert not any(wire.errors)
        padded = frame.data + bytes(max(0, 60 - len(frame.data)))
        check_tx_status(status, len(expected) - len(PREAMBLE), sent=padded)
    # Frames were offered back to back, so every gap is exactly the minimum.
    for prev, nxt in pairwise(mon.frames):
        assert nxt.start - prev.end - 1 == 12


@pytest.mark.parametrize("ifg,expected", [(0, 12), (5, 12), (12, 12), (13, 13), (40, 40)])
def test_tx_ifg(ifg, expected):
    rng = random.Random(ifg)
    frames = [TxFrame(random_frame(rng, rng.randrange(1, 100))) for _ in range(6)]
    mon = run_tx(frames, ifg=ifg)
    assert [bytes(w.data) for w in mon.frames] == [tx_wire_image(f.data) for f in frames]
    gaps = [nxt.start - prev.end - 1 for prev, nxt in pairwise(mon.frames)]
    assert gaps == [expected] * (len(frames) - 1)


def test_tx_bad_and_underrun_frames():
    rng = random.Random(7)
    good = [random_frame(rng, n) for n in (70, 20, 64, 100, 33)]
    bad = random_frame(rng, 80)
    short_bad = random_frame(rng, 3)
    starved = random_frame(rng, 90)
    frames = [
        TxFrame(good[0]),
        TxFrame(bad, bad=True),
        TxFrame(good[1]),
        TxFrame(starved, underrun_at=40),
        TxFrame(good[2]),
        TxFrame(short_bad, bad=True),
        TxFrame(good[3]),
        TxFrame(starved, underrun_at=1),
        TxFrame(good[4]),
    ]
    mon = run_tx(frames)
    assert len(mon.frames) == len(frames) == len(mon.status)
    for frame, wire, status in zip(frames, mon.frames, mon.status, strict=True):
        if frame.bad:
            # Every byte goes out; the last one carries the error; no padding, no FCS.
            assert bytes(wire.data) == PREAMBLE + frame.data
            assert wire.errors == [0] * (len(wire.data) - 1) + [1]
            check_tx_status(status, len(frame.data), good=False, bad=True)
        elif frame.underrun_at is not None:
            # The bytes before the gap, then one error byte; the rest never reaches the wire.
            k = frame.underrun_at
            assert bytes(wire.data[:-1]) == PREAMBLE + frame.data[:k]
            assert wire.errors == [0] * (len(wire.data) - 1) + [1]
            check_tx_status(status, k + 1, good=False, underrun=True)
        else:
            assert bytes(wire.data) == tx_wire_image(frame.data)
            assert not any(wire.errors)
            check_tx_status(status, max(60, len(frame.data)) + 4)
    for prev, nxt in pairwise(mon.frames):
        assert nxt.start - prev.end - 1 >= 12


# -- receive -------------------------------------------------------------------------------------

@dataclass
class RxEvent:
    """One carrier event on GMII: optional preamble, SFD and bytes, then idle."""

    data: bytes
    preamble: int = 7  # 0x55 bytes before the SFD
    sfd: bool = True
    errors: tuple = ()  # indexes into the bytes after the SFD (-1: in the preamble)
    gap: int = 12
    noise: bool = False  # rx_er without rx_dv (carrier extension) during the gap


def expected_rx(event, max_frame):
    """(delivered bytes or None, bad, status fields) per the receiver's contract."""
    data = event.data
    n = len(data)
    fcs_error = zlib.crc32(data) != ZLIB_RESIDUE
    framing_error = bool(event.errors)
    runt = n < 64
    oversize = n > max_frame
    bad = fcs_error or framing_error or runt or oversize
    if oversize:
        delivered = data[: max_frame - 4] if max_frame >= 5 else None
    else:
        delivered = data[:-4] if n > 4 else None
    broadcast, multicast, vlan = addressing(data)
    status = dict(length=n, good=not bad, fcs_error=fcs_error, framing_error=framing_error,
                  runt=runt, oversize=oversize, broadcast=broadcast, multicast=multicast,
                  vlan=vlan)
    return delivered, bad, status


def rx_driver(gmii, events, tail=30):
    async def drive(ctx):
        for ev in events:
            wire = bytes([0x55] * ev.preamble) + (b"\xd5" if ev.sfd else b"")
            pre = len(wire)
            wire += ev.data
            for k, byte in enumerate(wire):
                ctx.set(gmii.rx_dv, 1)
                ctx.set(gmii.rxd, byte)
                index = k - pre if k >= pre else -1
                ctx.set(gmii.rx_er, index in ev.errors)
                await ctx.tick()
            for k in range(ev.gap):
                ctx.set(gmii.rx_dv, 0)
                ctx.set(gmii.rxd, 0x0F if ev.noise else 0)
                ctx.set(gmii.rx_er, int(ev.noise and k % 3 == 0))
                await ctx.tick()
        ctx.set(gmii.rx_er, 0)
        await ctx.tick().repeat(tail)
    return drive


@dataclass
class RxMonitor:
    frames: list = field(default_factory=list)  # (bytes, bad)
    status: list = field(default_factory=list)
    beats_after_last: int = 0

    def testbench(self, o, status):
        async def monitor(ctx):
            current = bytearray()
            while True:
                await ctx.tick()
                if ctx.get(o.valid):
                    assert ctx.get(o.payload.keep) == 1
                    current.append(ctx.get(o.payload.data))
                    if ctx.get(o.payload.last):
                        self.frames.append((bytes(current), bool(ctx.get(o.payload.user))))
                        current = bytearray()
                    else:
                        assert not ctx.get(o.payload.user), "user set before the last beat"
                if ctx.get(status.valid):
                    self.status.append(ctx.get(status.payload))
        return monitor


def run_rx(events, max_frame=1518):
    dut = GmiiReceiver()
    mon = RxMonitor()

    async def configure(ctx):
        ctx.set(dut.max_frame, max_frame)

    run(dut, configure, rx_driver(dut.gmii, events),
        background=[mon.testbench(dut.o, dut.status)])
    return mon


def check_rx(events, mon, max_frame=1518):
    """Every SFD-delimited event gives one record; delivered frames match the reference."""
    frames = [ev for ev in events if ev.sfd]
    assert len(mon.status) == len(frames)
    expected_frames = []
    for ev, status in zip(frames, mon.status, strict=True):
        delivered, bad, fields = expected_rx(ev, max_frame)
        got = {name: getattr(status, name) for name in fields}
        got = {k: (bool(v) if k != "length" else v) for k, v in got.items()}
        assert got == fields, f"frame of {len(ev.data)} bytes"
        if delivered is not None:
            expected_frames.append((delivered, bad))
    assert mon.frames == expected_frames
    return sum(1 for s in mon.status if s.good), sum(1 for s in mon.status if not s.good)


def test_rx_every_size_and_large():
    rng = random.Random(2)
    sizes = list(range(1, 129)) + [500, 1000, 1514]
    events = []
    for n in sizes:
        events.append(RxEvent(with_fcs(scapy_frame(rng, n)), preamble=rng.randrange(8),
                              gap=rng.randrange(1, 20), noise=rng.random() < 0.2))
    mon = run_rx(events)
    good, bad = check_rx(events, mon)
    # Frames of 60 bytes or more before the FCS are the good ones; shorter are runts.
    assert good == sum(1 for n in sizes if n >= 60)
    assert bad == sum(1 for n in sizes if n < 60)
    assert all(s.runt for s, n in zip(mon.status, sizes, strict=True) if n < 60)


def test_rx_bad_frames_flagged_and_next_good_received():
    rng = random.Random(3)

    def good():
        return RxEvent(with_fcs(scapy_frame(rng, rng.randrange(60, 200))), gap=rng.randrange(1, 4))

    bad_fcs = bytearray(with_fcs(scapy_frame(rng, 100)))
    bad_fcs[50] ^= 0x10
    bad_fcs_tail = bytearray(with_fcs(scapy_frame(rng, 70)))
    bad_fcs_tail[-1] ^= 0x80
    truncated = with_fcs(scapy_frame(rng, 150))[:97]
    runt_good_fcs = with_fcs(scapy_frame(rng, 40))
    oversize = with_fcs(scapy_frame(rng, 1600))
    exactly_max = with_fcs(scapy_frame(rng, 1514))
    events = [
        good(),
        RxEvent(bytes(bad_fcs)), good(),
        RxEvent(bytes(bad_fcs_tail), preamble=0), good(),
        RxEvent(with_fcs(scapy_frame(rng, 120)), errors=(33,)), good(),
        RxEvent(with_fcs(scapy_frame(rng, 80)), errors=(-1,), preamble=3), good(),
        RxEvent(runt_good_fcs), good(),
        RxEvent(truncated, gap=1), good(),
        RxEvent(oversize), good(),
        RxEvent(exactly_max), good(),
        RxEvent(with_fcs(scapy_frame(rng, 100)), errors=(103,)), good(),  # error in the FCS
        RxEvent(b"\x12\x34" + with_fcs(scapy_frame(rng, 80)), sfd=False), good(),  # no SFD
        RxEvent(b"", gap=2), good(),  # SFD and nothing else
        RxEvent(with_fcs(b"\x01\x02")), good(),
    ]
    mon = run_rx(events)
    good_count, bad_count = check_rx(events, mon)
    assert (good_count, bad_count) == (14, 10)
    flags = [(s.fcs_error, s.framing_error, s.runt, s.oversize) for s in mon.status]
    assert flags[1] == (1, 0, 0, 0)
    assert flags[3] == (1, 0, 0, 0)
    assert flags[5] == (0, 1, 0, 0)
    assert flags[7] == (0, 1, 0, 0)
    assert flags[9] == (0, 0, 1, 0)
    assert flags[11] == (1, 0, 0, 0)
    assert flags[13] == (0, 0, 0, 1)
    assert flags[15] == (0, 0, 0, 0)
    # The oversize frame was cut: 1514 bytes delivered, marked bad.
    assert (oversize[:1514], True) in mon.frames


def test_rx_max_frame_setting():
    rng = random.Random(4)
    events = [RxEvent(with_fcs(scapy_frame(rng, n)), gap=2) for n in (60, 96, 97, 200, 96, 61)]
    mon = run_rx(events, max_frame=100)
    good, bad = check_rx(events, mon, max_frame=100)
    assert (good, bad) == (4, 2)
    assert [bool(s.oversize) for s in mon.status] == [False, False, True, True, False, False]


# -- transmit into receive -----------------------------------------------------------------------

class _Loopback(wiring.Component):
    """A transmitter wired into a receiver in one clock domain."""

    def __init__(self):
        self.tx = GmiiTransmitter()
        self.rx = GmiiReceiver()
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = self.tx
        m.submodules.rx = self.rx
        m.d.comb += [
            self.rx.gmii.rxd.eq(self.tx.gmii.txd),
            self.rx.gmii.rx_dv.eq(self.tx.gmii.tx_en),
            self.rx.gmii.rx_er.eq(self.tx.gmii.tx_er),
        ]
        return m


def test_loopback_tx_to_rx():
    rng = random.Random(5)
    frames = [TxFrame(random_frame(rng, rng.randrange(1, 300))) for _ in range(40)]
    frames[7] = TxFrame(frames[7].data, bad=True)
    frames[20] = TxFrame(random_frame(rng, 90), underrun_at=30)
    dut = _Loopback()
    mon = RxMonitor()
    run(dut, tx_driver(dut.tx, frames), background=[mon.testbench(dut.rx.o, dut.rx.status)])
    assert len(mon.status) == len(frames)
    for frame, status in zip(frames, mon.status, strict=True):
        assert bool(status.good) == (not frame.bad and frame.underrun_at is None)
    delivered = [(d, b) for d, b in mon.frames]
    expected = []
    for frame in frames:
        if frame.bad:
            expected.append((frame.data[:-4], True))
        elif frame.underrun_at is not None:
            expected.append((frame.data[: frame.underrun_at - 3], True))
        else:
            expected.append((frame.data + bytes(max(0, 60 - len(frame.data))), False))
    assert delivered == expected


# -- RGMII ---------------------------------------------------------------------------------------

class _RgmiiLoop(wiring.Component):
    def __init__(self):
        self.tx = RgmiiTx()
        self.rx = RgmiiRx()
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = self.tx
        m.submodules.rx = self.rx
        return m


def rgmii_pin_sequence(halves):
    """A Python DDR model: the (data nibble, ctl) the pins show at each edge, rise then fall."""
    out = []
    for txd_rise, txd_fall, ctl_rise, ctl_fall in halves:
        out += [(txd_rise, ctl_rise), (txd_fall, ctl_fall)]
    return out


def decode_rgmii_pins(pins):
    """Decode an edge sequence back to GMII per RGMII v2.0 table 2 (independent of the RTL)."""
    out = []
    for (lo, ctl_rise), (hi, ctl_fall) in zip(pins[0::2], pins[1::2], strict=True):
        out.append((lo | hi << 4, ctl_rise, ctl_rise ^ ctl_fall))
    return out


def test_rgmii_tx_rx_mapping():
    rng = random.Random(6)
    dut = _RgmiiLoop()
    gmii_in = [(rng.randrange(256), rng.randrange(2), rng.randrange(2)) for _ in range(300)]
    halves, gmii_out = [], []

    async def bench(ctx):
        for txd, en, er in gmii_in:
            ctx.set(dut.tx.gmii.txd, txd)
            ctx.set(dut.tx.gmii.tx_en, en)
            ctx.set(dut.tx.gmii.tx_er, er)
            h = (ctx.get(dut.tx.ddr.txd_rise), ctx.get(dut.tx.ddr.txd_fall),
                 ctx.get(dut.tx.ddr.tx_ctl_rise), ctx.get(dut.tx.ddr.tx_ctl_fall))
            halves.append(h)
            # The receive side gets the same halves, as a DDR loop on the pins would deliver.
            ctx.set(dut.rx.ddr.rxd_rise, h[0])
            ctx.set(dut.rx.ddr.rxd_fall, h[1])
            ctx.set(dut.rx.ddr.rx_ctl_rise, h[2])
            ctx.set(dut.rx.ddr.rx_ctl_fall, h[3])
            gmii_out.append((ctx.get(dut.rx.gmii.rxd), ctx.get(dut.rx.gmii.rx_dv),
                             ctx.get(dut.rx.gmii.rx_er)))
            await ctx.tick()

    run(dut, bench)
    pins = rgmii_pin_sequence(halves)
    # Rising edge: low nibble and TX_EN; falling edge: high nibble and TX_EN xor TX_ER.
    edges = zip(gmii_in, pins[0::2], pins[1::2], strict=True)
    for (txd, en, er), (lo, ctl_rise), (hi, ctl_fall) in edges:
        assert (lo, hi, ctl_rise, ctl_fall) == (txd & 15, txd >> 4, en, en ^ er)
    assert decode_rgmii_pins(pins) == gmii_in
    assert gmii_out == gmii_in


def test_rgmii_inband_status():
    dut = RgmiiRx()
    seen = []

    async def bench(ctx):
        # (rxd_rise, ctl_rise, ctl_fall) -> status shown afterwards
        steps = [
            (0b1101, 0, 0),  # link up, 1000 Mb/s, full duplex
            (0b0000, 1, 1),  # inside a frame: no update
            (0b0010, 0, 1),  # carrier extension / error outside a frame: no update
            (0b0011, 0, 0),  # link up, 100 Mb/s, half duplex
            (0b0000, 0, 0),  # link down
        ]
        for rxd, ctl_rise, ctl_fall in steps:
            ctx.set(dut.ddr.rxd_rise, rxd)
            ctx.set(dut.ddr.rxd_fall, rxd)
            ctx.set(dut.ddr.rx_ctl_rise, ctl_rise)
            ctx.set(dut.ddr.rx_ctl_fall, ctl_fall)
            await ctx.tick()
            st = ctx.get(dut.inband)
            seen.append((st.link_up, st.speed, st.full_duplex))

    run(dut, bench)
    assert seen == [
        (1, RgmiiSpeed.MBPS_1000, 1),
        (1, RgmiiSpeed.MBPS_1000, 1),
        (1, RgmiiSpeed.MBPS_1000, 1),
        (1, RgmiiSpeed.MBPS_100, 0),
        (0, RgmiiSpeed.MBPS_10, 0),
    ]


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_rgmii_ddr_io_needs_a_platform():
    from amaranth.back import rtlil
    from amaranth.lib import io

    ports = {name: io.SimulationPort(direction, width) for name, direction, width in (
        ("txc", "o", 1), ("txd", "o", 4), ("tx_ctl", "o", 1), ("rxd", "i", 4), ("rx_ctl", "i", 1))}
    with pytest.raises(NotImplementedError):
        rtlil.convert(RgmiiDdrIo(**ports))
    with pytest.raises(ValueError):
        RgmiiDdrIo(**{**ports, "txd": io.SimulationPort("o", 8)})


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_rgmii_ddr_io_on_ecp5():
    """With an ECP5 platform, lib.io maps the halves onto ODDRX1F/IDDRX1F I/O registers."""
    from amaranth.build import Pins, Resource, Subsignal
    from amaranth.hdl import ClockDomain
    from amaranth.vendor import LatticeECP5Platform

    class Board(LatticeECP5Platform):
        device = "LFE5U-25F"
        package = "BG256"
        speed = "6"
        default_clk = None
        resources = [Resource(
            "rgmii", 0,
            Subsignal("txc", Pins("A1", dir="o")),
            Subsignal("txd", Pins("A2 A3 A4 A5", dir="o")),
            Subsignal("tx_ctl", Pins("A6", dir="o")),
            Subsignal("rxd", Pins("B2 B3 B4 B5", dir="i")),
            Subsignal("rx_ctl", Pins("B6", dir="i")),
        )]
        connectors = []

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({})

        def elaborate(self, platform):
            m = Module()
            m.domains.tx = ClockDomain()
            m.domains.rx = ClockDomain()
            pins = platform.request("rgmii", 0, dir="-")
            m.submodules.io = RgmiiDdrIo(txc=pins.txc, txd=pins.txd, tx_ctl=pins.tx_ctl,
                                         rxd=pins.rxd, rx_ctl=pins.rx_ctl)
            return m

    plan = Board().prepare(Top())
    text = "\n".join(str(f) for f in plan.files.values())
    assert text.count("ODDRX1F") >= 6 and text.count("IDDRX1F") >= 5


# -- the MAC as exported -------------------------------------------------------------------------

@pytest.mark.parametrize("phy", ["gmii", "rgmii"])
def test_mac_1g_exports_axi_names(phy):
    text, ports = Mac1G(phy=phy).to_verilog()
    names = {p.name for p in ports}
    assert {"tx_clk", "tx_rst", "rx_clk", "rx_rst", "s_axis_tx_tdata", "s_axis_tx_tready",
            "m_axis_rx_tdata", "m_axis_rx_tvalid", "m_axis_rx_tuser", "tx_status_tvalid",
            "rx_status_tdata", "ifg", "max_frame"} <= names
    assert "m_axis_rx_tready" not in names  # the receive stream has no back-pressure
    pins = ({"gmii_txd", "gmii_tx_en", "gmii_tx_er", "gmii_rxd", "gmii_rx_dv", "gmii_rx_er"}
            if phy == "gmii" else
            {"rgmii_txd_rise", "rgmii_txd_fall", "rgmii_tx_ctl_rise", "rgmii_tx_ctl_fall",
             "rgmii_rxd_rise", "rgmii_rxd_fall", "rgmii_rx_ctl_rise", "rgmii_rx_ctl_fall"})
    assert pins <= names
    assert f"module amnic_mac_1g_{phy}(" in text
