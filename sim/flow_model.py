"""Reference model of the match-action pipeline (:mod:`amnic.flow.pipeline`), packet by packet.

The model follows the pipeline's documented contract with independent parts: the parse record
from :mod:`amnic.sim.parse_model` (scapy dissection), the ACL and RSS models
(:mod:`amnic.sim.acl_model`, :mod:`amnic.sim.rss_model`), the flow table as the driver placed it,
the VXLAN header from :func:`amnic.flow.vxlan.encap_header_reference`, and header rewrites done on
the bytes with the IPv4 header checksum recomputed from scratch (RFC 791; RFC 1624's incremental
rule only for a header whose checksum was already wrong).
"""

import struct
from dataclasses import dataclass, field

from amnic.flow.action import Delivery, FlowAction, TunnelOp, VlanOp
from amnic.flow.key import flow_key_value
from amnic.flow.records import CONTROL_RESET, DropReason, PipelineControl
from amnic.flow.vxlan import encap_header_reference

from .acl_model import AclModel, queue_allowed
from .parse_model import BAD, decode, ones_sum, parse_reference
from .rss_model import RssModel

__all__ = ["Outcome", "PipelineModel", "xor_fold", "PASS", "MARK", "DROP"]

#: Meter actions (as :class:`amnic.flow.meter.MeterAction`).
PASS, MARK, DROP = 0, 1, 2
IPV4, IPV6 = 1, 2
TCP, UDP = 1, 2


@dataclass
class Outcome:
    """What the pipeline does with one packet.

    ``drop`` is the :class:`~amnic.flow.records.DropReason` (NONE when delivered); ``frame``
    the delivered bytes, ``dest`` the expected :class:`~amnic.flow.records.Destination` fields,
    ``mirror_queue`` the queue of the mirror copy or ``None``. ``received_length`` is what the
    pipeline counts as received bytes; ``mirror_blocked`` and ``meter_red`` feed the counters.
    """

    drop: DropReason
    received_length: int
    frame: bytes = b""
    dest: dict = field(default_factory=dict)
    mirror_queue: int | None = None
    mirror_blocked: bool = False
    meter_red: bool = False
    key: int = 0


def xor_fold(value, width, bits):
    """``value`` (``bits`` wide) folded to ``width`` bits by XOR of its chunks."""
    out = 0
    for lo in range(0, bits, width):
        out ^= (value >> lo) & ((1 << width) - 1)
    return out


def _checksum(buf):
    return (~ones_sum(buf)) & 0xFFFF


class PipelineModel:
    """The pipeline's decisions for a stream of packets.

    Parameters
    ----------
    width : int
        Data width of the pipeline (the giant cut is whole beats).
    max_packet : int
    acl : AclModel
    rss : RssModel
    flow_lookup : callable
        ``flow_lookup(key) -> (index, raw action) | None``: the flow table's content.
    meter : callable
        ``meter(index, length) -> PASS | MARK | DROP`` for a metered packet.
    templates : dict
        ``{index: template fields}`` (see :class:`~amnic.flow.vxlan.EncapTemplate`).
    control : int
        The ``control`` register.
    meters : int
        Number of meters (the index is taken modulo it).
    """

    def __init__(self, *, width=64, max_packet=9600, acl=None, rss=None, flow_lookup=None,
                 meter=None, templates=None, control=CONTROL_RESET, meters=256):
        self.width = width
        self.max_packet = max_packet
        self.acl = acl or AclModel(64)
        self.rss = rss or RssModel(types=_rss_off())
        self.flow_lookup = flow_lookup or (lambda key: None)
        self.meter = meter or (lambda index, length: PASS)
        self.templates = templates or {}
        self.control = decode(PipelineControl.as_shape(), control)
        self.meters = meters

    # -- one packet -------------------------------------------------------------------------------

    def process(self, frame, port=0, bad=False):
        """The :class:`Outcome` of ``frame`` (bytes, no FCS) from ingress ``port``."""
        frame = bytes(frame)
        lanes = self.width // 8
        giant = len(frame) > self.max_packet
        if giant:
            frame = frame[:(self.max_packet // lanes + 1) * lanes]
        res = parse_reference(frame)
        key, key_fields, l4_valid = self.key(res, port)
        acl = self.acl.lookup(key)
        found = self.flow_lookup(key)
        hit = found is not None
        index, raw = found if hit else (0, 0)
        act = decode(FlowAction.as_shape(), raw)
        rss_hash, rss_queue, hashed = self.rss.process(
            ipv6=key_fields["ipv6"], protocol=key_fields["protocol"],
            src_addr=key_fields["src_addr"], dst_addr=key_fields["dst_addr"],
            src_port=key_fields["src_port"], dst_port=key_fields["dst_port"], l4_valid=l4_valid)

        if hit and act["delivery"] == Delivery.GROUP.value:
            mask = ((1 << act["group_log2"]) - 1) & 0xFFF
            queue = (act["queue"] + (rss_hash & mask)) & 0xFFF
        elif hit:
            queue = act["queue"]
        else:
            queue = rss_queue
        mirror_wanted = hit and act["mirror"]
        mirror_ok = mirror_wanted and queue_allowed(acl, act["mirror_queue"])

        out = Outcome(DropReason.NONE, len(frame), key=key)
        if bad:
            out.drop = DropReason.ERRORED
        elif giant:
            out.drop = DropReason.GIANT
        elif self.malformed(res):
            out.drop = DropReason.MALFORMED
        elif acl.verdict == 1:
            out.drop = DropReason.ACL_DENY
        elif hit and act["delivery"] == Delivery.DROP.value:
            out.drop = DropReason.FLOW_DROP
        elif not queue_allowed(acl, queue):
            out.drop = DropReason.TENANT
        if out.drop != DropReason.NONE:
            return out
        meter_action = PASS
        if hit and act["meter"]:
            meter_action = self.meter(act["meter_index"] % self.meters, len(frame))
        if meter_action == DROP:
            out.drop = DropReason.METER_DROP
            return out
        out.meter_red = meter_action == MARK
        out.mirror_queue = act["mirror_queue"] if mirror_ok else None
        out.mirror_blocked = bool(mirror_wanted and not mirror_ok)

        edited, decapsulated = self.edit(frame, res, act if hit else None, out.meter_red,
                                         rss_hash if hashed else xor_fold(key, 20, 341))
        out.frame = edited
        out.dest = {
            "queue": queue, "mirror": 0, "flow_hit": int(hit), "flow_index": index,
            "rss_hash": rss_hash, "rss_hashed": int(hashed), "port": port,
            "vni": res["vxlan"]["vni"], "decapsulated": int(decapsulated),
            "meter_red": int(out.meter_red),
            "outer_l3_checksum": res["outer"]["l3"]["checksum"],
            "outer_l4_checksum": res["outer"]["l4"]["checksum"],
            "inner_l3_checksum": res["inner"]["l3"]["checksum"],
            "inner_l4_checksum": res["inner"]["l4"]["checksum"],
        }
        return out

    # -- parts ------------------------------------------------------------------------------------

    @staticmethod
    def key(res, port):
        """``(raw key, key fields, l4_valid)`` of a parse record (see amnic.flow.pipeline)."""
        inner = res["inner"]
        use_inner = (res["vxlan"]["present"] and inner["l3"]["kind"] in (IPV4, IPV6)
                     and inner["l3"]["offset"] != 0)
        level = inner if use_inner else res["outer"]
        l3, l4 = level["l3"], level["l4"]
        is_ip = l3["kind"] in (IPV4, IPV6) and l3["offset"] != 0
        l4_valid = l4["kind"] in (TCP, UDP) and not l3["fragment"]
        fields = dict(
            port=port, vlan=res["outer"]["eth"]["outer_vlan"]["vid"], vni=res["vxlan"]["vni"],
            ipv6=int(is_ip and l3["kind"] == IPV6), protocol=l3["protocol"] if is_ip else 0,
            src_addr=l3["src"] if is_ip else 0, dst_addr=l3["dst"] if is_ip else 0,
            src_port=l4["src_port"] if l4_valid else 0,
            dst_port=l4["dst_port"] if l4_valid else 0)
        return flow_key_value(**fields), fields, l4_valid

    def malformed(self, res):
        c, err = self.control, res["errors"]
        levels = (res["outer"], res["inner"])
        bad_ip4 = any(lv["l3"]["checksum"] == BAD for lv in levels)
        bad_l4 = any(lv["l4"]["checksum"] == BAD for lv in levels)
        return bool((c["drop_truncated"] and err["truncated"])
                    or (c["drop_malformed"] and (err["malformed"] or err["ip_length"]))
                    or (c["drop_bad_ipv4_checksum"] and bad_ip4)
                    or (c["drop_bad_l4_checksum"] and bad_l4))

    def edit(self, frame, res, act, meter_red, hash_):
        """The delivered bytes and whether the packet was decapsulated."""
        outer = res["outer"]
        act = act or decode(FlowAction.as_shape(), 0)
        inner_offset = outer["l4"]["offset"] + 16
        decap = (act["tunnel_op"] == TunnelOp.DECAP.value and res["vxlan"]["present"]
                 and res["inner"]["l3"]["kind"] != 0 and inner_offset < 256)
        target = (res["inner"] if decap else outer)["l3"]
        if decap:
            frame = frame[inner_offset:]
            position = target["offset"] - inner_offset
        elif act["vlan_op"] == VlanOp.POP.value and outer["eth"]["vlan_count"]:
            frame = frame[:12] + frame[16:]
            position = target["offset"] - 4
        elif act["vlan_op"] == VlanOp.PUSH.value and outer["l3"]["kind"] != 0:
            tci = act["pcp"] << 13 | act["vid"]
            frame = frame[:12] + struct.pack("!HH", 0x8100, tci) + frame[12:]
            position = target["offset"] + 4
        else:
            position = target["offset"]
        frame = self.rewrite(frame, target, position, act, meter_red)
        if act["tunnel_op"] == TunnelOp.ENCAP.value:
            template = dict(self.templates.get(act["template"], {}))
            template.setdefault("vni", 0)
            for name in ("dst_mac", "src_mac", "src_ip", "dst_ip"):
                template.setdefault(name, 0)
            template["hash"] = hash_ & 0xFFFFF
            frame = encap_header_reference(template, frame) + frame
        return frame, decap

    def rewrite(self, frame, l3, position, act, meter_red):
        """DSCP/ECN rewrite of the IP header at ``position`` (RFC 2474, RFC 3168)."""
        if l3["kind"] not in (IPV4, IPV6) or l3["offset"] == 0:
            return frame
        ip6 = l3["kind"] == IPV6
        head = l3["head"]
        tos = (head >> 4) & 0xFF if ip6 else head & 0xFF
        ecn = act["ecn"] if act["set_ecn"] else tos & 3
        ce = self.control["mark_ecn"] and meter_red and ecn != 0
        if not (act["set_dscp"] or act["set_ecn"] or ce):
            return frame
        new_tos = (act["dscp"] if act["set_dscp"] else tos >> 2) << 2 | (3 if ce else ecn)
        buf = bytearray(frame)
        if ip6:
            word = (head & 0xF00F) | new_tos << 4
            buf[position:position + 2] = word.to_bytes(2, "big")
            return bytes(buf)
        ihl = (head >> 8) & 15
        header = bytes(buf[position:position + 4 * ihl])
        was_good = _checksum(header) == 0
        buf[position + 1] = new_tos
        if was_good:
            buf[position + 10:position + 12] = b"\0\0"
            value = _checksum(bytes(buf[position:position + 4 * ihl]))
        else:  # RFC 1624 eqn. 3 keeps a wrong checksum wrong by the same amount
            new = (head & 0xFF00) | new_tos
            total = (~l3["header_checksum"] & 0xFFFF) + (~head & 0xFFFF) + new
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            value = ~total & 0xFFFF
        buf[position + 10:position + 12] = value.to_bytes(2, "big")
        return bytes(buf)


def _rss_off():
    from .rss_model import HashTypes

    return HashTypes(enable=False)
