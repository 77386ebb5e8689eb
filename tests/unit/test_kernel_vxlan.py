"""VXLAN frames exchanged with the Linux kernel's VXLAN driver (RFC 7348) in a private network
namespace (:class:`amnic.sim.kernel_peer.KernelVxlanPeer`).

* Harness: frames built with scapy reach a socket behind the kernel's tunnel, a wrong VNI does
  not, and the TAP carries nothing the test did not provoke.
* Kernel to NIC: what the kernel encapsulates is dissected by scapy and by the RTL packet parser
  (:class:`amnic.net.parser.PacketParser`), whose record must report the tunnel, the inner
  headers and good checksums.
* NIC to kernel: the outer headers built by :class:`amnic.flow.vxlan.EncapHeaderBuilder` and
  prepended by :class:`amnic.net.editor.PacketEditor` must be accepted by the kernel (IPv4
  outer with and without UDP checksum, IPv6 outer), and a damaged checksum must not.

The tests need root (a network namespace, a TAP device) and iproute2; without them they fail.
"""

import contextlib
import ctypes
import ipaddress
import subprocess
import sys

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from amnic.flow.vxlan import (
    ENCAP_MAX_BYTES,
    EncapHeaderBuilder,
    EncapRequest,
    encap_header_reference,
)
from amnic.net.editor import PacketEditor
from amnic.net.metadata import ParseResult
from amnic.net.parser import PacketParser
from amnic.sim.kernel_peer import KernelPeerError, KernelVxlanPeer
from amnic.sim.parse_model import GOOD, NOT_CHECKED, decode, diff, ones_sum, parse_reference
from amnic.sim.stream_tb import get, get_packet, packet_to_beats, put, put_packet, simulate
from amnic.stream import PacketSignature

VNI = 0x5A17C
WIDTH = 64
LAYOUT = ParseResult.as_shape()


@contextlib.contextmanager
def kernel_peer(**kwargs):
    """A running peer; a missing privilege or tool fails the test with the reason."""
    try:
        peer = KernelVxlanPeer(vni=VNI, **kwargs).start()
    except KernelPeerError as exc:
        problem = str(exc)
    else:
        problem = None
    if problem:
        pytest.fail(f"these tests need root, /dev/net/tun and iproute2: {problem}",
                    pytrace=False)
    try:
        yield peer
    finally:
        peer.close()


def mac_int(text):
    return int(text.replace(":", ""), 16)


def ip_int(text):
    return int(ipaddress.ip_address(text))


def inner_frame(peer, payload, sport, dport):
    """An inner frame from the inner peer to the kernel's VXLAN device."""
    return (Ether(src=peer.inner_peer_mac, dst=peer.vxlan_mac)
            / IP(src=peer.inner_peer_ip, dst=peer.inner_ip) / UDP(sport=sport, dport=dport)
            / payload)


def scapy_vxlan(peer, inner, vni=VNI, sport=50000, flags=0x08):
    """The whole underlay frame from the NIC to the kernel, built by scapy (checksums on).

    ``flags`` 0x08 is the I flag alone (RFC 7348 5); scapy's own default, 0x0C, also sets the
    VXLAN-GPE P bit, which the kernel treats as a malformed header.
    """
    if peer.ipv6_underlay:
        net = IPv6(src=peer.nic_ip6, dst=peer.kernel_ip6)
    else:
        net = IP(src=peer.nic_ip4, dst=peer.kernel_ip4)
    return bytes(Ether(src=peer.nic_mac, dst=peer.kernel_mac) / net
                 / UDP(sport=sport, dport=4789) / VXLAN(flags=flags, vni=vni) / inner)


def is_vxlan_to_nic(peer):
    def match(frame):
        pkt = Ether(frame)
        return UDP in pkt and pkt[UDP].dport == 4789 and pkt.dst == peer.nic_mac
    return match


def assert_delivered_in_order(peer, port, good_payload, sender):
    """The next datagram on ``port`` is ``good_payload`` from ``sender`` and nothing else is
    pending: a frame sent before the good one was dropped, not delayed."""
    got = peer.receive_inner_udp(port, timeout=2.0)
    assert got is not None, "the kernel delivered nothing"
    assert got == (good_payload, sender), got
    assert peer.receive_inner_udp(port, timeout=0.05) is None


# -- harness -------------------------------------------------------------------------------------


def test_missing_privileges_fail_with_a_reason():
    """Without CAP_SYS_ADMIN / CAP_NET_ADMIN (dropped from the bounding set of a child) the
    peer refuses to start and says why."""
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for cap in (12, 21):  # CAP_NET_ADMIN, CAP_SYS_ADMIN\n"
        "    assert libc.prctl(24, cap, 0, 0, 0) == 0, ctypes.get_errno()  # PR_CAPBSET_DROP\n"
        "from amnic.sim.kernel_peer import KernelPeerError, KernelVxlanPeer\n"
        "try:\n"
        "    KernelVxlanPeer().start()\n"
        "except KernelPeerError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('started')\n")
    assert ctypes.CDLL(None).geteuid() == 0, "these tests need root"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "CAP_SYS_ADMIN" in result.stdout, result.stdout


def test_missing_iproute2_fails_with_a_reason():
    code = ("from amnic.sim.kernel_peer import KernelPeerError, KernelVxlanPeer\n"
            "try:\n"
            "    KernelVxlanPeer().start()\n"
            "except KernelPeerError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    assert "iproute2" in result.stdout and "'ip'" in result.stdout, result.stdout


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_scapy_frames_reach_the_inner_socket(ipv6):
    with kernel_peer(ipv6_underlay=ipv6) as peer:
        # Nothing unprompted on the TAP (no DAD, router solicitation, MLD or ARP).
        assert peer.receive_frame(timeout=0.3) is None
        peer.listen_inner_udp(7000)
        before = peer.link_stats()["rx"]
        wrong = scapy_vxlan(peer, inner_frame(peer, b"wrong vni", 6000, 7000), vni=VNI ^ 1)
        right = scapy_vxlan(peer, inner_frame(peer, b"right vni", 6000, 7000))
        peer.send_frame(wrong)
        peer.send_frame(right)
        assert_delivered_in_order(peer, 7000, b"right vni", (peer.inner_peer_ip, 6000))
        after = peer.link_stats()["rx"]
        assert (after["packets"], after["errors"]) == (before["packets"] + 1, before["errors"])
        # A reserved flag set (the GPE P bit): the kernel counts a receive error and drops it.
        gpe = scapy_vxlan(peer, inner_frame(peer, b"gpe flag", 6000, 7000), flags=0x0C)
        peer.send_frame(gpe)
        peer.send_frame(right)
        assert_delivered_in_order(peer, 7000, b"right vni", (peer.inner_peer_ip, 6000))
        final = peer.link_stats()["rx"]
        assert (final["packets"], final["errors"]) == (after["packets"] + 1, after["errors"] + 1)
        assert peer.receive_frame(timeout=0.05) is None  # accepting sent nothing back


# -- kernel to NIC: the RTL parser reads what the kernel encapsulates ----------------------------


def parse(frames):
    """Decoded :class:`ParseResult` records of ``frames`` from the RTL parser."""
    dut = PacketParser(WIDTH)
    records = []

    async def source(ctx):
        for frame in frames:
            for beat in packet_to_beats(frame, WIDTH):
                await put(ctx, dut.i, beat.as_dict())

    async def sink(ctx):
        for frame in frames:
            assert (await get_packet(ctx, dut.o))[0] == frame

    async def meta(ctx):
        for _ in frames:
            records.append(decode(LAYOUT, (await get(ctx, dut.meta)).as_value().value))

    simulate(dut, [source, sink, meta], max_cycles=20_000)
    return records


def test_kernel_encapsulation_parsed_by_rtl():
    cases = [({"ipv6_underlay": False, "udp_csum": True}, b"kernel says hi over ipv4"),
             ({"ipv6_underlay": False, "udp_csum": False}, b"zero outer checksum"),
             ({"ipv6_underlay": True}, b"kernel says hi over ipv6, longer!")]
    frames, peers = [], []
    for n, (kwargs, payload) in enumerate(cases):
        with kernel_peer(**kwargs) as peer:
            sport, dport = 5000 + n, 6000 + n
            peer.send_inner_udp(payload, dport=dport, sport=sport)
            frame = peer.receive_frame(timeout=2.0, match=is_vxlan_to_nic(peer))
            assert frame is not None, "the kernel sent no VXLAN frame"
        pkt = Ether(frame)
        net = pkt[IPv6] if peer.ipv6_underlay else pkt[IP]
        assert (pkt.src, pkt.dst) == (peer.kernel_mac, peer.nic_mac)
        assert (net.src, net.dst) == (peer.kernel_underlay_ip, peer.nic_underlay_ip)
        assert pkt[VXLAN].vni == VNI and pkt[VXLAN].flags == 0x08
        inner = pkt[VXLAN].payload
        assert (inner.src, inner.dst) == (peer.vxlan_mac, peer.inner_peer_mac)
        assert (inner[IP].src, inner[IP].dst) == (peer.inner_ip, peer.inner_peer_ip)
        assert (inner[UDP].sport, inner[UDP].dport) == (sport, dport)
        assert bytes(inner[UDP].payload) == payload
        assert (pkt[UDP].chksum == 0) == (kwargs.get("udp_csum") is False)
        assert pkt[UDP].sport >= 1024  # the kernel's entropy source port
        frames.append(frame)
        peers.append(peer)

    records = parse(frames)
    for frame, rec, peer, (kwargs, _) in zip(frames, records, peers, cases, strict=True):
        assert not diff(rec, parse_reference(frame)), diff(rec, parse_reference(frame))
        outer, inner = rec["outer"], rec["inner"]
        assert rec["vxlan"] == {"present": 1, "vni": VNI}
        assert rec["errors"] == {"truncated": 0, "ip_length": 0, "beyond_window": 0,
                                 "malformed": 0}
        assert rec["frame_length"] == len(frame)
        assert outer["eth"]["dst"] == mac_int(peer.nic_mac)
        assert outer["l3"]["kind"] == (2 if peer.ipv6_underlay else 1)
        assert outer["l3"]["dst"] == ip_int(peer.nic_underlay_ip)
        assert outer["l3"]["src"] == ip_int(peer.kernel_underlay_ip)
        assert outer["l3"]["checksum"] == (NOT_CHECKED if peer.ipv6_underlay else GOOD)
        assert outer["l4"]["dst_port"] == 4789
        zero = kwargs.get("udp_csum") is False
        assert outer["l4"]["checksum"] == (NOT_CHECKED if zero else GOOD)
        assert inner["eth"]["src"] == mac_int(peer.vxlan_mac)
        assert inner["eth"]["dst"] == mac_int(peer.inner_peer_mac)
        assert inner["l3"]["kind"] == 1 and inner["l3"]["checksum"] == GOOD
        assert inner["l3"]["src"] == ip_int(peer.inner_ip)
        assert inner["l3"]["dst"] == ip_int(peer.inner_peer_ip)
        assert inner["l4"]["kind"] == 2 and inner["l4"]["checksum"] == GOOD
        inner_udp = Ether(frame)[VXLAN].payload[UDP]
        assert (inner["l4"]["src_port"], inner["l4"]["dst_port"]) == (inner_udp.sport,
                                                                      inner_udp.dport)


# -- NIC to kernel: the RTL encapsulation datapath -----------------------------------------------


class EncapDatapath(wiring.Component):
    """The encapsulation path of the pipeline in miniature: the builder's header goes into the
    editor as an insert at offset 0 in front of the inner frame."""

    req: In(stream.Signature(EncapRequest))
    i: In(PacketSignature(WIDTH, 1))
    o: Out(PacketSignature(WIDTH, 1))

    def elaborate(self, platform):
        m = Module()
        m.submodules.builder = builder = EncapHeaderBuilder()
        m.submodules.editor = editor = PacketEditor(WIDTH, 1, max_insert=ENCAP_MAX_BYTES,
                                                    max_remove=1, overwrites=1)
        wiring.connect(m, wiring.flipped(self.req), builder.i)
        wiring.connect(m, wiring.flipped(self.i), editor.i)
        wiring.connect(m, wiring.flipped(self.o), editor.o)
        header, cmd = builder.o.payload, editor.cmd.payload
        m.d.comb += [
            editor.cmd.valid.eq(builder.o.valid),
            builder.o.ready.eq(editor.cmd.ready),
            cmd.offset.eq(0),
            cmd.remove.eq(0),
            cmd.insert.eq(header.length),
        ]
        for n in range(ENCAP_MAX_BYTES):
            m.d.comb += cmd.insert_data[n].eq(header.data[n])
        return m


def encapsulate(cases):
    """Run ``(template, inner frame, hash)`` cases through :class:`EncapDatapath`; return the
    encapsulated frames."""
    dut = EncapDatapath()
    out = []

    async def requests(ctx):
        for template, inner, h in cases:
            await put(ctx, dut.req, {"template": template, "inner_length": len(inner),
                                     "inner_sum": ones_sum(inner), "hash": h})

    async def packets(ctx):
        for _, inner, _ in cases:
            await put_packet(ctx, dut.i, inner)

    async def sink(ctx):
        for _ in cases:
            frame, user = await get_packet(ctx, dut.o)
            assert user == 0
            out.append(frame)

    simulate(dut, [requests, packets, sink], max_cycles=20_000)
    return out


def template_for(peer, udp_checksum=0):
    return {
        "ipv6": int(peer.ipv6_underlay), "udp_checksum": udp_checksum,
        "dst_mac": mac_int(peer.kernel_mac), "src_mac": mac_int(peer.nic_mac),
        "src_ip": ip_int(peer.nic_underlay_ip), "dst_ip": ip_int(peer.kernel_underlay_ip),
        "tos": 0, "ttl": 64, "vni": peer.vni, "udp_dst": peer.vxlan_port,
    }


def test_rtl_encapsulation_accepted_by_kernel():
    # Peer objects give the addresses; their namespaces start below, one at a time.
    v4, v6 = KernelVxlanPeer(vni=VNI), KernelVxlanPeer(vni=VNI, ipv6_underlay=True)
    port = 7100
    # (peer, udp_checksum, payload, damage): damage "flip" corrupts the outer UDP checksum,
    # "zero" clears it (forbidden over IPv6 unless the receiver opts in, RFC 6935/6936).
    plan = [(v4, 0, b"rtl ipv4, udp checksum zero", None),
            (v4, 1, b"rtl ipv4, udp checksum computed", None),
            (v4, 1, b"rtl ipv4, bad checksum", "flip"),
            (v6, 0, b"rtl ipv6 outer header!", None),
            (v6, 0, b"rtl ipv6, bad checksum", "flip"),
            (v6, 0, b"rtl ipv6, zero checksum", "zero")]
    cases = [(template_for(peer, csum), bytes(inner_frame(peer, payload, 8000 + n, port)),
              0x9ABCD + 77 * n)
             for n, (peer, csum, payload, _) in enumerate(plan)]
    frames = encapsulate(cases)
    for (template, inner, h), frame in zip(cases, frames, strict=True):
        assert frame == encap_header_reference({**template, "hash": h}, inner) + inner

    offset = {False: 14 + 20 + 6, True: 14 + 40 + 6}  # outer UDP checksum field
    for peer in (v4, v6):
        with kernel_peer(ipv6_underlay=peer.ipv6_underlay) as live:
            assert live.kernel_underlay_ip == peer.kernel_underlay_ip
            live.listen_inner_udp(port)
            for n, ((p, csum, payload, damage), frame) in enumerate(zip(plan, frames)):
                if p is not peer:
                    continue
                at = offset[peer.ipv6_underlay]
                checksum = int.from_bytes(frame[at:at + 2], "big")
                assert (checksum != 0) == (peer.ipv6_underlay or csum == 1)
                rx = live.link_stats()["rx"]["packets"]
                udp = live.snmp()["Udp6" if peer.ipv6_underlay else "Udp"]
                if damage:
                    bad = bytearray(frame)
                    bad[at:at + 2] = (b"\0\0" if damage == "zero"
                                      else (checksum ^ 0x0101).to_bytes(2, "big"))
                    live.send_frame(bytes(bad))
                    # Only the damaged frame's outer header differs: the good one still
                    # gets through behind it.
                live.send_frame(frame)
                assert_delivered_in_order(live, port, payload, (peer.inner_peer_ip, 8000 + n))
                assert live.link_stats()["rx"]["packets"] == rx + 1
                after = live.snmp()["Udp6" if peer.ipv6_underlay else "Udp"]
                if damage:
                    assert after["InCsumErrors"] == udp["InCsumErrors"] + 1, (udp, after)
                else:
                    assert after["InCsumErrors"] == udp["InCsumErrors"]
