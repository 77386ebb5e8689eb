"""The flow key: the header fields the flow table matches exactly and the ACL matches ternary.

The key is built per packet from the parser's metadata (:mod:`amnic.net.metadata`) by the
match-action pipeline; tables store it as its raw bit pattern (``FlowKey.as_value()``), so the
layout below fixes the bit positions software uses when it writes entries.

Fields not present in a packet are zero (an IPv4 packet has the upper 96 address bits zero; a
packet without VLAN has ``vlan`` 0; a non-VXLAN packet has ``vni`` 0), so equal packets always
give equal keys.
"""

from amaranth.lib import data

__all__ = ["FlowKey", "flow_key_value", "FLOW_KEY_BITS"]


class FlowKey(data.Struct):
    """Exact-match key of a flow.

    Attributes
    ----------
    port : unsigned(8)
        Ingress port (MAC port, or host function for traffic from the host).
    vlan : unsigned(12)
        Outer 802.1Q VLAN id (IEEE 802.1Q-2018 9.6), 0 when untagged.
    vni : unsigned(24)
        VXLAN network identifier (RFC 7348 5), 0 when not a VXLAN packet.
    ipv6 : unsigned(1)
        1 for IPv6 (RFC 8200), 0 for IPv4 (RFC 791).
    protocol : unsigned(8)
        IPv4 protocol / IPv6 next header of the transport (after extension headers).
    src_addr, dst_addr : unsigned(128)
        IP addresses, numeric value; an IPv4 address occupies the low 32 bits.
    src_port, dst_port : unsigned(16)
        TCP/UDP ports (RFC 793, RFC 768), 0 for other protocols.
    """

    port: 8
    vlan: 12
    vni: 24
    ipv6: 1
    protocol: 8
    src_addr: 128
    dst_addr: 128
    src_port: 16
    dst_port: 16


#: Width of a key in bits.
FLOW_KEY_BITS = FlowKey.as_shape().size


def flow_key_value(*, port=0, vlan=0, vni=0, ipv6=0, protocol=0, src_addr=0, dst_addr=0,
                   src_port=0, dst_port=0):
    """The raw bit pattern of a key, as an ``int`` (for models and drivers)."""
    fields = dict(port=port, vlan=vlan, vni=vni, ipv6=ipv6, protocol=protocol, src_addr=src_addr,
                  dst_addr=dst_addr, src_port=src_port, dst_port=dst_port)
    return FlowKey.const(fields).as_value().value
