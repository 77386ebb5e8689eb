"""The metadata record the packet parser emits for each packet (:class:`ParseResult`).

Multi-byte fields hold host (numeric) values: a destination MAC ``01:02:03:04:05:06`` reads
``0x010203040506``, IPv4 address ``10.0.0.1`` reads ``0x0A000001`` (in the low 32 bits of the
128-bit address fields), a port reads its number.

The same sub-records describe the outer headers and, for VXLAN (RFC 7348), the inner ones
(:class:`HeaderInfo`). A field of a header that is absent, cut short by the end of the frame, or
beyond the parser's capture window reads zero; the layer's ``kind`` and the :class:`ParseErrors`
flags tell why.
"""

from amaranth.lib import data, enum

__all__ = [
    "L3Kind", "L4Kind", "ChecksumStatus",
    "VlanTag", "EthernetInfo", "L3Info", "TcpFlags", "L4Info", "HeaderInfo",
    "VxlanInfo", "BthInfo", "RoceInfo", "ParseErrors", "ParseResult",
]


class L3Kind(enum.Enum, shape=2):
    """Network layer found after the Ethernet header (and its VLAN tags).

    ``NONE``: no complete Ethernet header (or, for the inner record, no VXLAN payload).
    ``IPV4``/``IPV6``: EtherType 0x0800 / 0x86DD (the kind is set even when the IP header is cut
    short or malformed; see :class:`ParseErrors`). ``OTHER``: any other EtherType.
    """

    NONE = 0
    IPV4 = 1
    IPV6 = 2
    OTHER = 3


class L4Kind(enum.Enum, shape=2):
    """Transport layer named by the IP protocol / last IPv6 next header.

    ``NONE``: no transport header reached (no complete IP header, a non-first fragment, or an
    IPv6 extension header that was cut short). ``TCP``/``UDP``: protocol 6 / 17 (set even when
    that header is cut short). ``OTHER``: any other protocol, including an IPv6 extension header
    the parser does not step over.
    """

    NONE = 0
    TCP = 1
    UDP = 2
    OTHER = 3


class ChecksumStatus(enum.Enum, shape=2):
    """Outcome of a receive checksum verification (RFC 1071 ones'-complement sums)."""

    NOT_CHECKED = 0
    GOOD = 1
    BAD = 2


class VlanTag(data.Struct):
    """Tag control information of an IEEE 802.1Q-2018 (9.6) VLAN tag."""

    vid: 12
    dei: 1
    pcp: 3


class EthernetInfo(data.Struct):
    """Ethernet header (IEEE 802.3 3.1.1) and up to two VLAN tags (IEEE 802.1Q, 802.1ad).

    Attributes
    ----------
    dst, src : unsigned(48)
        MAC addresses.
    vlan_count : unsigned(2)
        Tags stripped (TPID 0x8100 or 0x88A8): 0, 1 or 2.
    outer_vlan, inner_vlan : VlanTag
        The first and the second tag; zero when absent.
    ethertype : unsigned(16)
        The EtherType after the stripped tags (a third tag's TPID when there are three).
    """

    dst: 48
    src: 48
    vlan_count: 2
    outer_vlan: VlanTag
    inner_vlan: VlanTag
    ethertype: 16


class L3Info(data.Struct):
    """IPv4 (RFC 791) or IPv6 (RFC 8200) header.

    Attributes
    ----------
    kind : L3Kind
    offset : unsigned(16)
        Byte offset of the IP header in the frame (0 when ``kind`` is not IPv4/IPv6).
    src, dst : unsigned(128)
        Addresses; an IPv4 address occupies the low 32 bits.
    protocol : unsigned(8)
        IPv4 protocol, or the IPv6 next header after the skipped extension headers.
    dscp, ecn : unsigned(6), unsigned(2)
        Differentiated services (RFC 2474) and ECN (RFC 3168) fields.
    ttl : unsigned(8)
        IPv4 time to live / IPv6 hop limit.
    checksum : ChecksumStatus
        IPv4 header checksum (RFC 791 3.1, RFC 1071); NOT_CHECKED for IPv6 and cut headers.
    fragment : unsigned(1)
        IPv4 MF set or fragment offset non-zero; IPv6 fragment header (RFC 8200 4.5) present.
    options : unsigned(1)
        IPv4 options present (IHL > 5), or at least one IPv6 extension header skipped.
    ext_unparsed : unsigned(1)
        IPv6 only: the chain holds an extension header the parser does not step over (AH, ESP,
        Hop-by-Hop not first, ...) or more extension headers than it steps over.
    head : unsigned(16)
        The first 16-bit word of the header as it is: IPv4 version, IHL and TOS; IPv6 version,
        traffic class and the top flow-label bits. With ``header_checksum`` it lets a rewrite
        of the DSCP/ECN bits update checksums incrementally (RFC 1624).
    header_checksum : unsigned(16)
        IPv4 header checksum field as received (0 for IPv6).
    """

    kind: L3Kind
    offset: 16
    src: 128
    dst: 128
    protocol: 8
    dscp: 6
    ecn: 2
    ttl: 8
    checksum: ChecksumStatus
    fragment: 1
    options: 1
    ext_unparsed: 1
    head: 16
    header_checksum: 16


class TcpFlags(data.Struct):
    """TCP control bits (RFC 9293 3.1; CWR and ECE from RFC 3168)."""

    fin: 1
    syn: 1
    rst: 1
    psh: 1
    ack: 1
    urg: 1
    ece: 1
    cwr: 1


class L4Info(data.Struct):
    """TCP (RFC 9293/793) or UDP (RFC 768) header.

    Attributes
    ----------
    kind : L4Kind
    offset : unsigned(16)
        Byte offset of the transport header (of the first unparsed header for ``OTHER``).
    src_port, dst_port : unsigned(16)
    tcp_flags : TcpFlags
    checksum : ChecksumStatus
        TCP/UDP checksum over the pseudo-header and the segment (RFC 793 3.1, RFC 768, RFC 8200
        8.1). NOT_CHECKED: UDP over IPv4 with checksum 0, fragments, IPv6 routing header with
        segments left, segment not entirely in the frame or its tail beyond the capture window.
    """

    kind: L4Kind
    offset: 16
    src_port: 16
    dst_port: 16
    tcp_flags: TcpFlags
    checksum: ChecksumStatus


class HeaderInfo(data.Struct):
    """One level of headers: Ethernet, IP and transport."""

    eth: EthernetInfo
    l3: L3Info
    l4: L4Info


class VxlanInfo(data.Struct):
    """VXLAN (RFC 7348 5): ``present`` for UDP destination port 4789 (not a fragment)."""

    present: 1
    vni: 24


class BthInfo(data.Struct):
    """InfiniBand Base Transport Header (IBTA vol. 1 9.2; RoCEv2 annex A17 for FECN/BECN)."""

    opcode: 8
    solicited: 1
    migreq: 1
    pad_count: 2
    tver: 4
    pkey: 16
    fecn: 1
    becn: 1
    dest_qp: 24
    ack_req: 1
    psn: 24


class RoceInfo(data.Struct):
    """RoCEv2 (annex A17): ``present`` for UDP destination port 4791 (not a fragment)."""

    present: 1
    bth: BthInfo


class ParseErrors(data.Struct):
    """Why a packet was not parsed completely. Several flags may be set at once.

    Attributes
    ----------
    truncated : unsigned(1)
        The frame (or the IP packet around the header) ends inside a header that the previous
        header announces.
    ip_length : unsigned(1)
        An IP length disagrees with the frame: the IP packet runs past the end of its frame
        (for the inner packet: past the end of the outer IP packet), an IPv4 total length is
        shorter than its header, a UDP length differs from the IP payload length, or the frame
        (the VXLAN payload, for the inner packet) is longer than 64 bytes and holds bytes after
        the IP packet — shorter frames may carry Ethernet padding (IEEE 802.3 4.4.2).
    beyond_window : unsigned(1)
        A header lies (partly) past the capture window; parsing stopped there.
    malformed : unsigned(1)
        A header holds an impossible value: IP version not 4/6, IPv4 IHL < 5, TCP data offset
        < 5, VXLAN I flag clear.
    """

    truncated: 1
    ip_length: 1
    beyond_window: 1
    malformed: 1


class ParseResult(data.Struct):
    """The metadata record of one packet.

    Attributes
    ----------
    frame_length : unsigned(16)
        Bytes in the frame, saturating at 65535.
    frame_sum : unsigned(16)
        Ones'-complement sum (RFC 1071) of the whole frame as big-endian 16-bit words (an odd
        last byte padded with zero), folded with end-around carry: 0 only when every word is 0.
        A VXLAN encapsulation uses it for the outer UDP checksum without reading the frame.
    outer : HeaderInfo
    vxlan : VxlanInfo
    inner : HeaderInfo
        The headers inside the VXLAN payload; all zero unless ``vxlan.present`` and the VXLAN
        header is complete and valid.
    roce : RoceInfo
    errors : ParseErrors
    """

    frame_length: 16
    frame_sum: 16
    outer: HeaderInfo
    vxlan: VxlanInfo
    inner: HeaderInfo
    roce: RoceInfo
    errors: ParseErrors
