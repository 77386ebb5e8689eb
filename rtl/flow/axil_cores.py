"""The flow blocks as stand-alone cores: their register bus behind an AXI4-Lite slave.

Each block of the match-action pipeline speaks the internal register bus
(:mod:`amnic.csr.bus`). For use outside the pipeline (``amnic generate acl``, ``flow_table``,
``rss``, ``meters``, ``vxlan_encap``) the classes here put an
:class:`~amnic.stream.axil.AxiLiteToRegisterBus` in front of that bus, as
:class:`~amnic.flow.core.MatchActionCore` does for the whole pipeline, and pass every other
port of the block through unchanged; the lookup streams are named ``request`` and
``result``. The AXI4-Lite port ``s_axil`` covers exactly the block's register window
(``REGISTERS.addr_width`` address bits); the register maps are in ``docs/registers/``.

* :class:`AclCore` — :class:`~amnic.flow.acl.Acl`;
* :class:`FlowTableCore` — :class:`~amnic.flow.table.FlowTable`;
* :class:`RssCore` — :class:`~amnic.flow.rss.Rss`;
* :class:`MeterCore` — :class:`~amnic.flow.meter.MeterBank`;
* :class:`VxlanEncapCore` — :class:`~amnic.flow.vxlan.EncapTemplates` and
  :class:`~amnic.flow.vxlan.EncapHeaderBuilder` joined: a template index in, the outer
  VXLAN headers (RFC 7348 clause 5) out.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream.axil import AxiLiteSignature, AxiLiteToRegisterBus

from . import acl as acl_mod
from . import meter as meter_mod
from . import rss as rss_mod
from . import table as table_mod
from . import vxlan as vxlan_mod

__all__ = ["AclCore", "FlowTableCore", "RssCore", "MeterCore", "VxlanEncapRequest",
           "VxlanEncapCore"]


class _AxiLiteWrapper(wiring.Component):
    """``inner`` with its ``bus`` member replaced by an AXI4-Lite slave ``s_axil``.

    Every other member of ``inner``'s signature is kept with its direction and shape and
    connected straight through (no added cycle); the lookup streams ``i`` and ``o`` are named
    ``request`` and ``result`` (Verilog ``request_tdata``...), other members keep their
    names. ``registers`` is the block's :class:`~amnic.csr.regmap.RegisterBlock`; ``s_axil``
    has its ``addr_width``.
    """

    #: Outer names of the inner block's members (others keep theirs).
    RENAMES = {"i": "request", "o": "result"}

    def __init__(self, inner, registers):
        self.inner = inner
        self.registers = registers
        self.addr_width = registers.addr_width
        #: ``{outer name: inner name}`` of the members passed through.
        self.passed = {self.RENAMES.get(name, name): name
                       for name in inner.signature.members if name != "bus"}
        members = {outer: inner.signature.members[name] for outer, name in self.passed.items()}
        members["s_axil"] = In(AxiLiteSignature(self.addr_width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        m.submodules.axil = axil = AxiLiteToRegisterBus(self.addr_width)
        wiring.connect(m, wiring.flipped(self.s_axil), axil.s_axil)
        wiring.connect(m, axil.bus, inner.bus)
        for name, inner_name in self.passed.items():
            member = self.signature.members[name]
            outer, core = getattr(self, name), getattr(inner, inner_name)
            if not member.is_port:
                wiring.connect(m, wiring.flipped(outer), core)
            elif member.flow == In:
                m.d.comb += core.eq(outer)
            else:
                m.d.comb += outer.eq(core)
        return m


class AclCore(_AxiLiteWrapper):
    """The ACL stage (:class:`~amnic.flow.acl.Acl`) with AXI4-Lite registers.

    Priority-ordered ternary rules over the flow key; the lowest-index matching rule gives an
    ALLOW/DENY verdict and the tenant's queue range. One lookup per cycle, results in order,
    three cycles after the request. Rules are written through staging registers
    (``docs/registers/acl.md``). In Verilog each ``<stream>_tdata`` packs the payload's fields
    from bit 0 up, in the order its layout lists them.

    Parameters
    ----------
    rules : int
        Rule slots (2..1024).
    tag_width : int
        Width of the tag carried from request to result.

    Attributes
    ----------
    request : In(stream.Signature(AclRequest(tag_width)))
        Lookups: a :class:`~amnic.flow.key.FlowKey` and a tag.
    result : Out(stream.Signature(AclResult(rules, tag_width)))
        Results (hit, rule index, action, tag), one per lookup, in order.
    s_axil : In(AxiLiteSignature(8))
        Rule and control registers: register block ``acl`` (``docs/registers/acl.md``).
    """

    def __init__(self, rules=64, *, tag_width=16):
        super().__init__(acl_mod.Acl(rules, tag_width=tag_width), acl_mod.REGISTERS)


class FlowTableCore(_AxiLiteWrapper):
    """The exact-match flow table (:class:`~amnic.flow.table.FlowTable`) with AXI4-Lite
    registers.

    A two-bank bucketised cuckoo hash table with per-entry packet, byte and last-hit counters;
    one lookup per cycle, results in order four cycles after the request. Software places and
    moves entries through slot commands (``docs/registers/flow_table.md``). In Verilog each
    ``<stream>_tdata`` packs the payload's fields from bit 0 up, in the order its layout lists
    them.

    Parameters
    ----------
    entries : int
        Slots, a power of two.
    action_width : int
        Bits of the action word of an entry.
    ways : int
        Slots per bucket (a power of two).
    tag_width : int
        Width of the tag carried from request to result.
    ram_style : str or None
        ``ram_style`` of the memories (``"block"``, ``"ultra"``, or ``None``).

    Attributes
    ----------
    request : In(stream.Signature(FlowLookupRequest(tag_width)))
        Lookups: a :class:`~amnic.flow.key.FlowKey`, the packet length and a tag.
    result : Out(stream.Signature(FlowLookupResult(entries, action_width, tag_width)))
        Results (hit, action, entry index, tag), in request order.
    now : In(32)
        Free-running time base, stored as an entry's last-hit time.
    s_axil : In(AxiLiteSignature(8))
        Slot commands, counters and status: register block ``flow_table``
        (``docs/registers/flow_table.md``).
    """

    def __init__(self, entries=65536, action_width=32, *, ways=4, tag_width=8, ram_style=None):
        super().__init__(
            table_mod.FlowTable(entries, action_width, ways=ways, tag_width=tag_width,
                                ram_style=ram_style),
            table_mod.REGISTERS)


class RssCore(_AxiLiteWrapper):
    """Receive-Side Scaling (:class:`~amnic.flow.rss.Rss`) with AXI4-Lite registers.

    The Toeplitz hash of the flow key's 2- or 4-tuple (Microsoft RSS hash types) and the
    indirection table that maps it to a receive queue; one request per cycle, answers in order
    four cycles later. Key, hash types and table are registers (``docs/registers/rss.md``).
    In Verilog each ``<stream>_tdata`` packs the payload's fields from bit 0 up, in the order
    its layout lists them.

    Parameters
    ----------
    entries : int
        Indirection-table entries, a power of two (2..65536).
    queue_bits : int
        Width of a queue number (1..16).
    tag_width : int
        Width of the tag carried from request to answer.

    Attributes
    ----------
    request : In(stream.Signature(RssRequest(tag_width)))
        One request per packet: its flow key fields and a tag.
    result : Out(stream.Signature(RssResponse(queue_bits, tag_width)))
        Queue, hash, whether it was hashed, and the tag; in request order.
    s_axil : In(AxiLiteSignature(7))
        Control, key and indirection-table registers: register block ``rss``
        (``docs/registers/rss.md``).
    """

    def __init__(self, *, entries=128, queue_bits=12, tag_width=8):
        super().__init__(rss_mod.Rss(entries=entries, queue_bits=queue_bits,
                                     tag_width=tag_width),
                         rss_mod.REGISTERS)


class MeterCore(_AxiLiteWrapper):
    """A bank of token-bucket meters (:class:`~amnic.flow.meter.MeterBank`) with AXI4-Lite
    registers.

    Single-rate two-colour policers (RFC 2697 committed bucket): each request names a meter
    and a length and gets GREEN or RED with the meter's action (pass, mark, drop), four cycles
    later, in order. Rates, bursts, modes and the green/red counters are registers
    (``docs/registers/meters.md``). In Verilog each ``<stream>_tdata`` packs the payload's
    fields from bit 0 up, in the order its layout lists them.

    Parameters
    ----------
    meters : int
        Number of meters, a power of two (2..4096).
    tag_width : int
        Width of the tag carried from request to result.

    Attributes
    ----------
    request : In(stream.Signature(MeterRequest(meters, tag_width)))
        Meter index, packet length in bytes and a tag.
    result : Out(stream.Signature(MeterResult(tag_width)))
        Colour, action and tag, in request order.
    tick : In(1)
        Advance the time base this cycle; tie high for one tick per clock cycle.
    now : Out(64)
        The time base: ticks since reset.
    s_axil : In(AxiLiteSignature(6))
        Meter configuration and counters: register block ``meters``
        (``docs/registers/meters.md``).
    """

    def __init__(self, meters=256, *, tag_width=16):
        super().__init__(meter_mod.MeterBank(meters, tag_width=tag_width), meter_mod.REGISTERS)


class VxlanEncapRequest(data.Struct):
    """One request to :class:`VxlanEncapCore`: :class:`~amnic.flow.vxlan.EncapRequest` with a
    template index in place of the template."""

    template: 6  #: template to use; must be below the core's template count
    inner_length: 16  #: bytes of the inner frame (destination address through payload)
    inner_sum: 16  #: ones'-complement sum of the inner frame as 16-bit words (RFC 1071)
    hash: 20  #: inner flow hash: UDP source port entropy and IPv6 flow label


class VxlanEncapCore(wiring.Component):
    """VXLAN outer-header generator: the template table on AXI4-Lite and the header builder.

    For each request the template it names is read from the table
    (:class:`~amnic.flow.vxlan.EncapTemplates`, written by software through
    ``docs/registers/vxlan_encap.md``) and :class:`~amnic.flow.vxlan.EncapHeaderBuilder` turns
    it, the inner frame's length, its ones'-complement sum and its flow hash into the outer
    Ethernet, IPv4 or IPv6, UDP and VXLAN headers (RFC 7348 clause 5): 50 or 70 bytes, ready to
    be prepended to the inner frame (for example by :class:`~amnic.net.editor.PacketEditor`).

    One request per cycle; a header leaves three cycles after its request when ``header`` is
    not back-pressured (template read, then the builder's two stages), in request order.
    Back-pressure on ``header`` stalls the pipeline; ``header.valid`` never waits on
    ``header.ready``. A
    template rewritten while requests flow is seen whole, old or new, by each request. In
    Verilog ``request_tdata`` and ``header_tdata`` pack the fields from bit 0 up, in the order
    the layouts list them (``header_tdata[7:0]`` is the first header byte).

    Parameters
    ----------
    templates : int
        Number of templates (1..64).

    Attributes
    ----------
    request : In(stream.Signature(VxlanEncapRequest))
        Template index, inner frame length, inner ones'-complement sum and flow hash.
    header : Out(stream.Signature(EncapHeader))
        The outer headers, byte 0 (first on the wire) in ``data[0]``, and their length.
    s_axil : In(AxiLiteSignature(7))
        The template table: register block ``vxlan_encap``
        (``docs/registers/vxlan_encap.md``).
    """

    def __init__(self, templates=64):
        self.templates = vxlan_mod.EncapTemplates(templates)
        self.registers = vxlan_mod.REGISTERS
        self.addr_width = self.registers.addr_width
        super().__init__({
            "request": In(stream.Signature(VxlanEncapRequest)),
            "header": Out(stream.Signature(vxlan_mod.EncapHeader)),
            "s_axil": In(AxiLiteSignature(self.addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.templates = templates = self.templates
        m.submodules.builder = builder = vxlan_mod.EncapHeaderBuilder()
        m.submodules.axil = axil = AxiLiteToRegisterBus(self.addr_width)
        wiring.connect(m, wiring.flipped(self.s_axil), axil.s_axil)
        wiring.connect(m, axil.bus, templates.bus)

        # Template read stage: the table's synchronous read port advances with this register,
        # so its data belongs to the request held here.
        held_valid = Signal()
        held = Signal(VxlanEncapRequest)
        advance = ~held_valid | builder.i.ready
        m.d.comb += [
            self.request.ready.eq(advance),
            templates.read_index.eq(self.request.payload.template),
            templates.read_enable.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [held_valid.eq(self.request.valid), held.eq(self.request.payload)]
        request = builder.i.payload
        m.d.comb += [
            builder.i.valid.eq(held_valid),
            request.template.eq(templates.read_data),
            request.inner_length.eq(held.inner_length),
            request.inner_sum.eq(held.inner_sum),
            request.hash.eq(held.hash),
        ]
        wiring.connect(m, builder.o, wiring.flipped(self.header))
        return m
