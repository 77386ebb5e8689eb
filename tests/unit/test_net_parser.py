"""PacketParser against a Python reference built on scapy's header dissection.

The reference (:mod:`amnic.sim.parse_model`) walks a frame with the parser's documented rules
and takes every field value from scapy's dissection of that header's bytes. Packets are built with
scapy (which fills in correct checksums) and then some are corrupted, cut short, padded or given
trailing bytes on purpose.
"""

import gc
import ipaddress
import random
import warnings

import pytest
from amaranth.hdl import Fragment
from scapy.contrib.roce import BTH
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    in6_chksum,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from amnic.net.metadata import ParseResult
from amnic.net.parser import PacketParser
from amnic.sim.parse_model import (
    BAD,
    GOOD,
    NOT_CHECKED,
    decode,
    diff,
    parse_reference,
)
from amnic.sim.stream_tb import Beat, StreamMonitor, get, packet_to_beats, put, simulate

LAYOUT = ParseResult.as_shape()
reference = parse_reference


# -- packets --------------------------------------------------------------------------------------

def E():
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def rand_mac(rng):
    return ":".join(f"{rng.getrandbits(8) & 0xFE if k == 0 else rng.getrandbits(8):02x}"
                    for k in range(6))


def rand_ip(rng, v6):
    if v6:
        return str(ipaddress.IPv6Address(rng.getrandbits(128)))
    return str(ipaddress.IPv4Address(rng.getrandbits(32)))


def l2(rng, inner=False):
    pkt = Ether(src=rand_mac(rng), dst=rand_mac(rng))
    tags = rng.choice([0, 0, 1] if inner else [0, 1, 2, 2])
    for k in range(tags):
        cls = Dot1AD if (k == 0 and tags == 2 and rng.random() < 0.7) else Dot1Q
        pkt = pkt / cls(vlan=rng.getrandbits(12), prio=rng.getrandbits(3), dei=rng.getrandbits(1))
    return pkt


def l3(rng, v6, frag_ok=True):
    if not v6:
        opts = b""
        if rng.random() < 0.25:
            opts = bytes([1] * (4 * rng.randint(1, 10)))  # NOP options
        frag = {}
        if frag_ok and rng.random() < 0.1:
            frag = rng.choice([{"flags": "MF"}, {"frag": rng.randint(1, 100)},
                               {"flags": "MF", "frag": 3}])
        return IP(src=rand_ip(rng, False), dst=rand_ip(rng, False), tos=rng.getrandbits(8),
                  ttl=rng.getrandbits(8), id=rng.getrandbits(16), options=opts, **frag)
    pkt = IPv6(src=rand_ip(rng, True), dst=rand_ip(rng, True), tc=rng.getrandbits(8),
               fl=rng.getrandbits(20), hlim=rng.getrandbits(8))
    if rng.random() < 0.4:
        if rng.random() < 0.5:
            pkt = pkt / IPv6ExtHdrHopByHop(options=[])
        for _ in range(rng.randint(0, 3)):
            choice = rng.random()
            if choice < 0.4:
                pkt = pkt / IPv6ExtHdrDestOpt(options=[])
            elif choice < 0.7:
                addrs = [rand_ip(rng, True) for _ in range(rng.randint(0, 2))]
                pkt = pkt / IPv6ExtHdrRouting(addresses=addrs,
                                              segleft=rng.choice([0, 0, 0, len(addrs)]))
            elif choice < 0.85 and frag_ok:
                pkt = pkt / IPv6ExtHdrFragment(offset=rng.choice([0, 0, 5]), m=rng.getrandbits(1),
                                               id=rng.getrandbits(32))
            else:
                pkt = pkt / IPv6ExtHdrHopByHop(options=[])  # not first: left unparsed
    if rng.random() < 0.04:
        pkt = pkt / AH(spi=rng.getrandbits(32), icv=bytes(12))
    return pkt


def l4(rng, v6, inner=False):
    choice = rng.random()
    if choice < 0.45:
        opts = []
        if rng.random() < 0.3:
            opts = [("MSS", 1460), ("NOP", None), ("WScale", 7)][:rng.randint(1, 3)]
        return TCP(sport=rng.getrandbits(16), dport=rng.getrandbits(16), flags=rng.getrandbits(8),
                   seq=rng.getrandbits(32), options=opts)
    if choice < 0.9:
        return UDP(sport=rng.getrandbits(16), dport=rng.choice([53, 4790, rng.getrandbits(16)]))
    return ICMP() if not v6 else IPv6ExtHdrDestOpt(nh=58, options=[])


def payload(rng, limit=60):
    return rng.randbytes(rng.choice([0, 1, 2, 3, rng.randint(0, limit)]))


def fix_checksums(pkt):
    """Fill in TCP/UDP checksums behind IPv6 extension headers (scapy leaves them zero)."""
    layers = []
    layer = pkt
    while layer:
        layers.append(layer)
        layer = layer.payload
    for layer in reversed(layers):  # inner checksums first: the outer UDP one covers them
        if isinstance(layer, TCP | UDP) and not isinstance(layer.underlayer, IP | IPv6):
            ip6 = layer.underlayer
            while ip6 is not None and not isinstance(ip6, IPv6):
                ip6 = ip6.underlayer
            if ip6 is None:
                continue
            layer.chksum = 0
            value = in6_chksum(6 if isinstance(layer, TCP) else 17, ip6, bytes(layer))
            layer.chksum = value or 0xFFFF
    return pkt


def random_packet(rng):
    """A random frame (bytes) of the kinds the parser handles, sometimes damaged."""
    base = l2(rng)
    kind = rng.random()
    if kind < 0.05:
        pkt = base / ARP(psrc=rand_ip(rng, False)) / payload(rng)
    elif kind < 0.08:
        pkt = base / Dot1Q(vlan=3) / IP() / UDP() / payload(rng)  # a third tag
    else:
        v6 = rng.random() < 0.45
        net = l3(rng, v6)
        shape = rng.random()
        if shape < 0.3:
            inner = l2(rng, inner=True) / l3(rng, rng.random() < 0.5, frag_ok=False)
            inner = inner / l4(rng, v6, inner=True) / payload(rng, 30)
            flags = 0x08 if rng.random() < 0.95 else 0x00
            udp = UDP(sport=rng.getrandbits(16), dport=4789)
            if not v6 and rng.random() < 0.7:
                udp.chksum = 0  # RFC 7348: zero outer checksum over IPv4
            pkt = base / net / udp / VXLAN(vni=rng.getrandbits(24), flags=flags) / inner
        elif shape < 0.45:
            bth = BTH(opcode=rng.getrandbits(8), solicited=rng.getrandbits(1),
                      migreq=rng.getrandbits(1), padcount=rng.getrandbits(2),
                      version=rng.getrandbits(4), pkey=rng.getrandbits(16),
                      fecn=rng.getrandbits(1), becn=rng.getrandbits(1), dqpn=rng.getrandbits(24),
                      ackreq=rng.getrandbits(1), psn=rng.getrandbits(24))
            pkt = base / net / UDP(sport=rng.getrandbits(16), dport=4791) / bth / payload(rng)
        else:
            pkt = base / net / l4(rng, v6) / payload(rng)
    pkt = fix_checksums(pkt)
    frame = bytearray(bytes(pkt))
    damage = rng.random()
    if damage < 0.12:  # flip one byte anywhere past the Ethernet header
        pos = rng.randrange(14, len(frame))
        frame[pos] ^= 1 << rng.randrange(8)
    elif damage < 0.2:  # cut short
        frame = frame[:rng.randrange(0, len(frame))]
    elif damage < 0.25:  # bytes after the IP packet
        frame += rng.randbytes(rng.randint(1, 30))
    elif damage < 0.3:  # a wrong IP length (header checksum still right)
        p = Ether(bytes(pkt))
        delta = rng.choice([-9, -1, 1, 7, 40])
        if IP in p:
            p[IP].len = max(0, p[IP].len + delta)
            del p[IP].chksum
        elif IPv6 in p:
            p[IPv6].plen = max(0, p[IPv6].plen + delta)
        frame = bytearray(bytes(p))
    if len(frame) < 60 and rng.random() < 0.5:
        frame += bytes(60 - len(frame))  # MAC padding
    return bytes(frame)


# -- simulation -----------------------------------------------------------------------------------

def frame_beats(frame, width):
    if not frame:
        return [Beat(0, 0, True, 0)]  # a packet of zero bytes: one empty last beat
    return packet_to_beats(frame, width, user=len(frame) & 1)


def run(frames, width, *, idle=0.0, o_ready=1.0, meta_ready=1.0, seed=0, **params):
    """Send ``frames`` through a parser; check ``o`` and timing; return the decoded records."""
    dut = PacketParser(width, **params)
    rng = random.Random(seed)
    mon_i, mon_o, mon_m = StreamMonitor(dut.i), StreamMonitor(dut.o), StreamMonitor(dut.meta)
    sent = [frame_beats(f, width) for f in frames]
    got_beats, got_meta = [], []

    async def source(ctx):
        for beats in sent:
            for beat in beats:
                await put(ctx, dut.i, beat.as_dict(), idle_prob=idle, rng=rng)

    async def sink(ctx):
        for _ in sent:
            beats = []
            while not beats or not beats[-1].last:
                payload = await get(ctx, dut.o, ready_prob=o_ready, rng=rng)
                beats.append(Beat.from_payload(payload))
            got_beats.append(beats)

    async def meta_sink(ctx):
        for _ in sent:
            got_meta.append(await get(ctx, dut.meta, ready_prob=meta_ready, rng=rng))

    simulate(dut, [source, sink, meta_sink], background=[mon_i.run, mon_o.run, mon_m.run],
             max_cycles=200_000)
    for n, (g, e) in enumerate(zip(got_beats, sent, strict=True)):
        assert g == e, f"packet {n} changed on its way through"
    # Records in order, each after its packet's last beat left `o`.
    last_cycles = [c for c, p in mon_o.transfers if p.last]
    meta_cycles = [c for c, _ in mon_m.transfers]
    assert len(meta_cycles) == len(frames)
    for n, (lc, mc) in enumerate(zip(last_cycles, meta_cycles, strict=True)):
        assert mc >= lc, f"record {n} at cycle {mc} before its last beat at {lc}"
    records = [decode(LAYOUT, p.as_value().value) for p in got_meta]
    return dut, records, {"i": mon_i, "o": mon_o, "meta": mon_m}


def check_records(frames, records, **ref_kwargs):
    for n, (frame, rec) in enumerate(zip(frames, records, strict=True)):
        problems = diff(rec, reference(frame, **ref_kwargs))
        assert not problems, (f"frame {n} ({len(frame)} bytes) {frame.hex()}:\n  "
                              + "\n  ".join(problems))


# -- tests ----------------------------------------------------------------------------------------

def test_reference_reads_what_scapy_built():
    """The reference itself, against the values the packets were built from."""
    inner = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=9, prio=2)
             / IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0xB9, hlim=3)
             / IPv6ExtHdrHopByHop(options=[]) / IPv6ExtHdrFragment(offset=0, m=1, nh=6)
             / TCP(sport=7, dport=9, flags="SA") / b"abc")
    pkt = (Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb") / Dot1AD(vlan=100, prio=5)
           / Dot1Q(vlan=200, dei=1) / IP(src="10.0.0.1", dst="192.168.1.2", tos=0x2E, ttl=9,
                                         options=b"\x01" * 4)
           / UDP(sport=1000, dport=4789) / VXLAN(vni=0xABCDE) / inner)
    res = reference(bytes(pkt))
    o, i = res["outer"], res["inner"]
    assert o["eth"]["dst"] == 0x66778899AABB and o["eth"]["src"] == 0x001122334455
    assert o["eth"]["vlan_count"] == 2 and o["eth"]["ethertype"] == 0x0800
    assert o["eth"]["outer_vlan"] == {"vid": 100, "dei": 0, "pcp": 5}
    assert o["eth"]["inner_vlan"] == {"vid": 200, "dei": 1, "pcp": 0}
    assert o["l3"]["src"] == 0x0A000001 and o["l3"]["dst"] == 0xC0A80102
    assert (o["l3"]["dscp"], o["l3"]["ecn"], o["l3"]["ttl"]) == (0x0B, 2, 9)
    assert o["l3"]["options"] == 1 and o["l3"]["checksum"] == GOOD and o["l3"]["offset"] == 22
    assert o["l4"]["offset"] == 22 + 24 and o["l4"]["dst_port"] == 4789
    assert o["l4"]["checksum"] == GOOD
    assert res["vxlan"] == {"present": 1, "vni": 0xABCDE}
    assert i["eth"]["outer_vlan"]["vid"] == 9 and i["l3"]["kind"] == 2
    assert i["l3"]["src"] == 0x20010DB8 << 96 | 1 and i["l3"]["dscp"] == 0xB9 >> 2
    assert i["l3"]["fragment"] == 1 and i["l3"]["options"] == 1 and i["l3"]["protocol"] == 6
    assert i["l4"]["kind"] == 1 and i["l4"]["tcp_flags"]["syn"] == 1
    assert i["l4"]["checksum"] == NOT_CHECKED  # a fragment
    assert res["errors"] == {"truncated": 0, "ip_length": 0, "beyond_window": 0, "malformed": 0}
    roce = bytes(E() / IPv6() / UDP(dport=4791)
                 / BTH(opcode=0x64, pkey=0xFFFF, dqpn=0x12345, psn=0xABCDEF, becn=1, ackreq=1))
    bth = reference(roce)["roce"]
    assert bth["present"] == 1 and bth["bth"]["opcode"] == 0x64
    assert bth["bth"]["dest_qp"] == 0x12345 and bth["bth"]["psn"] == 0xABCDEF
    assert bth["bth"]["becn"] == 1 and bth["bth"]["ack_req"] == 1
    bad = bytearray(bytes(E() / IP() / TCP() / b"xyz"))
    bad[-1] ^= 0xFF
    assert reference(bytes(bad))["outer"]["l4"]["checksum"] == BAD


def shapes():
    """The packets whose every truncation is tested."""
    rng = random.Random(7)
    inner = (Ether(src=rand_mac(rng), dst=rand_mac(rng)) / Dot1Q(vlan=33)
             / IPv6(src=rand_ip(rng, True), dst=rand_ip(rng, True)) / IPv6ExtHdrDestOpt()
             / TCP(sport=1, dport=2, options=[("MSS", 1400)]) / (b"payload!" * 5))
    vxlan = (Ether(src=rand_mac(rng), dst=rand_mac(rng)) / Dot1AD(vlan=1) / Dot1Q(vlan=2)
             / IP(src=rand_ip(rng, False), dst=rand_ip(rng, False), options=b"\x01" * 8)
             / UDP(sport=5, dport=4789) / VXLAN(vni=42) / inner)
    roce = (Ether(src=rand_mac(rng), dst=rand_mac(rng))
            / IPv6(src=rand_ip(rng, True), dst=rand_ip(rng, True)) / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrRouting(addresses=[rand_ip(rng, True)], segleft=0)
            / IPv6ExtHdrFragment(offset=0, m=0) / UDP(sport=9, dport=4791)
            / BTH(opcode=10, dqpn=77, psn=5) / b"rdma")
    inner4 = (Ether(src=rand_mac(rng), dst=rand_mac(rng))
              / IP(src=rand_ip(rng, False), dst=rand_ip(rng, False), options=b"\x01" * 4)
              / UDP(sport=3, dport=4) / (b"x" * 5))
    vxlan6 = (Ether(src=rand_mac(rng), dst=rand_mac(rng))
              / IPv6(src=rand_ip(rng, True), dst=rand_ip(rng, True))
              / UDP(sport=5, dport=4789) / VXLAN(vni=43) / inner4)
    return [bytes(vxlan), bytes(roce), bytes(vxlan6)]


@pytest.mark.parametrize("width", [64, 512])
def test_every_truncation(width):
    frames, cut = [], []
    for full in shapes()[: 1 if width == 64 else 3]:
        frames += [full[:n] for n in range(len(full) + 1)]
        cut += [n < len(full) for n in range(len(full) + 1)]
    _, records, _ = run(frames, width, idle=0.1, o_ready=0.9, meta_ready=0.9, seed=width)
    check_records(frames, records)
    # A frame cut anywhere is flagged: inside a header, or short of its IP length.
    for record, short in zip(records, cut, strict=True):
        errors = record["errors"]
        assert bool(errors["truncated"] or errors["ip_length"]) == short


@pytest.mark.parametrize("width,count", [(64, 200), (512, 400)])
def test_random_mix(width, count):
    rng = random.Random(1000 + width)
    frames = [random_packet(rng) for _ in range(count)]
    _, records, _ = run(frames, width, idle=0.2, o_ready=0.7, meta_ready=0.6, seed=width)
    check_records(frames, records)
    # The mix reaches every outcome the record can report.
    seen = {(lvl, key, r[lvl][layer][key]) for r in records for lvl in ("outer", "inner")
            for layer, key in (("l3", "kind"), ("l4", "kind"), ("l4", "checksum"),
                               ("l3", "checksum"))}
    for lvl in ("outer", "inner"):
        for key, values in (("kind", range(4)), ("checksum", range(3))):
            for value in values:
                assert (lvl, key, value) in seen, (lvl, key, value)
    for flag in ("truncated", "ip_length", "malformed"):
        assert any(r["errors"][flag] for r in records), flag
    assert any(r["roce"]["present"] for r in records)
    assert any(r["outer"]["l3"]["ext_unparsed"] for r in records)
    assert any(r["outer"]["l3"]["fragment"] for r in records)


def test_small_window_and_long_frames():
    """Headers past a 64-byte window, checksums of segments longer than the window; 128 bits
    and one IPv6 extension header stepped over."""
    rng = random.Random(5)
    frames = []
    for net in (IP(), IP(options=b"\x01" * 8), IPv6()):  # segments running past the window
        for seg in (TCP(sport=3), UDP(sport=4)):
            good = bytes(E() / net / seg / rng.randbytes(150))
            frames += [good, good[:-1] + bytes([good[-1] ^ 0x40])]
    frames.append(bytes(E() / IP() / TCP() / (b"z" * 300)) + b"trailer")  # tail unseen
    frames.append(bytes(E() / IP() / UDP(dport=4789) / VXLAN() / E() / IP() / TCP()))
    for _ in range(40):
        v6 = rng.random() < 0.5
        pkt = l2(rng) / l3(rng, v6) / l4(rng, v6) / rng.randbytes(rng.randint(0, 200))
        frames.append(bytes(fix_checksums(pkt)))
    _, records, _ = run(frames, 128, window=64, ipv6_ext=1, idle=0.1, o_ready=0.8,
                        meta_ready=0.8)
    check_records(frames, records, window=64, ipv6_ext=1)
    # IPv6 + TCP ends at byte 74: past the window, so its checksum is not checked.
    expected = [GOOD, BAD] * 4 + [NOT_CHECKED, NOT_CHECKED, GOOD, BAD]
    assert [r["outer"]["l4"]["checksum"] for r in records[:12]] == expected
    assert records[12]["outer"]["l4"]["checksum"] == NOT_CHECKED
    assert records[12]["errors"]["ip_length"] == 1
    assert records[13]["errors"]["beyond_window"] == 1  # the inner headers


def test_jumbo_frame_length_saturates():
    frames = [bytes(E() / IP() / UDP() / (b"j" * 9000)),
              bytes(E() / IPv6() / TCP() / bytes(65535 - 20)),  # IPv6 plen 65535
              bytes(E() / IP() / TCP() / b"after")]
    _, records, _ = run(frames, 512)
    check_records(frames, records)
    assert records[1]["frame_length"] == 0xFFFF
    assert records[1]["outer"]["l4"]["checksum"] == GOOD


@pytest.mark.parametrize("width", [64, 512])
def test_line_rate_and_latency(width):
    """No stall at line rate: one beat per cycle at 64 bit, one packet per cycle at 512 bit."""
    rng = random.Random(width)
    frames = []
    for _ in range(40):
        v6 = rng.random() < 0.5
        pkt = E() / l3(rng, v6, frag_ok=False) / UDP(sport=1, dport=2)
        frames.append(bytes(pkt / bytes(max(0, 64 - len(pkt))))[:64])
    dut, records, mons = run(frames, width)
    check_records(frames, records)
    beats = [c for c, _ in mons["i"].transfers]
    assert beats == list(range(beats[0], beats[0] + len(beats))), "the input stalled"
    assert len(beats) == len(frames) * 64 * 8 // width
    packets = [c for c, _ in mons["meta"].transfers]
    per_packet = 64 * 8 // width
    assert packets == list(range(packets[0], packets[0] + per_packet * len(frames), per_packet))
    last = [c for c, p in mons["o"].transfers if p.last]
    latencies = {m - lc for m, lc in zip(packets, last, strict=True)}
    assert latencies == {dut.latency}, latencies
    print(f"\nwidth {width}: {len(frames)} frames of 64 bytes in {len(beats)} cycles; "
          f"latency last beat on o -> meta {dut.latency} cycles")


def test_meta_backpressure_stalls_input():
    """A record sink that stops takes nothing away: the input waits, no record is lost."""
    rng = random.Random(3)
    frames = [bytes(E() / IP(src=rand_ip(rng, False)) / TCP(sport=n)) for n in range(60)]
    dut = PacketParser(512)
    mon_i = StreamMonitor(dut.i)
    got = []

    async def source(ctx):
        for f in frames:
            for beat in frame_beats(f, 512):
                await put(ctx, dut.i, beat.as_dict())

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(300)

    async def meta_sink(ctx):
        await ctx.tick().repeat(200)
        assert len(mon_i.transfers) == dut.meta_depth  # stalled once the credits ran out
        for _ in frames:
            got.append(await get(ctx, dut.meta))

    simulate(dut, [source, sink, meta_sink], background=[mon_i.run])
    records = [decode(LAYOUT, p.as_value().value) for p in got]
    assert [r["outer"]["l4"]["src_port"] for r in records] == list(range(60))
    check_records(frames, records)


def test_parameters_are_checked():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refused parsers are never elaborated
        with pytest.raises(ValueError, match="multiple of 16"):
            PacketParser(72)
        with pytest.raises(ValueError, match="at least 64"):
            PacketParser(64, window=32)
        gc.collect()
    dut = PacketParser(512, window=100)
    assert dut.window_len == 128
    Fragment.get(dut, None)  # elaborates
