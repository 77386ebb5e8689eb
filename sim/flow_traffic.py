"""Random configurations and traffic for the match-action pipeline, for tests and benchmarks.

A :class:`Scenario` is everything a test programs into the pipeline (tenants with their ACL
rules, flows with random actions, RSS, meters, encapsulation templates) plus the packet *shapes*
its traffic is drawn from. Every shape has fixed headers (so a fixed flow key) and a variable
payload; :meth:`Scenario.packets` draws packets from the shapes and damages some on purpose
(MAC error flag, cut short, bad checksums, runts, giants). :meth:`Scenario.program` writes the
configuration through :class:`~amnic.sim.pipeline_driver.MatchActionDriver`, and
:meth:`Scenario.model` builds the matching :class:`~amnic.sim.flow_model.PipelineModel`.

Tenants are isolated as a cloud NIC does it: tenant *t* owns queues ``[64 t, 64 t + 64)``, its
traffic is recognised by its ingress port, its VXLAN VNI or its VLAN (one ACL rule each), and
the ACL's default verdict is DENY. Some flows point at another tenant's queues; the pipeline
must drop those packets (TENANT) whatever the flow table says.
"""

import random
from dataclasses import dataclass, field

from scapy.contrib.roce import BTH
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from amnic.flow.action import Delivery, TunnelOp, VlanOp, action_value
from amnic.flow.key import FlowKey
from amnic.flow.records import CONTROL_RESET

from .acl_model import ALLOW, DENY, AclModel, AclRule
from .flow_model import DROP, MARK, PASS, PipelineModel
from .parse_model import parse_reference
from .rss_model import HashTypes, RssModel

__all__ = ["Shape", "Scenario", "TENANT_QUEUES", "key_mask"]

#: Queues per tenant.
TENANT_QUEUES = 64
_FIELDS = {name: (f.offset, f.width) for name, f in FlowKey.as_shape()}


def key_mask(*names):
    """ACL mask selecting the named key fields."""
    mask = 0
    for name in names:
        offset, width = _FIELDS[name]
        mask |= ((1 << width) - 1) << offset
    return mask


def _key_field(name, value):
    return value << _FIELDS[name][0]


@dataclass
class Shape:
    """Headers of one flow of traffic: ``frame(payload)`` builds a packet."""

    tenant: int
    port: int
    header: object  # scapy packet without payload
    vxlan: bool = False

    def frame(self, payload):
        return bytes(self.header.copy() / payload)


def _mac(rng):
    return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))


def _ip(rng, v6):
    if v6:
        return "2001:db8::" + ":".join(f"{rng.randrange(65536):x}" for _ in range(3))
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _l3l4(rng, v6=None):
    v6 = rng.random() < 0.4 if v6 is None else v6
    kind = rng.random()
    ip = (IPv6(src=_ip(rng, True), dst=_ip(rng, True), tc=rng.randrange(256)) if v6 else
          IP(src=_ip(rng, False), dst=_ip(rng, False), tos=rng.randrange(256),
             options=b"\x01" * 4 if rng.random() < 0.1 else b""))
    if v6 and rng.random() < 0.1:
        ip = ip / IPv6ExtHdrDestOpt()
    if kind < 0.45:
        l4 = TCP(sport=rng.randrange(1, 65536), dport=rng.randrange(1, 65536))
    elif kind < 0.9:
        l4 = UDP(sport=rng.randrange(1, 65536), dport=rng.choice([53, 123, 8080, 4000]))
    elif kind < 0.95:
        l4 = UDP(sport=rng.randrange(1, 65536), dport=4791) / BTH(opcode=4, dqpn=7, psn=1)
    else:
        return ip  # raw IP: protocol from scapy (0 for IPv4 "hopopt", 59 for IPv6)
    return ip / l4


@dataclass
class Scenario:
    """A random pipeline configuration and the traffic shapes that go with it."""

    seed: int = 0
    tenants: int = 4
    shapes_per_tenant: int = 12
    acl_rules: list = field(default_factory=list)  # (slot, AclRule)
    acl_slots: int = 16
    flows: dict = field(default_factory=dict)  # key -> raw action
    shapes: list = field(default_factory=list)
    templates: dict = field(default_factory=dict)  # index -> fields
    meter_modes: dict = field(default_factory=dict)  # index -> PASS / MARK / DROP
    rss_key: bytes = b""
    rss_table: list = field(default_factory=list)
    rss_types: HashTypes = field(default_factory=HashTypes)
    control: int = CONTROL_RESET
    width: int = 64
    max_packet: int = 2048

    def __post_init__(self):
        rng = random.Random(self.seed)
        self.rng = rng
        self.vnis = [0x1000 + 17 * t for t in range(self.tenants)]
        self.vlans = [100 + t for t in range(self.tenants)]
        self.ports = list(range(1, self.tenants + 1))
        self.rss_key = rng.randbytes(40)
        self.rss_table = [rng.randrange(TENANT_QUEUES) for _ in range(128)]
        for index in range(4):
            self.templates[index] = dict(
                ipv6=int(index % 2 == 1), udp_checksum=int(index == 2),
                dst_mac=rng.getrandbits(48) & ~(1 << 40), src_mac=rng.getrandbits(48) & ~(1 << 40),
                src_ip=rng.getrandbits(128 if index % 2 else 32),
                dst_ip=rng.getrandbits(128 if index % 2 else 32),
                tos=rng.randrange(256), ttl=rng.randrange(1, 256), vni=rng.randrange(1 << 24))
        self.meter_modes = {0: PASS, 1: MARK, 2: DROP, 3: MARK}
        self._acl()
        for t in range(self.tenants):
            for _ in range(self.shapes_per_tenant):
                self.shapes.append(self._shape(t))
        self._flows()

    # -- configuration ---------------------------------------------------------------------------

    def _acl(self):
        """Slot 0: a DENY rule for UDP port 53 outside tunnels; then one ALLOW rule per tenant
        by port, VNI or VLAN; the default verdict is DENY."""
        self.acl_rules.append((0, AclRule(_key_field("dst_port", 53) | _key_field("protocol", 17),
                                          key_mask("dst_port", "protocol", "vni"), DENY)))
        for t in range(self.tenants):
            by = ("port", "vni", "vlan")[t % 3]
            value = {"port": self.ports[t], "vni": self.vnis[t], "vlan": self.vlans[t]}[by]
            self.acl_rules.append((1 + t, AclRule(_key_field(by, value), key_mask(by), ALLOW,
                                                  t * TENANT_QUEUES, TENANT_QUEUES)))

    def _shape(self, t):
        """A packet shape of tenant ``t``, recognisable by the field its ACL rule matches."""
        rng = self.rng
        by = ("port", "vni", "vlan")[t % 3]
        eth = Ether(src=_mac(rng), dst=_mac(rng))
        port = self.ports[t] if by == "port" else rng.choice(self.ports)
        if by == "vni":
            inner = Ether(src=_mac(rng), dst=_mac(rng)) / _l3l4(rng)
            outer_ip = IPv6(src=_ip(rng, True), dst=_ip(rng, True)) if rng.random() < 0.3 \
                else IP(src=_ip(rng, False), dst=_ip(rng, False))
            header = eth / outer_ip / UDP(sport=rng.randrange(49152, 65536), dport=4789) \
                / VXLAN(vni=self.vnis[t]) / inner
            return Shape(t, port, header, vxlan=True)
        if by == "vlan":
            header = eth / Dot1Q(vlan=self.vlans[t], prio=rng.randrange(8)) / _l3l4(rng)
            return Shape(t, port, header)
        tags = rng.choice([0, 0, 0, 1])
        header = eth
        for _ in range(tags):
            header = header / Dot1Q(vlan=rng.randrange(1, 4095))
        if rng.random() < 0.05:
            return Shape(t, port, header / ARP(psrc=_ip(rng, False)))
        return Shape(t, port, header / _l3l4(rng))

    def _flows(self):
        """Flows for two thirds of the shapes, with random actions; the first three shapes of
        each tenant go through meter 0, 1 and 2 (pass, mark, drop) to their own queues, the fourth
        is decapsulated (VXLAN) or encapsulated (others)."""
        rng = self.rng
        for n, shape in enumerate(self.shapes):
            first = n % self.shapes_per_tenant
            if first < 3:
                action = action_value(queue=shape.tenant * TENANT_QUEUES + first, meter=1,
                                      meter_index=first, set_ecn=1, ecn=1)
            elif first == 3:  # a tunnel edit: decapsulate VXLAN, encapsulate the rest
                op = TunnelOp.DECAP if shape.vxlan else TunnelOp.ENCAP
                action = action_value(queue=shape.tenant * TENANT_QUEUES + 3, tunnel_op=op,
                                      template=shape.tenant % len(self.templates))
            elif rng.random() < 0.33:
                continue
            else:
                action = self.random_action(shape)
            self.flows[self.key_of(shape)] = action

    def random_action(self, shape):
        rng = self.rng
        t = shape.tenant
        own = t * TENANT_QUEUES
        other = ((t + 1) % self.tenants) * TENANT_QUEUES
        fields = {}
        r = rng.random()
        if r < 0.1:
            fields["delivery"] = Delivery.DROP
        elif r < 0.35:
            fields.update(delivery=Delivery.GROUP, queue=own + rng.choice([0, 16, 32]),
                          group_log2=rng.choice([0, 2, 4]))
        else:
            fields.update(delivery=Delivery.QUEUE,
                          queue=(other if rng.random() < 0.15 else own) + rng.randrange(64))
        if rng.random() < 0.2:
            fields.update(mirror=1, mirror_queue=(other if rng.random() < 0.3 else own)
                          + rng.randrange(64))
        edit = rng.random()
        if shape.vxlan and edit < 0.5:
            fields["tunnel_op"] = TunnelOp.DECAP
        elif edit < 0.15:
            fields.update(vlan_op=VlanOp.PUSH, vid=rng.randrange(4096), pcp=rng.randrange(8))
        elif edit < 0.3:
            fields["vlan_op"] = VlanOp.POP
        elif edit < 0.45:
            fields["tunnel_op"] = TunnelOp.DECAP
        elif edit < 0.6:
            fields.update(tunnel_op=TunnelOp.ENCAP, template=rng.randrange(len(self.templates)))
        if rng.random() < 0.3:
            fields.update(set_dscp=1, dscp=rng.randrange(64))
        if rng.random() < 0.2:
            fields.update(set_ecn=1, ecn=rng.randrange(4))
        if rng.random() < 0.4:
            fields.update(meter=1, meter_index=rng.randrange(len(self.meter_modes)))
        return action_value(**fields)

    def key_of(self, shape):
        return PipelineModel.key(parse_reference(shape.frame(b"")), shape.port)[0]

    # -- traffic ----------------------------------------------------------------------------------

    def packets(self, count, rng=None, *, damage=0.12, sizes=(0, 300)):
        """``count`` packets ``(frame, port, bad)``; a fraction ``damage`` damaged on purpose."""
        rng = rng or random.Random(self.seed + 1)
        out = []
        for _ in range(count):
            shape = rng.choice(self.shapes)
            port = shape.port
            frame = shape.frame(rng.randbytes(rng.randint(*sizes)))
            bad = False
            if rng.random() < damage:
                kind = rng.randrange(6)
                if kind == 0:
                    bad = True  # the MAC flagged the frame
                elif kind == 1:
                    frame = frame[:rng.randrange(1, len(frame))]  # cut anywhere
                elif kind == 2 and len(frame) > 14:
                    b = bytearray(frame)  # one bit flipped past the Ethernet header
                    n = rng.randrange(14, len(b))
                    b[n] ^= 1 << rng.randrange(8)
                    frame = bytes(b)
                elif kind == 3:
                    frame = rng.randbytes(rng.randint(1, 13))  # runt
                elif kind == 4:
                    frame = shape.frame(rng.randbytes(self.max_packet))  # giant
                else:
                    port = rng.choice(self.ports + [0, 200])  # from elsewhere
            out.append((frame, port, bad))
        return out

    # -- programming and the model --------------------------------------------------------------

    async def program(self, driver):
        """Write the whole configuration through a :class:`MatchActionDriver`."""
        for slot, rule in self.acl_rules:
            await driver.acl_write(slot, rule)
        await driver.acl_default(DENY)
        for index, t in self.templates.items():
            await driver.template_write(index, **t)
        for index, mode in self.meter_modes.items():
            if mode == PASS:
                await driver.meter_configure(index, 0, 0, enable=False)
            else:  # an empty bucket that never fills: every packet is red
                await driver.meter_configure(index, 0, 0, mode=int(mode == DROP))
        await driver.rss_configure(self.rss_key, self.rss_table, self.rss_types)
        await driver.set_control(self.control)
        for key, action in self.flows.items():
            await driver.flows.insert(key, action)

    def model(self, flow_lookup=None):
        acl = AclModel(self.acl_slots, default_verdict=DENY)
        for slot, rule in self.acl_rules:
            acl.write(slot, rule)
        flows = self.flows

        def lookup(key):
            return (None if key not in flows else (0, flows[key]))

        return PipelineModel(
            width=self.width, max_packet=self.max_packet, acl=acl,
            rss=RssModel(key=self.rss_key, table=list(self.rss_table), types=self.rss_types),
            flow_lookup=flow_lookup or lookup, meter=lambda index, length: self.meter_modes[index],
            templates=self.templates, control=self.control)


