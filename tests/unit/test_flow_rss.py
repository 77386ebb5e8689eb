"""RSS: Toeplitz hash and indirection table against the Microsoft vectors and a Python model."""

import gc
import ipaddress
import random

import pytest

from amnic.csr.ids import RSS
from amnic.flow.rss import (
    MAX_INPUT_BYTES,
    MS_DEFAULT_KEY,
    REGISTERS,
    Rss,
    RssRequest,
    RssResponse,
    ToeplitzHash,
)
from amnic.sim.csr_bus import bus_read, read_register, write_register
from amnic.sim.rss_model import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    MS_IPV4_VECTORS,
    MS_IPV6_VECTORS,
    MS_KEY,
    HashTypes,
    RssModel,
    rss_input,
    toeplitz_hash,
)
from amnic.sim.stream_tb import StreamMonitor, get, put, simulate

TYPES = ("ipv4", "tcp_ipv4", "udp_ipv4", "ipv6", "tcp_ipv6", "udp_ipv6")


# -- register helpers ----------------------------------------------------------------------------

def control_word(types):
    word = 0
    for f in REGISTERS["control"].fields:
        word |= int(bool(getattr(types, f.name))) << f.offset
    return word


async def write_key(ctx, bus, key):
    for w in range(10):
        await write_register(ctx, bus, REGISTERS[f"key_{w}"],
                             int.from_bytes(key[4 * w:4 * w + 4], "big"))


async def wait_cmd_done(ctx, bus):
    for _ in range(16):
        if await read_register(ctx, bus, REGISTERS["reta_cmd"]) == 0:
            return
    raise AssertionError("reta_cmd stayed busy")


async def table_write(ctx, bus, index, queue):
    await write_register(ctx, bus, REGISTERS["reta_index"], index)
    await write_register(ctx, bus, REGISTERS["reta_data"], queue)
    await write_register(ctx, bus, REGISTERS["reta_cmd"], 0b01)
    await wait_cmd_done(ctx, bus)


async def table_read(ctx, bus, index):
    await write_register(ctx, bus, REGISTERS["reta_index"], index)
    await write_register(ctx, bus, REGISTERS["reta_cmd"], 0b10)
    await wait_cmd_done(ctx, bus)
    return await read_register(ctx, bus, REGISTERS["reta_data"])


# -- request helpers -----------------------------------------------------------------------------

def random_request(rng, tag):
    ipv6 = rng.random() < 0.5
    protocol = rng.choice([IPPROTO_TCP, IPPROTO_UDP, IPPROTO_TCP, IPPROTO_UDP, 1, 47, 58,
                           rng.randrange(256)])
    width = 128 if ipv6 else 32
    req = {
        "ipv6": int(ipv6), "protocol": protocol,
        "src_addr": rng.getrandbits(width), "dst_addr": rng.getrandbits(width),
        "src_port": rng.getrandbits(16), "dst_port": rng.getrandbits(16),
        "l4_valid": int(rng.random() < 0.8), "tag": tag,
    }
    if not ipv6 and rng.random() < 0.3:
        # Bad input: an IPv4 request with junk above bit 31; only the low 32 bits count.
        req["src_addr"] |= rng.getrandbits(96) << 32
        req["dst_addr"] |= rng.getrandbits(96) << 32
    return req


def model_answer(model, req):
    fields = dict(req)
    del fields["tag"]
    if not req["ipv6"]:
        fields["src_addr"] &= 0xFFFF_FFFF
        fields["dst_addr"] &= 0xFFFF_FFFF
    return model.process(**fields)


def vector_requests():
    """Requests for every published vector: (request, expected hash), 2- and 4-tuple, TCP and
    UDP, plus cases the rules send to the 2-tuple (non-TCP/UDP protocol, fragment)."""
    out = []
    for vectors, ipv6 in ((MS_IPV4_VECTORS, 0), (MS_IPV6_VECTORS, 1)):
        for dst, dst_port, src, src_port, hash2, hash4 in vectors:
            base = {"ipv6": ipv6, "src_addr": int(ipaddress.ip_address(src)),
                    "dst_addr": int(ipaddress.ip_address(dst)), "src_port": src_port,
                    "dst_port": dst_port}
            out.append(({**base, "protocol": IPPROTO_TCP, "l4_valid": 1}, hash4))
            out.append(({**base, "protocol": IPPROTO_UDP, "l4_valid": 1}, hash4))
            out.append(({**base, "protocol": IPPROTO_TCP, "l4_valid": 0}, hash2))
            out.append(({**base, "protocol": 1 if not ipv6 else 58, "l4_valid": 1}, hash2))
    return [({**req, "tag": n}, h) for n, (req, h) in enumerate(out)]


# -- the model against the published vectors -----------------------------------------------------

def test_model_matches_microsoft_vectors():
    assert MS_KEY == MS_DEFAULT_KEY
    for vectors, ipv6 in ((MS_IPV4_VECTORS, False), (MS_IPV6_VECTORS, True)):
        for dst, dst_port, src, src_port, hash2, hash4 in vectors:
            two = rss_input(ipv6=ipv6, src_addr=src, dst_addr=dst)
            four = rss_input(ipv6=ipv6, src_addr=src, dst_addr=dst, src_port=src_port,
                             dst_port=dst_port)
            assert len(two) == (32 if ipv6 else 8) and len(four) == len(two) + 4
            assert toeplitz_hash(MS_KEY, two) == hash2
            assert toeplitz_hash(MS_KEY, four) == hash4
    # The first IPv4 example spelled out: src 66.9.149.187:2794, dst 161.142.100.80:1766.
    assert rss_input(ipv6=False, src_addr="66.9.149.187", dst_addr="161.142.100.80",
                     src_port=2794, dst_port=1766) == bytes.fromhex("420995bba18e6450 0aea 06e6")


def test_model_hash_type_rules():
    table = list(range(128))
    request = {"ipv6": False, "src_addr": "66.9.149.187", "dst_addr": "161.142.100.80",
               "src_port": 2794, "dst_port": 1766}
    m = RssModel(table=table)
    assert m.process(**request, protocol=6, l4_valid=True) == (0x51CCC178, 0x78, True)
    assert m.process(**request, protocol=6, l4_valid=False) == (0x323E8FC2, 0x42, True)
    m = RssModel(table=table, types=HashTypes(tcp_ipv4=False))
    assert m.process(**request, protocol=6, l4_valid=True)[0] == 0x323E8FC2
    assert m.process(**request, protocol=17, l4_valid=True)[0] == 0x51CCC178
    m = RssModel(table=table, types=HashTypes(tcp_ipv4=False, ipv4=False))
    assert m.process(**request, protocol=6, l4_valid=True) == (0, 0, False)
    m = RssModel(table=table, types=HashTypes(enable=False))
    assert m.process(**request, protocol=17, l4_valid=True) == (0, 0, False)


# -- ToeplitzHash alone --------------------------------------------------------------------------

@pytest.mark.parametrize("group", [3, 7])
def test_toeplitz_hash_random_keys_and_lengths(group):
    """Random key per request, every length (and lengths past the input: all bytes hashed),
    random idle cycles and back-pressure; groups that divide the input width and that don't."""
    rng = random.Random(group)
    dut = ToeplitzHash(MAX_INPUT_BYTES, payload=16, group=group)
    requests = []
    for n in range(300):
        key = rng.randbytes(40)
        length = rng.choice([0, 8, 12, 32, 36, 37, 63, rng.randrange(64)])
        data = rng.randbytes(MAX_INPUT_BYTES)
        requests.append((key, length, data, toeplitz_hash(key, data[:min(length, 36)]), n))
    got = []

    async def source(ctx):
        for key, length, data, _, n in requests:
            ctx.set(dut.key, list(key))  # held with the request until it is taken
            await put(ctx, dut.i, {"data": list(data), "length": length, "payload": n},
                      idle_prob=0.2, rng=rng)
            ctx.set(dut.key, list(rng.randbytes(40)))  # the key may change once taken

    async def sink(ctx):
        for _ in requests:
            got.append(await get(ctx, dut.o, ready_prob=0.6, rng=rng))

    mon = StreamMonitor(dut.o, name="o")
    simulate(dut, [source, sink], background=[mon.run], max_cycles=5000)
    for (_, length, _, expected, n), answer in zip(requests, got, strict=True):
        assert answer.payload == n
        assert answer.hash == expected, f"request {n} length {length}"


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_toeplitz_hash_rejects_bad_parameters():
    with pytest.raises(ValueError):
        ToeplitzHash(37)
    with pytest.raises(ValueError):
        ToeplitzHash(0)
    with pytest.raises(ValueError):
        Rss(entries=100)
    with pytest.raises(ValueError):
        Rss(queue_bits=17)
    gc.collect()  # the half-built components die here, where their warning is filtered


# -- Rss -----------------------------------------------------------------------------------------

def test_rss_registers():
    dut = Rss()

    async def bench(ctx):
        bus = dut.bus
        assert await read_register(ctx, bus, REGISTERS["type_id"]) == RSS
        assert await read_register(ctx, bus, REGISTERS["size"]) == REGISTERS.size
        info = await read_register(ctx, bus, REGISTERS["reta_info"])
        assert info == 7 | 12 << 8  # 128 entries, 12-bit queues
        assert await read_register(ctx, bus, REGISTERS["control"]) == 0b111_1110
        key = b""
        for w in range(10):
            key += (await read_register(ctx, bus, REGISTERS[f"key_{w}"])).to_bytes(4, "big")
        assert key == MS_KEY
        assert await bus_read(ctx, bus, 0x7C) == (0, 1)  # unmapped
        # After reset every entry is queue 0; writes land, reads return them.
        assert await table_read(ctx, bus, 5) == 0
        await table_write(ctx, bus, 5, 0xABC)
        await table_write(ctx, bus, 127, 0x123)
        assert await table_read(ctx, bus, 5) == 0xABC
        assert await table_read(ctx, bus, 127) == 0x123
        assert await table_read(ctx, bus, 6) == 0
        # Queue bits above queue_bits are not stored.
        await table_write(ctx, bus, 6, 0xF456)
        assert await table_read(ctx, bus, 6) == 0x456
        # An index past the table: the write is ignored, a read returns 0, nothing aliases.
        await table_write(ctx, bus, 128 + 5, 0x777)
        assert await table_read(ctx, bus, 128 + 5) == 0
        assert await table_read(ctx, bus, 5) == 0xABC
        # Write and read in one command: the write comes first.
        await write_register(ctx, bus, REGISTERS["reta_index"], 9)
        await write_register(ctx, bus, REGISTERS["reta_data"], 0x99)
        await write_register(ctx, bus, REGISTERS["reta_cmd"], 0b11)
        await wait_cmd_done(ctx, bus)
        assert await read_register(ctx, bus, REGISTERS["reta_data"]) == 0x99
        assert await table_read(ctx, bus, 9) == 0x99

    simulate(dut, [bench], max_cycles=5000)


def _run_requests(dut, requests, *, setup=None, ready_prob=1.0, idle_prob=0.0, seed=0,
                  max_cycles=20000, during=None):
    """Run ``setup`` (bus), then stream ``requests``; return the answers and the monitors."""
    rng = random.Random(seed)
    got = []
    started = []

    async def bus_side(ctx):
        if setup is not None:
            await setup(ctx, dut.bus)
        started.append(True)
        if during is not None:
            await during(ctx, dut.bus)

    async def source(ctx):
        while not started:
            await ctx.tick()
        for req in requests:
            await put(ctx, dut.i, req, idle_prob=idle_prob, rng=rng)

    async def sink(ctx):
        for _ in requests:
            got.append(await get(ctx, dut.o, ready_prob=ready_prob, rng=rng))

    mon_i = StreamMonitor(dut.i, name="i")
    mon_o = StreamMonitor(dut.o, name="o")
    simulate(dut, [bus_side, source, sink], background=[mon_i.run, mon_o.run],
             max_cycles=max_cycles)
    return got, mon_i, mon_o


def test_rss_microsoft_vectors_in_rtl():
    """The published vectors through the whole block (reset key = the verification key, then
    the same key written over a different one), including the 2-tuple fallbacks."""
    dut = Rss()
    table = [(7 * n + 3) % 4096 for n in range(128)]
    cases = vector_requests()

    async def setup(ctx, bus):
        await write_key(ctx, bus, bytes(range(40)))
        await write_key(ctx, bus, MS_KEY)
        await write_register(ctx, bus, REGISTERS["control"], control_word(HashTypes()))
        for n, q in enumerate(table):
            await table_write(ctx, bus, n, q)

    got, _, _ = _run_requests(dut, [r for r, _ in cases], setup=setup)
    for (req, expected), answer in zip(cases, got, strict=True):
        assert answer.tag == req["tag"]
        assert answer.hashed == 1
        assert answer.hash == expected, f"case {req['tag']}: {answer.hash:#x} != {expected:#x}"
        assert answer.queue == table[expected % 128]


@pytest.mark.parametrize("entries, queue_bits, seed", [(128, 12, 2), (16, 3, 3)])
def test_rss_random_against_model(entries, queue_bits, seed):
    """Random key, hash types and table over the bus (table read back), random requests with
    idle cycles and back-pressure; every answer as the model says, in order."""
    rng = random.Random(seed)
    dut = Rss(entries=entries, queue_bits=queue_bits, tag_width=10)
    key = rng.randbytes(40)
    table = [rng.randrange(1 << queue_bits) for _ in range(entries)]
    phases = [HashTypes(**{t: rng.random() < 0.7 for t in TYPES}),
              HashTypes(**{t: rng.random() < 0.5 for t in TYPES}), HashTypes(enable=False)]
    per_phase = 150
    requests = [random_request(rng, n % 1024) for n in range(per_phase * len(phases))]
    read_back = []

    async def setup(ctx, bus):
        await write_key(ctx, bus, key)
        for n, q in enumerate(table):
            await table_write(ctx, bus, n, q)
        for n in range(entries):
            read_back.append(await table_read(ctx, bus, n))

    # The bus sets each phase's hash types once the previous phase is fully answered, and the
    # source holds a phase's requests back until its settings are in place.
    rng_io = random.Random(seed + 100)
    got = []
    phase_ready = []

    async def bus_side(ctx):
        await setup(ctx, dut.bus)
        for p, types in enumerate(phases):
            while len(got) < per_phase * p:
                await ctx.tick()
            await write_register(ctx, dut.bus, REGISTERS["control"], control_word(types))
            phase_ready.append(p)

    async def source(ctx):
        for p in range(len(phases)):
            while len(phase_ready) <= p or len(got) < per_phase * p:
                await ctx.tick()
            for req in requests[p * per_phase:(p + 1) * per_phase]:
                await put(ctx, dut.i, req, idle_prob=0.2, rng=rng_io)

    async def sink(ctx):
        for _ in requests:
            got.append(await get(ctx, dut.o, ready_prob=0.6, rng=rng_io))

    mon = StreamMonitor(dut.o, name="o")
    simulate(dut, [bus_side, source, sink], background=[mon.run], max_cycles=30000)

    assert read_back == table
    hashed = 0
    for n, (req, answer) in enumerate(zip(requests, got, strict=True)):
        model = RssModel(key=key, table=table, types=phases[n // per_phase])
        value, queue, was_hashed = model_answer(model, req)
        assert answer.tag == req["tag"], f"answer {n} out of order"
        assert (answer.hash, answer.queue, answer.hashed) == (value, queue, was_hashed), (
            f"request {n}: {req}")
        hashed += was_hashed
    assert 0 < hashed < len(requests) - per_phase  # both outcomes occurred (last phase: none)


def test_rss_table_rewrite_while_requests_flow():
    """Each answer uses the old or the new entry; requests after the rewrite use the new."""
    rng = random.Random(4)
    dut = Rss()
    old = [n for n in range(128)]
    new = [n + 1000 for n in range(128)]
    model = RssModel(table=old)
    requests = [random_request(rng, n % 256) for n in range(600)]
    for req in requests:
        req["l4_valid"] = 1
    rewrite_done = []

    async def setup(ctx, bus):
        await write_register(ctx, bus, REGISTERS["control"], control_word(HashTypes()))
        for n, q in enumerate(old):
            await table_write(ctx, bus, n, q)

    async def during(ctx, bus):
        for n in rng.sample(range(128), 128):
            await table_write(ctx, bus, n, new[n])
        rewrite_done.append(True)

    got, _, _ = _run_requests(dut, requests, setup=setup, during=during, seed=5,
                              ready_prob=0.7, max_cycles=30000)
    assert rewrite_done
    seen_old = seen_new = 0
    for req, answer in zip(requests, got, strict=True):
        value, _, _ = model_answer(model, req)
        index = value % 128
        assert answer.hash == value
        assert answer.queue in (old[index], new[index]), f"queue {answer.queue} for entry {index}"
        seen_old += answer.queue == old[index]
        seen_new += answer.queue == new[index]
    assert seen_old and seen_new, "the rewrite did not overlap the traffic"
    # Once an entry has changed, no later answer for it reverts to the old queue.
    last = {}
    for req, answer in zip(requests, got, strict=True):
        index = model_answer(model, req)[0] % 128
        if last.get(index) == new[index]:
            assert answer.queue == new[index], f"entry {index} went back to its old queue"
        last[index] = answer.queue


def test_rss_throughput_and_latency():
    """One answer per cycle with a source that never idles and a sink that never stalls;
    answers follow their requests by a fixed number of cycles."""
    rng = random.Random(6)
    dut = Rss()
    requests = [random_request(rng, n % 256) for n in range(200)]

    async def setup(ctx, bus):
        await write_register(ctx, bus, REGISTERS["control"], control_word(HashTypes()))

    got, mon_i, mon_o = _run_requests(dut, requests, setup=setup)
    assert len(got) == len(requests)
    cycles_i = [c for c, _ in mon_i.transfers]
    cycles_o = [c for c, _ in mon_o.transfers]
    assert cycles_i == list(range(cycles_i[0], cycles_i[0] + len(requests)))
    assert cycles_o == list(range(cycles_o[0], cycles_o[0] + len(requests)))
    latencies = {o - i for i, o in zip(cycles_i, cycles_o, strict=True)}
    assert latencies == {Rss.latency} == {4}
    model = RssModel()
    for req, answer in zip(requests, got, strict=True):
        assert (answer.hash, answer.queue, answer.hashed) == model_answer(model, req)


def test_rss_layouts():
    req = RssRequest(5)
    assert req.size == 1 + 8 + 128 + 128 + 16 + 16 + 1 + 5
    resp = RssResponse(queue_bits=9, tag_width=5)
    assert {n: f.width for n, f in resp} == {"hash": 32, "queue": 9, "hashed": 1, "tag": 5}
