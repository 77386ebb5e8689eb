"""The layers of the parse pipeline: one function per protocol, one register stage per call.

Each stage reads the state record of the previous stage (:class:`ParseState`) and writes the
next one; the parser copies the whole record forward and each stage overrides what it learns.
A *level* is one set of Ethernet/IP/transport headers: the outer one, and the one inside a VXLAN
payload. :class:`LevelState` carries where the level's next header starts and how far the
level's frame and IP packet reach.

Rules shared by every header (documented for users in :class:`amnic.net.parser.PacketParser`):

* a header is *complete* when all of its bytes lie before the level's limit (the end of the
  frame; inside an IP packet, the end of the IP packet if that comes first) and inside the
  capture window; otherwise ``errors.truncated`` (past the limit) or else
  ``errors.beyond_window`` is raised, the header's fields stay zero and parsing of the level
  stops;
* a complete header with an impossible value raises ``errors.malformed``, keeps its fields zero
  and stops the level.
"""

from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import data

from . import headers as H
from .capture import LENGTH_BITS, REST_SUM_BITS
from .metadata import ChecksumStatus, L3Kind, L4Kind, ParseResult
from .window import balanced_sum, be_field, byte, fold16, masked_window_sum, select_bytes, word_sum

__all__ = ["OFFSET_BITS", "OFFSET_STEP", "OUTER_L3", "OUTER_NEXT_MIN", "INNER_L2_MIN",
           "INNER_L3_MIN", "INNER_NEXT_MIN", "candidates", "LevelState", "ParseState",
           "stage_outer_l2_l3", "stage_ipv6_ext", "stage_l4", "stage_inner_l2", "stage_inner_l3",
           "stage_sums", "stage_verdict"]

#: Width of byte offsets and ends inside the pipeline (IP ends reach past 64 KiB).
OFFSET_BITS = 18

# Where headers can start. Every offset is 2 mod 4 up to the outer transport header (Ethernet
# 14 + tags of 4, IP headers of 4k bytes, IPv6 extensions of 8k bytes), then UDP + VXLAN (16)
# keep it so for the inner Ethernet header and the inner Ethernet header (14 + 4k) makes the
# inner offsets 0 mod 4. The smallest offsets follow from the shortest headers.
OFFSET_STEP = 4
#: Ethernet header with the most tags the parser strips.
ETH_MAX_LEN = H.ETH_HEADER_LEN + H.VLAN_MAX_TAGS * H.VLAN_TAG_LEN
OUTER_L3 = tuple(H.ETH_HEADER_LEN + H.VLAN_TAG_LEN * k for k in range(H.VLAN_MAX_TAGS + 1))
OUTER_NEXT_MIN = H.ETH_HEADER_LEN + H.IPV4_MIN_HEADER_LEN  # 34
INNER_L2_MIN = OUTER_NEXT_MIN + H.UDP_HEADER_LEN + H.VXLAN_HEADER_LEN  # 50
INNER_L3_MIN = INNER_L2_MIN + H.ETH_HEADER_LEN  # 64
INNER_NEXT_MIN = INNER_L3_MIN + H.IPV4_MIN_HEADER_LEN  # 84


def candidates(first, window_len):
    """The offsets, from ``first``, at which a header inside the window can start."""
    return range(first, window_len, OFFSET_STEP)


class LevelState(data.Struct):
    """Parse progress of one level of headers.

    Attributes
    ----------
    go : unsigned(1)
        The header at ``cur`` is to be parsed (the level has not stopped).
    frame_start, frame_end : unsigned(OFFSET_BITS)
        The level's Ethernet frame: the whole packet for the outer level, the VXLAN payload
        (up to the outer limit) for the inner one.
    cur : unsigned(OFFSET_BITS)
        Offset of the next header.
    nh : unsigned(8)
        IP protocol / IPv6 next header of the header at ``cur``.
    walk : unsigned(1)
        IPv6 extension headers may follow.
    first : unsigned(1)
        No IPv6 extension header skipped yet.
    ip_end : unsigned(OFFSET_BITS)
        End of the IP packet by its length field.
    limit : unsigned(OFFSET_BITS)
        ``min(frame_end, ip_end)``: headers inside the IP packet must end before it.
    nocheck : unsigned(1)
        The transport checksum cannot be verified (fragment, routing header in transit).
    pseudo : unsigned(20)
        Sum of the address words of the pseudo-header (RFC 793 3.1, RFC 768, RFC 8200 8.1).
    ihl_words : unsigned(6)
        IPv4 header length in 16-bit words, for the inner header checksum.
    hdr_check : unsigned(1)
        The inner IPv4 header checksum is to be verified.
    l4_check : unsigned(1)
        The transport header is complete and its checksum is to be verified.
    hdr_sum, l4_sum : unsigned(24)
        Unfolded sums computed by :func:`stage_sums`.
    """

    go: 1
    frame_start: OFFSET_BITS
    frame_end: OFFSET_BITS
    cur: OFFSET_BITS
    nh: 8
    walk: 1
    first: 1
    ip_end: OFFSET_BITS
    limit: OFFSET_BITS
    nocheck: 1
    pseudo: 20
    ihl_words: 6
    hdr_check: 1
    l4_check: 1
    hdr_sum: 24
    l4_sum: 24


class ParseState(data.StructLayout):
    """The record that moves down the parse pipeline, one per packet."""

    def __init__(self, window_len):
        self.window_len = window_len
        super().__init__({
            "valid": 1,
            "window": 8 * window_len,
            "length": LENGTH_BITS,
            "rest_sum": REST_SUM_BITS,
            "outer": LevelState,
            "inner": LevelState,
            "res": ParseResult,
        })


def _w(m, value, name):
    """``value`` held in a named combinational signal (keeps expressions shallow)."""
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


def _tpid(value):
    return (value == H.ETHERTYPE_VLAN) | (value == H.ETHERTYPE_QINQ)


def _check(m, end, limit, window_len, go, err):
    """Flag a header ``[.., end)`` that is cut short or past the window; return "complete"."""
    end = _w(m, end, "end")
    trunc = _w(m, end > limit, "trunc")
    beyond = _w(m, ~trunc & (end > window_len), "beyond")
    with m.If(go & trunc):
        m.d.sync += err.truncated.eq(1)
    with m.If(go & beyond):
        m.d.sync += err.beyond_window.eq(1)
    return _w(m, go & ~trunc & ~beyond, "complete")


def _vlan_tag(tag, tci):
    """Assignments of a tag control information word (802.1Q 9.6: PCP 15-13, DEI 12, VID)."""
    return [tag.pcp.eq(tci[13:16]), tag.dei.eq(tci[12]), tag.vid.eq(tci[0:12])]


def _tcp_flags(flags, octet):
    """Assignments of the TCP flags octet (RFC 9293 3.1, CWR/ECE from RFC 3168), MSB first."""
    names = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")
    return [getattr(flags, name).eq(octet[bit]) for bit, name in enumerate(names)]


def _ethernet(m, b, go, base, frame_end, window_len, eth, l3, lvl, err):
    """Ethernet header and VLAN tags in the ``ETH_MAX_LEN`` bytes ``b`` at offset ``base``.

    Returns ``(go_l3, l3_offset, is_ipv6)``: whether an IP header follows, where, and which.
    """
    t1 = be_field(b, 12, 2)
    t2 = be_field(b, 16, 2)
    tag1 = _w(m, _tpid(t1), "tag1")
    tag2 = _w(m, tag1 & _tpid(t2), "tag2")
    ethertype = _w(m, Mux(tag2, be_field(b, 20, 2), Mux(tag1, t2, t1)), "ethertype")
    hlen = Mux(tag2, 22, Mux(tag1, 18, 14))
    end = _w(m, base + hlen, "eth_end")
    ok = _check(m, end, frame_end, window_len, go, err)
    is4 = _w(m, ethertype == H.ETHERTYPE_IPV4, "is_ipv4")
    is6 = _w(m, ethertype == H.ETHERTYPE_IPV6, "is_ipv6")
    with m.If(ok):
        m.d.sync += [
            eth.dst.eq(be_field(b, 0, 6)),
            eth.src.eq(be_field(b, 6, 6)),
            eth.vlan_count.eq(tag1 + tag2),
            eth.ethertype.eq(ethertype),
            l3.kind.eq(Mux(is4, L3Kind.IPV4, Mux(is6, L3Kind.IPV6, L3Kind.OTHER))),
        ]
        with m.If(tag1):
            m.d.sync += _vlan_tag(eth.outer_vlan, be_field(b, 14, 2))
        with m.If(tag2):
            m.d.sync += _vlan_tag(eth.inner_vlan, be_field(b, 18, 2))
    m.d.sync += lvl.go.eq(ok & (is4 | is6))
    return ok & (is4 | is6), end, is6


def _ip(m, b, go, base, is6, lvl_in, lvl, l3, err, window_len, hdr_bytes=None):
    """IPv4 or IPv6 header in the bytes ``b`` at offset ``base`` (the level's frame around it).

    ``hdr_bytes``, when given, is the number of bytes in ``b`` (60) and the IPv4 header checksum
    is verified here; otherwise it is left to :func:`stage_sums` (``hdr_check``).
    """
    b0 = byte(b, 0)
    version, ihl = b0[4:8], b0[0:4]
    bad4 = _w(m, ~is6 & ((version != H.IPV4_VERSION) | (ihl < 5)), "bad_ipv4")
    bad6 = _w(m, is6 & (version != H.IPV6_VERSION), "bad_ipv6")
    hlen = Mux(is6, H.IPV6_HEADER_LEN, Mux(bad4, H.IPV4_MIN_HEADER_LEN, Cat(Const(0, 2), ihl)))
    end = _w(m, base + hlen, "ip_hdr_end")
    complete = _check(m, end, lvl_in.frame_end, window_len, go, err)
    with m.If(complete & (bad4 | bad6)):
        m.d.sync += err.malformed.eq(1)
    ok = _w(m, complete & ~bad4 & ~bad6, "ip_ok")

    # IPv4 (RFC 791 3.1) and IPv6 (RFC 8200 3) fields.
    tos = Mux(is6, Cat(byte(b, 1)[4:8], b0[0:4]), byte(b, 1))
    total = be_field(b, 2, 2)
    frag_word = be_field(b, 6, 2)
    frag_offset = frag_word[0:13]
    more = frag_word[13]
    plen = be_field(b, 4, 2)
    ip_end = _w(m, Mux(is6, base + H.IPV6_HEADER_LEN + plen, base + total), "ip_end")
    proto = Mux(is6, byte(b, 6), byte(b, 9))
    ttl = Mux(is6, byte(b, 7), byte(b, 8))
    src = Mux(is6, be_field(b, 8, 16), be_field(b, 12, 4))
    dst = Mux(is6, be_field(b, 24, 16), be_field(b, 16, 4))
    addr_words = ([be_field(b, 8 + 2 * k, 2) for k in range(16)],
                  [be_field(b, 12 + 2 * k, 2) for k in range(4)])
    pseudo = Mux(is6, balanced_sum(addr_words[0], m, "pseudo6"),
                 balanced_sum(addr_words[1], m, "pseudo4"))
    fragment = _w(m, ~is6 & (more | (frag_offset != 0)), "ip_fragment")

    frame_end = lvl_in.frame_end
    short = ~is6 & (total < hlen)
    past = _w(m, ip_end > frame_end, "ip_past")
    trailing = (ip_end < frame_end) & (frame_end - lvl_in.frame_start > H.PADDED_FRAME_MAX)
    with m.If(ok):
        m.d.sync += [
            l3.offset.eq(base),
            l3.src.eq(src),
            l3.dst.eq(dst),
            l3.protocol.eq(proto),
            l3.dscp.eq(tos[2:8]),
            l3.ecn.eq(tos[0:2]),
            l3.ttl.eq(ttl),
            l3.fragment.eq(fragment),
            l3.options.eq(~is6 & (ihl > 5)),
            l3.head.eq(be_field(b, 0, 2)),
            l3.header_checksum.eq(Mux(is6, 0, be_field(b, 10, 2))),
            lvl.cur.eq(end),
            lvl.nh.eq(proto),
            lvl.walk.eq(is6),
            lvl.first.eq(1),
            lvl.ip_end.eq(ip_end),
            lvl.limit.eq(Mux(past, frame_end, ip_end)),
            lvl.nocheck.eq(fragment),
            lvl.pseudo.eq(pseudo),
            lvl.ihl_words.eq(Cat(Const(0, 1), ihl)),
            lvl.hdr_check.eq(~is6),
        ]
        with m.If(short | past | trailing):
            m.d.sync += err.ip_length.eq(1)
        if hdr_bytes is not None:
            mask = [ihl > w // 2 for w in range(hdr_bytes // 2)]
            good = fold16(word_sum(b, hdr_bytes, mask, m, "ipv4_hdr_sum")) == 0xFFFF
            with m.If(~is6):
                m.d.sync += l3.checksum.eq(Mux(good, ChecksumStatus.GOOD, ChecksumStatus.BAD))
    # A non-first IPv4 fragment carries no transport header.
    m.d.sync += lvl.go.eq(ok & (is6 | (frag_offset == 0)))


def stage_outer_l2_l3(m, s, n, window_len):
    """Outer Ethernet (offset 0) and the IP header after it (offset 14, 18 or 22)."""
    window = s.window
    err = n.res.errors
    eth_bytes = window[:8 * min(ETH_MAX_LEN, window_len)]
    go_l3, l3_off, is6 = _ethernet(m, eth_bytes, s.valid, Const(0, OFFSET_BITS),
                                   s.outer.frame_end, window_len, n.res.outer.eth,
                                   n.res.outer.l3, n.outer, err)
    ip_bytes = select_bytes(m, window, window_len, l3_off, H.IPV4_MAX_HEADER_LEN, OUTER_L3,
                            "outer_l3_bytes")
    _ip(m, ip_bytes, go_l3, l3_off, is6, s.outer, n.outer, n.res.outer.l3, err, window_len,
        hdr_bytes=H.IPV4_MAX_HEADER_LEN)



_SKIPPED = (H.IPPROTO_ROUTING, H.IPPROTO_FRAGMENT, H.IPPROTO_DSTOPTS)


def stage_ipv6_ext(m, s, n, level, window_len, candidates):
    """Step over one IPv6 extension header (RFC 8200 4.3-4.6) of ``level``."""
    lvl_in, lvl = getattr(s, level), getattr(n, level)
    l3 = getattr(n.res, level).l3
    err = n.res.errors
    nh = lvl_in.nh
    active = lvl_in.go & lvl_in.walk
    skip = _w(m, active & (Cat(*(nh == p for p in _SKIPPED)).any()
                           | ((nh == H.IPPROTO_HOPOPTS) & lvl_in.first)), "ext_skip")
    with m.If(active & ~skip):
        m.d.sync += lvl.walk.eq(0)
    b = select_bytes(m, s.window, window_len, lvl_in.cur, 4, candidates, f"{level}_ext_bytes")
    is_frag = _w(m, nh == H.IPPROTO_FRAGMENT, "ext_frag")
    elen = Mux(is_frag, H.IPV6_FRAG_HEADER_LEN, Cat(Const(0, 3), byte(b, 1) + 1))
    end = lvl_in.cur + elen
    ok = _check(m, end, lvl_in.limit, window_len, skip, err)
    with m.If(skip & ~ok):
        m.d.sync += lvl.go.eq(0)
    with m.If(ok):
        m.d.sync += [
            l3.options.eq(1),
            l3.protocol.eq(byte(b, 0)),
            lvl.nh.eq(byte(b, 0)),
            lvl.cur.eq(end),
            lvl.first.eq(0),
        ]
        with m.If(is_frag):
            m.d.sync += [l3.fragment.eq(1), lvl.nocheck.eq(1)]
            with m.If(be_field(b, 2, 2)[3:16] != 0):
                m.d.sync += lvl.go.eq(0)
        with m.If((nh == H.IPPROTO_ROUTING) & (byte(b, 3) != 0)):
            # Segments left: the destination field is not the final one (RFC 8200 8.1).
            m.d.sync += lvl.nocheck.eq(1)


_UNPARSED = (H.IPPROTO_HOPOPTS, *_SKIPPED, *H.IPV6_UNPARSED_EXTENSIONS)


def stage_l4(m, s, n, level, window_len, candidates, tunnels):
    """The transport header of ``level``; with ``tunnels``, also VXLAN and RoCEv2 BTH."""
    lvl_in, lvl = getattr(s, level), getattr(n, level)
    l3_in = getattr(s.res, level).l3
    l3, l4 = getattr(n.res, level).l3, getattr(n.res, level).l4
    err = n.res.errors
    go, cur, nh = lvl_in.go, lvl_in.cur, lvl_in.nh
    is6 = l3_in.kind == L3Kind.IPV6
    unparsed = _w(m, is6 & Cat(*(nh == p for p in _UNPARSED)).any(), "ext_unparsed")
    tcp = _w(m, (nh == H.IPPROTO_TCP) & ~unparsed, "is_tcp")
    udp = _w(m, (nh == H.IPPROTO_UDP) & ~unparsed, "is_udp")
    with m.If(go):
        m.d.sync += [
            l3.ext_unparsed.eq(unparsed),
            l4.kind.eq(Mux(tcp, L4Kind.TCP, Mux(udp, L4Kind.UDP, L4Kind.OTHER))),
            l4.offset.eq(cur),
        ]
    nbytes = H.UDP_HEADER_LEN + H.BTH_LEN if tunnels else H.TCP_MIN_HEADER_LEN
    b = select_bytes(m, s.window, window_len, cur, max(nbytes, H.TCP_MIN_HEADER_LEN), candidates,
                     f"{level}_l4_bytes")
    doff = byte(b, 12)[4:8]
    bad_tcp = _w(m, tcp & (doff < 5), "bad_tcp")
    hlen = Mux(udp, H.UDP_HEADER_LEN,
               Mux(bad_tcp, H.TCP_MIN_HEADER_LEN, Cat(Const(0, 2), doff)))
    complete = _check(m, cur + hlen, lvl_in.limit, window_len, go & (tcp | udp), err)
    with m.If(complete & bad_tcp):
        m.d.sync += err.malformed.eq(1)
    ok = _w(m, complete & ~bad_tcp, "l4_ok")
    checksum = be_field(b, 6, 2)
    l4_len = lvl_in.ip_end - cur
    with m.If(ok):
        m.d.sync += [
            l4.src_port.eq(be_field(b, 0, 2)),
            l4.dst_port.eq(be_field(b, 2, 2)),
            lvl.l4_check.eq(~lvl_in.nocheck & ~(udp & ~is6 & (checksum == 0))),
        ]
        with m.If(tcp):
            m.d.sync += _tcp_flags(l4.tcp_flags, byte(b, 13))
        with m.If(udp & (be_field(b, 4, 2) != l4_len)):
            m.d.sync += err.ip_length.eq(1)
    if not tunnels:
        return

    dport = be_field(b, 2, 2)
    carrier = ok & udp & ~l3_in.fragment
    vxlan = _w(m, carrier & (dport == H.VXLAN_PORT), "vxlan")
    roce = _w(m, carrier & (dport == H.ROCEV2_PORT), "roce")
    vx_end = cur + H.UDP_HEADER_LEN + H.VXLAN_HEADER_LEN
    vx_ok = _check(m, vx_end, lvl_in.limit, window_len, vxlan, err)
    vx_flags_ok = byte(b, 8)[H.VXLAN_FLAG_I.bit_length() - 1]
    res = n.res
    with m.If(vxlan):
        m.d.sync += res.vxlan.present.eq(1)
    with m.If(vx_ok & ~vx_flags_ok):
        m.d.sync += err.malformed.eq(1)
    with m.If(vx_ok & vx_flags_ok):
        inner = n.inner
        m.d.sync += [
            res.vxlan.vni.eq(be_field(b, 12, 3)),
            inner.go.eq(1),
            inner.cur.eq(vx_end),
            inner.frame_start.eq(vx_end),
            inner.frame_end.eq(lvl_in.limit),
        ]
    bth_ok = _check(m, cur + H.UDP_HEADER_LEN + H.BTH_LEN, lvl_in.limit, window_len, roce, err)
    with m.If(roce):
        m.d.sync += res.roce.present.eq(1)
    with m.If(bth_ok):
        bth = res.roce.bth
        flags = byte(b, 9)
        m.d.sync += [
            bth.opcode.eq(byte(b, 8)),
            bth.solicited.eq(flags[7]),
            bth.migreq.eq(flags[6]),
            bth.pad_count.eq(flags[4:6]),
            bth.tver.eq(flags[0:4]),
            bth.pkey.eq(be_field(b, 10, 2)),
            bth.fecn.eq(byte(b, 12)[7]),
            bth.becn.eq(byte(b, 12)[6]),
            bth.dest_qp.eq(be_field(b, 13, 3)),
            bth.ack_req.eq(byte(b, 16)[7]),
            bth.psn.eq(be_field(b, 17, 3)),
        ]


def stage_inner_l2(m, s, n, window_len, candidates):
    """The Ethernet header inside the VXLAN payload."""
    lvl_in = s.inner
    b = select_bytes(m, s.window, window_len, lvl_in.cur, ETH_MAX_LEN, candidates,
                     "inner_l2_bytes")
    _, l3_off, _ = _ethernet(m, b, lvl_in.go, lvl_in.cur, lvl_in.frame_end, window_len,
                             n.res.inner.eth, n.res.inner.l3, n.inner, n.res.errors)
    m.d.sync += n.inner.cur.eq(l3_off)


def stage_inner_l3(m, s, n, window_len, candidates):
    """The IP header inside the VXLAN payload (header checksum left to :func:`stage_sums`)."""
    lvl_in = s.inner
    b = select_bytes(m, s.window, window_len, lvl_in.cur, H.IPV6_HEADER_LEN, candidates,
                     "inner_l3_bytes")
    is6 = s.res.inner.l3.kind == L3Kind.IPV6
    _ip(m, b, lvl_in.go, lvl_in.cur, is6, lvl_in, n.inner, n.res.inner.l3, n.res.errors,
        window_len)


def _seg_sum(m, s, lvl, window_len, name, lo_min):
    """Unfolded sum of the transport segment of ``lvl`` plus its pseudo-header; and whether the
    whole segment is available (in the window, or running to the end of the frame)."""
    past = _w(m, lvl.ip_end > window_len, f"{name}_seg_past")
    hi = _w(m, Mux(past, window_len, lvl.ip_end), f"{name}_seg_end")
    seg = masked_window_sum(m, s.window, window_len, lvl.cur, hi, f"{name}_seg_sum", lo_min)
    rest = Mux(past, fold16(s.rest_sum), 0)
    l4_len = (lvl.ip_end - lvl.cur)[:16]
    total = seg + rest + lvl.pseudo + lvl.nh + l4_len
    available = (lvl.ip_end <= lvl.frame_end) & (~past | (lvl.ip_end == s.length))
    return total, available


def stage_sums(m, s, n, window_len):
    """Ones'-complement sums over the window: both transport segments, the inner IPv4 header."""
    for level in ("outer", "inner"):
        lvl_in, lvl = getattr(s, level), getattr(n, level)
        lo_min = OUTER_NEXT_MIN if level == "outer" else INNER_NEXT_MIN
        total, available = _seg_sum(m, s, lvl_in, window_len, level, lo_min)
        m.d.sync += [lvl.l4_sum.eq(total), lvl.l4_check.eq(lvl_in.l4_check & available)]
    inner = s.inner
    lo = s.res.inner.l3.offset
    hi = _w(m, lo + Cat(Const(0, 1), inner.ihl_words), "inner_hdr_end")
    hdr = masked_window_sum(m, s.window, window_len, lo, hi, "inner_hdr_sum", INNER_L3_MIN)
    m.d.sync += [n.inner.hdr_sum.eq(hdr), n.window.eq(0)]


def stage_verdict(m, s, n):
    """Fold the sums, compare with 0xFFFF and write the checksum statuses."""
    for level in ("outer", "inner"):
        lvl_in = getattr(s, level)
        l4 = getattr(n.res, level).l4
        good = fold16(lvl_in.l4_sum) == 0xFFFF
        with m.If(lvl_in.l4_check):
            m.d.sync += l4.checksum.eq(Mux(good, ChecksumStatus.GOOD, ChecksumStatus.BAD))
    l3 = n.res.inner.l3
    good = fold16(s.inner.hdr_sum) == 0xFFFF
    with m.If(s.inner.hdr_check):
        m.d.sync += l3.checksum.eq(Mux(good, ChecksumStatus.GOOD, ChecksumStatus.BAD))
    m.d.sync += n.res.frame_length.eq(Mux(s.length > 0xFFFF, 0xFFFF, s.length))
