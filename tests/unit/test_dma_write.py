# amaranth: UnusedElaboratable=no
"""The DMA write engine against cocotbext-pcie's RQ descriptor parsing and a host memory model.

Every TLP the engine sends is unpacked by the model (``Tlp_us.unpack_us_rq``), its byte range
taken from the model's own byte-enable arithmetic, and applied to a byte array standing for host
memory; at the end that memory must equal the expected writes byte for byte.
"""

import random
from dataclasses import dataclass

import pytest
from amaranth.sim import Simulator
from cocotbext.pcie.core.tlp import TlpType
from cocotbext.pcie.xilinx.us.interface import UsPcieFrame
from cocotbext.pcie.xilinx.us.tlp import Tlp_us

from amnic.dma.commands import MAX_TRANSFER, DmaError, MaxSize
from amnic.dma.write import DmaWriteEngine, split_write

MPS = {size: code for code, size in ((c, 128 << c.value) for c in MaxSize)}
ARENA = 1 << 18  # bytes of modelled host memory


# ---- the split rule ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_split_write_invariants(seed):
    rng = random.Random(seed)
    for _ in range(2000):
        mps = rng.choice(list(MPS))
        address = rng.randrange(1 << 20) if rng.random() < 0.5 else \
            rng.randrange((1 << 64) - MAX_TRANSFER)
        length = rng.choice([1, 2, 3, 4, 5, rng.randrange(1, 300),
                             rng.randrange(1, MAX_TRANSFER + 1)])
        tlps = split_write(address, length, mps)
        assert sum(n for _, n in tlps) == length
        assert tlps[0][0] == address
        for (a, n), (b, _) in zip(tlps, tlps[1:]):
            assert a + n == b, "TLPs not contiguous"
            assert b % mps == 0, "a TLP after the first does not start on an MPS boundary"
        for a, n in tlps:
            assert 1 <= n <= mps
            assert a // 4096 == (a + n - 1) // 4096, "TLP crosses a 4 KB boundary"
            assert a // mps == (a + n - 1) // mps, "TLP crosses an MPS boundary"
        # As few TLPs as the rule allows: one per MPS block touched.
        assert len(tlps) == (address + length - 1) // mps - address // mps + 1


def test_split_write_rejects_bad_mps():
    with pytest.raises(ValueError):
        split_write(0, 10, 100)


# ---- simulation harness --------------------------------------------------------------------

@dataclass
class Command:
    address: int
    length: int
    id: int
    mps: int
    data: bytes = b""
    sent: bytes = b""  # what the data stream carries for it (differs when malformed)

    @property
    def bad_length(self):
        return self.length == 0 or self.length > MAX_TRANSFER

    @property
    def malformed(self):
        return not self.bad_length and self.sent != self.data


def beats_of(payload, lanes):
    """(data, keep, last) beats of a packed packet."""
    chunks = [payload[i:i + lanes] for i in range(0, len(payload), lanes)]
    return [(int.from_bytes(c, "little"), (1 << len(c)) - 1, i == len(chunks) - 1)
            for i, c in enumerate(chunks)]


def first_wrong_beat(cmd, lanes):
    """Index of the first data beat that disagrees with the command length (malformed)."""
    want, got = beats_of(cmd.data, lanes), beats_of(cmd.sent, lanes)
    for i, (w, g) in enumerate(zip(want, got)):
        if (w[1], w[2]) != (g[1], g[2]):
            return i
    raise AssertionError("not malformed")


@dataclass
class Result:
    tlps: list  # dicts, in order
    statuses: list  # (id, error, TLPs received before it)
    beat_cycles: list  # cycle numbers of accepted rq beats
    counters: tuple = ()  # (tlps, discontinued) at the end


def simulate(width, commands, *, rng, p_ready=1.0, p_data_gap=0.0, p_cmd_gap=0.0,
             p_status=1.0, timeout=400_000, mps_wobble=None):
    dut = DmaWriteEngine(width)
    lanes, dwords = width // 8, width // 32
    res = Result([], [], [])
    done = {"statuses": 0}

    async def cmd_driver(ctx):
        mps = None
        for i, cmd in enumerate(commands):
            if cmd.mps != mps and not mps_wobble:
                # Change Max_Payload_Size only while the engine is idle.
                while done["statuses"] < i:
                    await ctx.tick()
                mps = cmd.mps
                ctx.set(dut.max_payload, MPS[mps])
            ctx.set(dut.cmd.payload, {"address": cmd.address, "length": cmd.length,
                                      "id": cmd.id})
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            while rng.random() < p_cmd_gap:
                await ctx.tick()

    async def data_driver(ctx):
        for cmd in commands:
            if cmd.bad_length:
                continue
            for data, keep, last in beats_of(cmd.sent, lanes):
                while rng.random() < p_data_gap:
                    ctx.set(dut.data.valid, 0)
                    await ctx.tick()
                ctx.set(dut.data.payload, {"data": data, "keep": keep, "last": last})
                ctx.set(dut.data.valid, 1)
                await ctx.tick().until(dut.data.ready)
        ctx.set(dut.data.valid, 0)

    async def rq_sink(ctx):
        cycle, frame, side, nbeats, disc = 0, [], None, 0, False
        while True:
            ctx.set(dut.rq.ready, rng.random() < p_ready)
            _, _, valid, ready, beat = await ctx.tick().sample(
                dut.rq.valid, dut.rq.ready, dut.rq.payload)
            if valid and ready:
                res.beat_cycles.append(cycle)
                keep = beat.keep
                assert keep & (keep + 1) == 0 and keep, "keep not contiguous from DWORD 0"
                assert beat.last or keep == (1 << dwords) - 1, "partial keep before last"
                if side is None:
                    side = (beat.side.first_be, beat.side.last_be)
                    frame = [(beat.descriptor.as_value().value >> (32 * k)) & 0xFFFF_FFFF
                             for k in range(4)]
                frame += [(beat.data >> (32 * k)) & 0xFFFF_FFFF
                          for k in range(dwords) if keep >> k & 1]
                nbeats += 1
                disc |= bool(beat.side.discontinue)
                if beat.last:
                    res.tlps.append({"dwords": frame, "first_be": side[0], "last_be": side[1],
                                     "beats": nbeats, "discontinue": disc, "cycle": cycle})
                    frame, side, nbeats, disc = [], None, 0, False
            cycle += 1

    async def status_sink(ctx):
        while True:
            ctx.set(dut.status.ready, rng.random() < p_status)
            _, _, valid, ready, status = await ctx.tick().sample(
                dut.status.valid, dut.status.ready, dut.status.payload)
            if valid and ready:
                res.statuses.append((status.id, status.error, len(res.tlps)))
                done["statuses"] += 1

    async def wobble(ctx):
        while True:
            ctx.set(dut.max_payload, MPS[rng.choice(mps_wobble)])
            await ctx.tick()

    async def main(ctx):
        cycles = 0
        while done["statuses"] < len(commands):
            await ctx.tick()
            cycles += 1
            assert cycles < timeout, "engine stalled"
        await ctx.tick().repeat(10)
        res.counters = (ctx.get(dut.tlps), ctx.get(dut.discontinued))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(main)
    sim.add_testbench(cmd_driver, background=True)
    sim.add_testbench(data_driver, background=True)
    sim.add_testbench(rq_sink, background=True)
    sim.add_testbench(status_sink, background=True)
    if mps_wobble:
        sim.add_testbench(wobble, background=True)
    sim.run()
    return res


def parse(tlp, width):
    """Unpack one collected TLP with the model; check its framing; return (byte address, bytes,
    Tlp_us)."""
    dwords = width // 32
    frame = UsPcieFrame()
    frame.data = tlp["dwords"]
    frame.first_be, frame.last_be = tlp["first_be"], tlp["last_be"]
    t = Tlp_us.unpack_us_rq(frame)
    assert t.fmt_type == (TlpType.MEM_WRITE_64 if t.address >> 32 else TlpType.MEM_WRITE)
    assert t.length == len(tlp["dwords"]) - 4, "dword_count disagrees with the payload"
    assert tlp["beats"] == -(-(len(tlp["dwords"]) - 4) // dwords), "payload not packed"
    assert (t.tag, t.requester_id_enable, t.ep, t.tc, t.attr) == (0, False, False, 0, 0)
    if t.length == 1:
        assert t.last_be == 0 and t.first_be in (1, 2, 4, 8, 3, 6, 12, 7, 14, 15)
    else:
        assert t.first_be in (0xF, 0xE, 0xC, 0x8) and t.last_be in (0x1, 0x3, 0x7, 0xF)
    start = t.address + t.get_first_be_offset()
    count = t.get_be_byte_count()
    skip = t.get_first_be_offset()
    return start, bytes(t.data[skip:skip + count]), t


class Host:
    """Host memory: an arena at a 64-bit base, with a random initial pattern."""

    def __init__(self, rng, base):
        self.base = base
        self.mem = bytearray(rng.randbytes(ARENA))

    def write(self, address, payload):
        offset = address - self.base
        assert 0 <= offset and offset + len(payload) <= ARENA, "write outside the arena"
        self.mem[offset:offset + len(payload)] = payload


def parse_header(tlp):
    """DWORD address of a (possibly truncated) TLP, from its descriptor alone."""
    frame = UsPcieFrame()
    frame.data = tlp["dwords"][:4]
    return Tlp_us.unpack_us_rq(frame).address


def check(width, commands, res, base, seed):
    """Everything the engine did against what it should have done."""
    host = Host(random.Random(seed), base)
    expected = Host(random.Random(seed), base)
    lanes = width // 8
    # Statuses: one per command, in order, each after its command's TLPs.
    assert [s[0] for s in res.statuses] == [c.id for c in commands]
    tlps = list(res.tlps)
    pos = 0
    discontinued = 0
    for cmd, (_, error, seen) in zip(commands, res.statuses):
        if cmd.bad_length:
            assert error == DmaError.BAD_LENGTH
            assert seen >= pos
            continue
        plan = split_write(cmd.address, cmd.length, cmd.mps)
        if cmd.malformed:
            assert error == DmaError.MALFORMED
            wrong = first_wrong_beat(cmd, lanes)
            complete = sum(1 for a, n in plan if (a - cmd.address + n - 1) // lanes < wrong)
        else:
            assert error == DmaError.OK
            complete = len(plan)
        for k in range(complete):
            tlp = tlps[pos]
            assert not tlp["discontinue"]
            start, payload, _ = parse(tlp, width)
            assert (start, len(payload)) == plan[k], f"command {cmd.id} TLP {k}"
            host.write(start, payload)
            offset = start - cmd.address
            expected.write(start, cmd.data[offset:offset + len(payload)])
            pos += 1
        if cmd.malformed and pos < len(tlps) and tlps[pos]["discontinue"]:
            # The TLP in progress when the mismatch was seen: nullified by the hard IP.
            assert parse_header(tlps[pos]) == plan[complete][0] & ~3
            pos += 1
            discontinued += 1
        assert seen >= pos, "status before the command's last TLP"
    assert pos == len(tlps), "TLPs beyond the commands"
    assert host.mem == expected.mem
    assert res.counters == (len(tlps) - discontinued, discontinued)


def random_length(rng):
    r = rng.random()
    if r < 0.35:
        return rng.randrange(1, 70)
    if r < 0.9:
        return rng.randrange(1, 9601)
    return rng.randrange(9601, MAX_TRANSFER + 1)


def make_commands(rng, count, base, *, mps_choices, bad=0.0, malformed=0.0, lanes=32,
                  disjoint=False, max_length=None):
    commands, cursor = [], 0
    mps = rng.choice(mps_choices)
    for i in range(count):
        if rng.random() < 0.08:
            mps = rng.choice(mps_choices)
        if rng.random() < bad:
            length = rng.choice([0, MAX_TRANSFER + 1, rng.randrange(MAX_TRANSFER + 1, 1 << 17)])
            commands.append(Command(base + rng.randrange(ARENA), length, i, mps))
            continue
        length = random_length(rng)
        if max_length:
            length = min(length, max_length)
        if disjoint:
            cursor += rng.randrange(0, 64)
            if cursor + length > ARENA:
                cursor = 0  # wrap (regions may then overlap; writes apply in order)
            offset = cursor
            cursor += length
        else:
            offset = rng.randrange(ARENA - length)
        cmd = Command(base + offset, length, rng.randrange(1 << 16) & ~0xFF | i & 0xFF, mps,
                      rng.randbytes(length))
        cmd.sent = cmd.data
        if rng.random() < malformed:
            if rng.random() < 0.5 and length > 1:
                cmd.sent = cmd.data[:rng.randrange(1, length)]
            else:
                extra = rng.choice([1, 3, lanes, rng.randrange(1, 300)])
                cmd.sent = cmd.data + rng.randbytes(extra)
        commands.append(cmd)
    return commands


def random_base(rng):
    if rng.random() < 0.3:
        return rng.randrange(1 << 12, (1 << 32) - ARENA)  # below 4 GB: 3-DWORD headers
    return rng.randrange(1 << 32, (1 << 64) - ARENA)


# ---- random traffic ------------------------------------------------------------------------

RANDOM_CASES = [  # width, seed, commands
    (256, 1, 40), (256, 2, 40), (512, 3, 40), (512, 4, 40),
]


@pytest.mark.parametrize("width,seed,count", RANDOM_CASES)
def test_random_writes(width, seed, count):
    rng = random.Random(seed)
    base = random_base(rng)
    commands = make_commands(rng, count, base, mps_choices=list(MPS), bad=0.1)
    res = simulate(width, commands, rng=rng, p_ready=0.75, p_data_gap=0.2, p_cmd_gap=0.3,
                   p_status=0.6)
    check(width, commands, res, base, seed)


@pytest.mark.parametrize("width", [256, 512])
def test_small_unaligned_writes(width):
    """Every head alignment and short length, back to back."""
    rng = random.Random(width + 7)
    base = random_base(rng) & ~0xFFF
    commands = []
    for i in range(160):
        length = rng.choice([1, 2, 3, 4, 5, 7, 8, rng.randrange(1, 3 * width // 8)])
        commands.append(Command(base + rng.randrange(ARENA - 200), length, i,
                                rng.choice([128, 256])))
        commands[-1].data = commands[-1].sent = rng.randbytes(length)
    res = simulate(width, commands, rng=rng, p_ready=0.8, p_data_gap=0.1, p_cmd_gap=0.1)
    check(width, commands, res, base, width)


@pytest.mark.parametrize("width", [256, 512])
def test_four_kb_boundaries(width):
    """Transfers that cross 4 KB boundaries at large MPS."""
    rng = random.Random(width + 11)
    base = random_base(rng) & ~0xFFF
    commands = []
    for i in range(12):
        length = rng.randrange(100, 9000)
        address = base + 4096 * rng.randrange(1, ARENA // 4096 - 4) - rng.randrange(1, 200)
        commands.append(Command(address, length, i, rng.choice([2048, 4096])))
        commands[-1].data = commands[-1].sent = rng.randbytes(length)
    res = simulate(width, commands, rng=rng, p_ready=0.9)
    check(width, commands, res, base, width + 11)
    for t in res.tlps:
        start, payload, _ = parse(t, width)
        assert start // 4096 == (start + len(payload) - 1) // 4096


@pytest.mark.parametrize("width,seed", [(256, 21), (512, 22)])
def test_malformed_data(width, seed):
    """Data streams shorter or longer than their commands: MALFORMED, nothing wrong written,
    later commands unaffected."""
    rng = random.Random(seed)
    base = random_base(rng)
    commands = make_commands(rng, 40, base, mps_choices=list(MPS), bad=0.1, malformed=0.35,
                             lanes=width // 8, disjoint=True, max_length=12000)
    assert sum(c.malformed for c in commands) >= 8
    res = simulate(width, commands, rng=rng, p_ready=0.7, p_data_gap=0.2, p_cmd_gap=0.2,
                   p_status=0.7)
    check(width, commands, res, base, seed)
    assert res.counters[1] >= 1, "no TLP in progress was ever discontinued"


# ---- throughput ----------------------------------------------------------------------------

def ideal_beats(commands, width):
    dwords = width // 32
    total = 0
    for cmd in commands:
        for a, n in split_write(cmd.address, cmd.length, cmd.mps):
            payload_dwords = (a % 4 + n + 3) // 4
            total += -(-payload_dwords // dwords)
    return total


def line_rate(width, commands):
    """Busy span of rq (first to last beat) with data always there and rq always ready."""
    res = simulate(width, commands, rng=random.Random(0))
    span = res.beat_cycles[-1] - res.beat_cycles[0] + 1
    return span, ideal_beats(commands, width), res


@pytest.mark.parametrize("width", [256, 512])
@pytest.mark.parametrize("mps", [128, 256, 512])
def test_throughput_64k(width, mps):
    rng = random.Random(mps)
    base = random_base(rng) & ~0xFFF
    cmd = Command(base + 4096, MAX_TRANSFER, 1, mps, rng.randbytes(MAX_TRANSFER))
    cmd.sent = cmd.data
    span, ideal, res = line_rate(width, [cmd])
    check(width, [cmd], res, base, mps)
    assert span == ideal, "idle cycle on rq"
    payload_beats = MAX_TRANSFER // (width // 8)
    # The descriptors travel beside the payload: an aligned transfer takes its payload beats.
    assert span == payload_beats


@pytest.mark.parametrize("width", [256, 512])
def test_back_to_back_commands_at_line_rate(width):
    """No idle cycle between TLPs or commands, any alignment and length."""
    rng = random.Random(width + 3)
    base = random_base(rng)
    commands = make_commands(rng, 60, base, mps_choices=[256], max_length=3000)
    span, ideal, res = line_rate(width, commands)
    check(width, commands, res, base, width + 3)
    assert span == ideal, "idle cycle on rq"


@pytest.mark.parametrize("width", [256, 512])
def test_status_back_pressure(width):
    """A slow status consumer stalls rq (the status queue is full) but loses nothing."""
    rng = random.Random(width + 5)
    base = random_base(rng)
    commands = make_commands(rng, 40, base, mps_choices=[128], bad=0.2, max_length=400)
    res = simulate(width, commands, rng=rng, p_status=0.05)
    check(width, commands, res, base, width + 5)


@pytest.mark.parametrize("width", [256, 512])
def test_max_payload_sampled_per_tlp(width):
    """Max_Payload_Size changing every cycle: each TLP follows the rule for one of the values
    and the bytes still all arrive."""
    rng = random.Random(width + 9)
    base = random_base(rng)
    commands = make_commands(rng, 6, base, mps_choices=[128], max_length=6000)
    sizes = [128, 512, 1024]
    res = simulate(width, commands, rng=rng, p_ready=0.8, mps_wobble=sizes)
    host = Host(random.Random(1), base)
    expected = Host(random.Random(1), base)
    tlps = iter(res.tlps)
    full = set()  # sizes of 128-aligned TLPs that are not the last of their command
    mixed = 0  # commands whose middle TLPs have different sizes: sampled per TLP
    for cmd in commands:
        address, remaining = cmd.address, cmd.length
        middle = set()
        while remaining:
            start, payload, _ = parse(next(tlps), width)
            assert start == address
            assert len(payload) in {min(remaining, m - address % m) for m in sizes}
            host.write(start, payload)
            if len(payload) < remaining and start % 128 == 0:
                full.add(len(payload))
                if start != cmd.address:
                    middle.add(len(payload))
            address += len(payload)
            remaining -= len(payload)
        expected.write(cmd.address, cmd.data)
        mixed += len(middle) > 1
    assert next(tlps, None) is None
    assert mixed >= 1
    assert set(sizes) <= full, "Max_Payload_Size changes not followed"
    assert host.mem == expected.mem
    assert [s[1] for s in res.statuses] == [DmaError.OK] * len(commands)


def test_width_is_checked():
    with pytest.raises(ValueError):
        DmaWriteEngine(128)
