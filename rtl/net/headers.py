"""Protocol constants and header field positions used by the packet parser.

Every constant names the clause it comes from. Offsets are in bytes from the start of the
header they belong to; multi-byte fields are in network (big-endian) byte order on the wire.
The parser turns them into host (numeric) order: the value a person reads in a packet dissector.
"""

__all__ = [
    "ETH_HEADER_LEN", "ETH_DST", "ETH_SRC", "ETH_TYPE", "VLAN_TAG_LEN", "VLAN_MAX_TAGS",
    "MIN_FRAME_LEN_NO_FCS", "PADDED_FRAME_MAX",
    "ETHERTYPE_IPV4", "ETHERTYPE_IPV6", "ETHERTYPE_VLAN", "ETHERTYPE_QINQ", "VLAN_TPIDS",
    "IPV4_MIN_HEADER_LEN", "IPV4_MAX_HEADER_LEN", "IPV4_VERSION", "IPV4_MF", "IPV4_DF",
    "IPV6_HEADER_LEN", "IPV6_VERSION",
    "IPPROTO_HOPOPTS", "IPPROTO_TCP", "IPPROTO_UDP", "IPPROTO_ROUTING", "IPPROTO_FRAGMENT",
    "IPPROTO_ESP", "IPPROTO_AH", "IPPROTO_NONE", "IPPROTO_DSTOPTS",
    "IPV6_SKIPPED_EXTENSIONS", "IPV6_UNPARSED_EXTENSIONS", "IPV6_EXT_UNIT", "IPV6_FRAG_HEADER_LEN",
    "TCP_MIN_HEADER_LEN", "TCP_MAX_HEADER_LEN", "UDP_HEADER_LEN",
    "VXLAN_PORT", "VXLAN_HEADER_LEN", "VXLAN_FLAG_I",
    "ROCEV2_PORT", "BTH_LEN",
]

# -- Ethernet: IEEE 802.3-2018 clause 3.1.1 (MAC frame format), without preamble and FCS ------
ETH_DST = 0  # destination address, 6 octets
ETH_SRC = 6  # source address, 6 octets
ETH_TYPE = 12  # Length/Type field, 2 octets
ETH_HEADER_LEN = 14
#: Clause 4.4.2: the minimum frame is 64 octets with its 4-octet FCS; shorter MAC client data is
#: padded, so without FCS a frame has at least 60 octets. Frames of up to 64 octets (without FCS)
#: are accepted as padded: bytes after the IP payload are not a length error there (a tagged
#: frame may be padded to 64 + 4 octets with its FCS).
MIN_FRAME_LEN_NO_FCS = 60
PADDED_FRAME_MAX = 64

# IEEE 802.3 clause 3.2.6 / IEEE Registration Authority EtherType assignments.
ETHERTYPE_IPV4 = 0x0800  # RFC 894
ETHERTYPE_IPV6 = 0x86DD  # RFC 2464
# IEEE 802.1Q-2018 clause 9.5, table 9-1: C-VLAN tag TPID and S-VLAN tag TPID (802.1ad QinQ).
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
VLAN_TPIDS = (ETHERTYPE_VLAN, ETHERTYPE_QINQ)
#: 802.1Q clause 9.6: a tag is TPID (2 octets) + TCI (PCP 3 bits, DEI 1 bit, VID 12 bits).
VLAN_TAG_LEN = 4
#: Tags the parser strips: an S-tag and a C-tag (or two of either). A third tag is left in
#: place and its TPID reported as the final EtherType.
VLAN_MAX_TAGS = 2

# -- IPv4: RFC 791 section 3.1 -----------------------------------------------------------------
IPV4_VERSION = 4
IPV4_MIN_HEADER_LEN = 20  # IHL 5
IPV4_MAX_HEADER_LEN = 60  # IHL 15
# Field offsets: version/IHL 0, DSCP/ECN 1 (RFC 2474, RFC 3168), total length 2, identification
# 4, flags/fragment offset 6, TTL 8, protocol 9, header checksum 10, source 12, destination 16.
IPV4_DF = 0x4000  # in the 16-bit flags/fragment offset word
IPV4_MF = 0x2000

# -- IPv6: RFC 8200 section 3 ------------------------------------------------------------------
IPV6_VERSION = 6
IPV6_HEADER_LEN = 40
# Field offsets: version/traffic class/flow label 0, payload length 4, next header 6, hop limit 7,
# source 8, destination 24.

# -- IP protocol numbers (IANA "Assigned Internet Protocol Numbers") ---------------------------
IPPROTO_HOPOPTS = 0  # RFC 8200 4.3
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43  # RFC 8200 4.4
IPPROTO_FRAGMENT = 44  # RFC 8200 4.5
IPPROTO_ESP = 50  # RFC 4303
IPPROTO_AH = 51  # RFC 4302
IPPROTO_NONE = 59  # RFC 8200 4.7
IPPROTO_DSTOPTS = 60  # RFC 8200 4.6
#: Extension headers the parser steps over (RFC 8200 4.3-4.6). Hop-by-Hop is skipped only right
#: after the IPv6 header (RFC 8200 4.1); elsewhere it is left unparsed.
IPV6_SKIPPED_EXTENSIONS = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_DSTOPTS)
#: Other extension headers of the IANA "IPv6 Extension Header Types" registry (RFC 7045): the
#: parser stops at them and flags the chain as unparsed (AH, ESP, Mobility 135, HIP 139,
#: Shim6 140, experimental 253/254).
IPV6_UNPARSED_EXTENSIONS = (IPPROTO_ESP, IPPROTO_AH, 135, 139, 140, 253, 254)
#: RFC 8200 4.3/4.4/4.6: "Hdr Ext Len" counts 8-octet units, not including the first 8 octets.
IPV6_EXT_UNIT = 8
#: RFC 8200 4.5: the fragment header has a fixed length; fragment offset and M flag are in its
#: octets 2-3 (offset in the upper 13 bits, M in bit 0).
IPV6_FRAG_HEADER_LEN = 8

# -- TCP: RFC 9293 section 3.1 (RFC 793) ---------------------------------------------------------
TCP_MIN_HEADER_LEN = 20  # data offset 5
TCP_MAX_HEADER_LEN = 60  # data offset 15
# Offsets: source port 0, destination port 2, sequence 4, acknowledgment 8, data offset 12 (upper
# nibble), flags 13 (CWR ECE URG ACK PSH RST SYN FIN, RFC 3168 for CWR/ECE), checksum 16.

# -- UDP: RFC 768 --------------------------------------------------------------------------------
UDP_HEADER_LEN = 8  # source port 0, destination port 2, length 4, checksum 6

# -- VXLAN: RFC 7348 section 5 -----------------------------------------------------------------
VXLAN_PORT = 4789
VXLAN_HEADER_LEN = 8  # flags 0 (I flag 0x08), reserved 1-3, VNI 4-6, reserved 7
VXLAN_FLAG_I = 0x08

# -- RoCEv2: InfiniBand Architecture Specification vol. 1, annex A17 (RoCEv2) -------------------
ROCEV2_PORT = 4791  # A17.3: UDP destination port of RoCEv2
#: Base Transport Header (IBTA 9.2): opcode 0; SE, M, pad count, TVer 1; partition key 2-3;
#: FECN/BECN (A17.9.1) + reserved 4; destination QP 5-7; AckReq + reserved 8; PSN 9-11.
BTH_LEN = 12
