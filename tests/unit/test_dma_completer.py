# amaranth: UnusedElaboratable=no
"""The completer against cocotbext-pcie's TLP packing: requests are packed by the model
(``Tlp_us.pack_us_cq``), completions unpacked by it (``Tlp_us.unpack_us_cc``) and their byte
counts compared with the model's own ``get_be_byte_count``."""

import random
import struct

import pytest
from amaranth.sim import Simulator
from cocotbext.pcie.core.tlp import CplStatus, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.xilinx.us.interface import UsPcieFrame
from cocotbext.pcie.xilinx.us.tlp import Tlp_us

from amnic.dma.completer import MAX_READ_DWORDS, Completer, read_byte_count
from amnic.dma.descriptors import CompleterRequest, RequestType

ADDR_WIDTH = 12
UNMAPPED = 0xC00  # the register model answers error from here up


def first_offset(first_be):
    return next((i for i in range(4) if first_be >> i & 1), 0)


@pytest.mark.parametrize("dwords", [1, 2, 5])
def test_byte_count_reference_agrees_with_the_model(dwords):
    for first_be in range(16):
        for last_be in range(16) if dwords > 1 else [0]:
            if dwords > 1 and (first_be == 0 or last_be == 0):
                continue  # not a legal request
            tlp = Tlp_us()
            tlp.length, tlp.first_be, tlp.last_be = dwords, first_be, last_be
            count, low = read_byte_count(dwords, first_be, last_be)
            assert count == tlp.get_be_byte_count()
            if first_be:
                assert low == tlp.get_first_be_offset()


class Request:
    """One CQ request, the frame the model packs for it and what the completer must do."""

    def __init__(self, rng, kind):
        self.kind = kind
        self.tlp = tlp = Tlp_us()
        tlp.requester_id = PcieId(rng.randrange(256), rng.randrange(32), rng.randrange(8))
        tlp.tag = rng.randrange(256)
        tlp.tc, tlp.attr = rng.randrange(8), rng.randrange(8)
        tlp.bar_id = 0 if kind != "other_bar" else rng.randrange(1, 6)
        base = rng.randrange(0, 1 << ADDR_WIDTH, 4)
        if kind in ("write", "other_bar"):
            tlp.fmt_type = TlpType.MEM_WRITE_64 if rng.random() < 0.5 else TlpType.MEM_WRITE
            n = rng.choice([0, 1, 2, 3, 4, 8, rng.randrange(1, 200)])
            data = bytes(rng.randrange(256) for _ in range(n))
            tlp.set_addr_be_data(base + rng.randrange(4), data)
        elif kind in ("read", "long_read"):
            tlp.fmt_type = TlpType.MEM_READ_64 if rng.random() < 0.5 else TlpType.MEM_READ
            n = (rng.choice([0, 1, 2, 4, 8, rng.randrange(1, 4 * MAX_READ_DWORDS - 3)])
                 if kind == "read" else rng.randrange(4 * MAX_READ_DWORDS + 1, 600))
            tlp.set_addr_be(base + rng.randrange(4), n)
        elif kind == "io":
            tlp.fmt_type = rng.choice([TlpType.IO_READ, TlpType.IO_WRITE])
            tlp.set_addr_be(base, 4)
            if tlp.fmt_type == TlpType.IO_WRITE:
                tlp.data = bytearray(4)
        elif kind == "atomic":
            tlp.fmt_type = TlpType.FETCH_ADD_64
            tlp.address = base & ~7
            tlp.data = bytearray(8)
            tlp.length = 2
        tlp.address |= rng.randrange(4) << 40 if kind == "read" else 0  # above the BAR
        if kind == "message":
            self.frame = UsPcieFrame()
            desc = CompleterRequest.const({
                "request_type": RequestType.MESSAGE, "dword_count": 1,
                "requester_id": int(tlp.requester_id), "tag": tlp.tag,
            }).as_value().value
            self.frame.data = [(desc >> (32 * k)) & 0xFFFF_FFFF for k in range(4)] + [7]
        else:
            self.frame = tlp.pack_us_cq()

    def expected_accesses(self, regs):
        """Register bus accesses, and the completion (or None)."""
        tlp, accesses = self.tlp, []
        if self.kind == "write":
            for i in range(tlp.length):
                be = tlp.first_be if i == 0 else tlp.last_be if i == tlp.length - 1 else 0xF
                if be:
                    word, = struct.unpack_from("<L", tlp.data, 4 * i)
                    addr = (tlp.address + 4 * i) % (1 << ADDR_WIDTH)
                    accesses.append(("w", addr, word, be))
            return accesses, None
        if self.kind == "read":
            zero_length = tlp.length == 1 and tlp.first_be == 0
            data = bytearray()
            for i in range(tlp.length):
                addr = (tlp.address + 4 * i) % (1 << ADDR_WIDTH)
                if not zero_length:
                    accesses.append(("r", addr))
                data += struct.pack("<L", 0 if zero_length else regs.get(addr, 0))
            count, low = read_byte_count(tlp.length, tlp.first_be, tlp.last_be)
            cpl = ("SC", tlp.length, count, (tlp.address & 0x7C) + low, bytes(data))
            return accesses, cpl
        if self.kind in ("long_read", "io", "atomic"):
            return accesses, ("UR", 0, None, None, b"")
        return accesses, None  # other_bar write, message: posted, dropped


KINDS = ["write"] * 6 + ["read"] * 6 + ["long_read", "io", "atomic", "other_bar", "message"]


@pytest.mark.parametrize("width", [256, 512])
def test_random_requests_against_the_model(width):
    rng = random.Random(width)
    lanes = width // 32
    requests = [Request(rng, rng.choice(KINDS)) for _ in range(250)]
    dut = Completer(width, addr_width=ADDR_WIDTH)
    regs = {}  # register model: word address -> value
    accesses, completions = [], []
    expected_accesses, expected_completions = [], []

    async def cq_driver(ctx):
        for req in requests:
            words = req.frame.data
            for start in range(0, len(words), lanes):
                chunk = words[start:start + lanes]
                ctx.set(dut.cq.payload, {
                    "data": sum(w << (32 * k) for k, w in enumerate(chunk)),
                    "keep": (1 << len(chunk)) - 1,
                    "last": start + lanes >= len(words),
                    "side": {"first_be": req.frame.first_be, "last_be": req.frame.last_be},
                })
                ctx.set(dut.cq.valid, 1)
                await ctx.tick().until(dut.cq.ready)
                if rng.random() < 0.2:
                    ctx.set(dut.cq.valid, 0)
                    await ctx.tick().repeat(rng.randrange(1, 4))
            ctx.set(dut.cq.valid, 0)

    async def register_target(ctx):
        while True:
            ctx.set(dut.bus.ready, rng.random() < 0.7)
            await ctx.delay(1e-9)  # let valid settle for this cycle
            taken = ctx.get(dut.bus.valid) and ctx.get(dut.bus.ready)
            if taken:
                addr = ctx.get(dut.bus.addr)
                if ctx.get(dut.bus.write):
                    word, strobe = ctx.get(dut.bus.wdata), ctx.get(dut.bus.wstrb)
                    accesses.append(("w", addr, word, strobe))
                    old = regs.get(addr, 0)
                    mask = sum(0xFF << (8 * b) for b in range(4) if strobe >> b & 1)
                    if addr < UNMAPPED:
                        regs[addr] = old & ~mask | word & mask
                    rdata, error = 0, addr >= UNMAPPED
                else:
                    accesses.append(("r", addr))
                    rdata, error = (0, 1) if addr >= UNMAPPED else (regs.get(addr, 0), 0)
            await ctx.tick()
            if taken:
                ctx.set(dut.bus.ready, 0)
                for _ in range(rng.randrange(3)):
                    await ctx.tick()
                ctx.set(dut.bus.done, 1)
                ctx.set(dut.bus.rdata, rdata)
                ctx.set(dut.bus.error, error)
                await ctx.tick()
                ctx.set(dut.bus.done, 0)

    async def cc_sink(ctx):
        frame = []
        while True:
            ready = rng.random() < 0.8
            ctx.set(dut.cc.ready, ready)
            await ctx.delay(1e-9)
            if ready and ctx.get(dut.cc.valid):
                beat = ctx.get(dut.cc.payload)
                keep = beat.keep
                frame += [(beat.data >> (32 * k)) & 0xFFFF_FFFF
                          for k in range(lanes) if keep >> k & 1]
                assert keep & (keep + 1) == 0, "keep not contiguous from DWORD 0"
                if beat.last:
                    pkt = UsPcieFrame()
                    pkt.data = frame
                    completions.append(Tlp_us.unpack_us_cc(pkt))
                    frame = []
            await ctx.tick()

    counts = {}

    async def settle(ctx):
        await ctx.tick().repeat(20)
        while ctx.get(dut.busy) or ctx.get(dut.cq.valid):
            await ctx.tick()
        await ctx.tick().repeat(20)
        for name in ("reads", "writes", "unsupported", "malformed", "bus_errors"):
            counts[name] = ctx.get(getattr(dut, name))

    # Expected effects, request by request on a model of the registers (the completer serves
    # one request at a time, so reads see every earlier write).
    model_regs = {}
    for req in requests:
        acc, cpl = req.expected_accesses(model_regs)
        for a in acc:
            if a[0] == "w" and a[1] < UNMAPPED:
                mask = sum(0xFF << (8 * b) for b in range(4) if a[3] >> b & 1)
                model_regs[a[1]] = model_regs.get(a[1], 0) & ~mask | a[2] & mask
        expected_accesses.extend(acc)
        if cpl:
            expected_completions.append((req, cpl))

    async def driver_then_settle(ctx):
        await cq_driver(ctx)
        await settle(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver_then_settle)
    sim.add_testbench(register_target, background=True)
    sim.add_testbench(cc_sink, background=True)
    sim.run()

    assert accesses == expected_accesses
    assert len(completions) == len(expected_completions)
    for cpl, (req, (status, length, count, lower, data)) in zip(
            completions, expected_completions, strict=True):
        tlp = req.tlp
        assert (cpl.tag, int(cpl.requester_id), cpl.tc, cpl.attr) == (
            tlp.tag, int(tlp.requester_id), tlp.tc, tlp.attr)
        assert cpl.status == (CplStatus.SC if status == "SC" else CplStatus.UR)
        assert cpl.length == length
        if status == "SC":
            assert (cpl.byte_count, cpl.lower_address) == (count, lower)
            assert bytes(cpl.data) == data
    kinds = [r.kind for r in requests]
    assert counts["reads"] == kinds.count("read")
    assert counts["writes"] == kinds.count("write")
    assert counts["unsupported"] == len(requests) - counts["reads"] - counts["writes"]
    assert counts["malformed"] == 0
    assert counts["bus_errors"] == sum(1 for a in expected_accesses if a[1] >= UNMAPPED)
