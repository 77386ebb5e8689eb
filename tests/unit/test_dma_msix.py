# amaranth: UnusedElaboratable=no
"""MsixController against a model of the hard IP's interrupt handshake and a reference model.

The hard IP model answers every ``msix_int``/``msi_int`` pulse with ``sent`` (or, with a given
probability, ``fail``) after a random delay, the way PG213's interrupt interface does, and
refuses (fails) a message sent while the function may not signal. Table and PBA are reached
only through the register bus, as the host reaches them through the BAR.
"""

import random
from dataclasses import dataclass, field

import pytest

from amnic.dma.msix import ENTRY_BYTES, MsixController
from amnic.sim.csr_bus import bus_read, bus_write
from amnic.sim.stream_tb import StreamMonitor, put, simulate


@dataclass
class Message:
    cycle: int  # edge at which the pulse was sampled
    msix: bool
    address: int = 0
    data: int = 0
    msi_vector: int = 0
    ok: bool = True


@dataclass
class HardIpModel:
    """PG213 interrupt handshake: one message in flight, ``sent``/``fail`` after 1..max_delay."""

    dut: MsixController
    rng: random.Random
    fail_prob: float = 0.0
    max_delay: int = 6
    messages: list = field(default_factory=list)
    busy: bool = False

    async def run(self, ctx):
        dut = self.dut
        cycle = 0
        reply = None  # (cycle, signal)
        async for _, _, msix_int, msi_int, address, data, en, fmask, msi_en in ctx.tick().sample(
                dut.msix_int, dut.msi_int, dut.msix_address, dut.msix_data, dut.msix_enable,
                dut.msix_mask, dut.msi_enable):
            for sig in (dut.msix_sent, dut.msix_fail, dut.msi_sent, dut.msi_fail):
                ctx.set(sig, 0)
            if msix_int or msi_int:
                assert not self.busy, f"cycle {cycle}: a message while another is in flight"
                if msi_int:
                    assert not msix_int
                    assert msi_int & (msi_int - 1) == 0, f"msi_int {msi_int:#x} is not one-hot"
                allowed = (en and not fmask) if msix_int else (msi_en and not en)
                ok = allowed and self.rng.random() >= self.fail_prob
                msg = Message(cycle, bool(msix_int), address, data,
                              msi_int.bit_length() - 1 if msi_int else 0, ok)
                self.messages.append(msg)
                self.busy = True
                kind = "msix" if msix_int else "msi"
                reply = (cycle + self.rng.randint(1, self.max_delay),
                         getattr(dut, f"{kind}_{'sent' if ok else 'fail'}"))
            if reply is not None and cycle == reply[0]:
                ctx.set(reply[1], 1)
                reply = None
                self.busy = False
            cycle += 1


def entry_of(v):
    """The table contents the tests program for vector ``v``."""
    return 0xFEE0_0000 | (v << 2), 0x100 + (v >> 3), 0xD000_0000 | (v * 0x9E37) & 0xFFFF


async def write_entry(ctx, dut, v, address=None, data=None, mask=None):
    if address is not None:
        assert not await bus_write(ctx, dut.bus, ENTRY_BYTES * v, address & 0xFFFF_FFFF)
        assert not await bus_write(ctx, dut.bus, ENTRY_BYTES * v + 4, address >> 32)
    if data is not None:
        assert not await bus_write(ctx, dut.bus, ENTRY_BYTES * v + 8, data)
    if mask is not None:
        assert not await bus_write(ctx, dut.bus, ENTRY_BYTES * v + 12, mask)


async def program_table(ctx, dut, vectors, mask=0):
    for v in range(vectors):
        lo, hi, data = entry_of(v)
        await write_entry(ctx, dut, v, lo | hi << 32, data, mask)


async def read_pba(ctx, dut):
    value = 0
    for k in range(dut.pba_dwords):
        word, error = await bus_read(ctx, dut.bus, dut.pba_offset + 4 * k)
        assert not error
        value |= word << (32 * k)
    return value


async def idle(ctx, cycles):
    for _ in range(cycles):
        await ctx.tick()


def set_mode(ctx, dut, *, msix=True, fmask=False, msi=False, mme=0):
    ctx.set(dut.msix_enable, msix)
    ctx.set(dut.msix_mask, fmask)
    ctx.set(dut.msi_enable, msi)
    ctx.set(dut.msi_mmenable, mme)


def test_window_geometry():
    for vectors, pba, size in [(1, 16, 32), (7, 128, 256), (64, 1024, 2048), (100, 2048, 4096),
                               (2048, 32768, 65536)]:
        dut = MsixController(vectors)
        assert (dut.pba_offset, dut.size) == (pba, size)
        assert dut.pba_offset >= ENTRY_BYTES * vectors
        assert dut.pba_offset + 8 * ((vectors + 63) // 64) <= dut.size
    for bad in (0, 2049):
        with pytest.raises(ValueError):
            MsixController(bad)


@pytest.mark.parametrize("vectors", [1, 100])
def test_table_reset_and_readback(vectors):
    dut = MsixController(vectors)
    rng = random.Random(vectors)

    async def bench(ctx):
        for v in range(vectors):  # after reset every vector is masked, entries are zero
            for word, want in enumerate((0, 0, 0, 1)):
                assert await bus_read(ctx, dut.bus, ENTRY_BYTES * v + 4 * word) == (want, 0)
        shadow = {}
        for _ in range(4 * vectors + 20):
            v, word = rng.randrange(vectors), rng.randrange(4)
            value, strobe = rng.getrandbits(32), rng.choice([0xF, 0x1, 0x6, 0x8, 0xF])
            assert not await bus_write(ctx, dut.bus, ENTRY_BYTES * v + 4 * word, value,
                                       wstrb=strobe)
            old = shadow.get((v, word), 1 if word == 3 else 0)
            if word == 3:
                new = value & 1 if strobe & 1 else old
            else:
                keep = sum(0xFF << (8 * b) for b in range(4) if not strobe >> b & 1)
                new = (old & keep) | (value & ~keep & 0xFFFF_FFFF)
            shadow[(v, word)] = new
            v, word = rng.randrange(vectors), rng.randrange(4)
            want = shadow.get((v, word), 1 if word == 3 else 0)
            assert await bus_read(ctx, dut.bus, ENTRY_BYTES * v + 4 * word) == (want, 0)
        # Outside the table and the PBA: 0 with error; writes there change nothing.
        holes = [ENTRY_BYTES * vectors + 4 * k for k in range(4)]
        holes += [dut.pba_offset + 8 * ((vectors + 63) // 64) + 4 * k for k in range(2)]
        holes = [a for a in holes if a < dut.pba_offset or a >= dut.pba_offset + 4 * dut.pba_dwords]
        holes = [a for a in holes if a < dut.size]
        assert holes
        for address in holes:
            assert await bus_write(ctx, dut.bus, address, 0xFFFF_FFFF) == 1
            assert await bus_read(ctx, dut.bus, address) == (0, 1)
        # PBA writes are ignored without error.
        assert not await bus_write(ctx, dut.bus, dut.pba_offset, 0xFFFF_FFFF)
        assert await read_pba(ctx, dut) == 0

    simulate(dut, [bench], max_cycles=40_000)


def test_masked_vectors_pend_and_fire_on_unmask():
    vectors = 70  # two PBA QWORDs
    dut = MsixController(vectors)
    ip = HardIpModel(dut, random.Random(1))
    mon = StreamMonitor(dut.request)

    async def bench(ctx):
        set_mode(ctx, dut)
        await program_table(ctx, dut, vectors, mask=1)
        for v in (3, 64, 69, 3):
            await put(ctx, dut.request, v)
        await idle(ctx, 20)
        assert ip.messages == []
        assert await read_pba(ctx, dut) == (1 << 3) | (1 << 64) | (1 << 69)
        # Unmask 64: exactly one message with entry 64's address and data; its bit clears.
        await write_entry(ctx, dut, 64, mask=0)
        await idle(ctx, 20)
        lo, hi, data = entry_of(64)
        assert [(m.msix, m.address, m.data) for m in ip.messages] == [(True, lo | hi << 32, data)]
        assert await read_pba(ctx, dut) == (1 << 3) | (1 << 69)
        # Function mask: an unmasked vector's request pends; clearing the mask sends both.
        ctx.set(dut.msix_mask, 1)
        await write_entry(ctx, dut, 3, mask=0)
        await put(ctx, dut.request, 5)
        await write_entry(ctx, dut, 5, mask=0)
        await idle(ctx, 20)
        assert len(ip.messages) == 1
        assert await read_pba(ctx, dut) == (1 << 3) | (1 << 5) | (1 << 69)
        ctx.set(dut.msix_mask, 0)
        await idle(ctx, 40)
        sent = sorted(m.data for m in ip.messages[1:])
        assert sent == sorted(entry_of(v)[2] for v in (3, 5))
        assert await read_pba(ctx, dut) == 1 << 69
        # A reprogrammed entry is read at send time.
        await write_entry(ctx, dut, 69, address=0x1_2345_6780, data=0xCAFE)
        await write_entry(ctx, dut, 69, mask=0)
        await idle(ctx, 20)
        last = ip.messages[-1]
        assert (last.address, last.data) == (0x1_2345_6780, 0xCAFE)
        assert await read_pba(ctx, dut) == 0
        assert ctx.get(dut.sent) == 4 and ctx.get(dut.failed) == 0
        assert len(mon.transfers) == 5

    simulate(dut, [bench], background=[ip.run, mon.run], max_cycles=20_000)


def test_disabled_drops_and_msi_fallback_folds_vectors():
    vectors = 40
    dut = MsixController(vectors)
    ip = HardIpModel(dut, random.Random(2))

    async def bench(ctx):
        await program_table(ctx, dut, vectors)
        set_mode(ctx, dut, msix=False, msi=False)
        for v in (1, 2):
            await put(ctx, dut.request, v)
        await idle(ctx, 10)
        assert ctx.get(dut.dropped) == 2 and ip.messages == []
        assert await read_pba(ctx, dut) == 0
        for mme, vector in [(0, 39), (2, 39), (3, 13), (5, 39), (5, 7), (7, 38)]:
            set_mode(ctx, dut, msix=False, msi=True, mme=mme)
            before = len(ip.messages)
            await put(ctx, dut.request, vector)
            await idle(ctx, 15)
            assert len(ip.messages) == before + 1
            msg = ip.messages[-1]
            assert not msg.msix and msg.ok
            assert msg.msi_vector == vector % (1 << min(mme, 5))
        assert ctx.get(dut.sent) == 6
        # MSI ignores MSI-X masks; with MSI-X enabled again the masks apply.
        await write_entry(ctx, dut, 9, mask=1)
        set_mode(ctx, dut, msix=False, msi=True, mme=5)
        await put(ctx, dut.request, 9)
        await idle(ctx, 15)
        assert ip.messages[-1].msi_vector == 9
        set_mode(ctx, dut, msix=True, msi=True, mme=5)
        await put(ctx, dut.request, 9)
        await idle(ctx, 15)
        assert len(ip.messages) == 7 and await read_pba(ctx, dut) == 1 << 9

    simulate(dut, [bench], background=[ip.run], max_cycles=20_000)


def test_failed_message_is_retried():
    vectors = 8
    dut = MsixController(vectors)
    ip = HardIpModel(dut, random.Random(3), fail_prob=1.0)

    async def bench(ctx):
        set_mode(ctx, dut)
        await program_table(ctx, dut, vectors)
        await put(ctx, dut.request, 6)
        await idle(ctx, 60)
        assert ctx.get(dut.failed) >= 4 and ctx.get(dut.sent) == 0
        assert all(m.data == entry_of(6)[2] for m in ip.messages)
        ip.fail_prob = 0.0
        await idle(ctx, 20)
        assert ctx.get(dut.sent) == 1
        assert ip.messages[-1].ok
        count = len(ip.messages)
        await idle(ctx, 20)
        assert len(ip.messages) == count  # no message after the successful one
        assert await read_pba(ctx, dut) == 0

    simulate(dut, [bench], background=[ip.run], max_cycles=20_000)


class MsixReference:
    """What the host may observe: outstanding (requested, not yet signalled) vectors."""

    def __init__(self, vectors):
        self.vectors = vectors
        self.mask = [True] * vectors
        self.fmask = False
        self.msix = True
        self.msi = False
        self.mme = 0
        self.outstanding = set()

    def deliverable(self, v):
        if self.msix:
            return not self.fmask and not self.mask[v]
        return self.msi

    def enabled(self):
        return self.msix or self.msi


@pytest.mark.parametrize("vectors,seed", [(100, 11), (7, 12), (64, 13)])
def test_random_phases_against_reference(vectors, seed):
    rng = random.Random(seed)
    dut = MsixController(vectors)
    ip = HardIpModel(dut, rng, fail_prob=0.15)
    mon = StreamMonitor(dut.request)
    ref = MsixReference(vectors)
    stats = {"phases": 0, "pba_bits": 0, "masked_sends": 0, "msi": 0, "dropped": 0}

    async def bench(ctx):
        set_mode(ctx, dut)
        await program_table(ctx, dut, vectors, mask=1)
        for _ in range(40):
            # Configuration changes while no request is being made, behind the Function Mask
            # so that no message goes out under a half-made configuration.
            set_mode(ctx, dut, msix=True, fmask=True)
            for v in rng.sample(range(vectors), min(vectors, rng.randint(0, 6))):
                ref.mask[v] = rng.random() < 0.5
                await write_entry(ctx, dut, v, mask=int(ref.mask[v]))
            roll = rng.random()
            ref.msix, ref.msi = (True, rng.random() < 0.5) if roll < 0.75 else \
                (False, True) if roll < 0.92 else (False, False)
            ref.fmask = rng.random() < 0.2
            ref.mme = rng.randrange(8)
            set_mode(ctx, dut, msix=ref.msix, fmask=ref.fmask, msi=ref.msi, mme=ref.mme)
            carried = set(ref.outstanding)
            first_msg, first_req = len(ip.messages), len(mon.transfers)
            for _ in range(rng.randint(1, 30)):
                await put(ctx, dut.request, rng.randrange(vectors),
                          idle_prob=rng.choice([0.0, 0.5, 0.9]), rng=rng)
            # Quiescence: no message for a while.
            while True:
                count = len(ip.messages)
                await idle(ctx, 40)
                if len(ip.messages) == count and not ip.busy:
                    break
            requests = {}
            for cycle, v in mon.transfers[first_req:]:
                requests.setdefault(v, []).append(cycle)
            messages = ip.messages[first_msg:]
            check_phase(ref, carried, requests, messages, stats)
            assert await read_pba(ctx, dut) == sum(1 << v for v in ref.outstanding)
            stats["pba_bits"] += len(ref.outstanding)
            stats["phases"] += 1
        assert ctx.get(dut.sent) == sum(m.ok for m in ip.messages)
        assert ctx.get(dut.failed) == sum(not m.ok for m in ip.messages)
        assert ctx.get(dut.dropped) == stats["dropped"]

    def check_phase(ref, carried, requests, messages, stats):
        if not ref.enabled():
            assert messages == []
            stats["dropped"] += sum(len(c) for c in requests.values())
            return
        assert all(m.msix == ref.msix for m in messages)
        touched = carried | set(requests)
        if ref.msix:
            by_vector = {}
            for m in messages:
                v = next(v for v in range(vectors) if entry_of(v)[2] == m.data)
                assert m.address == entry_of(v)[0] | entry_of(v)[1] << 32
                by_vector.setdefault(v, []).append(m)
        else:
            stats["msi"] += len(messages)
            fold = 1 << min(ref.mme, 5)
            by_vector = {}
            for m in messages:
                by_vector.setdefault(m.msi_vector, []).append(m)
            assert set(by_vector) == {v % fold for v in touched}
            ok = {f: sum(m.ok for m in ms) for f, ms in by_vector.items()}
            for f in by_vector:
                group = [v for v in touched if v % fold == f]
                assert 1 <= ok[f] <= sum(len(requests.get(v, [])) + (v in carried)
                                         for v in group)
            ref.outstanding.clear()
            return
        for v in range(vectors):
            ms = by_vector.get(v, [])
            if not ref.deliverable(v):
                assert ms == [], f"vector {v} signalled while masked"
                if v in requests:
                    ref.outstanding.add(v)
                    stats["masked_sends"] += 1
                continue
            if v not in touched:
                assert ms == [], f"vector {v} signalled without a request"
                continue
            good = [m.cycle for m in ms if m.ok]
            assert good, f"vector {v} requested but never signalled"
            assert 1 <= len(good) <= len(requests.get(v, [])) + (v in carried)
            if v in requests:  # the last message was launched after the last request
                assert max(good) >= max(requests[v]) + 3
            ref.outstanding.discard(v)

    simulate(dut, [bench], background=[ip.run, mon.run], max_cycles=300_000)
    assert stats["pba_bits"] > 0 and stats["masked_sends"] > 0 and stats["msi"] > 0
    assert stats["dropped"] > 0
    assert any(not m.ok for m in ip.messages)


@pytest.mark.parametrize("vectors", [8, 2048])
def test_request_to_message_latency(vectors):
    dut = MsixController(vectors)
    ip = HardIpModel(dut, random.Random(4), max_delay=1)
    mon = StreamMonitor(dut.request)
    picks = [0, vectors - 1, vectors // 2, 1 % vectors]

    async def bench(ctx):
        set_mode(ctx, dut)
        for v in picks:
            lo, hi, data = entry_of(v)
            await write_entry(ctx, dut, v, lo | hi << 32, data, 0)
        for v in picks:
            await put(ctx, dut.request, v)
            await idle(ctx, 3 + dut.groups + 4)
        assert await read_pba(ctx, dut) == 0

    simulate(dut, [bench], background=[ip.run, mon.run], max_cycles=20_000)
    assert [m.data for m in ip.messages] == [entry_of(v)[2] for v in picks]
    for (cycle, v), msg in zip(mon.transfers, ip.messages, strict=True):
        assert 3 <= msg.cycle - cycle <= 3 + dut.groups - 1, (v, msg.cycle - cycle)
