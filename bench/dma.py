"""``amnic bench dma``: throughput, latency and resources of the PCIe DMA engines and queues.

Every throughput and latency figure is cycle-exact: the designs run in the Amaranth simulator
and figures count clock edges of the 250 MHz user interface, never wall-clock time. Links are
those of :mod:`amnic.bench._pcie_link` (``LINKS[256]`` = Gen3 x8 on the 256-bit interface,
``LINKS[512]`` = Gen3 x16 on the 512-bit one).

Sections (each a function ``NAME_rows(quick)`` returning row dicts, listed in
:data:`SECTIONS`, printed as one Markdown table and written under its name to the JSON file):

``write``
    :class:`~amnic.dma.write.DmaWriteEngine` alone: back-to-back commands of one size (at least
    64 KB or 32 commands; 16 KB or 8 with ``--quick``), data always available, ``rq`` always
    ready. Cycles run from the first to the last RQ beat. The interface rate is payload bits
    over those cycles at 250 MHz; the link ceiling is the raw link rate times payload over wire
    bytes of exactly the TLPs sent (:func:`split_write`; each TLP costs its DWORD-padded payload
    + 16 header + 8 framing bytes, :func:`tlp_ceiling_gbps`); achieved = min(interface, link
    ceiling), and % = achieved / ceiling. Every TLP header is compared with
    :func:`~amnic.dma.write.split_write` (``ok``).
``read``
    :class:`~amnic.dma.read.DmaReadEngine` (256 tags, MRRS 512) against a host model
    (:func:`measure_read`): each read request is answered :data:`LATENCY` cycles after it left
    on ``rq``, with completions cut at every 64-byte Read Completion Boundary or at 256 bytes
    (the MPS), delivered on ``rc`` at most one beat per cycle and no faster than the link
    carries them (each completion costs its payload + 12 header + 8 framing bytes on the wire).
    Cycles run from the first to the last data beat; every byte is compared with host memory.
``latency``
    Cycles: DMA read (command handshake to first data beat, and the engine's share, that total
    minus the host latency), DMA write (command and first data beat to first RQ beat), MMIO
    read through the :class:`~amnic.dma.completer.Completer`, the register-bus decoder and the
    core's :class:`~amnic.csr.RegisterFile` (CQ beat in to CC beat out).
``queues``
    :class:`~amnic.dma.tx_queues.TxQueues` and :class:`~amnic.dma.rx_queues.RxQueues` with
    :class:`~amnic.dma.queues.QueueRegisters` and
    :class:`~amnic.dma.completions.CompletionQueues` against :mod:`amnic.sim.dma_rings` (DMA
    latency :data:`LATENCY`, no back-pressure). TX and RX are simulated separately.
``loopback``
    TX queues into RX queues as :class:`~amnic.dma.core.PcieDmaCore` wires them with
    ``control.loopback`` set, DMA ports shared through the core's multiplexers
    (:mod:`amnic.bench._dma_loopback`): rate of RX completions.
``resources``
    Yosys ``synth_xilinx -family xcup`` (:func:`amnic.bench.flow.synthesize_component`) of the
    engines at 256 and 512 bit and of the whole :class:`~amnic.dma.core.PcieDmaCore` at 256 bit
    with 256, 1024 and 4096 queues of each kind (TX, RX, completion) and at 512 bit with 256;
    each run is bounded by :data:`SYNTH_TIMEOUT` and reported as a timeout when it exceeds it.
    Skipped with ``--quick``.

``--section NAME`` (repeatable) runs only the sections named. The exit status is 1 when a row
reports ``ok`` false (data or TLPs that do not match the model) or a section fails, else 0.
"""

import random
import sys
from collections import deque

from amnic.bench._pcie_link import FRAMING, LINKS
from amnic.bench._sections import Column, Section, text_column
from amnic.bench._sections import run as run_sections

__all__ = [
    "WIDTHS", "SIZES", "LATENCY", "SECTIONS",
    "tlp_wire_bytes", "tlp_ceiling_gbps", "interface_gbps", "completion_split",
    "measure_write", "measure_read", "measure_mmio_latency", "measure_tx", "measure_rx",
    "write_rows", "read_rows", "latency_rows", "queue_rows", "loopback_rows", "resource_rows",
    "main",
]

#: PCIe user interface widths measured.
WIDTHS = (256, 512)
#: Transfer sizes in bytes.
SIZES = (64, 128, 256, 512, 1024, 2048, 4096, 16384, 65536)
QUICK_SIZES = (64, 1024, 4096)
#: Host answer latency in cycles (500 ns at 250 MHz).
LATENCY = 125
#: Bytes of a memory write request header (4 DWORDs) and a completion header (3 DWORDs).
WRITE_HEADER, COMPLETION_HEADER = 16, 12
#: Seconds one synthesis may take (the 4096-queue core needs about 1000 on a loaded
#: two-core machine, a third of it in Yosys' Verilog reader).
SYNTH_TIMEOUT = 1800
#: Read Completion Boundary of the host (PCIe 2.3.1.1) and the MPS-sized completions variant.
COMPLETIONS = {"RCB 64": 64, "MPS 256": 256}
_BASE = 0x1_2345_0000  # 64 KB aligned host address of the transfers


def progress(msg):
    """Report progress on stderr (stdout carries the tables)."""
    print(f"[bench dma] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Link arithmetic


def tlp_wire_bytes(tlps, header):
    """Bytes ``tlps`` (``(address, length)`` pairs) take on the link: each TLP's payload padded
    to whole DWORDs (PCIe 2.2.5), its ``header`` and :data:`~amnic.bench._pcie_link.FRAMING`."""
    return sum((address % 4 + length + 3) // 4 * 4 + header + FRAMING
               for address, length in tlps)


def tlp_ceiling_gbps(link, tlps, header):
    """Payload Gbit/s the link carries at most when it sends exactly ``tlps`` back to back."""
    payload = sum(length for _, length in tlps)
    return link.raw_gbps * payload / tlp_wire_bytes(tlps, header)


def interface_gbps(link, payload_bytes, cycles):
    """Gbit/s of ``payload_bytes`` moved in ``cycles`` of the link's user interface clock."""
    return link.interface_gbps(8 * payload_bytes / cycles)


def completion_split(address, length, boundary):
    """Completions of one read request, cut at every multiple of ``boundary`` bytes (the Read
    Completion Boundary, PCIe 2.3.1.1): ``(address, length)`` pairs in address order."""
    out = []
    end = address + length
    while address < end:
        stop = min(end, (address // boundary + 1) * boundary)
        out.append((address, stop - address))
        address = stop
    return out


def _ratio_row(link, payload, cycles, ceiling):
    iface = interface_gbps(link, payload, cycles)
    achieved = min(iface, ceiling)
    return {"interface_gbps": round(iface, 2), "ceiling_gbps": round(ceiling, 2),
            "achieved_gbps": round(achieved, 2),
            "pct_of_ceiling": round(100 * achieved / ceiling, 1)}


def _mps_code(size):
    from amnic.dma.commands import MaxSize

    return MaxSize(size.bit_length() - 8)


def _commands_for(size, quick):
    total, least = (16384, 8) if quick else (65536, 32)
    return max(least if size < 65536 else 2, -(-total // size))


def _be_range(dword_address, dwords, first_be, last_be):
    """Byte address and length of a request from its DWORD range and byte enables."""
    low = next(i for i in range(4) if first_be >> i & 1)
    if dwords == 1:
        high = max(i for i in range(4) if first_be >> i & 1)
        return 4 * dword_address + low, high - low + 1
    high = max(i for i in range(4) if last_be >> i & 1)
    return 4 * dword_address + low, 4 * (dwords - 1) + high + 1 - low


# ---------------------------------------------------------------------------------------------
# DMA write engine


def measure_write(width, size, mps=256, count=32, *, base=_BASE):
    """Simulate ``count`` back-to-back write commands of ``size`` bytes (consecutive host
    addresses from ``base``) with data always available and the hard IP's RQ always ready;
    the engine drives the RQ bus as the core does (straddled at 512 bit).

    Returns
    -------
    dict
        ``width``, ``mps``, ``size``, ``commands``, ``tlps`` (sent), ``beats`` (RQ beats),
        ``ideal_beats`` (the least the TLPs need: their DWORDs (4 + payload each) over the
        DWORDs per beat, in halves of a beat when straddling, else rounded up per TLP),
        ``cycles`` (first to last RQ beat, inclusive), ``latency`` (cycles from the later of
        the first command's and its first data beat's handshakes to its first RQ beat), the
        rates of :func:`_ratio_row` and ``ok`` (every TLP's address and DWORD count as
        :func:`~amnic.dma.write.split_write` says, and ``count`` OK statuses).
    """
    from amnic.dma.axis import Bus
    from amnic.dma.commands import DmaError
    from amnic.dma.descriptors import RequesterRequest
    from amnic.dma.rq_framer import DESCRIPTOR_DWORDS
    from amnic.dma.write import split_write
    from amnic.sim.dma_engines import WriteEngineOnHardIp
    from amnic.sim.pcie_straddle import straddled_tlps, tlast_tlps
    from amnic.sim.stream_tb import put, simulate

    link = LINKS[width]
    lanes, dwords = width // 8, width // 32
    dut = WriteEngineOnHardIp(width)
    addresses = [base + k * size for k in range(count)]
    plan = [t for a in addresses for t in split_write(a, size, mps)]
    want = [((a & ~3), (a % 4 + n + 3) // 4) for a, n in plan]
    unit = dwords // 2 if dut.straddle else dwords
    ideal = -(-sum(-(-(DESCRIPTOR_DWORDS + d) // unit) for _, d in want) // (dwords // unit))
    ev = {"cmd": [], "data": [], "rq": [], "beats": [], "statuses": []}

    async def commands(ctx):
        ctx.set(dut.max_payload, _mps_code(mps))
        for k, address in enumerate(addresses):
            await put(ctx, dut.cmd, {"address": address, "length": size, "id": k})

    async def data(ctx):
        beats = -(-size // lanes)
        tail = size - (beats - 1) * lanes
        for k in range(count):
            for b in range(beats):
                last = b == beats - 1
                await put(ctx, dut.data, {"data": (k << 8 | b) * 0x0101_0101 % (1 << width),
                                          "keep": (1 << (tail if last else lanes)) - 1,
                                          "last": last})

    async def monitor(ctx):
        ctx.set(dut.rq.tready, 1)
        ctx.set(dut.status.ready, 1)
        cycle = 0
        async for _, _, cv, cr, dv, dr, rv, tdata, tkeep, tuser, tlast, sv, status in \
                ctx.tick().sample(dut.cmd.valid, dut.cmd.ready, dut.data.valid, dut.data.ready,
                                  dut.rq.tvalid, dut.rq.tdata, dut.rq.tkeep, dut.rq.tuser,
                                  dut.rq.tlast, dut.status.valid, dut.status.payload):
            if cv and cr:
                ev["cmd"].append(cycle)
            if dv and dr:
                ev["data"].append(cycle)
            if rv:
                ev["rq"].append(cycle)
                ev["beats"].append((tdata, tkeep, tuser.as_value().value, tlast))
            if sv:
                ev["statuses"].append((status.id, status.error))
            cycle += 1

    async def done(ctx):
        while len(ev["statuses"]) < count:
            await ctx.tick()
        await ctx.tick().repeat(4)

    simulate(dut, [done], background=[commands, data, monitor],
             max_cycles=4 * ideal + 1000)
    cycles = ev["rq"][-1] - ev["rq"][0] + 1
    tlps = []
    desc_layout = RequesterRequest.as_shape()
    beats = ev["beats"]
    for tlp in (straddled_tlps([b[:3] for b in beats], Bus.RQ) if dut.straddle
                else tlast_tlps(beats, width, Bus.RQ)):
        desc = desc_layout.from_bits(sum(w << 32 * k for k, w in enumerate(tlp.dwords[:4])))
        tlps.append((desc.address << 2, desc.dword_count))
    ok = (tlps == want and
          ev["statuses"] == [(k, DmaError.OK) for k in range(count)])
    return {
        "width": width, "mps": mps, "size": size, "commands": count, "tlps": len(tlps),
        "beats": len(ev["rq"]), "ideal_beats": ideal, "cycles": cycles,
        "latency": ev["rq"][0] - max(ev["cmd"][0], ev["data"][0]),
        **_ratio_row(link, size * count, cycles, tlp_ceiling_gbps(link, plan, WRITE_HEADER)),
        "goal_met": None, "ok": ok,
    }


def write_rows(quick):
    """Write throughput per width, MPS and transfer size."""
    rows = []
    for width in WIDTHS:
        for mps in (256,) if quick else (256, 512):
            for size in QUICK_SIZES if quick else SIZES:
                row = measure_write(width, size, mps, _commands_for(size, quick))
                if size >= 1024:
                    row["goal_met"] = row["pct_of_ceiling"] >= 95.0
                rows.append(row)
                progress(f"write {width} bit, MPS {mps}, {size} B: {row['achieved_gbps']} "
                         f"Gbit/s, {row['pct_of_ceiling']} % of the link ceiling")
    return rows


# ---------------------------------------------------------------------------------------------
# DMA read engine


def measure_read(width, size, count, *, completion=64, latency=LATENCY, mrrs=512, seed=1,
                 base=_BASE):
    """Simulate ``count`` back-to-back read commands of ``size`` bytes (consecutive host
    addresses from ``base``) against a host model, with ``data`` always ready.

    The host answers each request ``latency`` cycles after its RQ beat (the first completion's
    first beat may be taken at that edge at the earliest), with completions cut at multiples
    of ``completion`` bytes (:func:`completion_split`), in request order, packed by
    cocotbext-pcie (``Tlp_us.pack_us_rc``) and framed on the hard IP's RC bus as it does
    (:class:`~amnic.sim.pcie_straddle.RcFramer`; straddled where the core straddles, 512
    bit); the engine takes them through its :class:`~amnic.dma.rc_align.CompletionAligner`.
    The bus carries at most one beat per cycle, and a completion starts only when the link has
    had time to carry the ones before it: a token bucket gains the link's raw bytes per cycle
    (holding at most one cycle's worth while idle) and each completion spends its payload + 12
    + 8 bytes.

    Returns
    -------
    dict
        ``width``, ``size``, ``completion``, ``commands``, ``requests``, ``completions``,
        ``rc_beats`` (on the hard IP's bus), ``data_beats``, ``cycles`` (first to last data
        beat, inclusive),
        ``first_data`` (cycles from the first command's handshake to the first data beat),
        ``latency`` (the host's), the rates of :func:`_ratio_row` against the link ceiling of
        the completions sent, and ``ok`` (requests as :func:`~amnic.dma.read.split_read` says,
        every byte equal to host memory, ``count`` OK statuses).
    """
    from cocotbext.pcie.core.tlp import TlpType
    from cocotbext.pcie.core.utils import PcieId
    from cocotbext.pcie.xilinx.us.tlp import Tlp_us

    from amnic.dma.commands import DmaError
    from amnic.dma.read import split_read
    from amnic.sim.dma_engines import ReadEngineOnHardIp
    from amnic.sim.pcie_straddle import RcFramer, offer_beat
    from amnic.sim.stream_tb import put, simulate

    link = LINKS[width]
    lanes = width // 8
    rate = link.raw_gbps / 8 / (link.clock_mhz / 1000)  # link bytes per cycle
    dut = ReadEngineOnHardIp(width, tags=256)
    framer = RcFramer(width, straddle=dut.straddle)
    memory = random.Random(seed).randbytes(size * count)
    addresses = [base + k * size for k in range(count)]
    want = [r for a in addresses for r in split_read(a, size, mrrs)]
    sent = []  # (address, length) of every completion
    ev = {"cmd": [], "data": [], "rc": 0, "requests": [], "statuses": [], "bytes": bytearray()}
    pending = deque()  # (due cycle, DWORDs, wire bytes), in request order

    def answer(beat, cycle):
        desc = beat.descriptor
        address, length = _be_range(desc.address, desc.dword_count, beat.side.first_be,
                                    beat.side.last_be)
        ev["requests"].append((address, length))
        parts = completion_split(address, length, completion)
        for k, (start, n) in enumerate(parts):
            tlp = Tlp_us()
            tlp.fmt_type = TlpType.CPL_DATA
            tlp.requester_id, tlp.completer_id = PcieId(0, 0, 0), PcieId(1, 0, 0)
            tlp.tag = desc.tag
            lo, hi = start & ~3, (start + n + 3) & ~3
            tlp.length = (hi - lo) // 4
            tlp.data = bytearray(memory[lo - base:hi - base])
            tlp.byte_count = address + length - start
            tlp.lower_address = start & 0xFFF
            tlp.request_completed = k == len(parts) - 1
            pending.append((cycle + latency, tlp.pack_us_rc().data,
                            hi - lo + COMPLETION_HEADER + FRAMING))
            sent.append((start, n))

    async def commands(ctx):
        ctx.set(dut.max_read_request, _mps_code(mrrs))
        for k, address in enumerate(addresses):
            await put(ctx, dut.cmd, {"address": address, "length": size, "id": k})

    async def host(ctx):
        ctx.set(dut.rq.ready, 1)
        ctx.set(dut.data.ready, 1)
        ctx.set(dut.status.ready, 1)
        cycle, tokens, current = 0, rate, None

        def fetch():
            nonlocal tokens
            if pending and pending[0][0] <= cycle and tokens >= 0:
                _, words, wire = pending.popleft()
                tokens -= wire
                return words
            return None

        while True:  # `cycle` is the number of the coming edge
            if current is None:
                current = framer.beat(fetch)
            offer_beat(ctx, dut.rc, current)
            _, _, rq_valid, rq_beat, rc_ready, cv, cr, dv, beat, sv, status = \
                await ctx.tick().sample(dut.rq.valid, dut.rq.payload, dut.rc.tready,
                                        dut.cmd.valid, dut.cmd.ready, dut.data.valid,
                                        dut.data.payload, dut.status.valid, dut.status.payload)
            if current is not None and rc_ready:
                current = None
                ev["rc"] += 1
            if rq_valid:
                answer(rq_beat, cycle)
            if cv and cr:
                ev["cmd"].append(cycle)
            if dv:
                ev["data"].append(cycle)
                ev["bytes"] += beat.data.to_bytes(lanes, "little")[:beat.keep.bit_length()]
            if sv:
                ev["statuses"].append((status.id, status.error))
            tokens = min(tokens + rate, rate)
            cycle += 1

    async def done(ctx):
        while len(ev["statuses"]) < count:
            await ctx.tick()

    simulate(dut, [done], background=[commands, host],
             max_cycles=6 * size * count // lanes + 4 * latency + 2000)
    cycles = ev["data"][-1] - ev["data"][0] + 1
    ok = (ev["requests"] == want and bytes(ev["bytes"]) == memory and
          ev["statuses"] == [(k, DmaError.OK) for k in range(count)])
    return {
        "width": width, "size": size, "completion": completion, "commands": count,
        "requests": len(ev["requests"]), "completions": len(sent), "rc_beats": ev["rc"],
        "data_beats": len(ev["data"]), "cycles": cycles,
        "first_data": ev["data"][0] - ev["cmd"][0], "latency": latency,
        **_ratio_row(link, size * count, cycles,
                     tlp_ceiling_gbps(link, sent, COMPLETION_HEADER)),
        "ok": ok,
    }


def read_rows(quick):
    """Read throughput per width, completion size and transfer size (MRRS 512)."""
    rows = []
    for width in WIDTHS:
        for label, completion in COMPLETIONS.items():
            for size in QUICK_SIZES if quick else SIZES:
                row = measure_read(width, size, _commands_for(size, quick),
                                   completion=completion)
                rows.append({"completions_as": label, **row})
                progress(f"read {width} bit, {label}, {size} B: {row['interface_gbps']} "
                         f"Gbit/s, {row['pct_of_ceiling']} % of the link ceiling")
    return rows


# ---------------------------------------------------------------------------------------------
# Latency


def measure_mmio_latency(width, reads=3):
    """Cycles from a one-DWORD BAR0 read's CQ beat handshake to its completion's first CC
    beat handshake, through :class:`~amnic.dma.completer.Completer`, the register-bus decoder
    and the core's register file (:data:`amnic.dma.core.REGISTERS`), CC always ready.

    Returns ``{"width", "latencies": [...], "ok"}``; ``ok`` when every completion is a
    successful one-DWORD completion carrying the ``scratch`` register's value.
    """
    from amaranth.hdl import Elaboratable, Module
    from amaranth.lib import wiring
    from cocotbext.pcie.core.tlp import CplStatus, TlpType
    from cocotbext.pcie.core.utils import PcieId
    from cocotbext.pcie.xilinx.us.interface import UsPcieFrame
    from cocotbext.pcie.xilinx.us.tlp import Tlp_us

    from amnic.csr import RegisterBusDecoder, RegisterFile
    from amnic.dma.completer import Completer
    from amnic.dma.core import REGISTERS
    from amnic.sim.stream_tb import simulate

    bar_bits = 20

    class Top(Elaboratable):
        def __init__(self):
            self.completer = Completer(width, bar_bits)
            self.decoder = RegisterBusDecoder(bar_bits, [(0, REGISTERS.size)])
            self.regs = RegisterFile(REGISTERS)

        def elaborate(self, platform):
            m = Module()
            m.submodules.completer, m.submodules.decoder = self.completer, self.decoder
            m.submodules.regs = self.regs
            wiring.connect(m, self.completer.bus, self.decoder.bus)
            wiring.connect(m, self.decoder.target(0), self.regs.bus)
            return m

    dut = Top()
    cq, cc = dut.completer.cq, dut.completer.cc
    per = width // 32
    scratch = REGISTERS["scratch"]
    starts, latencies, completions = [], [], []

    def frame_beats(frame):
        words = frame.data
        return [{"data": sum(w << (32 * i) for i, w in enumerate(words[k:k + per])),
                 "keep": (1 << len(words[k:k + per])) - 1, "last": int(k + per >= len(words)),
                 "side": {"first_be": frame.first_be, "last_be": frame.last_be}}
                for k in range(0, len(words), per)]

    async def host(ctx):
        ctx.set(cc.ready, 1)
        for n in range(reads):
            tlp = Tlp_us()
            tlp.fmt_type = TlpType.MEM_READ
            tlp.requester_id, tlp.tag, tlp.bar_id = PcieId(0, 0, 0), n, 0
            tlp.set_addr_be(scratch.offset, 4)
            for beat in frame_beats(tlp.pack_us_cq()):
                ctx.set(cq.payload, beat)
                ctx.set(cq.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(cq.ready)
                    if ready:
                        break
            ctx.set(cq.valid, 0)
            while len(completions) <= n:
                await ctx.tick()
            await ctx.tick().repeat(4)

    async def monitor(ctx):
        cycle, words = 0, []
        async for _, _, qv, qr, cv, beat in ctx.tick().sample(cq.valid, cq.ready, cc.valid,
                                                              cc.payload):
            if qv and qr:
                starts.append(cycle)
            if cv:
                if not words:
                    latencies.append(cycle - starts[-1])
                words += [beat.data >> (32 * k) & 0xFFFF_FFFF for k in range(per)
                          if beat.keep >> k & 1]
                if beat.last:
                    frame = UsPcieFrame()
                    frame.data = words
                    completions.append(Tlp_us.unpack_us_cc(frame))
                    words = []
            cycle += 1

    simulate(dut, [host], background=[monitor], max_cycles=200 * reads)
    ok = all(c.status == CplStatus.SC and c.length == 1 and
             int.from_bytes(c.data[:4], "little") == scratch.init for c in completions)
    return {"width": width, "latencies": latencies, "ok": ok and len(completions) == reads}


def latency_rows(quick):
    """Read, write and MMIO read latency per width."""
    rows = []
    for width in WIDTHS:
        for size in (64, 512):
            r = measure_read(width, size, 1, completion=64)
            rows.append({"path": f"DMA read {size} B (command to first data beat)",
                         "width": width, "cycles": r["first_data"],
                         "host_cycles": r["latency"],
                         "engine_cycles": r["first_data"] - r["latency"],
                         "note": f"includes the completion's {r['rc_beats']} RC beats "
                                 f"(RCB 64)", "ok": r["ok"]})
        w = measure_write(width, 64, 256, 1)
        rows.append({"path": "DMA write (command and first data beat to first RQ beat)",
                     "width": width, "cycles": w["latency"], "engine_cycles": w["latency"],
                     "ok": w["ok"]})
        m = measure_mmio_latency(width)
        rows.append({"path": "MMIO read (CQ beat in to CC beat out)", "width": width,
                     "cycles": max(m["latencies"]), "engine_cycles": max(m["latencies"]),
                     "note": f"{len(m['latencies'])} reads: {m['latencies']}", "ok": m["ok"]})
        progress(f"latency at {width} bit: read {rows[-3]['cycles']}, write "
                 f"{rows[-2]['cycles']}, MMIO {rows[-1]['cycles']}")
    return rows


# ---------------------------------------------------------------------------------------------
# Queues


def _log2_ring(entries):
    return max(1, (entries - 1).bit_length())


def _steady_rate(cycles, skip=0.1):
    """Events per 1000 cycles between the event after the first ``skip`` share of ``cycles``
    (the ramp) and the last one."""
    first = int(len(cycles) * skip)
    span = cycles[-1] - cycles[first]
    return 1000 * (len(cycles) - 1 - first) / span if span > 0 else None


def measure_tx(width, size, queues, packets, *, weight=16, latency=LATENCY, seed=1):
    """TX packets of ``size`` bytes spread evenly over ``queues`` queues of scheduler weight
    ``weight`` (packets per turn; 1: every packet from the next queue), every descriptor posted
    and every doorbell rung before measuring, ``tx`` always ready.

    Returns ``packets``, ``per_1000_cycles`` (steady state: packets leaving after the last
    doorbell, less the first tenth), ``line_rate_pct`` (that rate times the packet's bytes over
    the bytes the interface carries in 1000 cycles) and ``ok`` (every queue's packets out
    intact and in order).
    """
    from amaranth.hdl import Elaboratable, Module
    from amaranth.lib import wiring

    from amnic.bench._dma_loopback import host_models
    from amnic.dma.completions import CompletionQueues
    from amnic.dma.queues import QueueKind, QueueRegisters
    from amnic.dma.tx_queues import TxQueues
    from amnic.sim.csr_bus import SimulatorBackend
    from amnic.sim.dma_rings import CompletionRing, DescriptorRing, QueueDriver
    from amnic.sim.stream_tb import simulate

    class Top(Elaboratable):
        def __init__(self):
            self.regs = QueueRegisters(tx_queues=queues, rx_queues=1, completion_queues=1)
            self.txq = TxQueues(width, queues, max_packet=9600)
            self.cq = CompletionQueues(width, 1)

        def elaborate(self, platform):
            m = Module()
            m.submodules.regs, m.submodules.txq, m.submodules.cq = self.regs, self.txq, self.cq
            wiring.connect(m, self.regs.tx, self.txq.host)
            wiring.connect(m, self.regs.cq, self.cq.host)
            wiring.connect(m, self.txq.completions, self.cq.entries)
            m.d.comb += self.cq.events.ready.eq(1)
            return m

    rng = random.Random(seed)
    lanes = width // 8
    dut = Top()
    per_queue = -(-packets // queues)
    memory, benches = host_models(width, rng, reads=[dut.txq.read], writes=[dut.cq.write],
                                  latency=latency)
    rings = {q: DescriptorRing(memory, _log2_ring(per_queue)) for q in range(queues)}
    cq_ring = CompletionRing(memory, min(15, _log2_ring(packets + 1)))
    expected = {q: [] for q in range(queues)}
    for n in range(packets):
        q = n % queues
        payload = rng.randbytes(size)
        address = memory.alloc(size)
        memory.write(address, payload)
        rings[q].post(address, size)
        expected[q].append(payload)
    st = {"cycle": 0, "rung": None, "sent": [], "got": {q: [] for q in range(queues)}}

    async def host(ctx):
        driver = QueueDriver(SimulatorBackend(ctx, dut.regs.bus))
        await driver.configure(QueueKind.CQ, 0, base=cq_ring.base, log_size=cq_ring.log_size)
        for q, ring in rings.items():
            await driver.configure(QueueKind.TX, q, base=ring.base, log_size=ring.log_size,
                                   weight=weight)
        for q, ring in rings.items():
            await driver.doorbell(QueueKind.TX, q, ring.producer)
        st["rung"] = st["cycle"]
        while len(st["sent"]) < packets:
            await ctx.tick()

    async def tx_sink(ctx):
        tx = dut.txq.tx
        ctx.set(tx.ready, 1)
        data = bytearray()
        async for _, _, valid, beat in ctx.tick().sample(tx.valid, tx.payload):
            if valid:
                data += beat.data.to_bytes(lanes, "little")[:beat.keep.bit_length()]
                if beat.last:
                    st["got"].setdefault(beat.user, []).append(bytes(data))
                    st["sent"].append(st["cycle"])
                    data = bytearray()
            st["cycle"] += 1

    simulate(dut, [host], background=benches + [tx_sink],
             max_cycles=400 * packets + 60 * queues + 20_000)
    after = [c for c in st["sent"] if c > st["rung"]]
    rate = _steady_rate(after) if len(after) >= 10 else None
    return {
        "direction": "TX", "width": width, "size": size, "queues": queues, "weight": weight,
        "packets": packets,
        "measured_packets": len(after),
        "per_1000_cycles": None if rate is None else round(rate, 1),
        "line_rate_pct": None if rate is None else round(100 * rate * size / (1000 * lanes), 1),
        "ok": st["got"] == expected,
    }


def measure_rx(width, size, queues, packets, *, latency=LATENCY, seed=2):
    """RX packets of ``size`` bytes, to queues in turn, offered back to back at line rate as
    one burst that fits the 32 KB receive FIFO (so none is dropped), every queue's buffers
    posted beforehand; the descriptor reads, data writes and completion writes take
    ``latency`` cycles each.

    Returns ``packets``, ``per_1000_cycles`` (completions handed to the completion queues, over
    the span after the first tenth of them), ``line_rate_pct`` and ``ok`` (every packet in its
    buffer, byte for byte, and one completion per packet).
    """
    from amaranth.hdl import Elaboratable, Module
    from amaranth.lib import wiring

    from amnic.bench._dma_loopback import host_models
    from amnic.dma.completions import CompletionQueues
    from amnic.dma.queues import QueueKind, QueueRegisters
    from amnic.dma.rx_queues import RxQueues
    from amnic.sim.csr_bus import SimulatorBackend
    from amnic.sim.dma_rings import CompletionRing, DescriptorRing, QueueDriver
    from amnic.sim.stream_tb import put_packet, simulate

    class Top(Elaboratable):
        def __init__(self):
            self.regs = QueueRegisters(tx_queues=1, rx_queues=queues, completion_queues=1)
            self.rxq = RxQueues(width, queues, fifo_bytes=32768)
            self.cq = CompletionQueues(width, 1)

        def elaborate(self, platform):
            m = Module()
            m.submodules.regs, m.submodules.rxq, m.submodules.cq = self.regs, self.rxq, self.cq
            wiring.connect(m, self.regs.rx, self.rxq.host)
            wiring.connect(m, self.regs.cq, self.cq.host)
            wiring.connect(m, self.rxq.completions, self.cq.entries)
            m.d.comb += self.cq.events.ready.eq(1)
            return m

    lanes = width // 8
    beats = -(-size // lanes)
    if packets * beats > 32768 // lanes:
        raise ValueError(f"{packets} packets of {size} bytes do not fit the receive FIFO")
    rng = random.Random(seed)
    dut = Top()
    per_queue = -(-packets // queues)
    memory, benches = host_models(width, rng, reads=[dut.rxq.read],
                                  writes=[dut.rxq.write, dut.cq.write], latency=latency)
    rings = {q: DescriptorRing(memory, _log2_ring(per_queue + 1)) for q in range(queues)}
    cq_ring = CompletionRing(memory, min(15, _log2_ring(packets + 1)))
    payloads = [rng.randbytes(size) for _ in range(packets)]
    buffers = {q: [] for q in range(queues)}
    st = {"ready": False, "cycle": 0, "completions": []}

    async def host(ctx):
        driver = QueueDriver(SimulatorBackend(ctx, dut.regs.bus))
        await driver.configure(QueueKind.CQ, 0, base=cq_ring.base, log_size=cq_ring.log_size)
        for q, ring in rings.items():
            await driver.configure(QueueKind.RX, q, base=ring.base, log_size=ring.log_size,
                                   producer=ring.producer)
            for _ in range(per_queue):
                address = memory.alloc(size)
                buffers[q].append(address)
                ring.post(address, size)
            await driver.doorbell(QueueKind.RX, q, ring.producer)
        await ctx.tick().repeat(20)
        st["ready"] = True
        while len(st["completions"]) < packets:
            await ctx.tick()

    async def sender(ctx):
        while not st["ready"]:
            await ctx.tick()
        for n, payload in enumerate(payloads):
            await put_packet(ctx, dut.rxq.rx, payload, user=[(n % queues) << 1] * beats)

    async def monitor(ctx):
        c = dut.rxq.completions
        async for _, _, valid, ready in ctx.tick().sample(c.valid, c.ready):
            if valid and ready:
                st["completions"].append(st["cycle"])
            st["cycle"] += 1

    simulate(dut, [host, sender], background=benches + [monitor],
             max_cycles=(8 * latency + 4 * beats) * packets + 60 * queues + 20_000)
    intact = all(memory.read(buffers[n % queues][n // queues], size) == payload
                 for n, payload in enumerate(payloads))
    rate = _steady_rate(st["completions"])
    return {
        "direction": "RX", "width": width, "size": size, "queues": queues, "packets": packets,
        "measured_packets": len(st["completions"]),
        "per_1000_cycles": None if rate is None else round(rate, 1),
        "line_rate_pct": None if rate is None else round(100 * rate * size / (1000 * lanes), 1),
        "ok": intact and len(st["completions"]) == packets,
    }


def queue_rows(quick):
    """TX and RX packet rates at 256 bit for 64 and 1500-byte packets and 1, 16, 256 queues."""
    width = 256
    rows = []
    tx_cases = ([(64, 1, 96, 16), (64, 16, 96, 1)] if quick else
                [(64, 1, 768, 16), (64, 16, 768, 16), (64, 16, 768, 1), (64, 256, 1024, 1),
                 (1500, 1, 96, 16), (1500, 16, 96, 1), (1500, 256, 256, 1)])
    rx_cases = ([(64, 1, 24)] if quick else
                [(64, 1, 48), (64, 16, 48), (64, 256, 256), (1500, 1, 20), (1500, 16, 20)])
    for size, queues, packets, weight in tx_cases:
        rows.append(measure_tx(width, size, queues, packets, weight=weight))
        progress(f"TX {size} B, {queues} queues of weight {weight}: "
                 f"{rows[-1]['per_1000_cycles']} per 1000 cycles")
    for size, queues, packets in rx_cases:
        rows.append(measure_rx(width, size, queues, packets))
        progress(f"RX {size} B, {queues} queues: {rows[-1]['per_1000_cycles']} per 1000 cycles")
    return rows


def loopback_rows(quick):
    """Loopback packet rate (:func:`amnic.bench._dma_loopback.loopback_rows`)."""
    from amnic.bench._dma_loopback import loopback_rows

    return loopback_rows(quick)


# ---------------------------------------------------------------------------------------------
# Resources


def _designs():
    """``{label: factory}`` of the resources section: the engines at both widths, then the
    whole :class:`~amnic.dma.core.PcieDmaCore` (64 MSI-X vectors, 256 read tags) at 256 bit
    with 256, 1024 and 4096 queues of each kind (TX, RX, completion), and at 512 bit with 256."""
    from amnic.dma.core import PcieDmaCore
    from amnic.dma.read import DmaReadEngine
    from amnic.dma.write import DmaWriteEngine

    def core(width, count):
        return PcieDmaCore(width, tx_queues=count, rx_queues=count, completion_queues=count)

    designs = {}
    for width in WIDTHS:
        designs[f"DmaWriteEngine, {width} bit"] = lambda w=width: DmaWriteEngine(w)
    for width in WIDTHS:
        designs[f"DmaReadEngine, {width} bit, 256 tags, 32 KB buffer"] = \
            lambda w=width: DmaReadEngine(w)
    for width, counts in ((256, (256, 1024, 4096)), (512, (256,))):
        for count in counts:
            designs[f"PcieDmaCore, {width} bit, {count} TX + {count} RX + {count} completion "
                    f"queues"] = lambda w=width, c=count: core(w, c)
    return designs


def resource_rows(quick):
    """Resources of the designs of :func:`_designs`; a synthesis that exceeds
    :data:`SYNTH_TIMEOUT` gives a row with ``note`` 'timeout' and no figures."""
    from amnic.bench.flow import synthesize_component
    from amnic.bench.synth import ToolError

    rows = []
    for label, design in _designs().items():
        try:
            stats = synthesize_component(design(), timeout=SYNTH_TIMEOUT)
        except ToolError as e:
            if "timed out" not in str(e):
                raise
            rows.append({"design": label, "note": f"timeout ({SYNTH_TIMEOUT} s)"})
            progress(f"{label}: {e}")
            continue
        rows.append({"design": label, **stats})
        progress(f"synthesized {label}: {stats['LUT']} LUT, {stats['FF']} FF, "
                 f"{stats['BRAM36_eq']} RAMB36, {stats['synthesis_s']} s")
    return rows


# ---------------------------------------------------------------------------------------------
# Tables


_text = text_column


_RATE_COLUMNS = (Column("interface_gbps", "interface Gbit/s", ".2f"),
                 Column("ceiling_gbps", "link ceiling Gbit/s", ".2f"),
                 Column("achieved_gbps", "achieved Gbit/s", ".2f"),
                 Column("pct_of_ceiling", "% of ceiling", ".1f"))

_PACKET_RATE = (Column("per_1000_cycles", "packets / 1000 cycles", ".1f"),
                Column("line_rate_pct", "% of interface line rate", ".1f"))

#: The sections, in run order.
SECTIONS = (
    Section("write",
            "DMA write throughput (write engine alone, rq always ready, cycle-exact)",
            write_rows,
            (Column("width", "width"), Column("mps", "MPS"), Column("size", "transfer (B)"),
             Column("commands", "commands"), Column("tlps", "TLPs"),
             Column("beats", "RQ beats"), Column("ideal_beats", "ideal beats"),
             Column("cycles", "cycles"), *_RATE_COLUMNS,
             Column("goal_met", ">= 95 % (goal at >= 1 KB)", align=":---:"),
             Column("ok", "TLPs = split_write", align=":---:")),
            "Interface: payload bits / cycles (first to last RQ beat) at 250 MHz. Link "
            "ceiling: Gen3 x8 (256 bit) or x16 (512 bit) raw rate x payload / (payload + 16 "
            "header + 8 framing bytes) over exactly the TLPs sent; DLLPs are not counted. "
            "Achieved = min(interface, ceiling); % = achieved / ceiling. A TLP of n payload "
            "DWORDs takes ceil((4 + n) / DWORDs per beat) beats: its 16-byte descriptor does "
            "not share a beat with the previous TLP (no straddling)."),
    Section("read",
            "DMA read throughput (read engine, 256 tags, MRRS 512, host latency 125 cycles)",
            read_rows,
            (Column("width", "width"), _text("completions_as", "completions"),
             Column("size", "transfer (B)"), Column("commands", "commands"),
             Column("requests", "requests"), Column("completions", "completions"),
             Column("rc_beats", "RC beats"), Column("cycles", "cycles"), *_RATE_COLUMNS,
             Column("ok", "data = host memory", align=":---:")),
            "Each request is answered 125 cycles (500 ns) after its RQ beat with completions "
            "cut at 64-byte (RCB) or 256-byte (MPS) boundaries, at most one RC beat per cycle "
            "and no faster than the link carries payload + 12 header + 8 framing bytes. "
            "Interface: data bytes out / cycles (first to last data beat). Ceiling: the link "
            "rate for the completions sent."),
    Section("latency",
            "Latency (cycles at 250 MHz, cycle-exact)",
            latency_rows,
            (_text("path", "path"), Column("width", "width"), Column("cycles", "cycles"),
             Column("host_cycles", "host latency"),
             Column("engine_cycles", "engine's share"), _text("note", "note"),
             Column("ok", "ok", align=":---:")),
            "Cycles between handshake edges. DMA read: the host answers 125 cycles after the "
            "request; the engine's share is the rest. MMIO: a one-DWORD read of the scratch "
            "register through Completer, decoder and register file (the hard-IP adapters "
            "are combinational)."),
    Section("queues",
            "Descriptor queues: packet rate (256 bit, DMA latency 125 cycles)",
            queue_rows,
            (_text("direction", "direction"), Column("size", "packet (B)"),
             Column("queues", "queues"), Column("weight", "TX weight"),
             Column("packets", "packets"),
             Column("measured_packets", "measured"), *_PACKET_RATE,
             Column("ok", "data intact", align=":---:")),
            "TX and RX are simulated separately (no loopback). TX: every descriptor posted "
            "and every doorbell rung first, rate measured on packets leaving after the last "
            "doorbell; with weight 1 every packet comes from the next queue. RX: a burst that "
            "fits the 32 KB receive FIFO offered at line rate, "
            "rate of completions. The first tenth of the packets is left out of the rate "
            "(ramp). Line rate: packet bytes per cycle over the 32 bytes of a beat."),
    Section("loopback",
            "Loopback packet rate (TX queues -> RX queues, 256 bit, DMA latency 125 cycles)",
            loopback_rows,
            (Column("size", "packet (B)"), Column("queues", "queues"),
             Column("active_queues", "active"), Column("packets", "packets"),
             Column("per_queue", "per queue", "g"), Column("measured_packets", "measured"),
             Column("cycles", "cycles"), *_PACKET_RATE,
             Column("ok", "intact, right queue, in order", align=":---:")),
            "The core's queue path with control.loopback set: TX packets enter the RX queue "
            "of their number; TX descriptor and data reads and RX descriptor reads share one "
            "read engine, RX data and completion writes one write engine (host model: 125 "
            "cycles, no back-pressure; the link is not modelled). Every descriptor and buffer "
            "is posted before the TX doorbells; rate of RX completions after the last "
            "doorbell, less the first and the last tenth. Cycles: first TX doorbell to last RX "
            "completion. Active queues are spread over the queue numbers; on 16 and 256 "
            "queues each holds two packets (a queue switch per two packets)."),
    Section("resources",
            "Resources (pyosys, synth_xilinx -family xcup -flatten -noiopad)",
            resource_rows,
            (_text("design", "design"), Column("LUT", "LUT"), Column("FF", "FF"),
             Column("CARRY", "CARRY"), Column("BRAM36_eq", "RAMB36 (eq.)", "g"),
             Column("URAM", "URAM"), Column("LUTRAM", "LUTRAM"), Column("SRL", "SRL"),
             Column("synthesis_s", "Yosys s", "g"), _text("note", "note")),
            "Out-of-context synthesis of each design with every port at the top level; Yosys "
            "s includes the Verilog export.",
            full_only=True),
)


def main(argv=None):
    return run_sections("dma", __doc__, SECTIONS, argv, progress=progress,
                        quick_help="fewer sizes and commands, no synthesis (under three minutes)")


if __name__ == "__main__":
    sys.exit(main())
