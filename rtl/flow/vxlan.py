"""VXLAN encapsulation: the per-flow outer-header templates and the header they produce.

A flow whose action says :attr:`~amnic.flow.action.TunnelOp.ENCAP` names one of the templates
held here; :class:`EncapHeaderBuilder` turns that template, the inner frame's length, its flow
hash and its ones'-complement sum into the outer headers (RFC 7348 clause 5), which the packet
editor (:mod:`amnic.net.editor`) prepends:

* IPv4 outer (50 bytes): Ethernet (EtherType 0x0800), IPv4 without options (RFC 791: version 4,
  IHL 5, total length, identification 0, DF set, TTL and TOS from the template, protocol 17,
  header checksum computed), UDP, VXLAN.
* IPv6 outer (70 bytes): Ethernet (0x86DD), IPv6 (RFC 8200: traffic class from the template,
  flow label = the inner flow hash, payload length, next header 17, hop limit), UDP, VXLAN.
* UDP (RFC 768): source port ``0xC000 | hash[0:14]`` (RFC 7348: from the inner flow, in the
  dynamic range 49152-65535, so the underlay's ECMP spreads flows), destination port from the
  template (4789 by default), length. The checksum is computed over the pseudo-header, the UDP
  and VXLAN headers and the inner frame for IPv6 (RFC 8200 clause 8.1 requires it) and when the
  template asks for it over IPv4; otherwise it is zero, as RFC 7348 recommends for IPv4.
* VXLAN: flags 0x08 (valid VNI), the template's VNI, reserved fields zero.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterFile, version
from amnic.csr.bus import RegisterBusSignature
from amnic.csr.ids import VXLAN_TEMPLATES
from amnic.net.window import balanced_sum, fold16

__all__ = [
    "EncapTemplate", "TEMPLATE_BITS", "TEMPLATE_WORDS", "ENCAP_MAX_BYTES", "REGISTERS",
    "EncapTemplates", "EncapRequest", "EncapHeader", "EncapHeaderBuilder",
    "template_value", "encap_header_reference",
]

VXLAN_PORT = 4789
IPV4_OUTER_BYTES = 14 + 20 + 8 + 8
IPV6_OUTER_BYTES = 14 + 40 + 8 + 8
#: The longest outer header (IPv6).
ENCAP_MAX_BYTES = IPV6_OUTER_BYTES


class EncapTemplate(data.Struct):
    """One encapsulation template.

    Addresses and numbers are numeric values (an IPv4 address in the low 32 bits of ``src_ip``
    and ``dst_ip``); the builder writes them in network byte order.
    """

    ipv6: 1
    udp_checksum: 1  #: compute the UDP checksum over IPv4 too (always done over IPv6)
    dst_mac: 48
    src_mac: 48
    src_ip: 128
    dst_ip: 128
    tos: 8  #: IPv4 TOS / IPv6 traffic class
    ttl: 8  #: IPv4 TTL / IPv6 hop limit
    vni: 24
    udp_dst: 16


TEMPLATE_BITS = EncapTemplate.as_shape().size
TEMPLATE_WORDS = (TEMPLATE_BITS + 31) // 32
_TEMPLATE_BASE = 0x40


def _registers():
    regs = [
        Register("templates", 0x0C, Access.RO, "Number of templates.", init=0),
        Register("index", 0x10, Access.RW, "Template that `command` acts on."),
        Register("command", 0x14, Access.W1S, "Template commands; each bit clears when done.",
                 fields=(Field("write", 0, 1, "Write `data_*` to template `index`."),
                         Field("read", 1, 1, "Read template `index` into `data_*`."))),
    ]
    for w in range(TEMPLATE_WORDS):
        regs.append(Register(f"data_{w}", _TEMPLATE_BASE + 4 * w, Access.RW,
                             f"Template bits {32 * w + 31}:{32 * w} (EncapTemplate layout); "
                             f"a read command loads them."))
    return RegisterBlock("vxlan_encap", VXLAN_TEMPLATES, version(1, 0), regs,
                         "VXLAN encapsulation templates (RFC 7348), written through staging "
                         "registers so each template changes at once.")


REGISTERS = _registers()


def template_value(**fields):
    """The raw bit pattern of a template (for drivers and models); ``udp_dst`` defaults to
    4789."""
    fields.setdefault("udp_dst", VXLAN_PORT)
    return EncapTemplate.const(fields).as_value().value


class EncapTemplates(wiring.Component):
    """The template table: written by software, read by the pipeline.

    Parameters
    ----------
    count : int
        Number of templates (at most 64, the width of :attr:`FlowAction.template`).

    Attributes
    ----------
    bus : In(RegisterBusSignature)
        Software access (:data:`REGISTERS`). A write command stores all of ``data_*`` in one
        memory write, so the pipeline reads a template whole, old or new.
    read_index : In(6)
        Template the pipeline reads.
    read_data : Out(EncapTemplate)
        That template, one cycle after ``read_index`` (a synchronous memory read port that
        advances every cycle ``read_enable`` is high).
    read_enable : In(1)
    """

    def __init__(self, count=64):
        if not 1 <= count <= 64:
            raise ValueError(f"template count must be 1..64, not {count}")
        self.count = count
        super().__init__({
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
            "read_index": In(6),
            "read_enable": In(1, init=1),
            "read_data": Out(EncapTemplate),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        m.d.comb += regs.status.templates.eq(self.count)

        m.submodules.mem = mem = Memory(shape=TEMPLATE_BITS, depth=self.count, init=[])
        lookup = mem.read_port()
        host = mem.read_port()
        write = mem.write_port()
        m.d.comb += [
            lookup.addr.eq(self.read_index),
            lookup.en.eq(self.read_enable),
            self.read_data.as_value().eq(lookup.data),
        ]
        staged = Cat(getattr(regs.value, f"data_{w}") for w in range(TEMPLATE_WORDS))
        index = regs.value.index[:6]
        in_range = regs.value.index < self.count
        command = regs.value.command
        reading = Signal()
        m.d.comb += [
            write.addr.eq(index),
            write.data.eq(staged[:TEMPLATE_BITS]),
            write.en.eq(command[0] & in_range),
            host.addr.eq(index),
        ]
        m.d.sync += reading.eq(command[1] & ~reading)
        for w in range(TEMPLATE_WORDS):
            word = host.data[32 * w:min(32 * w + 32, TEMPLATE_BITS)]
            m.d.comb += [
                getattr(regs.load, f"data_{w}").eq(Mux(in_range, word, 0)),
                getattr(regs.load_en, f"data_{w}").eq(reading),
            ]
        m.d.comb += regs.clear.command.eq(Cat(command[0], reading))
        return m


class EncapRequest(data.Struct):
    """What :class:`EncapHeaderBuilder` needs about one packet."""

    template: EncapTemplate
    inner_length: 16  #: bytes of the inner frame (destination address through payload)
    inner_sum: 16  #: ones'-complement sum of the inner frame as 16-bit words (RFC 1071)
    hash: 20  #: inner flow hash: UDP source port entropy and IPv6 flow label


class EncapHeader(data.Struct):
    """The outer headers for one packet, byte 0 first on the wire."""

    data: data.ArrayLayout(8, ENCAP_MAX_BYTES)
    length: 7  #: 50 (IPv4) or 70 (IPv6)


def _be(value, nbytes):
    """The bytes of ``value`` in network order, as a list of 8-bit slices."""
    return [value[8 * (nbytes - 1 - i):8 * (nbytes - i)] for i in range(nbytes)]


def _ones_sum_of(words):
    """Ones'-complement sum (RFC 1071) of 16-bit values."""
    return fold16(balanced_sum(words))


def _words(byte_list):
    return [Cat(byte_list[i + 1], byte_list[i]) for i in range(0, len(byte_list), 2)]


class EncapHeaderBuilder(wiring.Component):
    """Build the outer headers of a VXLAN packet from its template.

    Two pipeline stages: sums, then checksums and the header bytes. One request per cycle;
    ``o`` follows ``i`` after two cycles when not back-pressured (``valid`` never waits on
    ``ready``; a stalled output holds the pipeline).

    Attributes
    ----------
    i : In(stream.Signature(EncapRequest))
    o : Out(stream.Signature(EncapHeader))
    """

    i: In(stream.Signature(EncapRequest))
    o: Out(stream.Signature(EncapHeader))

    def elaborate(self, platform):
        m = Module()
        req = self.i.payload
        t = req.template

        # Stage 1: the parts that need the request only.
        s1_valid = Signal()
        s1 = Signal(EncapRequest)
        s1_ip4_sum = Signal(16)  # IPv4 header without checksum
        s1_pseudo = Signal(16)  # UDP pseudo-header + UDP + VXLAN headers, checksum field 0
        s1_udp_len = Signal(16)
        s1_sport = Signal(16)

        ready1 = ~s1_valid | (~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(ready1)

        udp_len = (req.inner_length + 16)[:16]
        ip4_total = (req.inner_length + 36)[:16]
        sport = Cat(req.hash[:14], Const(0b11, 2))
        vxlan = [Const(0x08, 8), Const(0, 8), Const(0, 8), Const(0, 8)] + _be(t.vni, 3) \
            + [Const(0, 8)]
        ip4_header = ([Const(0x45, 8), t.tos] + _be(ip4_total, 2) + [Const(0, 8)] * 2
                      + [Const(0x40, 8), Const(0, 8), t.ttl, Const(17, 8), Const(0, 8),
                         Const(0, 8)] + _be(t.src_ip[:32], 4) + _be(t.dst_ip[:32], 4))
        udp_header = _be(sport, 2) + _be(t.udp_dst, 2) + _be(udp_len, 2) + [Const(0, 8)] * 2
        pseudo4 = _be(t.src_ip[:32], 4) + _be(t.dst_ip[:32], 4) + [Const(0, 8), Const(17, 8)] \
            + _be(udp_len, 2)
        pseudo6 = _be(t.src_ip, 16) + _be(t.dst_ip, 16) + [Const(0, 8)] * 2 + _be(udp_len, 2) \
            + [Const(0, 8)] * 3 + [Const(17, 8)]
        common = _words(udp_header) + _words(vxlan)
        with m.If(ready1):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1.eq(req),
                s1_ip4_sum.eq(_ones_sum_of(_words(ip4_header))),
                s1_pseudo.eq(Mux(t.ipv6, _ones_sum_of(_words(pseudo6) + common),
                                 _ones_sum_of(_words(pseudo4) + common))),
                s1_udp_len.eq(udp_len),
                s1_sport.eq(sport),
            ]

        # Stage 2: checksums and bytes.
        o = self.o.payload
        t1 = s1.template
        udp_sum = ~fold16(s1_pseudo + s1.inner_sum)
        udp_csum = Mux(udp_sum == 0, 0xFFFF, udp_sum)[:16]  # RFC 768: 0 is sent as all ones
        udp_csum = Mux(t1.ipv6 | t1.udp_checksum, udp_csum, 0)
        ip4_csum = (~s1_ip4_sum)[:16]
        ip4_total1 = (s1_udp_len + 20)[:16]
        eth = _be(t1.dst_mac, 6) + _be(t1.src_mac, 6)
        udp1 = _be(s1_sport, 2) + _be(t1.udp_dst, 2) + _be(s1_udp_len, 2) + _be(udp_csum, 2)
        vx1 = [Const(0x08, 8), Const(0, 8), Const(0, 8), Const(0, 8)] + _be(t1.vni, 3) \
            + [Const(0, 8)]
        v4 = (eth + [Const(0x08, 8), Const(0x00, 8)]
              + [Const(0x45, 8), t1.tos] + _be(ip4_total1, 2) + [Const(0, 8)] * 2
              + [Const(0x40, 8), Const(0, 8), t1.ttl, Const(17, 8)] + _be(ip4_csum, 2)
              + _be(t1.src_ip[:32], 4) + _be(t1.dst_ip[:32], 4) + udp1 + vx1)
        ver_tc_fl = Cat(s1.hash, t1.tos, Const(6, 4))
        v6 = (eth + [Const(0x86, 8), Const(0xDD, 8)] + _be(ver_tc_fl, 4) + _be(s1_udp_len, 2)
              + [Const(17, 8), t1.ttl] + _be(t1.src_ip, 16) + _be(t1.dst_ip, 16) + udp1 + vx1)
        assert len(v4) == IPV4_OUTER_BYTES and len(v6) == IPV6_OUTER_BYTES
        v4 += [Const(0, 8)] * (ENCAP_MAX_BYTES - IPV4_OUTER_BYTES)
        with m.If(~self.o.valid | self.o.ready):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                o.length.eq(Mux(t1.ipv6, IPV6_OUTER_BYTES, IPV4_OUTER_BYTES)),
            ]
            for n in range(ENCAP_MAX_BYTES):
                m.d.sync += o.data[n].eq(Mux(t1.ipv6, v6[n], v4[n]))
        return m


def encap_header_reference(template, inner):
    """The outer headers for frame ``inner`` (bytes) and template field dict ``template``,
    computed with the Python standard library only (for tests and models). ``template`` may
    carry ``hash`` (the inner flow hash, 20 bits)."""
    import struct

    def csum(data_):
        if len(data_) % 2:
            data_ += b"\0"
        s = sum(struct.unpack(f"!{len(data_) // 2}H", data_))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return s

    t = dict(template)
    h = t.get("hash", 0)
    ipv6 = t.get("ipv6", 0)
    sport = 0xC000 | (h & 0x3FFF)
    udp_len = len(inner) + 16
    vx = bytes([0x08, 0, 0, 0]) + t["vni"].to_bytes(3, "big") + b"\0"
    src = t["src_ip"].to_bytes(16 if ipv6 else 4, "big")
    dst = t["dst_ip"].to_bytes(16 if ipv6 else 4, "big")
    dport = t.get("udp_dst", VXLAN_PORT)
    udp0 = struct.pack("!HHHH", sport, dport, udp_len, 0)
    if ipv6:
        pseudo = src + dst + struct.pack("!IxxxB", udp_len, 17)
    else:
        pseudo = src + dst + struct.pack("!xBH", 17, udp_len)
    c = 0
    if ipv6 or t.get("udp_checksum", 0):
        c = (~csum(pseudo + udp0 + vx + inner)) & 0xFFFF or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, c)
    eth = t["dst_mac"].to_bytes(6, "big") + t["src_mac"].to_bytes(6, "big")
    tos, ttl = t.get("tos", 0), t.get("ttl", 64)
    if ipv6:
        first = (6 << 28) | (tos << 20) | (h & 0xFFFFF)
        ip = struct.pack("!IHBB", first, udp_len, 17, ttl) + src + dst
        return eth + b"\x86\xdd" + ip + udp + vx
    ip = struct.pack("!BBHHHBBH", 0x45, tos, udp_len + 20, 0, 0x4000, ttl, 17, 0) + src + dst
    ip = ip[:10] + struct.pack("!H", (~csum(ip)) & 0xFFFF) + ip[12:]
    return eth + b"\x08\x00" + ip + udp + vx
