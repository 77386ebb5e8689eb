"""Reference model of :class:`amnic.net.parser.PacketParser`: the metadata record of a frame.

:func:`parse_reference` walks a frame with the parser's documented rules (complete headers only,
limits set by the frame and the IP packet, the capture window) and takes every field value from
scapy's dissection of that header's bytes; checksums come from scapy's own ones'-complement
routines (``checksum``, ``in4_chksum``, ``in6_chksum``). Records are nested dicts of integers
shaped like :class:`~amnic.net.metadata.ParseResult` (:func:`zero_record`, :func:`decode`).
"""

import ipaddress

from amaranth.lib import data
from scapy.contrib.roce import BTH
from scapy.layers.inet import IP, TCP, UDP, in4_chksum
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    in6_chksum,
)
from scapy.layers.l2 import Dot1Q, Dot3, Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import checksum

from amnic.net.metadata import ParseResult

__all__ = ["WINDOW", "Reference", "parse_reference", "zero_record", "decode", "diff",
           "ones_sum", "NOT_CHECKED", "GOOD", "BAD"]

WINDOW = 192
TPIDS = (0x8100, 0x88A8)
SKIPPED = (43, 44, 60)
UNPARSED = (0, 43, 44, 60, 50, 51, 135, 139, 140, 253, 254)
NOT_CHECKED, GOOD, BAD = 0, 1, 2

def zero_record(layout):
    """A nested dict of zeros shaped like ``layout``."""
    out = {}
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, type) and issubclass(shape, data.Struct):
            shape = shape.as_shape()
        out[name] = zero_record(shape) if isinstance(shape, data.StructLayout) else 0
    return out


def decode(layout, value):
    """The raw integer of a record as a nested dict of integers (enums as their values)."""
    out = {}
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, type) and issubclass(shape, data.Struct):
            shape = shape.as_shape()
        bits = (value >> field.offset) & ((1 << field.width) - 1)
        out[name] = decode(shape, bits) if isinstance(shape, data.StructLayout) else bits
    return out


LAYOUT = ParseResult.as_shape()


def mac(text):
    return int(text.replace(":", ""), 16)


def ip_int(text):
    return int(ipaddress.ip_address(text))


def be(buf, offset, length):
    return int.from_bytes(buf[offset:offset + length], "big")


class Reference:
    """One frame through the documented parse rules; :attr:`res` is the expected record."""

    def __init__(self, frame, window=WINDOW, ipv6_ext=3):
        self.frame = bytes(frame)
        self.window = window
        self.ipv6_ext = ipv6_ext
        # What the hardware sees: the window, zeros past it and past the end of the frame.
        self.win = self.frame[:window] + bytes(window + 64)
        self.res = zero_record(LAYOUT)
        self.err = self.res["errors"]
        self.res["frame_length"] = min(len(frame), 0xFFFF)
        self.res["frame_sum"] = ones_sum(self.frame)
        self.level(self.res["outer"], 0, len(frame), tunnels=True)

    def complete(self, end, limit):
        if end > limit:
            self.err["truncated"] = 1
            return False
        if end > self.window:
            self.err["beyond_window"] = 1
            return False
        return True

    def level(self, rec, start, frame_end, tunnels):
        frame, win = self.frame, self.win
        # Ethernet and VLAN tags (IEEE 802.3 3.1.1, 802.1Q 9.6).
        tags = 0
        while tags < 2 and be(win, start + 12 + 4 * tags, 2) in TPIDS:
            tags += 1
        cur = start + 14 + 4 * tags
        if not self.complete(cur, frame_end):
            return
        eth, l3, l4 = rec["eth"], rec["l3"], rec["l4"]
        e = Ether(frame[start:start + 14])
        ethertype = e.len if isinstance(e, Dot3) else e.type  # 802.3 length / EtherType
        eth.update(dst=mac(e.dst), src=mac(e.src), vlan_count=tags, ethertype=ethertype)
        for k, name in enumerate(("outer_vlan", "inner_vlan")[:tags]):
            tag = Dot1Q(frame[start + 14 + 4 * k:start + 18 + 4 * k])
            eth[name] = {"vid": tag.vlan, "dei": tag.dei, "pcp": tag.prio}
            eth["ethertype"] = tag.type
        ethertype = eth["ethertype"]
        l3["kind"] = {0x0800: 1, 0x86DD: 2}.get(ethertype, 3)
        if l3["kind"] == 3:
            return
        is6 = l3["kind"] == 2
        # IP header (RFC 791 3.1 / RFC 8200 3).
        version, ihl = win[cur] >> 4, win[cur] & 15
        bad = version != 6 if is6 else (version != 4 or ihl < 5)
        hlen = 40 if is6 else (20 if bad else 4 * ihl)
        if not self.complete(cur + hlen, frame_end):
            return
        if bad:
            self.err["malformed"] = 1
            return
        base = cur
        if is6:
            ip = IPv6(frame[base:base + 40])
            tos, ttl, nh, ip_end = ip.tc, ip.hlim, ip.nh, base + 40 + ip.plen
            fragment = 0
            go = True
        else:
            ip = IP(frame[base:base + hlen])
            tos, ttl, nh, ip_end = ip.tos, ip.ttl, ip.proto, base + ip.len
            fragment = int(ip.flags.MF or ip.frag != 0)
            go = ip.frag == 0
            l3["checksum"] = GOOD if checksum(frame[base:base + hlen]) == 0 else BAD
            l3["header_checksum"] = ip.chksum
        l3.update(offset=base, src=ip_int(ip.src), dst=ip_int(ip.dst), protocol=nh,
                  dscp=tos >> 2, ecn=tos & 3, ttl=ttl, fragment=fragment,
                  options=int(not is6 and ihl > 5), head=be(frame, base, 2))
        if ((not is6 and ip.len < hlen) or ip_end > frame_end
                or (ip_end < frame_end and frame_end - start > 64)):
            self.err["ip_length"] = 1
        limit = min(frame_end, ip_end)
        nocheck = bool(fragment)
        cur = base + hlen
        # IPv6 extension headers (RFC 8200 4).
        first = True
        for _ in range(self.ipv6_ext if is6 else 0):
            if not go or not (nh in SKIPPED or (nh == 0 and first)):
                break
            elen = 8 if nh == 44 else 8 * (win[cur + 1] + 1)
            if not self.complete(cur + elen, limit):
                go = False
                break
            raw = frame[cur:cur + elen]
            ext = {0: IPv6ExtHdrHopByHop, 43: IPv6ExtHdrRouting, 44: IPv6ExtHdrFragment,
                   60: IPv6ExtHdrDestOpt}[nh](raw)
            l3["options"] = 1
            l3["protocol"] = ext.nh
            if nh == 44:
                l3["fragment"] = 1
                nocheck = True
                if ext.offset != 0:
                    go = False
            if nh == 43 and ext.segleft != 0:
                nocheck = True
            nh, cur, first = ext.nh, cur + elen, False
        if not go:
            return
        # Transport header (RFC 9293 3.1, RFC 768).
        unparsed = is6 and nh in UNPARSED
        l3["ext_unparsed"] = int(unparsed)
        kind = 1 if nh == 6 and not unparsed else 2 if nh == 17 and not unparsed else 3
        l4.update(kind=kind, offset=cur)
        if kind == 3:
            return
        check = False
        if kind == 1:
            doff = win[cur + 12] >> 4
            hl = 20 if doff < 5 else 4 * doff
            if not self.complete(cur + hl, limit):
                return
            if doff < 5:
                self.err["malformed"] = 1
                return
            t = TCP(frame[cur:cur + hl])
            l4.update(src_port=t.sport, dst_port=t.dport, tcp_flags=decode_flags(t))
            check = not nocheck
        else:
            if not self.complete(cur + 8, limit):
                return
            u = UDP(frame[cur:cur + 8])
            l4.update(src_port=u.sport, dst_port=u.dport)
            if u.len != ip_end - cur:
                self.err["ip_length"] = 1
            check = not nocheck and not (not is6 and u.chksum == 0)
        if check and ip_end <= frame_end and (ip_end <= self.window or ip_end == len(frame)):
            segment = frame[cur:ip_end]
            if is6:
                value = in6_chksum(nh, IPv6(frame[base:base + 40]), segment)
            else:
                value = in4_chksum(nh, IP(frame[base:base + hlen]), segment)
            l4["checksum"] = GOOD if value == 0 else BAD
        if kind == 2 and tunnels and not l3["fragment"]:
            self.tunnel(u, cur, limit)

    def tunnel(self, udp, cur, limit):
        frame = self.frame
        if udp.dport == 4789:  # VXLAN, RFC 7348 5
            self.res["vxlan"]["present"] = 1
            if self.complete(cur + 16, limit):
                v = VXLAN(frame[cur + 8:cur + 16])
                if not int(v.flags) & 0x08:
                    self.err["malformed"] = 1
                else:
                    self.res["vxlan"]["vni"] = v.vni
                    self.level(self.res["inner"], cur + 16, limit, tunnels=False)
        elif udp.dport == 4791:  # RoCEv2, IBTA annex A17
            self.res["roce"]["present"] = 1
            if self.complete(cur + 20, limit):
                b = BTH(frame[cur + 8:cur + 20] + bytes(4))
                self.res["roce"]["bth"] = {
                    "opcode": b.opcode, "solicited": b.solicited, "migreq": b.migreq,
                    "pad_count": b.padcount, "tver": b.version, "pkey": b.pkey,
                    "fecn": b.fecn, "becn": b.becn, "dest_qp": b.dqpn, "ack_req": b.ackreq,
                    "psn": b.psn,
                }


def ones_sum(buf):
    """The 16-bit ones'-complement sum (RFC 1071) of ``buf`` as an end-around-carry adder
    leaves it: big-endian words, an odd last byte padded with zero, 0 only when every word is 0.
    """
    return 0xFFFF - checksum(bytes(buf))


def decode_flags(t):
    f = t.flags
    return {"fin": int(f.F), "syn": int(f.S), "rst": int(f.R), "psh": int(f.P),
            "ack": int(f.A), "urg": int(f.U), "ece": int(f.E), "cwr": int(f.C)}


def parse_reference(frame, **kwargs):
    """The expected :class:`~amnic.net.metadata.ParseResult` of ``frame`` as a nested dict;
    ``kwargs`` are the parser's ``window`` and ``ipv6_ext``."""
    return Reference(frame, **kwargs).res


def diff(got, expected, path="meta"):
    """The differing leaves of two nested dicts, as ``path: got != expected`` strings."""
    out = []
    for key in expected:
        if isinstance(expected[key], dict):
            out += diff(got[key], expected[key], f"{path}.{key}")
        elif got[key] != expected[key]:
            out.append(f"{path}.{key}: got {got[key]:#x}, expected {expected[key]:#x}")
    return out
