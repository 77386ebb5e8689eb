"""HostMemoryPort: AXI4 bursts to and from host memory through models of the DMA engines.

The engines are Python models around a host memory ``bytearray``: the write engine takes each
command and exactly its packed bytes (checking the packing), writes them and answers with a
status; the read engine returns each command's bytes packed, with random gaps, and its status
at a random time before or after the data. Both answer OUT_OF_WINDOW for a transfer that leaves
the memory and inject random errors. A Python AXI4 master drives the five channels as separate
testbenches with random pauses and back-pressure. The expected outcome of each burst comes from
a reference written from the AXI rules (the strobed byte addresses of a burst, not the beat
structure the hardware tracks), and host memory is compared byte for byte at the end.
"""

import gc
import random
import warnings

import pytest

from amnic.cli.export import axi_ports
from amnic.dma.axi_port import HostMemoryPort
from amnic.dma.commands import DmaError
from amnic.sim.stream_tb import Beat, beats_to_packet, get, packet_to_beats, put, simulate
from amnic.stream.axi4 import Axi4Signature, AxiBurst, AxiResp

BASE = 0x0000_0007_FFFF_0000  # host memory window; bit 32 changes inside it
MEM = 1 << 16
WRITE_REGION = (BASE, BASE + MEM // 2)  # random writes land here ...
READ_REGION = (BASE + MEM // 2, BASE + MEM)  # ... and random reads here (never written)
OKAY, SLVERR = AxiResp.OKAY.value, AxiResp.SLVERR.value


# -- engine models ------------------------------------------------------------------------------

def in_window(address, length):
    return BASE <= address and address + length <= BASE + MEM


class WriteEngineModel:
    """Takes a command, then exactly ``length`` packed bytes; writes them; returns a status."""

    def __init__(self, dut, memory, rng, *, cmd_ready=1.0, data_ready=1.0, error_prob=0.0,
                 status_delay=(0, 8)):
        self.dut, self.memory, self.rng = dut, memory, rng
        self.cmd_ready, self.data_ready = cmd_ready, data_ready
        self.error_prob, self.status_delay = error_prob, status_delay
        self.cmds = []  # commands taken: (address, length, id)
        self.log = []  # finished transfers: (address, length, id, error)
        self.statuses = []  # (id, error) not yet returned
        self.data_cycles = []  # cycle of each data beat taken (relative to this model's clock)
        self.cycle = 0

    async def run_cmd(self, ctx):
        while True:
            cmd = await get(ctx, self.dut.wr.cmd, ready_prob=self.cmd_ready, rng=self.rng)
            self.cmds.append((cmd.address, cmd.length, cmd.id))

    async def run_data(self, ctx):
        stream = self.dut.wr.data
        beats = []
        while True:
            # Like the engine, take data only for a command already taken.
            have_cmd = len(self.cmds) > len(self.log)
            ready = have_cmd and (self.data_ready >= 1 or self.rng.random() < self.data_ready)
            ctx.set(stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
            self.cycle += 1
            if not (ready and valid):
                continue
            self.data_cycles.append(self.cycle)
            beats.append(Beat(payload.data, payload.keep, bool(payload.last)))
            if payload.last:
                self.finish(beats)
                beats = []

    def finish(self, beats):
        address, length, cmd_id = self.cmds[len(self.log)]
        payload, _ = beats_to_packet(beats, len(self.dut.wr.data.payload.data))  # packing
        assert len(payload) == length, f"command of {length} bytes got {len(payload)} bytes"
        if not in_window(address, length):
            error = DmaError.OUT_OF_WINDOW
        elif self.rng.random() < self.error_prob:
            error = DmaError.COMPLETION
        else:
            error = DmaError.OK
            self.memory[address - BASE:address - BASE + length] = payload
        self.log.append((address, length, cmd_id, error))
        self.statuses.append((cmd_id, error))

    async def run_status(self, ctx):
        while True:
            while not self.statuses:
                await ctx.tick()
            for _ in range(self.rng.randint(*self.status_delay)):
                await ctx.tick()
            cmd_id, error = self.statuses.pop(0)
            await put(ctx, self.dut.wr.status, {"id": cmd_id, "error": error})

    def testbenches(self):
        return [self.run_cmd, self.run_data, self.run_status]


class ReadEngineModel:
    """Returns each command's bytes packed, in order; the status comes at a random moment."""

    def __init__(self, dut, memory, rng, *, cmd_ready=0.7, idle=0.2, error_prob=0.05,
                 status_delay=(0, 40), status_after_data=False):
        self.dut, self.memory, self.rng = dut, memory, rng
        self.cmd_ready, self.idle = cmd_ready, idle
        self.error_prob, self.status_delay = error_prob, status_delay
        # Like amnic.dma.read.DmaReadEngine: a status only once its data has all been taken.
        self.status_after_data = status_after_data
        self.log = []  # (address, length, id, error, data sent)
        self.to_send = []
        self.statuses = []
        self.data_done = 0

    async def run_cmd(self, ctx):
        while True:
            cmd = await get(ctx, self.dut.rd.cmd, ready_prob=self.cmd_ready, rng=self.rng)
            address, length = cmd.address, cmd.length
            if not in_window(address, length):
                error = DmaError.OUT_OF_WINDOW
            elif self.rng.random() < self.error_prob:
                error = DmaError.TIMEOUT
            else:
                error = DmaError.OK
            if error == DmaError.OK:
                payload = bytes(self.memory[address - BASE:address - BASE + length])
            else:
                payload = bytes(length)
            self.log.append((address, length, cmd.id, error, payload))
            self.to_send.append(payload)
            self.statuses.append((cmd.id, error))

    async def run_data(self, ctx):
        width = len(self.dut.rd.data.payload.data)
        while True:
            while not self.to_send:
                await ctx.tick()
            for beat in packet_to_beats(self.to_send.pop(0), width):
                await put(ctx, self.dut.rd.data, {"data": beat.data, "keep": beat.keep,
                                                  "last": beat.last},
                          idle_prob=self.idle, rng=self.rng)
            self.data_done += 1

    async def run_status(self, ctx):
        sent = 0
        while True:
            while sent == len(self.log) or (self.status_after_data and self.data_done <= sent):
                await ctx.tick()
            for _ in range(self.rng.randint(*self.status_delay)):
                await ctx.tick()
            cmd_id, error = self.statuses[sent]
            await put(ctx, self.dut.rd.status, {"id": cmd_id, "error": error})
            sent += 1

    def testbenches(self):
        return [self.run_cmd, self.run_data, self.run_status]


# -- AXI4 master --------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0

    async def run(self, ctx):
        while True:
            await ctx.tick()
            self.now += 1


async def send(ctx, valid, ready, fields, *, idle_prob, rng):
    """Drive one channel transfer of ``(signal, value)`` pairs; return after its handshake."""
    while idle_prob and rng.random() < idle_prob:
        ctx.set(valid, 0)
        await ctx.tick()
    for sig, value in fields:
        ctx.set(sig, value)
    ctx.set(valid, 1)
    while True:
        _, _, r = await ctx.tick().sample(ready)
        if r:
            break
    ctx.set(valid, 0)


async def receive(ctx, valid, ready, fields, *, ready_prob, rng):
    while True:
        r = ready_prob >= 1 or rng.random() < ready_prob
        ctx.set(ready, r)
        _, _, v, *values = await ctx.tick().sample(valid, *fields)
        if r and v:
            ctx.set(ready, 0)
            return values


class WriteBurst:
    """An AXI4 write burst as the master sends it, with the reference outcome."""

    def __init__(self, awid, addr, beats, *, burst=AxiBurst.INCR.value, size=None, lanes=8,
                 kind="good", awlen=None):
        self.awid, self.addr, self.beats = awid, addr, beats  # beats: [(data, strb)]
        self.awlen = len(beats) - 1 if awlen is None else awlen
        self.burst = burst
        self.size = size if size is not None else lanes.bit_length() - 1
        self.lanes, self.kind = lanes, kind

    def strobed(self):
        """``{byte address: value}`` of the strobed bytes (IHI 0022 A3.4.3, INCR burst)."""
        base = self.addr & ~(self.lanes - 1)
        out = {}
        for n, (data, strb) in enumerate(self.beats):
            for lane in range(self.lanes):
                if strb >> lane & 1:
                    out[base + n * self.lanes + lane] = data >> (8 * lane) & 0xFF
        return out

    def expected(self):
        """``None`` (no command) with the response, or the command ``(address, length)``."""
        if self.burst != AxiBurst.INCR.value or 1 << self.size != self.lanes:
            return SLVERR, None
        if self.awlen + 1 != len(self.beats):  # W beats do not match AWLEN (IHI 0022 A3.4.1)
            return SLVERR, None
        strobed = self.strobed()
        if not strobed:
            return OKAY, None
        lo, hi = min(strobed), max(strobed)
        if hi - lo + 1 != len(strobed):
            return SLVERR, None
        return None, (lo, len(strobed), bytes(strobed[a] for a in range(lo, hi + 1)))


def run_bursts(dut, writes, reads, *, seed, memory, w_idle=0.3, aw_idle=0.3, b_ready=0.6,
               ar_idle=0.3, r_ready=0.6, wr_kwargs=None, rd_kwargs=None, max_cycles=200_000):
    """Run ``writes`` (WriteBurst) and ``reads`` ((arid, araddr, arlen, arburst, arsize)) on
    ``dut`` against engine models; return what the master and the models saw."""
    axi = dut.s_axi
    clock = Clock()
    wr = WriteEngineModel(dut, memory, random.Random(seed + 1), **(wr_kwargs or {}))
    rd = ReadEngineModel(dut, memory, random.Random(seed + 2), **(rd_kwargs or {}))
    seen = {"aw": [], "w_first": [], "w_done": [], "w": [], "b": [], "r": [], "counters": None}
    done = {"b": False, "r": False}

    async def aw_driver(ctx):
        r = random.Random(seed + 3)
        for n, b in enumerate(writes):
            if aw_idle and r.random() < 0.2:
                # Hold the address back until the burst's data has started (or finished).
                target = seen["w_first"] if r.random() < 0.5 else seen["w_done"]
                while len(target) <= n:
                    await ctx.tick()
            await send(ctx, axi.awvalid, axi.awready, [
                (axi.awid, b.awid), (axi.awaddr, b.addr), (axi.awlen, b.awlen),
                (axi.awsize, b.size), (axi.awburst, b.burst), (axi.awlock, r.getrandbits(1)),
                (axi.awcache, r.getrandbits(4)), (axi.awprot, r.getrandbits(3))],
                idle_prob=r.choice((0.0, aw_idle, 0.9)) if aw_idle else 0.0, rng=r)
            seen["aw"].append(clock.now)

    async def w_driver(ctx):
        r = random.Random(seed + 4)
        for b in writes:
            pause = r.choice((0.0, w_idle, 0.9)) if w_idle else 0.0
            for n, (data, strb) in enumerate(b.beats):
                await send(ctx, axi.wvalid, axi.wready, [
                    (axi.wdata, data), (axi.wstrb, strb), (axi.wlast, n == len(b.beats) - 1)],
                    idle_prob=pause if n == 0 else (w_idle and w_idle / 4), rng=r)
                seen["w"].append(clock.now)
                if n == 0:
                    seen["w_first"].append(clock.now)
            seen["w_done"].append(clock.now)

    async def b_sink(ctx):
        r = random.Random(seed + 5)
        for _ in writes:
            seen["b"].append(tuple(await receive(ctx, axi.bvalid, axi.bready,
                                                 [axi.bid, axi.bresp], ready_prob=b_ready,
                                                 rng=r)))
        done["b"] = True

    async def ar_driver(ctx):
        r = random.Random(seed + 6)
        for arid, araddr, arlen, arburst, arsize in reads:
            await send(ctx, axi.arvalid, axi.arready, [
                (axi.arid, arid), (axi.araddr, araddr), (axi.arlen, arlen),
                (axi.arsize, arsize), (axi.arburst, arburst), (axi.arcache, r.getrandbits(4))],
                idle_prob=ar_idle, rng=r)

    async def r_sink(ctx):
        r = random.Random(seed + 7)
        for _, _, arlen, _, _ in reads:
            seen["r"].append([tuple(await receive(
                ctx, axi.rvalid, axi.rready, [axi.rid, axi.rdata, axi.rresp, axi.rlast],
                ready_prob=r_ready, rng=r)) for _ in range(arlen + 1)])
        done["r"] = True

    async def counters(ctx):
        while not (done["b"] and done["r"]):
            await ctx.tick()
        await ctx.tick().repeat(3)
        seen["counters"] = {name: ctx.get(getattr(dut, name)) for name in (
            "write_bursts", "write_errors", "read_bursts", "read_errors", "rejected_bursts")}
        # Nothing is left over on the engine side.
        assert not ctx.get(dut.wr.cmd.valid) and not ctx.get(dut.wr.data.valid)
        assert not ctx.get(dut.rd.cmd.valid)

    simulate(dut, [aw_driver, w_driver, b_sink, ar_driver, r_sink, counters],
             background=[clock.run, *wr.testbenches(), *rd.testbenches()],
             max_cycles=max_cycles)
    gc.collect()
    return seen, wr, rd


def check_writes(writes, seen, wr, reference):
    """Apply the expected outcome of each write to ``reference``; compare B and the commands."""
    log = list(wr.log)
    n_errors = n_rejected = 0
    for n, (b, (bid, bresp)) in enumerate(zip(writes, seen["b"], strict=True)):
        assert bid == b.awid, f"write {n}: bid {bid} for awid {b.awid}"
        resp, cmd = b.expected()
        if cmd is not None:
            address, length, payload = cmd
            got_address, got_length, got_id, error = log.pop(0)
            assert (got_address, got_length) == (address, length), f"write {n} ({b.kind})"
            assert got_id == b.awid
            resp = OKAY if error == DmaError.OK else SLVERR
            if error == DmaError.OK:
                reference[address - BASE:address - BASE + length] = payload
        else:
            n_rejected += resp == SLVERR
        assert bresp == resp, f"write {n} ({b.kind}): bresp {bresp}, expected {resp}"
        n_errors += resp == SLVERR
    assert not log, f"{len(log)} write commands more than expected"
    return n_errors, n_rejected


def check_reads(reads, seen, rd, lanes):
    log = list(rd.log)
    n_errors = n_rejected = 0
    for n, ((arid, araddr, arlen, arburst, arsize), beats) in enumerate(
            zip(reads, seen["r"], strict=True)):
        assert [b[0] for b in beats] == [arid] * (arlen + 1), f"read {n}: rid"
        assert [b[3] for b in beats] == [0] * arlen + [1], f"read {n}: rlast"
        resps = [b[2] for b in beats]
        data = b"".join(b[1].to_bytes(lanes, "little") for b in beats)
        if arburst != AxiBurst.INCR.value or 1 << arsize != lanes:
            assert resps == [SLVERR] * (arlen + 1), f"read {n}: unsupported burst"
            assert data == bytes(len(data))
            n_rejected += 1
            n_errors += 1
            continue
        address, length, cmd_id, error, payload = log.pop(0)
        assert address == araddr & ~(lanes - 1), f"read {n}: command address"
        assert length == (arlen + 1) * lanes and cmd_id == arid
        assert data == payload, f"read {n}: data"
        if error == DmaError.OK:
            assert resps == [OKAY] * (arlen + 1), f"read {n}: rresp {resps}"
            assert data == bytes(rd.memory[address - BASE:address - BASE + length])
        else:
            assert resps[-1] == SLVERR, f"read {n}: last rresp {resps[-1]} after {error}"
            assert set(resps) <= {OKAY, SLVERR}
            n_errors += 1
    assert not log
    return n_errors, n_rejected


# -- random traffic -----------------------------------------------------------------------------

def burst_len(rng):
    r = rng.random()
    if r < 0.6:
        return rng.randint(1, 16)
    if r < 0.9:
        return rng.randint(17, 64)
    return rng.randint(65, 256)


def random_write(rng, lanes, kind):
    """A write burst of ``kind`` in the write region (or leaving the window for "window")."""
    n = burst_len(rng)
    start_lane = rng.choice((0, rng.randrange(lanes)))
    end_lane = rng.choice((lanes - 1, rng.randrange(lanes)))
    if n == 1:
        end_lane = max(end_lane, start_lane)
    lead = trail = 0
    if kind == "padded" and n >= 3:
        lead, trail = rng.randint(0, 1), rng.randint(0, 1)
        lead = lead or not trail  # at least one empty beat
    if kind == "window":
        # Partly (the last beat is strobed, so the run reaches past the end) or wholly outside.
        base = BASE + MEM - lanes * rng.randint(1, n - 1) if n > 1 and trail == 0 and (
            rng.random() < 0.7) else BASE + MEM
    else:
        base = WRITE_REGION[0] + lanes * rng.randrange(
            (WRITE_REGION[1] - WRITE_REGION[0]) // lanes - n)
    full = (1 << lanes) - 1
    beats = []
    for k in range(n):
        strb = full
        if k < lead or k >= n - trail:
            strb = 0
        else:
            if k == lead:
                strb &= full << start_lane
            if k == n - 1 - trail:
                strb &= full >> (lanes - 1 - end_lane)
        beats.append([rng.getrandbits(8 * lanes), strb])
    run = [k for k in range(n) if beats[k][1]]
    if kind == "sparse":
        # A hole inside the run, or a strobe set apart from it.
        candidates = [(k, lane) for k in run for lane in range(lanes) if beats[k][1] >> lane & 1]
        inner = candidates[1:-1]
        if inner and rng.random() < 0.6:
            k, lane = rng.choice(inner)
            beats[k][1] &= ~(1 << lane)
        else:
            outside = [(k, lane) for k in range(n) for lane in range(lanes)
                       if not beats[k][1] >> lane & 1 and abs(
                           (k * lanes + lane) - (candidates[0][0] * lanes + candidates[0][1])) > 1
                       and abs((k * lanes + lane)
                               - (candidates[-1][0] * lanes + candidates[-1][1])) > 1]
            if not outside:
                return random_write(rng, lanes, kind)
            k, lane = rng.choice(outside)
            beats[k][1] |= 1 << lane
    elif kind == "empty":
        for beat in beats:
            beat[1] = 0
    addr = base + (beats[run[0]][1] & -beats[run[0]][1]).bit_length() - 1 if run else base
    if kind == "empty":
        addr = base
    addr = addr if rng.random() < 0.7 else base  # awaddr unaligned or aligned down
    burst, size = AxiBurst.INCR.value, None
    if kind == "type":
        burst = rng.choice((AxiBurst.FIXED.value, AxiBurst.WRAP.value))
        if burst == AxiBurst.WRAP.value:
            n_wrap = rng.choice((2, 4, 8, 16))
            beats = beats[:n_wrap] if len(beats) >= n_wrap else beats + [
                [0, 0]] * (n_wrap - len(beats))
    elif kind == "narrow":
        size = rng.randrange(lanes.bit_length() - 1)
    awlen = None
    if kind == "count":
        awlen = n - 1 + (1 if n == 1 else -1 if n == 256 else rng.choice((-1, 1)))
    return WriteBurst(rng.getrandbits(8), addr, [tuple(b) for b in beats], burst=burst,
                      size=size, lanes=lanes, kind=kind, awlen=awlen)


WRITE_KINDS = ["good"] * 14 + ["padded", "sparse", "type", "narrow", "empty", "window", "count"]


def random_read(rng, lanes):
    arlen = burst_len(rng) - 1
    r = rng.random()
    arburst, arsize = AxiBurst.INCR.value, lanes.bit_length() - 1
    if r < 0.05:
        arburst = rng.choice((AxiBurst.FIXED.value, AxiBurst.WRAP.value))
    elif r < 0.1:
        arsize = rng.randrange(arsize)
    if rng.random() < 0.1:
        araddr = BASE + MEM - lanes * rng.randint(0, arlen)  # leaves the window
    else:
        araddr = READ_REGION[0] + lanes * rng.randrange(
            (READ_REGION[1] - READ_REGION[0]) // lanes - arlen - 1)
    araddr += rng.randrange(lanes) if rng.random() < 0.3 else 0
    return rng.getrandbits(8), araddr, arlen, arburst, arsize


def crosses_4k(address, length):
    return address // 4096 != (address + length - 1) // 4096


@pytest.mark.parametrize("width,seed,n_writes,n_reads", [(64, 1, 140, 60), (256, 2, 60, 30)])
def test_random_bursts(width, seed, n_writes, n_reads):
    lanes = width // 8
    rng = random.Random(seed)
    memory = bytearray(rng.randbytes(MEM))
    reference = bytearray(memory)
    kinds = sorted(set(WRITE_KINDS)) * 2  # every kind at least twice
    kinds += [rng.choice(WRITE_KINDS) for _ in range(n_writes - len(kinds))]
    rng.shuffle(kinds)
    writes = [random_write(rng, lanes, kind) for kind in kinds]
    reads = [random_read(rng, lanes) for _ in range(n_reads)]
    dut = HostMemoryPort(width)
    seen, wr, rd = run_bursts(dut, writes, reads, seed=seed, memory=memory,
                              wr_kwargs={"cmd_ready": 0.7, "data_ready": 0.7, "error_prob": 0.1},
                              rd_kwargs={"error_prob": 0.1})

    w_errors, w_rejected = check_writes(writes, seen, wr, reference)
    r_errors, r_rejected = check_reads(reads, seen, rd, lanes)
    for k in range(0, MEM, 4096):
        assert memory[k:k + 4096] == reference[k:k + 4096], f"host memory differs at {k:#x}"
    assert seen["counters"] == {
        "write_bursts": len(writes), "write_errors": w_errors, "read_bursts": len(reads),
        "read_errors": r_errors, "rejected_bursts": w_rejected + r_rejected}

    # The traffic covered what it is meant to cover.
    kinds = {b.kind for b in writes}
    assert kinds == set(WRITE_KINDS), kinds
    assert any(error == DmaError.OUT_OF_WINDOW for *_, error in wr.log)
    assert any(error == DmaError.COMPLETION for *_, error in wr.log)
    assert any(error == DmaError.OK for *_, error in wr.log)
    assert any(e[3] == DmaError.TIMEOUT for e in rd.log)
    assert any(e[3] == DmaError.OUT_OF_WINDOW for e in rd.log)
    assert any(address % lanes for address, _, _, _ in wr.log), "no unaligned write"
    assert any(length % lanes for _, length, _, _ in wr.log), "no partial last beat"
    assert any(crosses_4k(a, n) for a, n, _, error in wr.log if error == DmaError.OK)
    assert any(crosses_4k(e[0], e[1]) for e in rd.log if e[3] == DmaError.OK)
    assert any(len(b.beats) > 128 for b in writes)
    assert len({b.awid for b in writes}) > 20
    orders = list(zip(seen["aw"], seen["w_first"], strict=True))
    assert any(a < w for a, w in orders) and any(w < a for a, w in orders), "AW/W order"
    assert memory != bytearray(random.Random(seed).randbytes(MEM)), "nothing written"


def test_status_before_and_after_data():
    """Read errors whose status comes long after the data still reach the last R beat, a
    status that comes first does not stall the data, and an engine that gives the status
    only after its data was all taken (as the read engine does) does not deadlock."""
    lanes = 8
    rng = random.Random(9)
    memory = bytearray(rng.randbytes(MEM))
    reads = [(n, READ_REGION[0] + 64 * n, rng.randint(0, 7), AxiBurst.INCR.value, 3)
             for n in range(40)]
    for delay, after in (((0, 0), False), ((30, 60), False), ((0, 5), True)):
        seen, wr, rd = run_bursts(HostMemoryPort(64), [], reads, seed=10, memory=memory,
                                  r_ready=1.0, ar_idle=0.0,
                                  rd_kwargs={"error_prob": 0.3, "status_delay": delay,
                                             "idle": 0.0, "cmd_ready": 1.0,
                                             "status_after_data": after})
        errors, _ = check_reads(reads, seen, rd, lanes)
        assert 0 < errors < len(reads)


# -- throughput ---------------------------------------------------------------------------------

def sustained_write(width, *, start_lane=0, n_bursts=48, beats=16):
    lanes = width // 8
    rng = random.Random(5)
    memory = bytearray(MEM)
    reference = bytearray(MEM)
    full = (1 << lanes) - 1
    writes = []
    for n in range(n_bursts):
        addr = WRITE_REGION[0] + n * beats * lanes
        strobes = [full] * beats
        strobes[0] &= full << start_lane
        writes.append(WriteBurst(n % 256, addr + start_lane,
                                 [(rng.getrandbits(width), s) for s in strobes], lanes=lanes))
    dut = HostMemoryPort(width)
    seen, wr, _ = run_bursts(dut, writes, [], seed=11, memory=memory, w_idle=0.0, aw_idle=0.0,
                             b_ready=1.0, wr_kwargs={"status_delay": (0, 0)})
    errors, _ = check_writes(writes, seen, wr, reference)
    assert errors == 0
    assert memory == reference
    w = seen["w"]
    w_rate = len(w) / (w[-1] - w[0] + 1)
    d = wr.data_cycles
    d_rate = len(d) / (d[-1] - d[0] + 1)
    return w_rate, d_rate


@pytest.mark.parametrize("width", [64, 512])
def test_sustained_write_rate(width):
    w_rate, d_rate = sustained_write(width)
    print(f"width {width}, 16-beat aligned bursts: W {w_rate:.3f} beat/cycle, "
          f"wr.data {d_rate:.3f} beat/cycle")
    assert w_rate >= 0.9, w_rate
    assert d_rate >= 0.9, d_rate


def test_sustained_write_rate_unaligned():
    """A run starting mid-beat costs one priming cycle per burst: 16 beats in 17 cycles."""
    w_rate, d_rate = sustained_write(64, start_lane=3)
    print(f"width 64, 16-beat bursts from lane 3: W {w_rate:.3f}, wr.data {d_rate:.3f}")
    assert w_rate >= 0.9, w_rate
    assert d_rate >= 0.9, d_rate


# -- interface ----------------------------------------------------------------------------------

def test_port_names():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # axi_ports() builds a wrapper it does not elaborate
        ports = {p.name: p for p in axi_ports(HostMemoryPort(128, id_width=6))}
        gc.collect()
    slave_in = ["awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot",
                "awvalid", "wdata", "wstrb", "wlast", "wvalid", "bready", "arid", "araddr",
                "arlen", "arsize", "arburst", "arlock", "arcache", "arprot", "arvalid",
                "rready"]
    slave_out = ["awready", "wready", "bid", "bresp", "bvalid", "arready", "rid", "rdata",
                 "rresp", "rlast", "rvalid"]
    for name in slave_in:
        assert ports[f"s_axi_{name}"].direction == "input", name
    for name in slave_out:
        assert ports[f"s_axi_{name}"].direction == "output", name
    assert ports["s_axi_awaddr"].width == 64 and ports["s_axi_wdata"].width == 128
    assert ports["s_axi_wstrb"].width == 16 and ports["s_axi_rid"].width == 6
    assert ports["s_axi_awlen"].width == 8 and ports["s_axi_arsize"].width == 3
    assert ports["m_axis_wr_data_tdata"].direction == "output"
    assert ports["s_axis_rd_data_tdata"].direction == "input"


def test_signature():
    sig = Axi4Signature(64, 256, 4)
    assert sig == Axi4Signature(64, 256, 4)
    assert sig != Axi4Signature(64, 256, 5) and sig != Axi4Signature(32, 256, 4)
    assert repr(sig) == "Axi4Signature(64, data_width=256, id_width=4)"
    assert len(sig.members) == 35
    with pytest.raises(ValueError):
        Axi4Signature(64, 48, 4)
    with pytest.raises(ValueError):
        Axi4Signature(64, 64, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refused ports are never elaborated
        with pytest.raises(ValueError):
            HostMemoryPort(64, burst_buffer_beats=128)
        with pytest.raises(ValueError):
            HostMemoryPort(96)
        gc.collect()
