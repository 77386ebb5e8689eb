"""The match-action pipeline's VXLAN actions against the Linux kernel's VXLAN device.

The kernel runs in a private network namespace behind a TAP
(:class:`amnic.sim.kernel_peer.KernelVxlanPeer`); the pipeline runs in the Amaranth simulator,
programmed through its host driver:

* encapsulation: inner frames addressed to the kernel's VXLAN device go through a flow with the
  ENCAP action (a template holding the tunnel's addresses and VNI); the kernel must accept the
  result and hand the UDP payload to a socket behind its tunnel (IPv4 underlay with and without
  outer UDP checksum, IPv6 underlay, a DSCP/ECN rewrite of the inner header on the way); a
  template with another VNI must not get through;
* decapsulation: what the kernel encapsulates goes through a flow with the DECAP action and must
  come out as exactly the kernel's inner frame.

Needs root (network namespace, TAP) and iproute2; without them the tests fail.
"""

import contextlib
import ipaddress

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import checksum

from amnic.flow.action import TunnelOp, action_value
from amnic.flow.pipeline import MatchActionPipeline
from amnic.sim.flow_model import PipelineModel
from amnic.sim.kernel_peer import KernelPeerError, KernelVxlanPeer
from amnic.sim.parse_model import parse_reference
from amnic.sim.pipeline_tb import run_pipeline

VNI = 0x3C0DE
PORT = 4242


@contextlib.contextmanager
def kernel(**kwargs):
    try:
        peer = KernelVxlanPeer(vni=VNI, **kwargs).start()
    except KernelPeerError as exc:
        pytest.fail(f"these tests need root, /dev/net/tun and iproute2: {exc}")
    try:
        yield peer
    finally:
        peer.close()


def mac(text):
    return int(text.replace(":", ""), 16)


def template(peer, vni=VNI, udp_checksum=0):
    return dict(ipv6=int(peer.ipv6_underlay), udp_checksum=udp_checksum,
                dst_mac=mac(peer.kernel_mac), src_mac=mac(peer.nic_mac),
                src_ip=int(ipaddress.ip_address(peer.nic_underlay_ip)),
                dst_ip=int(ipaddress.ip_address(peer.kernel_underlay_ip)),
                tos=0, ttl=64, vni=vni)


def inner_frame(peer, sport, payload, tos=0):
    return bytes(Ether(src=peer.inner_peer_mac, dst=peer.vxlan_mac)
                 / IP(src=peer.inner_peer_ip, dst=peer.inner_ip, tos=tos)
                 / UDP(sport=sport, dport=PORT) / payload)


def key_of(frame, port=0):
    return PipelineModel.key(parse_reference(frame), port)[0]


def dut(width=64):
    return MatchActionPipeline(width, flow_entries=256, acl_rules=16, max_packet=2048,
                               meters=4, templates=4)


@pytest.mark.parametrize("ipv6_underlay,udp_checksum,width", [
    (False, 0, 64), (False, 1, 512), (True, 0, 64)])
def test_kernel_accepts_what_the_pipeline_encapsulates(ipv6_underlay, udp_checksum, width):
    with kernel(ipv6_underlay=ipv6_underlay) as peer:
        peer.listen_inner_udp(PORT)
        cases = [  # (inner frame, action fields)
            (inner_frame(peer, 1000, b"plain encapsulation"), {}),
            (inner_frame(peer, 1001, b"with a DSCP rewrite" * 20, tos=0x01),
             dict(set_dscp=1, dscp=46)),
            (inner_frame(peer, 1002, b"ecn", tos=0x02), dict(set_ecn=1, ecn=3)),
            (inner_frame(peer, 1003, b"wrong vni"), dict(template=1)),
        ]
        flows = {key_of(f): action_value(queue=7, tunnel_op=TunnelOp.ENCAP,
                                         **{"template": 0, **extra})
                 for f, extra in cases}

        async def program(driver):
            await driver.template_write(0, **template(peer, udp_checksum=udp_checksum))
            await driver.template_write(1, **template(peer, vni=VNI ^ 1))
            for key, action in flows.items():
                await driver.flows.insert(key, action)

        run = run_pipeline(dut(width), program, [(f, 0, False) for f, _ in cases])
        assert len(run.outputs) == len(cases)
        received = []
        for (frame, user), (inner, _) in zip(run.outputs, cases, strict=True):
            assert user == 0
            outer = Ether(frame)
            assert outer[VXLAN].vni in (VNI, VNI ^ 1)
            assert bytes(outer[VXLAN].payload)[:14] == inner[:14]
            peer.send_frame(frame)
            received.append(peer.receive_inner_udp(PORT, timeout=1.0))
        for (inner, extra), got in zip(cases, received, strict=True):
            payload = bytes(Ether(inner)[UDP].payload)
            if extra.get("template") == 1:
                assert got is None, "a frame with another VNI reached the tunnel's socket"
            else:
                assert got is not None, f"the kernel dropped the encapsulated {payload[:20]!r}"
                assert got[0] == payload
        # The rewritten inner headers arrive as rewritten: DSCP 46 in the second frame.
        rewritten = Ether(bytes(Ether(run.outputs[1][0])[VXLAN].payload))
        assert rewritten[IP].tos >> 2 == 46
        assert checksum(bytes(rewritten[IP])[:20]) == 0  # the header checksum still holds


@pytest.mark.parametrize("ipv6_underlay", [False, True])
def test_pipeline_decapsulates_what_the_kernel_encapsulates(ipv6_underlay):
    with kernel(ipv6_underlay=ipv6_underlay) as peer:
        peer.flush_frames()
        frames = []
        for n in range(3):
            peer.send_inner_udp(b"from the kernel %d" % n * (n + 1), dport=5000 + n,
                                sport=6000 + n)
            frame = peer.receive_frame(timeout=2.0, match=lambda f: VXLAN in Ether(f))
            assert frame is not None, "the kernel sent no VXLAN frame"
            frames.append(frame)
        flows = {key_of(f, port=3): action_value(queue=20 + n, tunnel_op=TunnelOp.DECAP)
                 for n, f in enumerate(frames)}

        async def program(driver):
            for key, action in flows.items():
                await driver.flows.insert(key, action)

        run = run_pipeline(dut(), program, [(f, 3, False) for f in frames])
        assert len(run.outputs) == len(frames)
        for n, (frame, (out, user), dest) in enumerate(
                zip(frames, run.outputs, run.dests, strict=True)):
            assert user == 0
            assert out == bytes(Ether(frame)[VXLAN].payload), "not the kernel's inner frame"
            assert dest["decapsulated"] == 1 and dest["vni"] == VNI
            assert dest["flow_hit"] == 1 and dest["queue"] == 20 + n and dest["port"] == 3
