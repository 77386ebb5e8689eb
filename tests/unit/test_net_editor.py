"""PacketEditor: byte-slicing model against the RTL, scapy rewrites, bad commands, throughput."""

import gc
import random
import struct
import warnings

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from amnic.net.editor import PacketEditor
from amnic.sim.stream_tb import (
    StreamMonitor,
    assert_packets_equal,
    get_packet,
    packet_to_beats,
    put,
    put_beat,
    put_packet,
    simulate,
)

FLAGS = ("offset", "overrun", "empty", "clamped")


# -- reference model: the editing rule written with bytes slicing ------------------------------


def edit_model(packet, cmd, max_insert, max_remove):
    """``(output bytes or None if dropped, bad, flags)`` for one packet and command dict."""
    offset, remove, insert = cmd["offset"], cmd["remove"], cmd["insert"]
    flags = dict.fromkeys(FLAGS, 0)
    flags["clamped"] = int(remove > max_remove or insert > max_insert)
    remove, insert = min(remove, max_remove), min(insert, max_insert)
    bad = 0
    if offset > len(packet):
        out = bytearray(packet)
        flags["offset"] = bad = 1
    else:
        out = bytearray(packet[:offset] + bytes(cmd["insert_data"][:insert])
                        + packet[offset + remove:])
        flags["overrun"] = int(offset + remove > len(packet))
    for ow in cmd["overwrites"]:
        if ow["enable"]:
            for k in range(2):
                p = ow["position"] + k
                if p < len(out):
                    out[p] = (out[p] & ~ow["mask"][k] & 0xFF) | (ow["value"][k] & ow["mask"][k])
    if not out:
        flags["empty"] = 1
        return None, bad, flags
    return bytes(out), bad, flags


def no_overwrite():
    return {"enable": 0, "position": 0, "value": [0, 0], "mask": [0, 0]}


def command(offset=0, remove=0, insert=b"", overwrites=(), count=2, max_insert=64):
    """A command dict; ``insert`` given as bytes (its length is the insert count)."""
    ows = list(overwrites) + [no_overwrite() for _ in range(count - len(overwrites))]
    return {"offset": offset, "remove": remove, "insert": len(insert),
            "insert_data": list(insert.ljust(max_insert, b"\0")), "overwrites": ows}


def overwrite(position, value, mask=(0xFF, 0xFF)):
    return {"enable": 1, "position": position, "value": list(value), "mask": list(mask)}


# -- running the RTL ---------------------------------------------------------------------------


def run_editor(dut, cases, *, idle=0.0, ready=1.0, seed=0, monitors=()):
    """Send ``(packet, user, command)`` cases; return (delivered packets, error events).

    Commands go on their own stream, ahead of the packets as far as the editor takes them.
    Error events are the nonzero values of ``errors``, as dicts, in order.
    """
    expected = sum(
        edit_model(p, c, dut.command_layout.max_insert, dut.command_layout.max_remove)[0]
        is not None for p, _, c in cases)
    got, events = [], []

    async def source(ctx):
        rng = random.Random(seed + 1)
        for packet, user, _ in cases:
            await put_packet(ctx, dut.i, packet, user, idle_prob=idle, rng=rng)
        await ctx.tick().repeat(3)  # the error report of a dropped last packet

    async def commands(ctx):
        rng = random.Random(seed + 2)
        for _, _, cmd in cases:
            await put(ctx, dut.cmd, cmd, idle_prob=idle, rng=rng)

    async def sink(ctx):
        rng = random.Random(seed + 3)
        for _ in range(expected):
            got.append(await get_packet(ctx, dut.o, ready_prob=ready, rng=rng))
        # Let the last error report (one cycle after the last beat) arrive.
        await ctx.tick().repeat(3)

    async def error_watch(ctx):
        async for _, _, err in ctx.tick().sample(dut.errors):
            flags = {name: int(getattr(err, name)) for name in FLAGS}
            if any(flags.values()):
                events.append(flags)

    watch_o = StreamMonitor(dut.o, name="o")
    simulate(dut, [source, commands, sink],
             background=[watch_o.run, error_watch, *(m.run for m in monitors)],
             max_cycles=200_000)
    assert len(watch_o.packets()) == len(got), "the editor sent more packets than expected"
    return got, events


def expected_of(dut, cases):
    layout = dut.command_layout
    packets, events = [], []
    for packet, user, cmd in cases:
        out, bad, flags = edit_model(packet, cmd, layout.max_insert, layout.max_remove)
        if out is not None:
            packets.append((out, user | bad))
        if any(flags.values()):
            events.append(flags)
    return packets, events


def check(dut, cases, **kwargs):
    got, events = run_editor(dut, cases, **kwargs)
    packets, expected_events = expected_of(dut, cases)
    assert_packets_equal(got, packets, "edited packets")
    assert events == expected_events
    return got


# -- random edits against the model ------------------------------------------------------------


def random_case(rng, max_insert, max_remove, overwrites, user_width):
    length = rng.randint(1, 300)
    packet = rng.randbytes(length)
    offset = rng.choice([0, 12, 14, rng.randint(0, length), rng.randint(0, length), length,
                         length + rng.randint(1, 20)])
    # Largest values the command fields hold (above the maxima: clamped by the editor).
    remove_field, insert_field = ((1 << n.bit_length()) - 1 for n in (max_remove, max_insert))
    remove = min(remove_field, rng.choice([0, 0, 4, rng.randint(1, 8), rng.randint(0, max_remove),
                                           rng.randint(0, remove_field), max(0, length - offset)]))
    insert = min(insert_field, rng.choice([0, 0, 4, rng.randint(1, 8), rng.randint(0, max_insert),
                                           max_insert, rng.randint(0, insert_field)]))
    if rng.random() < 0.03:  # an edit that leaves nothing
        packet = packet[:rng.randint(1, max_remove)]
        offset, remove, insert = 0, rng.randint(len(packet), remove_field), 0
    ows = [
        overwrite(rng.choice([rng.randint(0, 320), offset, max(0, offset + insert - 1), 15, 24]),
                  rng.randbytes(2), rng.choice([(0xFF, 0xFF), tuple(rng.randbytes(2))]))
        if rng.random() < 0.4 else no_overwrite()
        for _ in range(overwrites)
    ]
    cmd = {"offset": offset, "remove": remove, "insert": insert,
           "insert_data": list(rng.randbytes(max_insert)), "overwrites": ows}
    return packet, rng.getrandbits(user_width), cmd


@pytest.mark.parametrize("width,user_width,count", [
    (64, 1, 300), (512, 1, 500), (128, 3, 300),
    pytest.param(64, 1, 3000, marks=pytest.mark.soak),
    pytest.param(512, 1, 4000, marks=pytest.mark.soak),
])
def test_random_edits_match_model(width, user_width, count):
    rng = random.Random(width)
    dut = PacketEditor(width, user_width)
    cases = [random_case(rng, 64, 128, 2, user_width) for _ in range(count)]
    kinds = [edit_model(p, c, 64, 128)[2] for p, _, c in cases]
    for flag in FLAGS:  # the sample exercises every bad-command reaction
        assert sum(k[flag] for k in kinds) >= 3, flag
    check(dut, cases, idle=0.15, ready=0.75, seed=width)


def test_small_limits_and_widths():
    """Odd limits (not powers of two), more overwrites, and a 32-bit datapath."""
    rng = random.Random(7)
    dut = PacketEditor(32, 1, max_insert=9, max_remove=5, overwrites=3)
    cases = [random_case(rng, 9, 5, 3, 1) for _ in range(80)]
    check(dut, cases, idle=0.2, ready=0.6, seed=3)


# -- bad commands ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [64, 512])
def test_bad_commands(width):
    rng = random.Random(11)
    p = [rng.randbytes(n) for n in (20, 20, 20, 20, 70, 64, 9)]
    ins = bytes(range(1, 65))
    cases = [
        # offset beyond the end: forwarded unedited, marked bad
        (p[0], 0, command(offset=21, insert=b"ABCD", remove=3)),
        # offset at the end: the insert is appended (a valid edit)
        (p[1], 0, command(offset=20, insert=b"ABCD")),
        # remove past the end: what exists goes
        (p[2], 1, command(offset=10, remove=30, insert=b"xy")),
        # nothing left: dropped; the packets around it are not disturbed
        (p[3], 0, command(offset=0, remove=20)),
        (p[4], 0, dict(command(offset=3, insert=ins), insert=100)),  # clamped to 64 bytes
        (p[5], 0, dict(command(offset=0), remove=200)),  # clamped to 128: all removed, dropped
        (p[6], 1, command()),
    ]
    dut = PacketEditor(width)
    got = check(dut, cases, idle=0.3, ready=0.5, seed=1)
    assert got[0] == (p[0], 1)
    assert got[1] == (p[1] + b"ABCD", 0)
    assert got[2] == (p[2][:10] + b"xy", 1)
    assert got[3] == (p[4][:3] + ins + p[4][3:], 0)
    assert got[4] == (p[6], 1)
    assert len(got) == 5


def test_parameter_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rejected components are never elaborated
        with pytest.raises(ValueError):
            PacketEditor(96)  # 12 byte lanes
        with pytest.raises(ValueError):
            PacketEditor(64, user_width=0)
        with pytest.raises(ValueError):
            PacketEditor(64, max_insert=0)
        gc.collect()


# -- protocol rewrites checked with scapy ------------------------------------------------------

MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def udp_frame(n, payload_len=40, **ip):
    return (Ether(src=MAC_A, dst=MAC_B)
            / IP(src="10.0.0.1", dst=f"10.0.1.{n}", id=n, **ip)
            / UDP(sport=1000 + n, dport=2000) / bytes(range(payload_len)))


def vlan_tag(vid, pcp=0, dei=0):
    """IEEE 802.1Q clause 9.6: TPID 0x8100, then PCP (3 bits), DEI (1), VID (12)."""
    return struct.pack("!HH", 0x8100, pcp << 13 | dei << 12 | vid)


def ones_complement_checksum(header):
    """RFC 791 / RFC 1071 header checksum."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def simulate_rewrites(width, cases, **kwargs):
    dut = PacketEditor(width, **kwargs)
    got, events = run_editor(dut, cases, idle=0.2, ready=0.7, seed=width)
    assert events == []
    assert [user for _, user in got] == [0] * len(cases)
    return [Ether(data) for data, _ in got], [data for data, _ in got]


@pytest.mark.parametrize("width", [64, 512])
def test_vlan_push(width):
    frames = [udp_frame(n, payload_len=n * 7 % 90) for n in range(1, 7)]
    vids = [1, 100, 4094, 2, 3000, 7]
    cases = [(bytes(f), 0, command(offset=12, insert=vlan_tag(vid, pcp=n % 8)))
             for n, (f, vid) in enumerate(zip(frames, vids))]
    parsed, raw = simulate_rewrites(width, cases)
    for n, (pkt, frame, vid) in enumerate(zip(parsed, frames, vids)):
        assert pkt.haslayer(Dot1Q)
        assert pkt[Dot1Q].vlan == vid and pkt[Dot1Q].prio == n % 8
        assert pkt[Dot1Q].type == 0x0800
        assert bytes(pkt[IP]) == bytes(frame[IP])
        tagged = (Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=vid, prio=n % 8) / frame[IP])
        assert raw[n] == bytes(tagged)


@pytest.mark.parametrize("width", [64, 512])
def test_vlan_pop(width):
    frames = [udp_frame(n, payload_len=n * 11 % 80) for n in range(1, 7)]
    tagged = [Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=10 * n) / f[IP]
              for n, f in enumerate(frames, 1)]
    cases = [(bytes(t), 0, command(offset=12, remove=4)) for t in tagged]
    parsed, raw = simulate_rewrites(width, cases)
    for pkt, frame, data in zip(parsed, frames, raw):
        assert not pkt.haslayer(Dot1Q)
        assert data == bytes(frame)


def vxlan_outer(vni, ipv6=False):
    """Ether + IPv4/IPv6 + UDP + VXLAN (RFC 7348 section 5) in front of ``inner_len`` bytes."""
    ip = (IPv6(src="fd00::1", dst="fd00::2") if ipv6
          else IP(src="192.0.2.1", dst="192.0.2.2", id=7, flags="DF"))
    return Ether(src=MAC_B, dst=MAC_A) / ip / UDP(sport=49152 + vni, dport=4789, chksum=0) \
        / VXLAN(vni=vni)


@pytest.mark.parametrize("width", [64, 512])
def test_vxlan_decap(width):
    inner = [udp_frame(n, payload_len=n * 13 % 70) for n in range(1, 6)]
    outer = [vxlan_outer(n, ipv6=n % 2 == 0) / f for n, f in enumerate(inner, 1)]
    cases = [(bytes(o), 0, command(offset=0, remove=len(o) - len(f)))
             for o, f in zip(outer, inner)]
    assert {c["remove"] for _, _, c in cases} == {50, 70}
    parsed, raw = simulate_rewrites(width, cases)
    for data, frame in zip(raw, inner):
        assert data == bytes(frame)


@pytest.mark.parametrize("width,ipv6", [(64, False), (512, False), (64, True)])
def test_vxlan_encap(width, ipv6):
    """Prepend the outer header template; overwrites patch the lengths and the IPv4 checksum."""
    inner = [udp_frame(n, payload_len=n * 17 % 60) for n in range(1, 6)]
    cases, expected = [], []
    for n, frame in enumerate(inner, 1):
        full = vxlan_outer(n, ipv6) / frame
        expected.append(bytes(full))
        # The template as a controller would hold it: length and checksum fields zero.
        template = bytearray(bytes(full)[:len(full) - len(frame)])
        udp_len = 8 + 8 + len(frame)
        if ipv6:
            template[18:20] = b"\0\0"  # payload length
            template[58:60] = b"\0\0"  # UDP length
            ows = [overwrite(18, struct.pack("!H", udp_len)),
                   overwrite(58, struct.pack("!H", udp_len))]
        else:
            template[16:18] = template[24:26] = template[38:40] = b"\0\0"
            ip_header = bytearray(template[14:34])
            ip_header[2:4] = struct.pack("!H", 20 + udp_len)
            ows = [overwrite(16, struct.pack("!H", 20 + udp_len)),
                   overwrite(24, struct.pack("!H", ones_complement_checksum(ip_header))),
                   overwrite(38, struct.pack("!H", udp_len))]
        cases.append((bytes(frame), 0, command(offset=0, insert=bytes(template), overwrites=ows,
                                               count=3, max_insert=72)))
    parsed, raw = simulate_rewrites(width, cases, max_insert=72, overwrites=3)
    for n, (pkt, data, frame) in enumerate(zip(parsed, raw, inner), 1):
        assert data == expected[n - 1]
        assert pkt[VXLAN].vni == n
        assert bytes(pkt[VXLAN].payload) == bytes(frame)
        if not ipv6:
            assert ones_complement_checksum(data[14:34]) == 0
            assert pkt[IP].len == len(data) - 14


@pytest.mark.parametrize("width", [64, 512])
def test_dscp_rewrite_keeps_ecn(width):
    """Patch the DSCP bits (mask 0xFC) and the IPv4 checksum (RFC 1624 incremental update)."""
    cases, expected = [], []
    for n in range(1, 7):
        old_tos = (n * 9 % 64) << 2 | n % 4
        frame = udp_frame(n, payload_len=n * 5, tos=old_tos)
        new_dscp = 46 if n % 2 else 10
        new_tos = new_dscp << 2 | old_tos & 3
        data = bytes(frame)
        old_word, = struct.unpack("!H", data[14:16])
        new_word = old_word & 0xFF00 | new_tos
        old_sum, = struct.unpack("!H", data[24:26])
        # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
        total = (~old_sum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        ows = [overwrite(15, (new_dscp << 2, 0), (0xFC, 0x00)),
               overwrite(24, struct.pack("!H", ~total & 0xFFFF))]
        cases.append((data, 0, command(overwrites=ows)))
        expected.append(bytes(udp_frame(n, payload_len=n * 5, tos=new_tos)))
    parsed, raw = simulate_rewrites(width, cases)
    assert raw == expected
    for n, (pkt, data) in enumerate(zip(parsed, raw), 1):
        assert pkt[IP].tos >> 2 == (46 if n % 2 else 10)  # DSCP rewritten
        assert pkt[IP].tos & 3 == n % 4  # ECN kept
        assert ones_complement_checksum(data[14:34]) == 0  # header checksum still valid


# -- command timing, throughput and latency ----------------------------------------------------


@pytest.mark.parametrize("width", [64, 512])
def test_command_with_first_beat(width):
    """A command offered in the same cycle as the packet's first beat is taken with it.

    Without an insert the first beat moves in that same cycle too; with one in the first beat,
    the inserted bytes may go first and the beat follows.
    """
    rng = random.Random(4)
    dut = PacketEditor(width)
    cases = [(rng.randbytes(rng.randint(1, 150)), 0,
              command(offset=rng.randint(0, 20), remove=rng.randint(0, 6),
                      insert=rng.randbytes(rng.choice([0, 0, 4]))))
             for _ in range(16)]
    same_cycle = []
    got = []

    async def source(ctx):
        for packet, user, cmd in cases:
            for _ in range(rng.randint(0, 3)):
                await ctx.tick()
            beats = packet_to_beats(packet, width, user)
            ctx.set(dut.cmd.payload, cmd)
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.i.payload, beats[0].as_dict())
            ctx.set(dut.i.valid, 1)
            cmd_cycle = beat_cycle = None
            cycle = 0
            while beat_cycle is None:
                _, _, cmd_ready, beat_ready = await ctx.tick().sample(dut.cmd.ready, dut.i.ready)
                if cmd_ready and cmd_cycle is None:
                    cmd_cycle = cycle
                    ctx.set(dut.cmd.valid, 0)
                if beat_ready:
                    beat_cycle = cycle
                cycle += 1
            ctx.set(dut.i.valid, 0)
            same_cycle.append(cmd_cycle == 0 and (beat_cycle == 0 or cmd["insert"] > 0))
            for beat in beats[1:]:
                await put_beat(ctx, dut.i, beat)

    async def sink(ctx):
        for _ in cases:
            got.append(await get_packet(ctx, dut.o))

    simulate(dut, [source, sink])
    expected, _ = expected_of(dut, cases)
    assert_packets_equal(got, expected)
    assert all(same_cycle)


def back_to_back(width, size, cmd, count=12):
    """Cycles per packet (input and output, steady state) and first-beat latency."""
    dut = PacketEditor(width)
    rng = random.Random(size)
    packets = [rng.randbytes(size) for _ in range(count)]
    mon_i, mon_o = StreamMonitor(dut.i, name="i"), StreamMonitor(dut.o, name="o")
    cases = [(p, 0, cmd) for p in packets]
    got, _ = run_editor(dut, cases, monitors=(mon_i, mon_o))
    expected, _ = expected_of(dut, cases)
    assert_packets_equal(got, expected)
    spans_i, spans_o = mon_i.packet_spans(), mon_o.packet_spans()
    # Skip the first packet (pipeline filling); count whole periods.
    per_in = (spans_i[-1][1] - spans_i[1][1]) / (count - 2)
    per_out = (spans_o[-1][1] - spans_o[1][1]) / (count - 2)
    busy = spans_o[-1][2] - spans_o[1][1] + 1
    beats = sum(1 for cycle, _ in mon_o.transfers if cycle >= spans_o[1][1])
    return per_in, per_out, beats / busy, spans_o[0][1] - spans_i[0][1]


@pytest.mark.parametrize("width,plain,push,pop", [(64, 8, 9, 8), (512, 1, 2, 1)])
def test_throughput_64_byte_packets(width, plain, push, pop):
    """Back-to-back 64-byte packets: unchanged, 4-byte insert (VLAN push), 4-byte remove."""
    results = {
        "plain": back_to_back(width, 64, command()),
        "push": back_to_back(width, 64, command(offset=12, insert=vlan_tag(5))),
        "pop": back_to_back(width, 64, command(offset=12, remove=4)),
    }
    expected = {"plain": plain, "push": push, "pop": pop}
    for name, (per_in, per_out, beats_per_cycle, _) in results.items():
        # The output beats of a 64-byte (68-, 60-byte) packet leave at one per cycle, and a
        # packet takes exactly that many cycles: a 4-byte insert costs one cycle (64 bit: 9
        # beats of output; 512 bit: 2 beats), a 4-byte remove costs none.
        assert per_in == per_out == expected[name], (name, per_in, per_out)
        assert beats_per_cycle == 1.0, (name, beats_per_cycle)
    # Latency of the first beat of a packet, from its handshake on i to its handshake on o.
    assert results["plain"][3] == (2 if width == 64 else 1)


def test_throughput_long_inserts_and_removes():
    """VXLAN-sized edits at 64 bit: a 50-byte insert costs ceil(50 / 8) = 7 cycles per packet;
    a 50-byte remove costs none (the input keeps one beat per cycle, the output idles)."""
    template = bytes(range(50))
    per_in, per_out, _, _ = back_to_back(64, 128, command(offset=0, insert=template))
    assert per_in == per_out == 16 + 7
    per_in, per_out, _, _ = back_to_back(64, 128, command(offset=0, remove=50))
    assert per_in == per_out == 16
