"""cocotb tests of the 1 Gb/s MAC (generated Verilog) against cocotbext-eth and cocotbext-axi.

Two toplevels (built by ``test_mac_1g.py``):

* ``amnic_mac_1g_gmii``: :class:`amnic.mac.mac_1g.Mac1G` with GMII pins, driven by
  ``GmiiSource``/``GmiiSink``; tests ``gmii_*``.
* ``amnic_mac_1g_rgmii_sim``: ``Mac1G(phy="rgmii")`` with behavioural DDR registers on real
  RGMII pins (test-only top), driven by ``RgmiiSource``/``RgmiiSink``; tests ``rgmii_*``.

The user side is AXI4-Stream (``s_axis_tx_*``, ``m_axis_rx_*``); the per-frame status records
are decoded with the Amaranth layouts of :mod:`amnic.mac.status`. Expected frames and FCS come
from scapy and zlib, never from the RTL.
"""

import random
import struct
import zlib
from itertools import pairwise

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from cocotbext.eth import GmiiFrame, GmiiSink, GmiiSource, RgmiiSink, RgmiiSource
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw, raw

from amnic.mac.status import RxStatus, TxStatus

PERIOD_PS = 8000  # 125 MHz
ZLIB_RESIDUE = 0x2144DF1C


# -- references ----------------------------------------------------------------------------------

def scapy_frame(rng, size):
    """``size`` bytes (no FCS) starting with a scapy Ethernet (and sometimes 802.1Q) header."""
    dst = rng.choice(["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb", "02:00:00:00:00:01"])
    pkt = Ether(dst=dst, src="02:aa:bb:cc:dd:ee")
    if rng.random() < 0.3:
        pkt = pkt / Dot1Q(vlan=rng.randrange(4096), type=0x0800)
    else:
        pkt.type = 0x0800
    pkt = pkt / Raw(bytes(rng.randrange(256) for _ in range(size)))
    return raw(pkt)[:size]


def addressing(frame):
    broadcast = len(frame) >= 6 and frame[:6] == b"\xff" * 6
    multicast = len(frame) >= 1 and bool(frame[0] & 1) and not broadcast
    vlan = len(frame) >= 14 and frame[12:14] == b"\x81\x00"
    return broadcast, multicast, vlan


def with_fcs(frame):
    return frame + struct.pack("<I", zlib.crc32(frame))


def padded(frame):
    return frame + bytes(max(0, 60 - len(frame)))


def last_user(frame):
    """``user`` of a received AXI-Stream frame's last beat."""
    return frame.tuser if isinstance(frame.tuser, int) else frame.tuser[-1]


# -- harness -------------------------------------------------------------------------------------

class StatusMonitor:
    """Collects the one-cycle records of an always-ready status stream."""

    def __init__(self, dut, prefix, clock, layout):
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.data = getattr(dut, f"{prefix}_tdata")
        self.clock = clock
        self.layout = layout.as_shape()
        self.records = []
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clock)
            if int(self.valid.value):
                self.records.append(self.layout.from_bits(int(self.data.value)))

    async def wait_for(self, count, timeout_us=200):
        """Take the next ``count`` records (waiting for them)."""
        async def until():
            while len(self.records) < count:
                await RisingEdge(self.clock)
        await with_timeout(until(), timeout_us, "us")
        taken, self.records = self.records[:count], self.records[count:]
        return taken


class Harness:
    def __init__(self, dut, rgmii=False):
        self.dut = dut
        self.rgmii = rgmii
        self.tx_source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_tx"), dut.tx_clk,
                                         dut.tx_rst)
        self.rx_sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_rx"), dut.rx_clk,
                                     dut.rx_rst)
        if rgmii:
            self.wire_rx = RgmiiSink(dut.rgmii_txd, dut.rgmii_tx_ctl, dut.rgmii_txc, dut.tx_rst)
            self.wire_tx = RgmiiSource(dut.rgmii_rxd, dut.rgmii_rx_ctl, dut.rx_clk, dut.rx_rst)
        else:
            self.wire_rx = GmiiSink(dut.gmii_txd, dut.gmii_tx_er, dut.gmii_tx_en, dut.tx_clk,
                                    dut.tx_rst)
            self.wire_tx = GmiiSource(dut.gmii_rxd, dut.gmii_rx_er, dut.gmii_rx_dv, dut.rx_clk,
                                      dut.rx_rst)
        self.tx_status = StatusMonitor(dut, "tx_status", dut.tx_clk, TxStatus)
        self.rx_status = StatusMonitor(dut, "rx_status", dut.rx_clk, RxStatus)

    async def start(self, ifg=12, max_frame=1518):
        dut = self.dut
        dut.ifg.value = ifg
        dut.max_frame.value = max_frame
        dut.tx_rst.value = 1
        dut.rx_rst.value = 1
        # Let the registers take their initial values before the first edge (Icarus starts
        # with X everywhere).
        await Timer(1, unit="ns")
        Clock(dut.tx_clk, PERIOD_PS, unit="ps").start()
        if self.rgmii:
            # TXC comes from a copy of the transmit clock shifted by 90 degrees, so the data
            # launched on the transmit clock's edges is stable at both edges of TXC.
            await Timer(PERIOD_PS // 4, unit="ps")
            Clock(dut.tx90_clk, PERIOD_PS, unit="ps").start()
        # The receive clock is the PHY's: same rate, unrelated phase.
        await Timer(3100, unit="ps")
        Clock(dut.rx_clk, PERIOD_PS, unit="ps").start()
        if self.rgmii:
            dut.tx90_rst.value = 1
        await ClockCycles(dut.tx_clk, 5)
        dut.tx_rst.value = 0
        dut.rx_rst.value = 0
        if self.rgmii:
            dut.tx90_rst.value = 0
        await ClockCycles(dut.tx_clk, 5)

    async def recv_wire(self, timeout_us=200):
        return await with_timeout(self.wire_rx.recv(), timeout_us, "us")

    async def recv_axis(self, timeout_us=200):
        return await with_timeout(self.rx_sink.recv(), timeout_us, "us")


def check_wire_frame(wire, frame):
    """A good transmitted frame: preamble ending in SFD, padded data, zlib FCS, no error."""
    assert wire.error is None, f"tx_er set in a good frame: {wire}"
    preamble = wire.get_preamble()
    assert preamble[-1] == 0xD5 and set(preamble[:-1]) == {0x55} and len(preamble) >= 7
    assert bytes(wire.get_payload()) == padded(frame)
    assert wire.check_fcs()


def check_tx_status(record, frame):
    assert record.good and not record.bad and not record.underrun
    assert record.length == len(padded(frame)) + 4
    assert (record.broadcast, record.multicast, record.vlan) == addressing(padded(frame))


def gaps_in_cycles(frames):
    """Idle cycles between consecutive frames as seen by the wire sink."""
    return [(b.sim_time_start - a.sim_time_end) // PERIOD_PS for a, b in pairwise(frames)]


# -- transmit ------------------------------------------------------------------------------------

async def transmit_and_check(h, frames):
    for frame in frames:
        await h.tx_source.send(AxiStreamFrame(frame, tuser=0))
    wires = [await h.recv_wire() for _ in frames]
    records = await h.tx_status.wait_for(len(frames))
    for frame, wire, record in zip(frames, wires, records, strict=True):
        check_wire_frame(wire, frame)
        check_tx_status(record, frame)
    return wires


@cocotb.test()
async def gmii_tx_frames(dut):
    """Every size 1..64 and random sizes to 1514, back to back: exact wire image, 12-byte gap."""
    h = Harness(dut)
    await h.start()
    rng = random.Random(10)
    sizes = list(range(1, 65)) + [rng.randrange(65, 1515) for _ in range(12)] + [1514]
    wires = await transmit_and_check(h, [scapy_frame(rng, n) for n in sizes])
    assert gaps_in_cycles(wires) == [12] * (len(wires) - 1)


@cocotb.test()
async def gmii_tx_ifg(dut):
    """A configured gap of 20 bytes is kept exactly; 8 is raised to the minimum of 12."""
    h = Harness(dut)
    await h.start(ifg=20)
    rng = random.Random(11)
    wires = await transmit_and_check(h, [scapy_frame(rng, rng.randrange(1, 200)) for _ in range(8)])
    assert gaps_in_cycles(wires) == [20] * 7
    dut.ifg.value = 8
    await ClockCycles(dut.tx_clk, 2)
    wires = await transmit_and_check(h, [scapy_frame(rng, rng.randrange(1, 200)) for _ in range(8)])
    assert gaps_in_cycles(wires) == [12] * 7


@cocotb.test()
async def gmii_tx_bad_and_underrun(dut):
    """tuser on the last beat and a source that stalls mid-frame both end the frame with tx_er."""
    h = Harness(dut)
    await h.start()
    rng = random.Random(12)
    good = [scapy_frame(rng, n) for n in (100, 40, 300)]
    bad = scapy_frame(rng, 90)

    await h.tx_source.send(AxiStreamFrame(good[0], tuser=0))
    await h.tx_source.send(AxiStreamFrame(bad, tuser=[0] * (len(bad) - 1) + [1]))
    await h.tx_source.send(AxiStreamFrame(good[1], tuser=0))
    first = [await h.recv_wire() for _ in range(3)]
    check_wire_frame(first[0], good[0])
    assert bytes(first[1].get_payload(strip_fcs=False)) == bad  # no padding, no FCS
    assert first[1].error[-1] == 1 and not any(first[1].error[:-1])
    check_wire_frame(first[2], good[1])

    # Stall the source for a few cycles once 30 bytes of the next frame are on the wire.
    starved = scapy_frame(rng, 200)
    await h.tx_source.send(AxiStreamFrame(starved, tuser=0))
    while not int(dut.gmii_tx_en.value):
        await RisingEdge(dut.tx_clk)
    await ClockCycles(dut.tx_clk, 8 + 30)
    h.tx_source.pause = True
    await ClockCycles(dut.tx_clk, 3)
    h.tx_source.pause = False
    await h.tx_source.send(AxiStreamFrame(good[2], tuser=0))
    starved_wire = await h.recv_wire()
    after = await h.recv_wire()
    assert starved_wire.error is not None and starved_wire.error[-1] == 1
    sent = bytes(starved_wire.get_payload(strip_fcs=False))[:-1]
    assert starved.startswith(sent) and 25 <= len(sent) < len(starved)
    check_wire_frame(after, good[2])  # the rest of the starved frame was discarded

    records = await h.tx_status.wait_for(5)
    assert [(r.good, r.bad, r.underrun) for r in records] == [
        (1, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), (1, 0, 0)]
    assert records[1].length == len(bad)
    assert records[3].length == len(sent) + 1


# -- receive -------------------------------------------------------------------------------------

async def receive_good(h, frames):
    for frame in frames:
        await h.wire_tx.send(GmiiFrame.from_payload(frame))
    received = [await h.recv_axis() for _ in frames]
    records = await h.rx_status.wait_for(len(frames))
    for frame, got, record in zip(frames, received, records, strict=True):
        assert bytes(got.tdata) == padded(frame)
        assert last_user(got) == 0
        assert record.good and record.length == len(padded(frame)) + 4
        assert (record.broadcast, record.multicast, record.vlan) == addressing(padded(frame))


@cocotb.test()
async def gmii_rx_frames(dut):
    """Frames of every size 60..128 and random large ones arrive without preamble and FCS."""
    h = Harness(dut)
    await h.start()
    rng = random.Random(20)
    sizes = list(range(60, 129)) + [rng.randrange(129, 1515) for _ in range(10)] + [1514]
    await receive_good(h, [scapy_frame(rng, n) for n in sizes])


async def receive_errors(h, rng, rgmii=False):
    """Bad frames of each kind, each followed by a good one that must still arrive intact."""
    good = [scapy_frame(rng, rng.randrange(60, 300)) for _ in range(7)]
    bad_fcs = bytearray(with_fcs(scapy_frame(rng, 120)))
    bad_fcs[-2] ^= 0x01
    errored = GmiiFrame.from_payload(scapy_frame(rng, 150))
    errored.error = [0] * len(errored.data)
    errored.error[40] = 1
    runt = scapy_frame(rng, 40)
    oversize = scapy_frame(rng, 1600)
    truncated = with_fcs(scapy_frame(rng, 200))[:150]
    short_preamble = GmiiFrame(b"\x55\xd5" + with_fcs(good[0]))
    cases = [
        ("fcs", GmiiFrame.from_raw_payload(bytes(bad_fcs)), bytes(bad_fcs)[:-4]),
        ("rx_er", errored, bytes(errored.get_payload())),
        ("runt", GmiiFrame.from_payload(runt, min_len=0), runt),
        ("oversize", GmiiFrame.from_payload(oversize), oversize[:1514]),
        ("truncated", GmiiFrame.from_raw_payload(truncated), truncated[:-4]),
    ]
    for (_, wire, _), next_good in zip(cases, good, strict=False):
        await h.wire_tx.send(wire)
        await h.wire_tx.send(GmiiFrame.from_payload(next_good))
    await h.wire_tx.send(short_preamble)

    received = [await h.recv_axis() for _ in range(2 * len(cases) + 1)]
    records = await h.rx_status.wait_for(2 * len(cases) + 1)
    for k, (kind, _, delivered) in enumerate(cases):
        bad_rx, good_rx = received[2 * k], received[2 * k + 1]
        bad_rec, good_rec = records[2 * k], records[2 * k + 1]
        assert bytes(bad_rx.tdata) == delivered, kind
        assert last_user(bad_rx) == 1, kind
        assert not bad_rec.good, kind
        flags = {"fcs": bad_rec.fcs_error, "rx_er": bad_rec.framing_error, "runt": bad_rec.runt,
                 "oversize": bad_rec.oversize, "truncated": bad_rec.fcs_error}
        assert flags[kind], f"{kind}: {bad_rec}"
        if kind != "truncated":
            other = {name for name, value in flags.items() if value and name != "truncated"}
            assert other == {kind}, f"{kind}: {bad_rec}"
        assert bytes(good_rx.tdata) == padded(good[k]) and last_user(good_rx) == 0, kind
        assert good_rec.good, kind
    assert bytes(received[-1].tdata) == padded(good[0]) and last_user(received[-1]) == 0
    assert records[-1].good
    assert records[6].length == 1604  # the oversize frame is counted whole
    assert sum(r.good for r in records) == len(cases) + 1


@cocotb.test()
async def gmii_rx_errors(dut):
    """Bad FCS, rx_er, runt, oversize and truncated frames are flagged; good ones still flow."""
    h = Harness(dut)
    await h.start()
    await receive_errors(h, random.Random(21))


# -- RGMII (test-only top with behavioural DDR registers) ----------------------------------------

@cocotb.test()
async def rgmii_tx_pins(dut):
    """Frames leave on the RGMII pins (DDR nibbles, TX_CTL) exactly as IEEE 802.3 frames them."""
    h = Harness(dut, rgmii=True)
    await h.start()
    rng = random.Random(30)
    sizes = [1, 13, 59, 60, 61, 64, 100] + [rng.randrange(1, 1515) for _ in range(8)]
    wires = await transmit_and_check(h, [scapy_frame(rng, n) for n in sizes])
    assert gaps_in_cycles(wires) == [12] * (len(wires) - 1)
    bad = scapy_frame(rng, 70)
    await h.tx_source.send(AxiStreamFrame(bad, tuser=[0] * 69 + [1]))
    wire = await h.recv_wire()
    assert wire.error is not None and wire.error[-1] == 1  # TX_CTL falling edge = en ^ er


@cocotb.test()
async def rgmii_rx_pins(dut):
    """Frames sent on the RGMII pins arrive intact; errors are flagged; in-band status decodes."""
    h = Harness(dut, rgmii=True)
    await h.start()
    rng = random.Random(31)
    sizes = [60, 61, 64, 65, 100] + [rng.randrange(60, 1515) for _ in range(8)]
    await receive_good(h, [scapy_frame(rng, n) for n in sizes])
    await receive_errors(h, rng, rgmii=True)

    # Between frames the PHY reports link up, 1000 Mb/s, full duplex on RXD (RGMII 2.0 3.4.1).
    await h.wire_tx.wait()  # the source has finished its gap and stopped driving
    await ClockCycles(dut.rx_clk, 2)
    assert int(dut.rgmii_link_up.value) == 0  # the source idles with RXD = 0: link down
    dut.rgmii_rxd.value = 0b1101
    await ClockCycles(dut.rx_clk, 4)
    assert int(dut.rgmii_link_up.value) == 1
    assert int(dut.rgmii_speed.value) == 2
    assert int(dut.rgmii_full_duplex.value) == 1
