"""ChecksumInserter: TCP/UDP and IPv4 header checksums against scapy, bad requests, oversize
packets, line rate and latency."""

import random

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from amnic.net.checksum import ChecksumInserter
from amnic.sim.stream_tb import (
    StreamMonitor,
    assert_packets_equal,
    get_packets,
    packet_to_beats,
    put,
    put_packets,
    simulate,
)

IPV4_CSUM = 10  # offset of the IPv4 header checksum (RFC 791)
TCP_CSUM, UDP_CSUM = 16, 6  # offsets of the L4 checksum fields (RFC 793, RFC 768)
ERROR_NAMES = ("l4_range", "ipv4_range", "ipv4_header", "oversize")
NO_REQUEST = {"l4": 0, "udp": 0, "csum_start": 0, "csum_offset": 0, "ipv4": 0, "l3_offset": 0}


# -- reference: RFC 1071 sum, and the pseudo-header sum a host puts into the field ----------------

def ones_sum(data):
    """16-bit ones'-complement sum of ``data`` (RFC 1071), big-endian words, odd byte padded."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_header_sum(ip_header, proto, l4_length):
    """Folded, uncomplemented pseudo-header sum (RFC 793 s3.1, RFC 768, RFC 8200 s8.1), as Linux
    leaves it in the checksum field for CHECKSUM_PARTIAL."""
    if ip_header[0] >> 4 == 4:
        pseudo = ip_header[12:20] + bytes([0, proto]) + l4_length.to_bytes(2, "big")
    else:
        pseudo = ip_header[8:40] + l4_length.to_bytes(4, "big") + bytes([0, 0, 0, proto])
    return ones_sum(pseudo)


# -- traffic ------------------------------------------------------------------------------------

def make_case(rng, *, payload=None, version=None, proto=None, prefix=None, l4=None, ipv4=None,
              vlan=None, options=None):
    """One packet as a dict: ``data`` (input bytes), ``request``, ``expected`` (output bytes),
    ``prefix`` (length) and ``version``.

    scapy builds the packet with correct checksums (the expected output where a checksum is
    requested). The input has the pseudo-header sum in the L4 field and a zero IPv4 checksum,
    as a host hands them over. A random prefix (a device header before the frame) moves the
    offsets to odd positions and to every byte lane. Arguments left at None are random.
    """
    version = version or rng.choice((4, 6))
    proto = proto or rng.choice(("tcp", "udp"))
    if payload is None:
        payload = rng.randbytes(rng.randint(0, 1500))
    if prefix is None:
        prefix = rng.randbytes(rng.choice((0, 0, rng.randint(1, 9))))
    l4 = rng.random() < 0.85 if l4 is None else l4
    ipv4 = version == 4 and (rng.random() < 0.85 if ipv4 is None else ipv4)
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if rng.random() < 0.4 if vlan is None else vlan:
        frame = frame / Dot1Q(vlan=rng.randint(1, 4094), prio=rng.randint(0, 7))
    if version == 4:
        if rng.random() < 0.4 if options is None else options:
            options = rng.choice(([IPOption_NOP()] * rng.randint(1, 4),
                                  [IPOption_RR(routers=["10.0.0.1"] * rng.randint(1, 8))]))
        else:
            options = []
        ip = IP(src=f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.1",
                dst=f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                ttl=rng.randint(1, 255), id=rng.randint(0, 0xFFFF), options=options)
    else:
        ip = IPv6(src=f"2001:db8::{rng.randint(1, 0xFFFF):x}",
                  dst=f"2001:db8:{rng.randint(1, 0xFFFF):x}::1", hlim=rng.randint(1, 255))
    if proto == "tcp":
        l4_header = TCP(sport=rng.randint(1, 0xFFFF), dport=rng.randint(1, 0xFFFF),
                        seq=rng.getrandbits(32), flags="PA")
    else:
        l4_header = UDP(sport=rng.randint(1, 0xFFFF), dport=rng.randint(1, 0xFFFF))
    l3_bytes = bytes(ip / l4_header / payload)
    built = prefix + bytes(frame / ip / l4_header / payload)

    l3 = len(prefix) + len(bytes(frame))
    ip_len = (l3_bytes[0] & 15) * 4 if version == 4 else 40
    csum_start = l3 + ip_len
    csum_offset = TCP_CSUM if proto == "tcp" else UDP_CSUM
    field = csum_start + csum_offset
    request = {
        "l4": int(l4), "udp": int(proto == "udp"), "csum_start": csum_start,
        "csum_offset": csum_offset, "ipv4": int(ipv4), "l3_offset": l3,
    }
    data = bytearray(built)
    expected = bytearray(built)
    if l4:
        partial = pseudo_header_sum(built[l3:csum_start], 6 if proto == "tcp" else 17,
                                    len(built) - csum_start)
        data[field:field + 2] = partial.to_bytes(2, "big")
    if ipv4:
        data[l3 + IPV4_CSUM:l3 + IPV4_CSUM + 2] = b"\0\0"
    return {"data": bytes(data), "request": request, "expected": bytes(expected),
            "prefix": len(prefix), "version": version, "proto": proto}


def scapy_expected(case):
    """The input of ``case`` with the requested checksums taken from scapy's packet."""
    out = bytearray(case["data"])
    r = case["request"]
    for on, at in ((r["l4"], r["csum_start"] + r["csum_offset"]),
                   (r["ipv4"], r["l3_offset"] + IPV4_CSUM)):
        if on:
            out[at:at + 2] = case["expected"][at:at + 2]
    return bytes(out)


def run(dut, packets, requests, *, seed, idle_prob=0.3, ready_prob=0.7, max_cycles=200_000):
    """Send ``packets`` ((bytes, user)) with ``requests``; return (output packets, error events,
    input monitor, output monitor)."""
    rng = random.Random(seed)
    got, errors = [], []
    mon_i, mon_o = StreamMonitor(dut.i, name="i"), StreamMonitor(dut.o, name="o")

    async def source(ctx):
        await put_packets(ctx, dut.i, packets, idle_prob=idle_prob, rng=random.Random(rng.random()))

    async def request_source(ctx):
        req_rng = random.Random(rng.random())
        for request in requests:
            await put(ctx, dut.req, request, idle_prob=idle_prob, rng=req_rng)

    async def sink(ctx):
        got.extend(await get_packets(ctx, dut.o, len(packets), ready_prob=ready_prob,
                                     rng=random.Random(rng.random())))
        await ctx.tick().repeat(4)

    async def error_monitor(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.errors.valid, dut.errors.payload):
            if valid:
                errors.append({name for name in ERROR_NAMES if getattr(payload, name)})

    simulate(dut, [source, request_source, sink],
             background=[mon_i.run, mon_o.run, error_monitor], max_cycles=max_cycles)
    return got, errors, mon_i, mon_o


def scapy_recomputed(frame_bytes):
    """``frame_bytes`` after scapy dissects it, forgets every checksum and computes them anew."""
    frame = Ether(frame_bytes)
    for layer in (IP, TCP, UDP):
        if frame.haslayer(layer):
            del frame[layer].chksum
    return bytes(frame)


# -- checksums against scapy ----------------------------------------------------------------------

@pytest.mark.parametrize("width,count", [(64, 40), (512, 60)])
def test_checksums_match_scapy(width, count):
    rng = random.Random(width)
    cases = [make_case(rng) for _ in range(count)]
    cases += [make_case(rng, payload=b"") for _ in range(4)]
    packets = [(c["data"], rng.getrandbits(2)) for c in cases]
    got, errors, _, _ = run(ChecksumInserter(width, user_width=2), packets,
                            [c["request"] for c in cases], seed=width)
    # Requested checksums are scapy's, every other byte (and user) is unchanged.
    want = [(scapy_expected(c), user) for c, (_, user) in zip(cases, packets, strict=True)]
    assert_packets_equal(got, want)
    assert errors == []
    requested = [c for c in cases if c["request"]["l4"] or c["request"]["ipv4"]]
    assert len(requested) > count // 2
    assert all(c["data"] != c["expected"] for c in requested)  # something had to be inserted
    # Frames without a prefix whose checksums were all requested survive scapy's own check.
    checked = 0
    for c, (out, _) in zip(cases, got, strict=True):
        r = c["request"]
        if c["prefix"] == 0 and r["l4"] and (r["ipv4"] or c["version"] == 6):
            assert scapy_recomputed(out) == out
            checked += 1
    assert checked > count // 4


def test_udp_zero_becomes_ffff():
    """A payload word chosen to make the sum 0xFFFF: the computed checksum is 0x0000, which UDP
    sends as 0xFFFF (RFC 768) and TCP as 0x0000."""
    rng = random.Random(7)
    packets, requests, want = [], [], []
    for version in (4, 6):
        for proto in ("udp", "tcp"):
            tail = rng.randbytes(rng.randint(0, 60))
            c = make_case(rng, payload=b"\0\0" + tail, version=version, proto=proto, prefix=b"",
                          l4=True, ipv4=True)
            r = c["request"]
            data = bytearray(c["data"])
            at = len(data) - len(tail) - 2
            data[at:at + 2] = ((~ones_sum(data[r["csum_start"]:])) & 0xFFFF).to_bytes(2, "big")
            assert ones_sum(data[r["csum_start"]:]) == 0xFFFF  # the checksum computes to 0x0000
            # scapy, from scratch, on the frame with that payload: UDP 0xFFFF, TCP 0x0000.
            expected = scapy_recomputed(bytes(data))
            field = r["csum_start"] + r["csum_offset"]
            assert expected[field:field + 2] == (b"\xff\xff" if proto == "udp" else b"\0\0")
            packets.append((bytes(data), 0))
            requests.append(r)
            want.append((expected, 0))
    for width in (64, 512):
        got, errors, _, _ = run(ChecksumInserter(width), packets, requests, seed=width)
        assert_packets_equal(got, want)
        assert errors == []


# -- bad requests, oversize packets ---------------------------------------------------------------

def l4_model(data, start, offset, udp):
    """The L4 checksum field the core should write (the partial-offload definition)."""
    value = (~ones_sum(data[start:])) & 0xFFFF
    out = bytearray(data)
    out[start + offset:start + offset + 2] = (0xFFFF if udp and value == 0 else value).to_bytes(
        2, "big")
    return bytes(out)


def bad_cases(rng):
    """``(data, request, expected output, error flags)``: requests the core must refuse, each
    next to a request at the edge of what it must accept."""
    cases = []

    def add(data, request, expected, flags=()):
        cases.append((bytes(data), {**NO_REQUEST, **request}, bytes(expected), set(flags)))

    for length in (1, 2, 7, 8, 9, 63, 64, 65, 130):
        data = rng.randbytes(length)
        add(data, {}, data)  # nothing requested: passes unchanged, whatever it holds
        start = rng.randint(0, length - 1)
        # the field as the last two bytes: accepted; one byte further: refused
        if length >= 2:
            offset = length - 2 - start if start <= length - 2 else 0
            start = min(start, length - 2)
            add(data, {"l4": 1, "csum_start": start, "csum_offset": offset},
                l4_model(data, start, offset, 0))
            add(data, {"l4": 1, "udp": 1, "csum_start": start, "csum_offset": offset + 1},
                data, {"l4_range"})
        add(data, {"l4": 1, "csum_start": length, "csum_offset": 0}, data, {"l4_range"})
        add(data, {"l4": 1, "csum_start": length + rng.randint(1, 60000) % (0xFFFF - length),
                   "csum_offset": 0}, data, {"l4_range"})
        add(data, {"l4": 1, "csum_start": 0, "csum_offset": 0xFFFF}, data, {"l4_range"})
        add(data, {"l4": 1, "csum_start": 0xFFFF, "csum_offset": 0xFFFF}, data, {"l4_range"})
    # IPv4: header beyond the end, options beyond the end, IHL below 5, version not 4.
    for l3 in (0, 3, 14, 18, 61):
        header = bytes([0x45, 0]) + rng.randbytes(18)
        data = rng.randbytes(l3) + header
        good = bytearray(data)
        good[l3 + IPV4_CSUM:l3 + IPV4_CSUM + 2] = (
            (~ones_sum(data[l3:l3 + 10] + b"\0\0" + data[l3 + 12:l3 + 20])) & 0xFFFF).to_bytes(
            2, "big")
        add(data, {"ipv4": 1, "l3_offset": l3}, good)  # a 20-byte header that ends the packet
        add(data[:-1], {"ipv4": 1, "l3_offset": l3}, data[:-1], {"ipv4_range"})
        add(data, {"ipv4": 1, "l3_offset": l3 + 1}, data, {"ipv4_range"})
        add(data, {"ipv4": 1, "l3_offset": 0xFFFF}, data, {"ipv4_range"})
        longer = bytearray(data + rng.randbytes(20))
        longer[l3] = 0x4A  # 40-byte header, packet holds 40 bytes from l3: accepted
        expected = bytearray(longer)
        expected[l3 + IPV4_CSUM:l3 + IPV4_CSUM + 2] = (~ones_sum(
            longer[l3:l3 + 10] + b"\0\0" + longer[l3 + 12:l3 + 40]) & 0xFFFF).to_bytes(2, "big")
        add(longer, {"ipv4": 1, "l3_offset": l3}, expected)
        longer[l3] = 0x4B  # 44-byte header in 40 bytes
        add(longer, {"ipv4": 1, "l3_offset": l3}, longer, {"ipv4_range"})
        for first_byte in (0x44, 0x40, 0x65, 0x05):
            bad = bytearray(data)
            bad[l3] = first_byte
            add(bad, {"ipv4": 1, "l3_offset": l3}, bad, {"ipv4_header"})
        # one good and one bad insertion: nothing is inserted
        add(data, {"ipv4": 1, "l3_offset": l3, "l4": 1, "csum_start": l3, "csum_offset": 20},
            data, {"l4_range"})
        add(data[:-1], {"ipv4": 1, "l3_offset": l3, "l4": 1, "csum_start": 0, "csum_offset": 0},
            data[:-1], {"ipv4_range"})
        add(bytes([0x43]) + data[1:], {"ipv4": 1, "l3_offset": 0, "l4": 1, "csum_start": 1,
                                       "csum_offset": len(data)}, bytes([0x43]) + data[1:],
            {"ipv4_header", "l4_range"})
    return cases


@pytest.mark.parametrize("width", [64, 512])
def test_bad_requests(width):
    """Refused requests leave the packet unchanged and are reported, in order, with the
    right reasons; the accepted edge cases and the good packets around them come out right."""
    rng = random.Random(width + 1)
    cases = bad_cases(rng)
    cases += [(c["data"], c["request"], scapy_expected(c), set())
              for c in (make_case(rng, payload=rng.randbytes(rng.randint(0, 200)))
                        for _ in range(10))]
    rng.shuffle(cases)
    expected = [(want, 1) for _, _, want, _ in cases]
    dut = ChecksumInserter(width)
    got, errors, _, _ = run(dut, [(d, 1) for d, _, _, _ in cases], [r for _, r, _, _ in cases],
                            seed=width, max_cycles=100_000)
    assert_packets_equal(got, expected)
    assert errors == [flags for _, _, _, flags in cases if flags]
    assert len(errors) > 60


@pytest.mark.parametrize("width,max_packet", [(64, 250), (512, 128)])
def test_oversize_passes_marked_bad(width, max_packet):
    """Packets longer than ``max_packet`` pass unchanged (cut-through when they do not fit the
    buffer) with user bit 0 set and an ``oversize`` report; the packets around them, right up
    to ``max_packet`` bytes, get their checksums. Nothing is lost, reordered or mixed."""
    rng = random.Random(max_packet)
    dut = ChecksumInserter(width, user_width=2, max_packet=max_packet)
    buffer_bytes = dut.max_beats * width // 8
    lengths = [max_packet, max_packet + 1, buffer_bytes, buffer_bytes + 1, buffer_bytes + 2,
               3 * buffer_bytes + 5]
    lengths += [rng.randint(80, 1200) for _ in range(5)]
    lengths += [rng.randint(80, max_packet) for _ in range(5)]
    rng.shuffle(lengths)
    # oversize packets back to back, and a short one right behind an oversize one
    lengths = lengths[:4] + [1200, 1200, 900, 90, max_packet, max_packet + 1] + lengths[4:]
    packets, requests, want, flags = [], [], [], []
    for length in lengths:
        c = make_case(rng, version=4, proto="udp", prefix=b"", l4=True, ipv4=True, vlan=False,
                      options=False, payload=rng.randbytes(length - 42))
        data = c["data"]
        assert len(data) == length
        user = rng.getrandbits(2)
        packets.append((data, user))
        requests.append(c["request"])
        if length > max_packet:
            want.append((data, user | 1))
            flags.append({"oversize"})
        else:
            want.append((c["expected"], user))
    assert any(length > buffer_bytes for length in lengths)
    assert any(max_packet < length <= buffer_bytes for length in lengths) or (
        buffer_bytes == max_packet)
    for idle_prob, ready_prob in ((0.0, 1.0), (0.3, 0.6)):
        got, errors, _, _ = run(dut, packets, requests, seed=width, idle_prob=idle_prob,
                                ready_prob=ready_prob)
        assert_packets_equal(got, want)
        assert errors == flags


# -- performance ----------------------------------------------------------------------------------

def measure(width, length, count):
    """Run ``count`` back-to-back packets of ``length`` bytes with no idle cycles and no
    back-pressure; return (input beats/cycle, output beats/cycle, latency list)."""
    rng = random.Random(length)
    cases = [make_case(rng, version=4, proto="tcp", prefix=b"", l4=True, ipv4=True, vlan=False,
                       options=False, payload=rng.randbytes(length - 54)) for _ in range(count)]
    packets = [(c["data"], 0) for c in cases]
    requests = [c["request"] for c in cases]
    dut = ChecksumInserter(width)
    got, errors, mon_i, mon_o = run(dut, packets, requests, seed=1, idle_prob=0.0,
                                    ready_prob=1.0)
    assert_packets_equal(got, [(c["expected"], 0) for c in cases])
    assert errors == []

    def rate(mon):
        cycles = [cycle for cycle, _ in mon.transfers]
        return len(cycles) / (cycles[-1] - cycles[0] + 1)

    starts_i = [first for _, first, _ in mon_i.packet_spans()]
    starts_o = [first for _, first, _ in mon_o.packet_spans()]
    latency = [o - i for i, o in zip(starts_i, starts_o, strict=True)]
    return rate(mon_i), rate(mon_o), latency


@pytest.mark.parametrize("width,length,count", [
    (64, 64, 100), (64, 1500, 8), (512, 64, 200), (512, 1500, 16)])
def test_line_rate(width, length, count):
    """Back-to-back packets enter and leave at one beat per cycle, with a first-beat latency of
    the packet's beats plus a constant."""
    rate_in, rate_out, latency = measure(width, length, count)
    assert rate_in == 1.0
    assert rate_out == 1.0
    beats = len(packet_to_beats(bytes(length), width))
    assert max(latency) <= beats + 7

