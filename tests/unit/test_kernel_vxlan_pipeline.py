"""The whole match-action pipeline's VXLAN actions against the Linux kernel's VXLAN device.

Two kernel tunnel endpoints run in private network namespaces behind TAPs
(:class:`amnic.sim.kernel_peer.KernelVxlanPeer`), one over an IPv4 underlay and one over IPv6;
:class:`amnic.flow.pipeline.MatchActionPipeline` runs in the Amaranth simulator, programmed
through its host driver (:class:`amnic.sim.pipeline_driver.MatchActionDriver`). One simulation
per data width carries every packet; the tests then hand its output to the kernels.

* Encapsulation (RFC 7348 5): inner frames addressed to a kernel's VXLAN device hit flows whose
  action is ENCAP with a template holding that kernel's underlay addresses, MACs and VNI. The
  kernel must accept the pipeline's frame and hand the payload to a socket behind the tunnel:
  IPv4 underlay with the outer UDP checksum zero and computed, IPv6 underlay (where the checksum
  is mandatory, RFC 8200 8.1), an inner DSCP rewrite (RFC 2474) whose IPv4 header checksum the
  kernel verifies, and an inner IPv6 ECN rewrite (RFC 3168) that the outer UDP checksum must
  cover. The socket reports the TOS / traffic class the datagram arrived with.
* Decapsulation: UDP the kernel sends into its tunnel comes out of the TAP as VXLAN and goes
  through a DECAP flow keyed on the inner headers, the VNI and the ingress port; the output
  must be exactly the kernel's inner Ethernet frame, with ``decapsulated``, ``vni`` and
  ``flow_hit`` set in its destination record.
* A template with another VNI gets the frame refused by the kernel.
* Width 512 produces, for the rewrite cases, the same bytes as width 64, which the kernel
  accepts as well.

Needs root (network namespaces, TAP devices) and iproute2; without them the tests fail.
"""

import contextlib
import ipaddress
from dataclasses import dataclass, field

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import checksum

from amnic.flow.action import TunnelOp, action_value
from amnic.flow.pipeline import MatchActionPipeline
from amnic.sim.flow_model import PipelineModel
from amnic.sim.kernel_peer import KernelPeerError, KernelVxlanPeer
from amnic.sim.parse_model import parse_reference
from amnic.sim.pipeline_tb import run_pipeline

VNI = 0x7E57A
WRONG_VNI = VNI ^ 0x100
ENCAP_PORT, DECAP_PORT = 0, 1  # ingress ports of the two directions
ENCAP_QUEUE, DECAP_QUEUE = 5, 9
INNER_IP6 = "fd98::1"

# Encapsulation templates: (index, underlay, udp_checksum, vni).
TEMPLATES = {"v4": (0, False, 0, VNI), "v4-csum": (1, False, 1, VNI), "v6": (2, True, 0, VNI),
             "v4-wrong-vni": (3, False, 1, WRONG_VNI)}


@dataclass
class EncapCase:
    """An inner frame to encapsulate: ``template`` names a :data:`TEMPLATES` entry; ``rewrite``
    holds extra action fields; ``tos`` is the inner TOS / traffic class sent, ``expect_tos``
    the one the kernel must report."""

    name: str
    template: str
    payload: bytes
    inner_ipv6: bool = False
    tos: int = 0
    rewrite: dict = field(default_factory=dict)
    expect_tos: int = 0


ENCAP_CASES = [
    EncapCase("ipv4-underlay-udp-checksum-0", "v4", b"zero outer UDP checksum " * 3),
    EncapCase("ipv4-underlay-udp-checksum-1", "v4-csum", b"computed outer UDP checksum" * 37,
              tos=0x20, expect_tos=0x20),
    EncapCase("ipv4-underlay-dscp-rewrite", "v4-csum", b"expedited forwarding, ECT(1) kept!",
              tos=0x01, rewrite=dict(set_dscp=1, dscp=46), expect_tos=46 << 2 | 1),
    EncapCase("ipv6-underlay", "v6", b"over an IPv6 underlay" * 41),
    EncapCase("ipv6-underlay-inner-ipv6-ecn-rewrite", "v6", b"inner IPv6, ECT(0) set on the way",
              inner_ipv6=True, tos=0x28, rewrite=dict(set_ecn=1, ecn=2), expect_tos=0x2A),
    EncapCase("ipv4-underlay-inner-ipv6", "v4", b"inner IPv6 over IPv4" * 13, inner_ipv6=True,
              tos=0xB8, expect_tos=0xB8),
]
WRONG_VNI_CASE = EncapCase("wrong-vni", "v4-wrong-vni", b"this VNI is not the kernel's")
ALL_ENCAP = [*ENCAP_CASES, WRONG_VNI_CASE]
#: Cases the width-512 run repeats.
WIDE_CASES = ["ipv4-underlay-dscp-rewrite", "ipv6-underlay-inner-ipv6-ecn-rewrite"]

# Decapsulation: (name, underlay ipv6, inner ipv6, payload).
DECAP_CASES = [("ipv4-underlay", False, False, b"kernel to NIC over IPv4, zero checksum"),
               ("ipv6-underlay", True, False, b"kernel to NIC over IPv6" * 30),
               ("ipv6-underlay-inner-ipv6", True, True, b"IPv6 inside IPv6")]


def mac(text):
    return int(text.replace(":", ""), 16)


def ip(text):
    return int(ipaddress.ip_address(text))


def key_of(frame, port):
    return PipelineModel.key(parse_reference(frame), port)[0]


def make_dut(width):
    return MatchActionPipeline(width, flow_entries=256, acl_rules=16, max_packet=2048, meters=4,
                               templates=4)


def template_fields(peer, udp_checksum, vni):
    return dict(ipv6=int(peer.ipv6_underlay), udp_checksum=udp_checksum,
                dst_mac=mac(peer.kernel_mac), src_mac=mac(peer.nic_mac),
                src_ip=ip(peer.nic_underlay_ip), dst_ip=ip(peer.kernel_underlay_ip),
                tos=0, ttl=64, vni=vni)


def listen_port(n):
    return 7000 + n


def inner_frame(peer, n, case):
    """Inner frame ``n`` from the inner peer to the kernel's VXLAN device."""
    eth = Ether(src=peer.inner_peer_mac, dst=peer.vxlan_mac)
    if case.inner_ipv6:
        net = IPv6(src=peer.inner_peer_ip6, dst=peer.inner_ip6, tc=case.tos)
    else:
        net = IP(src=peer.inner_peer_ip, dst=peer.inner_ip, tos=case.tos)
    return bytes(eth / net / UDP(sport=6000 + n, dport=listen_port(n)) / case.payload)


def rewritten(inner, case):
    """``inner`` as the flow's DSCP/ECN rewrite leaves it, by scapy (checksums recomputed)."""
    pkt = Ether(inner)
    net = pkt[IPv6] if case.inner_ipv6 else pkt[IP]
    old = net.tc if case.inner_ipv6 else net.tos
    dscp = case.rewrite["dscp"] if case.rewrite.get("set_dscp") else old >> 2
    ecn = case.rewrite["ecn"] if case.rewrite.get("set_ecn") else old & 3
    if case.inner_ipv6:
        net.tc = dscp << 2 | ecn
    else:
        net.tos = dscp << 2 | ecn
        del net.chksum
    return bytes(pkt)


@contextlib.contextmanager
def kernel_peers():
    """An IPv4-underlay and an IPv6-underlay kernel endpoint with inner IPv4 and IPv6."""
    peers = {}
    try:
        for name, ipv6 in (("v4", False), ("v6", True)):
            # The IPv4 peer sends a zero outer UDP checksum (what decapsulation gets).
            peers[name] = KernelVxlanPeer(vni=VNI, ipv6_underlay=ipv6, inner_ip6=INNER_IP6,
                                          udp_csum=False).start()
    except KernelPeerError as exc:
        for peer in peers.values():
            peer.close()
        pytest.fail(f"these tests need root, /dev/net/tun and iproute2: {exc}", pytrace=False)
    try:
        yield peers
    finally:
        for peer in peers.values():
            peer.close()


def peer_of(peers, case):
    return peers["v6" if TEMPLATES[case.template][1] else "v4"]


def run(width, peers, encap_cases, decap_frames=()):
    """One pipeline simulation: ENCAP flows for ``encap_cases`` (from port ENCAP_PORT), DECAP
    flows for ``decap_frames`` (from port DECAP_PORT). Returns the inner frames and the
    :class:`~amnic.sim.pipeline_tb.PipelineRun`."""
    inners = [inner_frame(peer_of(peers, c), ALL_ENCAP.index(c), c) for c in encap_cases]
    flows = {}
    for c, inner in zip(encap_cases, inners, strict=True):
        flows[key_of(inner, ENCAP_PORT)] = action_value(
            queue=ENCAP_QUEUE, tunnel_op=TunnelOp.ENCAP, template=TEMPLATES[c.template][0],
            **c.rewrite)
    for n, frame in enumerate(decap_frames):
        flows[key_of(frame, DECAP_PORT)] = action_value(queue=DECAP_QUEUE + n,
                                                        tunnel_op=TunnelOp.DECAP)
    assert len(flows) == len(encap_cases) + len(decap_frames), "two cases share a flow key"

    async def program(driver):
        for index, ipv6, udp_checksum, vni in TEMPLATES.values():
            peer = peers["v6" if ipv6 else "v4"]
            await driver.template_write(index, **template_fields(peer, udp_checksum, vni))
        for key, action in flows.items():
            await driver.flows.insert(key, action)

    packets = ([(f, ENCAP_PORT, False) for f in inners]
               + [(f, DECAP_PORT, False) for f in decap_frames])
    result = run_pipeline(make_dut(width), program, packets)
    assert len(result.outputs) == len(packets), result.counters
    assert all(user == 0 for _, user in result.outputs)
    assert result.counters["edit_errors"] == 0
    return inners, result


def kernel_frame(peer, n, ipv6, payload):
    """Make the kernel send ``payload`` into its tunnel; return the VXLAN frame it puts on the
    TAP."""
    sport = 9000 + n

    def match(frame):
        pkt = Ether(frame)
        return VXLAN in pkt and UDP in pkt[VXLAN].payload and \
            pkt[VXLAN].payload[UDP].sport == sport

    peer.send_inner_udp(payload, dport=9100 + n, sport=sport, ipv6=ipv6)
    frame = peer.receive_frame(timeout=2.0, match=match)
    assert frame is not None, "the kernel sent no VXLAN frame"
    return frame


@dataclass
class World:
    peers: dict
    inners: list
    outputs: list
    dests: list
    decap_frames: list
    decap_outputs: list
    decap_dests: list


@pytest.fixture(scope="module")
def world():
    with kernel_peers() as peers:
        decap_frames = [kernel_frame(peers["v6" if under6 else "v4"], n, in6, payload)
                        for n, (_, under6, in6, payload) in enumerate(DECAP_CASES)]
        inners, result = run(64, peers, ALL_ENCAP, decap_frames)
        k = len(ALL_ENCAP)
        yield World(peers, inners, [o for o, _ in result.outputs[:k]], result.dests[:k],
                    decap_frames, [o for o, _ in result.outputs[k:]], result.dests[k:])


def check_encapsulation(case, peer, inner, frame):
    """The pipeline's frame is the template's outer headers around the rewritten inner frame."""
    _, ipv6, udp_checksum, vni = TEMPLATES[case.template]
    pkt = Ether(frame)
    assert (pkt.dst, pkt.src) == (peer.kernel_mac, peer.nic_mac)
    net = pkt[IPv6] if ipv6 else pkt[IP]
    assert (net.src, net.dst) == (peer.nic_underlay_ip, peer.kernel_underlay_ip)
    assert pkt[UDP].dport == 4789 and 0xC000 <= pkt[UDP].sport <= 0xFFFF
    assert (pkt[UDP].chksum != 0) == bool(ipv6 or udp_checksum)
    assert pkt[VXLAN].flags == 0x08 and pkt[VXLAN].vni == vni
    assert bytes(pkt[VXLAN].payload) == rewritten(inner, case)
    assert len(frame) == len(inner) + (70 if ipv6 else 50)
    if not ipv6:
        assert checksum(bytes(pkt[IP])[:20]) == 0


def assert_received(peer, case, n, timeout=2.0):
    got = peer.receive_inner_udp(listen_port(n), timeout=timeout, ipv6=case.inner_ipv6,
                                 with_tos=True)
    assert got is not None, f"the kernel did not deliver {case.name}"
    sender = peer.inner_peer_ip6 if case.inner_ipv6 else peer.inner_peer_ip
    assert got == (case.payload, (sender, 6000 + n), case.expect_tos), got
    assert peer.receive_inner_udp(listen_port(n), timeout=0.05, ipv6=case.inner_ipv6) is None


def deliver(peer, case, n, frame, refused=None):
    """Send ``frame`` into the kernel (after ``refused``, if given, which must be dropped
    without reaching the VXLAN device) and check that exactly the payload of ``case`` arrives,
    once, with the expected TOS, and no checksum error is counted."""
    peer.listen_inner_udp(listen_port(n), ipv6=case.inner_ipv6)
    udp = "Udp6" if peer.ipv6_underlay else "Udp"
    before = peer.snmp()[udp]
    rx = peer.link_stats()["rx"]
    if refused is not None:
        peer.send_frame(refused)
    peer.send_frame(frame)
    assert_received(peer, case, n)
    after = peer.snmp()[udp]
    assert after["InCsumErrors"] == before["InCsumErrors"], (before, after)
    assert after["InDatagrams"] >= before["InDatagrams"] + 1
    assert peer.link_stats()["rx"]["packets"] == rx["packets"] + 1


@pytest.mark.parametrize("case", ENCAP_CASES, ids=lambda c: c.name)
def test_kernel_accepts_pipeline_encapsulation(world, case):
    n = ALL_ENCAP.index(case)
    peer = peer_of(world.peers, case)
    frame = world.outputs[n]
    check_encapsulation(case, peer, world.inners[n], frame)
    dest = world.dests[n]
    assert (dest["flow_hit"], dest["decapsulated"], dest["vni"]) == (1, 0, 0), dest
    assert (dest["queue"], dest["port"]) == (ENCAP_QUEUE, ENCAP_PORT)
    deliver(peer, case, n, frame)


def test_kernel_refuses_template_with_another_vni(world):
    """Same tunnel but another VNI: the kernel finds no device for it and delivers nothing;
    the same inner frame encapsulated with the right VNI, sent right after, does arrive."""
    case, n = WRONG_VNI_CASE, ALL_ENCAP.index(WRONG_VNI_CASE)
    peer = peer_of(world.peers, case)
    wrong = world.outputs[n]
    check_encapsulation(case, peer, world.inners[n], wrong)
    # The control: the same frame with the kernel's VNI (outer UDP checksum recomputed).
    good = bytearray(wrong)
    vni_at = 14 + 20 + 8 + 4
    assert int.from_bytes(good[vni_at:vni_at + 3], "big") == WRONG_VNI
    good[vni_at:vni_at + 3] = VNI.to_bytes(3, "big")
    pkt = Ether(bytes(good))
    del pkt[UDP].chksum
    good = bytes(pkt)
    assert Ether(good)[VXLAN].vni == VNI and len(good) == len(wrong)
    deliver(peer, case, n, good, refused=wrong)


@pytest.mark.parametrize("n", range(len(DECAP_CASES)), ids=[c[0] for c in DECAP_CASES])
def test_pipeline_decapsulates_kernel_frames(world, n):
    name, under6, in6, payload = DECAP_CASES[n]
    frame = world.decap_frames[n]
    pkt = Ether(frame)
    assert (IPv6 if under6 else IP) in pkt and pkt[VXLAN].vni == VNI
    inner = bytes(pkt[VXLAN].payload)
    assert bytes(Ether(inner)[UDP].payload) == payload
    assert (IPv6 if in6 else IP) in Ether(inner)
    assert world.decap_outputs[n] == inner, (world.decap_outputs[n].hex(), inner.hex())
    dest = world.decap_dests[n]
    assert (dest["decapsulated"], dest["vni"], dest["flow_hit"]) == (1, VNI, 1), dest
    assert (dest["queue"], dest["port"]) == (DECAP_QUEUE + n, DECAP_PORT)


def test_width_512_rewrite_and_encapsulation(world):
    """The DSCP rewrite over IPv4 and the ECN rewrite of an inner IPv6 header over IPv6 at
    width 512: the same frames as at width 64, and the kernel takes them."""
    cases = [c for c in ENCAP_CASES if c.name in WIDE_CASES]
    assert len(cases) == len(WIDE_CASES)
    inners, result = run(512, world.peers, cases)
    for case, inner, (frame, _), dest in zip(cases, inners, result.outputs, result.dests,
                                             strict=True):
        n = ALL_ENCAP.index(case)
        assert inner == world.inners[n]
        assert frame == world.outputs[n], (frame.hex(), world.outputs[n].hex())
        assert dest["flow_hit"] == 1 and dest["queue"] == ENCAP_QUEUE
        deliver(peer_of(world.peers, case), case, n, frame)


def stale(case, frame, original_inner):
    """``frame`` as a pipeline that forgot the checksum consequences of the rewrite would send
    it: IPv4 inner, the header checksum of the inner frame before the rewrite (everything else
    consistent); IPv6 inner, the outer UDP checksum of the frame before the rewrite."""
    pkt = Ether(frame)
    if not case.inner_ipv6:
        inner_ip = pkt[VXLAN].payload[IP]
        inner_ip.chksum = Ether(original_inner)[IP].chksum
        if pkt[UDP].chksum:
            del pkt[UDP].chksum
        return bytes(pkt)
    before = Ether(frame)
    before[VXLAN].payload[IPv6].tc = case.tos
    del before[UDP].chksum
    pkt[UDP].chksum = Ether(bytes(before))[UDP].chksum
    return bytes(pkt)


@pytest.mark.parametrize("name", WIDE_CASES)
def test_kernel_notices_stale_checksums_after_rewrite(world, name):
    """Control for the rewrite cases: the checksum the pipeline has to fix is one the kernel
    checks. With the inner IPv4 header checksum left as it was, IP counts a header error; with
    the outer UDP checksum left as it was (IPv6 underlay), UDP counts a checksum error; either
    way nothing is delivered."""
    case = next(c for c in ENCAP_CASES if c.name == name)
    n = ALL_ENCAP.index(case)
    peer = peer_of(world.peers, case)
    bad = stale(case, world.outputs[n], world.inners[n])
    assert bad != world.outputs[n] and len(bad) == len(world.outputs[n])
    peer.listen_inner_udp(listen_port(n), ipv6=case.inner_ipv6)
    udp = "Udp6" if peer.ipv6_underlay else "Udp"
    where, counter = (udp, "InCsumErrors") if case.inner_ipv6 else ("Ip", "InHdrErrors")
    before = peer.snmp()[where][counter]
    peer.send_frame(bad)
    assert peer.receive_inner_udp(listen_port(n), timeout=0.3, ipv6=case.inner_ipv6) is None
    assert peer.snmp()[where][counter] == before + 1
