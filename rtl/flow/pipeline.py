"""The match-action pipeline: parse, classify, look up, police and rewrite every packet.

Packets enter on ``i`` (from a MAC or a host queue) and leave on ``o`` with a
:class:`~amnic.flow.records.Destination` record each on ``dest``; mirror copies leave on
``mirror`` / ``mirror_dest``. Inside::

    i -> length guard -> PacketParser -> packet FIFO ----------------> gate -> PacketEditor -> o
                              |                                      ^   ^                 \\
                              meta -> key -> ACL, flow table, RSS    |   | edit commands     mirror
                                       -> decide -> template -> meter -> decide -> VXLAN header

1. The length guard cuts packets longer than ``max_packet`` bytes short (they are dropped as
   GIANT), so the packet FIFO, which holds at least one packet of that size plus the packets
   whose decision is pending, can never fill up with one packet.
2. :class:`~amnic.net.parser.PacketParser` produces one metadata record per packet.
3. The flow key (:class:`~amnic.flow.key.FlowKey`) is built from the record: for a VXLAN
   packet (RFC 7348) with a complete inner IP header, the inner addresses, protocol and ports
   with the VNI; otherwise the outer ones. The VLAN is the outer tag's VID.
4. The key goes to the ACL (:mod:`amnic.flow.acl`), the exact-match flow table
   (:mod:`amnic.flow.table`) and RSS (:mod:`amnic.flow.rss`) at once.
5. First decision: a hit delivers as its :class:`~amnic.flow.action.FlowAction` says (to a
   queue, or to a queue group with the RSS hash choosing inside it), a miss goes to the RSS
   indirection table's queue. The packet is dropped, in this order of precedence, when it
   was flagged bad on input, is a giant, has a header error the ``control`` register drops, the
   ACL denies it, its flow says DROP, or its queue lies outside the range the ACL allows it
   (tenant isolation: whatever the flow table says, a packet reaches only the queues of its
   tenant; a mirror copy to a queue outside the range is suppressed and counted).
6. The encapsulation template of the flow is read, and the packet's meter polices it
   (:mod:`amnic.flow.meter`; packets without a meter bypass it in order). Red packets of a
   meter in DROP mode are dropped; red packets of a meter in MARK mode are reported in
   ``dest.meter_red`` and, when ``control.mark_ecn`` is set and the packet is ECN-capable
   (ECT(0) or ECT(1)), marked CE (RFC 3168 5).
7. Second decision: the edit of the packet (:class:`~amnic.net.editor.EditCommand`): VXLAN
   decapsulation (strip up to the inner Ethernet header), VLAN pop/push (IEEE 802.1Q), the
   DSCP/ECN rewrite of the outermost IP header left after those (RFC 2474, RFC 3168, with the
   IPv4 header checksum updated incrementally per RFC 1624 eqn. 3), or VXLAN encapsulation
   with the outer headers built by :class:`~amnic.flow.vxlan.EncapHeaderBuilder` from the
   template, the frame's length, its ones'-complement sum (corrected for the rewrite) and the
   RSS hash (or, when RSS did not hash the packet, a fold of the flow key) for the UDP source
   port entropy.
8. The gate passes each packet to the editor or discards it; the output is mirrored per
   packet.

Counters (64-bit, free running, in the pipeline's register block): received, delivered,
dropped per :class:`~amnic.flow.records.DropReason`, mirrored, mirror copies blocked, meter
marks and editor errors. Once the pipeline is idle, ``received_packets`` equals
``delivered_packets`` plus the sum of the ``dropped_*`` counters.

The register blocks of the pipeline and of its ACL, flow table, RSS, meters and templates share
one register bus (:attr:`MatchActionPipeline.windows`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterFile, version
from amnic.csr.bus import RegisterBusDecoder, RegisterBusSignature
from amnic.csr.ids import MATCH_ACTION
from amnic.net.editor import PacketEditor
from amnic.net.metadata import ChecksumStatus, L3Kind, L4Kind, ParseResult
from amnic.net.parser import PacketParser
from amnic.net.window import fold16
from amnic.stream import PacketLayout, PacketSignature
from amnic.stream.fork import eager_fork, join
from amnic.stream.skid import StreamSkidBuffer

from . import acl as acl_mod
from . import meter as meter_mod
from . import rss as rss_mod
from . import table as table_mod
from . import vxlan as vxlan_mod
from .acl import Acl, AclAction, AclVerdict, TenantGuard
from .action import ACTION_BITS, Delivery, FlowAction, TunnelOp, VlanOp
from .key import FlowKey
from .meter import MeterAction, MeterBank
from .records import CONTROL_RESET, Destination, DropReason, PipelineControl
from .rss import Rss
from .table import FlowTable
from .vxlan import ENCAP_MAX_BYTES, EncapHeaderBuilder, EncapTemplate, EncapTemplates

__all__ = ["MatchActionPipeline", "REGISTERS", "COUNTERS"]

#: The pipeline's counters, in register order: (name, description).
COUNTERS = (
    ("received_packets", "Packets that entered the pipeline and were decided."),
    ("received_bytes", "Bytes of those packets (a giant counts its first `max_packet` bytes "
                       "and at most one beat more)."),
    ("delivered_packets", "Packets that left on the packet output."),
    ("delivered_bytes", "Bytes that left on the packet output (after edits)."),
    ("mirrored_packets", "Mirror copies decided."),
    ("mirror_blocked", "Mirror copies suppressed because the mirror queue lies outside the "
                       "packet's ACL queue range."),
    ("meter_marked", "Delivered packets a meter in MARK mode found red."),
    ("edit_errors", "Packets whose edit did not fit (never expected; see EditError)."),
) + tuple((f"dropped_{r.name.lower()}", f"Packets dropped: {r.name} (DropReason).")
          for r in DropReason if r != DropReason.NONE)

_COUNTER_BASE = 0x40


def _registers():
    control_fields = []
    docs = {
        "drop_truncated": "Drop packets whose frame or IP packet ends inside a header.",
        "drop_malformed": "Drop packets with an impossible header value or an IP/UDP length "
                          "that disagrees with the frame.",
        "drop_bad_ipv4_checksum": "Drop packets with a bad IPv4 header checksum (outer or "
                                  "inner).",
        "drop_bad_l4_checksum": "Drop packets with a bad TCP/UDP checksum (outer or inner); "
                                "otherwise they are delivered with the status in `dest`.",
        "mark_ecn": "Set ECN to CE (RFC 3168) in ECN-capable packets a MARK meter finds red.",
    }
    layout = PipelineControl.as_shape()
    for name, doc in docs.items():
        control_fields.append(Field(name, layout[name].offset, 1, doc))
    regs = [
        Register("control", 0x0C, Access.RW, "What bad input the pipeline drops, and marking.",
                 init=CONTROL_RESET, fields=tuple(control_fields)),
        Register("max_packet", 0x10, Access.RO, "Longest packet in bytes; longer ones are "
                                                "dropped as GIANT."),
        Register("port_width", 0x14, Access.RO, "Bits of the ingress port in `user`."),
    ]
    for n, (name, doc) in enumerate(COUNTERS):
        regs.append(Register(name, _COUNTER_BASE + 8 * n, Access.RO, doc, width=64))
    return RegisterBlock("match_action", MATCH_ACTION, version(1, 0), regs,
                         "Match-action pipeline: bad-input policy and packet counters.")


#: The pipeline's own register block.
REGISTERS = _registers()


class _IpHead(data.Struct):
    """What the edit stage needs of an IP header."""

    kind: L3Kind
    offset: 16
    head: 16
    header_checksum: 16


class _Context(data.Struct):
    """Per packet, from the parser to the decisions."""

    length: 16
    frame_sum: 16
    port: 8
    bad: 1
    giant: 1
    malformed: 1
    vni: 24
    decap_ok: 1
    inner_offset: 16
    vlan_count: 2
    l2: 1
    outer_l3: _IpHead
    inner_l3: _IpHead
    outer_l3_checksum: ChecksumStatus
    outer_l4_checksum: ChecksumStatus
    inner_l3_checksum: ChecksumStatus
    inner_l4_checksum: ChecksumStatus
    key_fold: 20
    l4_valid: 1


class _Verdict(data.Struct):
    """After the first decision."""

    ctx: _Context
    drop: DropReason
    queue: 12
    mirror: 1
    mirror_queue: 12
    mirror_blocked: 1
    hit: 1
    index: 20
    action: FlowAction
    hash: 32
    hashed: 1


class _EditPlan(data.Struct):
    """After the second decision: everything of the edit command but the VXLAN header."""

    drop: DropReason
    dest: Destination
    mirror: 1
    mirror_queue: 12
    mirror_blocked: 1
    meter_red: 1
    length: 16
    encap: 1
    offset: 16
    remove: 8
    insert: 7
    tag: data.ArrayLayout(8, 4)
    overwrites: data.ArrayLayout(data.StructLayout({
        "enable": 1, "position": 16, "value": data.ArrayLayout(8, 2),
        "mask": data.ArrayLayout(8, 2)}), 2)


def _ones_add(*values):
    """Ones'-complement sum (RFC 1071) of 16-bit values, folded to 16 bits."""
    total = values[0]
    for v in values[1:]:
        total = total + v
    return fold16(total)


class _LengthGuard(wiring.Component):
    """Cut packets longer than ``max_packet`` bytes short and flag them.

    The beat on which a packet's length passes ``max_packet`` goes out as its last beat with
    the giant flag set; the rest of the packet is discarded. Combinational. ``user`` goes out
    as ``{bad (input bit 0), giant, input bits 1 and up}``.
    """

    def __init__(self, width, user_width, max_packet):
        self.max_packet = max_packet
        self.lanes = width // 8
        super().__init__({
            "i": In(PacketSignature(width, user_width)),
            "o": Out(PacketSignature(width, user_width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.i.payload
        count = Signal(range(self.max_packet + self.lanes + 1))
        cutting = Signal()
        nbytes = sum(beat.keep[k] for k in range(self.lanes))
        total = count + nbytes
        over = total > self.max_packet
        m.d.comb += [
            self.o.valid.eq(self.i.valid & ~cutting),
            self.i.ready.eq(cutting | self.o.ready),
            self.o.payload.data.eq(beat.data),
            self.o.payload.keep.eq(beat.keep),
            self.o.payload.last.eq(beat.last | over),
            self.o.payload.user.eq(Cat(beat.user[0], over, beat.user[1:])),
        ]
        with m.If(self.i.valid & self.i.ready):
            with m.If(beat.last):
                m.d.sync += [count.eq(0), cutting.eq(0)]
            with m.Elif(~cutting):
                with m.If(over):
                    m.d.sync += [cutting.eq(1), count.eq(0)]
                with m.Else():
                    m.d.sync += count.eq(total)
        return m


class MatchActionPipeline(wiring.Component):
    """Parser, ACL, flow table, RSS, meters and header rewrites between two packet streams.

    See the module description for what happens to a packet.

    Contract: every packet on ``i`` either leaves on ``o`` (edited; with its ``dest`` record)
    or is dropped and counted under one :class:`~amnic.flow.records.DropReason`; packets keep
    their order and never mix. ``dest`` carries one record per packet on ``o``, in order,
    valid no later than the packet's first beat; ``mirror`` / ``mirror_dest`` likewise for the
    mirror copies, which leave beat for beat with the original (``o`` and ``mirror`` both take
    a mirrored beat before the next beat moves). A packet is held in the packet FIFO until its
    decision is made (store and forward): latency from its last beat on ``i`` to its first beat
    on ``o`` is :attr:`latency` cycles when nothing is back-pressured.

    Throughput: one beat per cycle on ``i``; packets of one beat (up to ``width // 8`` bytes)
    pass at one per cycle. Edits that lengthen a packet cost what
    :class:`~amnic.net.editor.PacketEditor` documents (a VLAN push one cycle, a VXLAN
    encapsulation ``ceil(length / lanes)`` cycles per packet).

    Parameters
    ----------
    width : int
        Data width of the packet streams in bits (64 for 10G/25G, 512 for 100G).
    port_width : int
        Bits of the ingress port carried in ``i.payload.user[1:]``.
    max_packet : int
        Longest packet in bytes (9600 covers jumbo frames); sets the packet FIFO's depth.
    flow_entries, acl_rules, rss_entries, meters, templates : int
        Sizes of the flow table, ACL, RSS indirection table, meter bank and template table.
    flow_ways : int
        Slots per flow-table bucket.
    flow_ram_style : str or None
        ``ram_style`` of the flow-table memories: ``"block"``, ``"ultra"`` (UltraScale+
        UltraRAM) or ``None`` (the synthesis tool chooses).

    Attributes
    ----------
    i : In(PacketSignature(width, 1 + port_width))
        Packets. ``user`` bit 0 on the last beat flags a bad frame (the MAC's FCS/PHY error
        flag); ``user[1:]`` on the last beat is the ingress port.
    o : Out(PacketSignature(width, 1))
        Delivered packets. ``user`` bit 0 is set only if an edit did not fit (never expected).
    dest : Out(stream.Signature(Destination))
    mirror : Out(PacketSignature(width, 1))
    mirror_dest : Out(stream.Signature(Destination))
    bus : In(RegisterBusSignature(addr_width))
        Registers of the pipeline and its blocks, at :attr:`windows`.
    """

    def __init__(self, width=64, *, port_width=8, max_packet=9600, flow_entries=65536,
                 flow_ways=4, flow_ram_style=None, acl_rules=64, rss_entries=128, meters=256,
                 templates=64):
        if width % 64 or not 64 <= width <= 1024:
            raise ValueError(f"width must be a multiple of 64 from 64 to 1024, not {width}")
        if not 1 <= port_width <= 8:
            raise ValueError(f"port width must be 1..8, not {port_width}")
        if max_packet < 64:
            raise ValueError(f"max_packet must be at least 64, not {max_packet}")
        if flow_entries > 1 << 20:
            raise ValueError("at most 2**20 flow entries")
        if meters > 256:
            raise ValueError("at most 256 meters (the width of FlowAction.meter_index)")
        self.width = width
        self.lanes = width // 8
        self.port_width = port_width
        self.max_packet = max_packet
        self.sizes = dict(flow_entries=flow_entries, flow_ways=flow_ways, acl_rules=acl_rules,
                          rss_entries=rss_entries, meters=meters, templates=templates)
        self.flow_ram_style = flow_ram_style
        beats = -(-(max_packet + self.lanes) // self.lanes)
        self.packet_depth = 1 << ceil_log2(beats + 64)
        blocks = [("match_action", REGISTERS), ("acl", acl_mod.REGISTERS),
                  ("flow_table", table_mod.REGISTERS), ("rss", rss_mod.REGISTERS),
                  ("meters", meter_mod.REGISTERS), ("vxlan_templates", vxlan_mod.REGISTERS)]
        #: ``{name: (base, RegisterBlock)}``: where each block's registers are on ``bus``.
        self.windows = {}
        base = 0
        for name, block in sorted(blocks, key=lambda b: -b[1].size):
            self.windows[name] = (base, block)
            base += block.size
        self.addr_width = ceil_log2(base)
        self.windows = dict(sorted(self.windows.items(), key=lambda w: w[1][0]))
        super().__init__({
            "i": In(PacketSignature(width, 1 + port_width)),
            "o": Out(PacketSignature(width, 1)),
            "dest": Out(stream.Signature(Destination)),
            "mirror": Out(PacketSignature(width, 1)),
            "mirror_dest": Out(stream.Signature(Destination)),
            "bus": In(RegisterBusSignature(self.addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        sz = self.sizes

        m.submodules.guard = guard = _LengthGuard(self.width, 1 + self.port_width,
                                                  self.max_packet)
        m.submodules.parser = parser = PacketParser(self.width, 2 + self.port_width)
        m.submodules.acl = acl = Acl(sz["acl_rules"])
        m.submodules.table = table = FlowTable(sz["flow_entries"], ACTION_BITS,
                                               ways=sz["flow_ways"],
                                               ram_style=self.flow_ram_style)
        m.submodules.rss = rss = Rss(entries=sz["rss_entries"])
        m.submodules.meters = meters = MeterBank(sz["meters"])
        m.submodules.templates = templates = EncapTemplates(sz["templates"])
        m.submodules.encap = encap = EncapHeaderBuilder()
        m.submodules.editor = editor = PacketEditor(
            self.width, 1, max_insert=ENCAP_MAX_BYTES, max_remove=255, overwrites=2)
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        # The parts, for simulations that watch the inside (benchmarks).
        self.parts = dict(parser=parser, acl=acl, table=table, rss=rss, meters=meters,
                          encap=encap, editor=editor)
        self._bus(m, regs, acl, table, rss, meters, templates)
        control = Signal(PipelineControl)
        m.d.comb += [
            control.as_value().eq(regs.value.control),
            regs.status.max_packet.eq(self.max_packet),
            regs.status.port_width.eq(self.port_width),
            table.now.eq(meters.now),
        ]

        wiring.connect(m, wiring.flipped(self.i), guard.i)
        wiring.connect(m, guard.o, parser.i)

        # The packets wait in the packet FIFO; the user bits of each last beat (bad, port,
        # giant) wait in `side` for the packet's metadata record.
        beat_layout = PacketLayout(self.width, 1)
        m.submodules.packets = packets = fifo.SyncFIFOBuffered(
            width=beat_layout.size, depth=self.packet_depth)
        m.submodules.side = side = fifo.SyncFIFOBuffered(
            width=2 + self.port_width, depth=parser.meta_depth + 2)
        out = parser.o.payload
        stored = Signal(beat_layout)
        m.d.comb += [
            stored.data.eq(out.data),
            stored.keep.eq(out.keep),
            stored.last.eq(out.last),
            packets.w_data.eq(stored),
            packets.w_en.eq(parser.o.valid & side.w_rdy),
            parser.o.ready.eq(packets.w_rdy & side.w_rdy),
            side.w_data.eq(out.user),
            side.w_en.eq(parser.o.valid & parser.o.ready & out.last),
        ]

        # Key stage.
        k_valid, k_ready = Signal(), Signal()
        k_key, k_ctx = Signal(FlowKey), Signal(_Context)
        k_advance = ~k_valid | k_ready
        meta_valid, meta_fire = join(m, [parser.meta.valid, side.r_rdy], k_advance, "meta")
        m.d.comb += [parser.meta.ready.eq(meta_fire), side.r_en.eq(meta_fire)]
        user = side.r_data
        key, ctx = self._key(m, control, parser.meta.payload, user)
        with m.If(k_advance):
            m.d.sync += [k_valid.eq(meta_valid), k_key.eq(key), k_ctx.eq(ctx)]

        # Fork to the ACL, the flow table, RSS and the context FIFO.
        seq = Signal(16)
        m.submodules.ctx1 = ctx1 = fifo.SyncFIFOBuffered(width=_Context.as_shape().size,
                                                         depth=16)
        valids, fork_ready = eager_fork(
            m, k_valid, [acl.i.ready, table.i.ready, rss.i.ready, ctx1.w_rdy], "lookup")
        m.d.comb += k_ready.eq(fork_ready)
        with m.If(fork_ready):
            m.d.sync += seq.eq(seq + 1)
        m.d.comb += [
            acl.i.valid.eq(valids[0]),
            acl.i.payload.key.eq(k_key),
            acl.i.payload.tag.eq(seq),
            table.i.valid.eq(valids[1]),
            table.i.payload.key.eq(k_key),
            table.i.payload.length.eq(k_ctx.length),
            table.i.payload.tag.eq(seq),
            rss.i.valid.eq(valids[2]),
            rss.i.payload.tag.eq(seq),
            ctx1.w_en.eq(valids[3]),
            ctx1.w_data.eq(k_ctx),
        ]
        for name in ("ipv6", "protocol", "src_addr", "dst_addr", "src_port", "dst_port"):
            m.d.comb += getattr(rss.i.payload, name).eq(getattr(k_key, name))
        m.d.comb += rss.i.payload.l4_valid.eq(k_ctx.l4_valid)

        # First decision.
        a_valid, a_ready = Signal(), Signal()
        a = Signal(_Verdict)
        a_advance = ~a_valid | a_ready
        # The blocks' latencies differ (ACL 3, flow table and RSS 4 cycles): a FIFO behind
        # each keeps one from stalling while it waits for the others, so all run at full rate.
        results = [_fifo_after(m, f"{name}_results", block.o)
                   for name, block in (("acl", acl), ("table", table), ("rss", rss))]
        j1_valid, j1_fire = join(m, [r.r_rdy for r in results] + [ctx1.r_rdy], a_advance,
                                 "lookup")
        for r in results:
            m.d.comb += r.r_en.eq(j1_fire)
        m.d.comb += ctx1.r_en.eq(j1_fire)
        acl_result, flow_result, rss_result = (
            data.View(block.o.payload.shape(), r.r_data)
            for block, r in zip((acl, table, rss), results, strict=True))
        verdict = self._decide(m, data.View(_Context, ctx1.r_data), acl_result, flow_result,
                               rss_result)
        with m.If(a_advance):
            m.d.sync += [a_valid.eq(j1_valid), a.eq(verdict)]

        # Template read (a synchronous memory port that advances with the stage).
        t_valid, t_ready = Signal(), Signal()
        t = Signal(_Verdict)
        t_advance = ~t_valid | t_ready
        m.d.comb += [
            a_ready.eq(t_advance),
            templates.read_index.eq(a.action.template),
            templates.read_enable.eq(t_advance),
        ]
        with m.If(t_advance):
            m.d.sync += [t_valid.eq(a_valid), t.eq(a)]
        template = templates.read_data

        # Fork to the meters and the context FIFO.
        ctx2_layout = data.StructLayout({"verdict": _Verdict, "template": EncapTemplate})
        m.submodules.ctx2 = ctx2 = fifo.SyncFIFOBuffered(width=ctx2_layout.size, depth=16)
        valids, fork_ready = eager_fork(m, t_valid, [meters.i.ready, ctx2.w_rdy], "meter")
        metered = (t.drop == DropReason.NONE) & t.hit & t.action.meter
        m.d.comb += [
            t_ready.eq(fork_ready),
            meters.i.valid.eq(valids[0]),
            meters.i.payload.index.eq(t.action.meter_index),
            meters.i.payload.length.eq(t.ctx.length),
            meters.i.payload.tag.eq(seq),
            meters.i.payload.bypass.eq(~metered),
            ctx2.w_en.eq(valids[1]),
            ctx2.w_data.eq(Cat(t, template)),
        ]

        # Second decision.
        b_valid, b_ready = Signal(), Signal()
        b = Signal(_EditPlan)
        b_request = Signal(vxlan_mod.EncapRequest)
        b_advance = ~b_valid | b_ready
        j2_valid, j2_fire = join(m, [meters.o.valid, ctx2.r_rdy], b_advance, "meter")
        m.d.comb += [meters.o.ready.eq(j2_fire), ctx2.r_en.eq(j2_fire)]
        held = data.View(ctx2_layout, ctx2.r_data)
        plan, request = self._plan(m, control, held.verdict, held.template, meters.o.payload)
        with m.If(b_advance):
            m.d.sync += [b_valid.eq(j2_valid), b.eq(plan), b_request.eq(request)]

        # Fork to the VXLAN header builder and the context FIFO.
        m.submodules.ctx3 = ctx3 = fifo.SyncFIFOBuffered(width=_EditPlan.as_shape().size,
                                                         depth=8)
        valids, fork_ready = eager_fork(m, b_valid, [encap.i.ready, ctx3.w_rdy], "encap")
        m.d.comb += [
            b_ready.eq(fork_ready),
            encap.i.valid.eq(valids[0]),
            encap.i.payload.eq(b_request),
            ctx3.w_en.eq(valids[1]),
            ctx3.w_data.eq(b),
        ]

        # Final: write the verdict, the edit command and the destination records.
        m.submodules.verdicts = verdicts = fifo.SyncFIFOBuffered(width=1, depth=32)
        m.submodules.commands = commands = fifo.SyncFIFOBuffered(
            width=editor.command_layout.size, depth=16)
        m.submodules.dests = dests = fifo.SyncFIFOBuffered(
            width=Destination.as_shape().size, depth=32)
        m.submodules.mirror_flags = mirror_flags = fifo.SyncFIFOBuffered(width=1, depth=32)
        m.submodules.mirror_dests = mirror_dests = fifo.SyncFIFOBuffered(
            width=Destination.as_shape().size, depth=16)
        room = (verdicts.w_rdy & commands.w_rdy & dests.w_rdy & mirror_flags.w_rdy
                & mirror_dests.w_rdy)
        f_valid, f_fire = join(m, [encap.o.valid, ctx3.r_rdy], room, "final")
        m.d.comb += [encap.o.ready.eq(f_fire), ctx3.r_en.eq(f_fire)]
        final = data.View(_EditPlan, ctx3.r_data)
        header = encap.o.payload
        deliver = final.drop == DropReason.NONE
        command = Signal(editor.command_layout)
        m.d.comb += [
            command.offset.eq(final.offset),
            command.remove.eq(final.remove),
            command.insert.eq(Mux(final.encap, header.length, final.insert)),
            command.overwrites.as_value().eq(final.overwrites.as_value()),
        ]
        for n in range(ENCAP_MAX_BYTES):
            tag_byte = final.tag[n] if n < 4 else 0
            m.d.comb += command.insert_data[n].eq(Mux(final.encap, header.data[n], tag_byte))
        mirror_dest = Signal(Destination)
        m.d.comb += [
            mirror_dest.eq(final.dest),
            mirror_dest.queue.eq(final.mirror_queue),
            mirror_dest.mirror.eq(1),
            verdicts.w_en.eq(f_fire),
            verdicts.w_data.eq(~deliver),
            commands.w_en.eq(f_fire & deliver),
            commands.w_data.eq(command),
            dests.w_en.eq(f_fire & deliver),
            dests.w_data.eq(final.dest),
            mirror_flags.w_en.eq(f_fire & deliver),
            mirror_flags.w_data.eq(final.mirror),
            mirror_dests.w_en.eq(f_fire & deliver & final.mirror),
            mirror_dests.w_data.eq(mirror_dest),
        ]

        # Gate: each packet to the editor or nowhere.
        head = data.View(beat_layout, packets.r_data)
        here = packets.r_rdy & verdicts.r_rdy
        drop = verdicts.r_data[0]
        take = Signal()
        m.d.comb += [
            editor.i.valid.eq(here & ~drop),
            editor.i.payload.data.eq(head.data),
            editor.i.payload.keep.eq(head.keep),
            editor.i.payload.last.eq(head.last),
            take.eq(here & (drop | editor.i.ready)),
            packets.r_en.eq(take),
            verdicts.r_en.eq(take & head.last),
            editor.cmd.valid.eq(commands.r_rdy),
            editor.cmd.payload.as_value().eq(commands.r_data),
            commands.r_en.eq(editor.cmd.ready),
        ]

        # Output: every packet to `o`, mirrored ones to `mirror` as well.
        m.submodules.skid = skid = StreamSkidBuffer(beat_layout)
        wiring.connect(m, editor.o, skid.i)
        mirrored = mirror_flags.r_data[0]
        go = skid.o.valid & mirror_flags.r_rdy
        valids, out_ready = eager_fork(m, go, [self.o.ready, self.mirror.ready | ~mirrored],
                                       "output")
        m.d.comb += [
            self.o.valid.eq(valids[0]),
            self.o.payload.eq(skid.o.payload),
            self.mirror.valid.eq(valids[1] & mirrored),
            self.mirror.payload.eq(skid.o.payload),
            skid.o.ready.eq(out_ready),
            mirror_flags.r_en.eq(out_ready & skid.o.payload.last),
            self.dest.valid.eq(dests.r_rdy),
            self.dest.payload.as_value().eq(dests.r_data),
            dests.r_en.eq(self.dest.ready),
            self.mirror_dest.valid.eq(mirror_dests.r_rdy),
            self.mirror_dest.payload.as_value().eq(mirror_dests.r_data),
            mirror_dests.r_en.eq(self.mirror_dest.ready),
        ]

        self._count(m, regs, f_fire, final, editor)
        return m

    # -- stages ----------------------------------------------------------------------------------

    def _key(self, m, control, meta, user):
        """The flow key and the context of one metadata record (combinational)."""
        meta = data.View(ParseResult, meta.as_value())
        ip_kinds = (L3Kind.IPV4, L3Kind.IPV6)
        inner_ip = (meta.inner.l3.kind == L3Kind.IPV4) | (meta.inner.l3.kind == L3Kind.IPV6)
        use_inner = meta.vxlan.present & inner_ip & (meta.inner.l3.offset != 0)
        level = Signal(meta.outer.shape(), name="key_level")
        m.d.comb += level.eq(Mux(use_inner, meta.inner.as_value(), meta.outer.as_value()))
        is_ip = Signal(name="key_is_ip")
        m.d.comb += is_ip.eq(((level.l3.kind == ip_kinds[0]) | (level.l3.kind == ip_kinds[1]))
                             & (level.l3.offset != 0))
        # Ports of TCP/UDP only, and not of fragments: every fragment of a datagram gets the
        # same key.
        l4 = Signal(name="key_l4")
        m.d.comb += l4.eq(((level.l4.kind == L4Kind.TCP) | (level.l4.kind == L4Kind.UDP))
                          & ~level.l3.fragment)
        key = Signal(FlowKey, name="key")
        m.d.comb += [
            key.port.eq(user[2:]),
            key.vlan.eq(meta.outer.eth.outer_vlan.vid),
            key.vni.eq(meta.vxlan.vni),
            key.ipv6.eq(is_ip & (level.l3.kind == L3Kind.IPV6)),
            key.protocol.eq(Mux(is_ip, level.l3.protocol, 0)),
            key.src_addr.eq(Mux(is_ip, level.l3.src, 0)),
            key.dst_addr.eq(Mux(is_ip, level.l3.dst, 0)),
            key.src_port.eq(Mux(l4, level.l4.src_port, 0)),
            key.dst_port.eq(Mux(l4, level.l4.dst_port, 0)),
        ]
        ctx = Signal(_Context, name="key_ctx")
        err = meta.errors
        bad_ip4 = ((meta.outer.l3.checksum == ChecksumStatus.BAD)
                   | (meta.inner.l3.checksum == ChecksumStatus.BAD))
        bad_l4 = ((meta.outer.l4.checksum == ChecksumStatus.BAD)
                  | (meta.inner.l4.checksum == ChecksumStatus.BAD))
        inner_offset = meta.outer.l4.offset + 16
        fold = Signal(20, name="key_fold")
        bits = key.as_value()
        m.d.comb += fold.eq(_xor_fold(bits, 20))
        for level_name, rec in (("outer_l3", meta.outer.l3), ("inner_l3", meta.inner.l3)):
            dst = getattr(ctx, level_name)
            m.d.comb += [
                dst.kind.eq(rec.kind),
                dst.offset.eq(rec.offset),
                dst.head.eq(rec.head),
                dst.header_checksum.eq(rec.header_checksum),
            ]
        m.d.comb += [
            ctx.length.eq(meta.frame_length),
            ctx.frame_sum.eq(meta.frame_sum),
            ctx.port.eq(user[2:]),
            ctx.bad.eq(user[0]),
            ctx.giant.eq(user[1]),
            ctx.malformed.eq(
                (control.drop_truncated & err.truncated)
                | (control.drop_malformed & (err.malformed | err.ip_length))
                | (control.drop_bad_ipv4_checksum & bad_ip4)
                | (control.drop_bad_l4_checksum & bad_l4)),
            ctx.vni.eq(meta.vxlan.vni),
            ctx.decap_ok.eq(meta.vxlan.present & (meta.inner.l3.kind != L3Kind.NONE)
                            & (inner_offset < 256)),
            ctx.inner_offset.eq(inner_offset),
            ctx.vlan_count.eq(meta.outer.eth.vlan_count),
            ctx.l2.eq(meta.outer.l3.kind != L3Kind.NONE),
            ctx.outer_l3_checksum.eq(meta.outer.l3.checksum),
            ctx.outer_l4_checksum.eq(meta.outer.l4.checksum),
            ctx.inner_l3_checksum.eq(meta.inner.l3.checksum),
            ctx.inner_l4_checksum.eq(meta.inner.l4.checksum),
            ctx.key_fold.eq(fold),
            ctx.l4_valid.eq(l4),
        ]
        return key, ctx

    def _decide(self, m, ctx, acl_result, flow_result, rss_result):
        """The first decision: queue, mirror and drop reason (combinational)."""
        m.submodules.tenant = tenant = TenantGuard()
        m.submodules.tenant_mirror = tenant_mirror = TenantGuard()
        hit = flow_result.hit
        act = data.View(FlowAction, flow_result.action)
        acl_action = data.View(AclAction, acl_result.action.as_value())
        mask = Signal(12, name="group_mask")
        m.d.comb += mask.eq((Const(1, 13) << act.group_log2) - 1)
        flow_queue = Mux(act.delivery == Delivery.GROUP,
                         (act.queue + (rss_result.hash[:12] & mask))[:12], act.queue)
        v = Signal(_Verdict, name="verdict")
        mirror_wanted = hit & act.mirror
        m.d.comb += [
            tenant.action.eq(acl_action),
            tenant.queue.eq(v.queue),
            tenant_mirror.action.eq(acl_action),
            tenant_mirror.queue.eq(act.mirror_queue),
            v.ctx.eq(ctx),
            v.queue.eq(Mux(hit, flow_queue, rss_result.queue)),
            v.mirror.eq(mirror_wanted & tenant_mirror.allowed),
            v.mirror_queue.eq(act.mirror_queue),
            v.mirror_blocked.eq(mirror_wanted & ~tenant_mirror.allowed),
            v.hit.eq(hit),
            v.index.eq(flow_result.index),
            v.action.eq(Mux(hit, act.as_value(), 0)),
            v.hash.eq(rss_result.hash),
            v.hashed.eq(rss_result.hashed),
        ]
        with m.If(ctx.bad):
            m.d.comb += v.drop.eq(DropReason.ERRORED)
        with m.Elif(ctx.giant):
            m.d.comb += v.drop.eq(DropReason.GIANT)
        with m.Elif(ctx.malformed):
            m.d.comb += v.drop.eq(DropReason.MALFORMED)
        with m.Elif(acl_action.verdict == AclVerdict.DENY):
            m.d.comb += v.drop.eq(DropReason.ACL_DENY)
        with m.Elif(hit & (act.delivery == Delivery.DROP)):
            m.d.comb += v.drop.eq(DropReason.FLOW_DROP)
        with m.Elif(~tenant.allowed):
            m.d.comb += v.drop.eq(DropReason.TENANT)
        return v

    def _plan(self, m, control, v, template, meter_result):
        """The second decision: meter outcome and the edit (combinational)."""
        act, ctx = v.action, v.ctx
        mark = meter_result.action == MeterAction.MARK
        plan = Signal(_EditPlan, name="plan")
        with m.If(v.drop != DropReason.NONE):
            m.d.comb += plan.drop.eq(v.drop)
        with m.Elif(meter_result.action == MeterAction.DROP):
            m.d.comb += plan.drop.eq(DropReason.METER_DROP)

        decap = Signal(name="plan_decap")
        encap = Signal(name="plan_encap")
        push = Signal(name="plan_push")
        pop = Signal(name="plan_pop")
        m.d.comb += [
            decap.eq((act.tunnel_op == TunnelOp.DECAP) & ctx.decap_ok),
            encap.eq(act.tunnel_op == TunnelOp.ENCAP),
            push.eq((act.vlan_op == VlanOp.PUSH) & ctx.l2),
            pop.eq((act.vlan_op == VlanOp.POP) & (ctx.vlan_count != 0)),
        ]
        encap_len = Mux(template.ipv6, 70, 50)

        # DSCP/ECN of the outermost IP header once the length edit is done (RFC 2474, 3168).
        target = Signal(_IpHead, name="plan_target")
        m.d.comb += target.eq(Mux(decap, ctx.inner_l3.as_value(), ctx.outer_l3.as_value()))
        delta = Mux(decap, -ctx.inner_offset,
                    Mux(pop, -4, Mux(push, 4, Mux(encap, encap_len, 0))))
        position = Signal(16, name="plan_ip_position")
        m.d.comb += position.eq(target.offset + delta)
        present = target.offset != 0
        ip4 = present & (target.kind == L3Kind.IPV4)
        ip6 = present & (target.kind == L3Kind.IPV6)
        tos = Mux(ip6, target.head[4:12], target.head[0:8])
        ecn = Mux(act.set_ecn, act.ecn, tos[0:2])
        ce = control.mark_ecn & mark & (ecn != 0)
        new_tos = Cat(Mux(ce, 3, ecn), Mux(act.set_dscp, act.dscp, tos[2:8]))
        new_head = Signal(16, name="plan_new_head")
        m.d.comb += new_head.eq(Mux(ip6, Cat(target.head[0:4], new_tos, target.head[12:16]),
                                    Cat(new_tos, target.head[8:16])))
        rewrite = Signal(name="plan_rewrite")
        m.d.comb += rewrite.eq((ip4 | ip6) & (act.set_dscp | act.set_ecn | ce))
        # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
        checksum = Signal(16, name="plan_ipv4_checksum")
        m.d.comb += checksum.eq(~_ones_add(~target.header_checksum, ~target.head, new_head))
        ov = plan.overwrites
        m.d.comb += [
            ov[0].enable.eq(rewrite),
            ov[0].position.eq(position),
            ov[0].value[0].eq(new_head[8:16]),
            ov[0].value[1].eq(new_head[0:8]),
            ov[0].mask[0].eq(Mux(ip6, 0x0F, 0x00)),
            ov[0].mask[1].eq(Mux(ip6, 0xF0, 0xFF)),
            ov[1].enable.eq(rewrite & ip4),
            ov[1].position.eq(position + 10),
            ov[1].value[0].eq(checksum[8:16]),
            ov[1].value[1].eq(checksum[0:8]),
            ov[1].mask[0].eq(0xFF),
            ov[1].mask[1].eq(0xFF),
        ]

        m.d.comb += [
            plan.encap.eq(encap),
            plan.offset.eq(Mux(push | pop, 12, 0)),
            plan.remove.eq(Mux(decap, ctx.inner_offset, Mux(pop, 4, 0))),
            plan.insert.eq(Mux(push, 4, 0)),
            # IEEE 802.1Q-2018 9.6: TPID 0x8100, then PCP, DEI (0) and VID.
            plan.tag[0].eq(0x81),
            plan.tag[1].eq(0x00),
            plan.tag[2].eq(Cat(act.vid[8:12], Const(0, 1), act.pcp)),
            plan.tag[3].eq(act.vid[0:8]),
            plan.mirror.eq(v.mirror),
            plan.mirror_queue.eq(v.mirror_queue),
            plan.mirror_blocked.eq(v.mirror_blocked),
            plan.meter_red.eq(mark),
            plan.length.eq(ctx.length),
        ]
        dest = plan.dest
        m.d.comb += [
            dest.queue.eq(v.queue),
            dest.flow_hit.eq(v.hit),
            dest.flow_index.eq(v.index),
            dest.rss_hash.eq(v.hash),
            dest.rss_hashed.eq(v.hashed),
            dest.port.eq(ctx.port),
            dest.vni.eq(ctx.vni),
            dest.decapsulated.eq(decap),
            dest.meter_red.eq(mark),
            dest.outer_l3_checksum.eq(ctx.outer_l3_checksum),
            dest.outer_l4_checksum.eq(ctx.outer_l4_checksum),
            dest.inner_l3_checksum.eq(ctx.inner_l3_checksum),
            dest.inner_l4_checksum.eq(ctx.inner_l4_checksum),
        ]

        # The encapsulation: the sum of the frame changes with an IPv6 traffic-class rewrite
        # (an IPv4 rewrite changes the header checksum by the opposite amount).
        request = Signal(vxlan_mod.EncapRequest, name="plan_encap_request")
        m.d.comb += [
            request.template.eq(template),
            request.inner_length.eq(ctx.length),
            request.inner_sum.eq(Mux(rewrite & ip6,
                                     _ones_add(ctx.frame_sum, ~target.head, new_head),
                                     ctx.frame_sum)),
            request.hash.eq(Mux(v.hashed, v.hash[:20], ctx.key_fold)),
        ]
        return plan, request

    def _count(self, m, regs, decided, final, editor):
        """The pipeline's counters."""
        counters = {name: Signal(64, name=f"count_{name}") for name, _ in COUNTERS}
        for name, counter in counters.items():
            m.d.comb += getattr(regs.status, name).eq(counter)

        def bump(name, amount=1):
            m.d.sync += counters[name].eq(counters[name] + amount)

        deliver = final.drop == DropReason.NONE
        with m.If(decided):
            bump("received_packets")
            bump("received_bytes", final.length)
            for reason in DropReason:
                if reason != DropReason.NONE:
                    with m.If(final.drop == reason):
                        bump(f"dropped_{reason.name.lower()}")
            with m.If(deliver & final.mirror):
                bump("mirrored_packets")
            with m.If(deliver & final.mirror_blocked):
                bump("mirror_blocked")
            with m.If(deliver & final.meter_red):
                bump("meter_marked")
        beat = self.o.payload
        with m.If(self.o.valid & self.o.ready):
            bump("delivered_bytes", sum(beat.keep[k] for k in range(self.lanes)))
            with m.If(beat.last):
                bump("delivered_packets")
        with m.If(editor.errors.as_value().any()):
            bump("edit_errors")

    def _bus(self, m, regs, acl, table, rss, meters, templates):
        """One register bus for the pipeline's block and its parts' blocks."""
        targets = {"match_action": regs, "acl": acl, "flow_table": table, "rss": rss,
                   "meters": meters, "vxlan_templates": templates}
        windows = [(base, block.size) for base, block in self.windows.values()]
        m.submodules.decoder = decoder = RegisterBusDecoder(self.addr_width, windows)
        wiring.connect(m, wiring.flipped(self.bus), decoder.bus)
        for n, name in enumerate(self.windows):
            wiring.connect(m, decoder.target(n), targets[name].bus)


def _fifo_after(m, name, source, depth=8):
    """A FIFO that takes every transfer of stream ``source``; returns the FIFO."""
    buffer = fifo.SyncFIFOBuffered(width=len(source.payload.as_value()), depth=depth)
    m.submodules[name] = buffer
    m.d.comb += [
        buffer.w_en.eq(source.valid),
        buffer.w_data.eq(source.payload),
        source.ready.eq(buffer.w_rdy),
    ]
    return buffer


def _xor_fold(value, width):
    """``value`` folded to ``width`` bits by XOR of its ``width``-bit chunks."""
    out = value[:width]
    for lo in range(width, len(value), width):
        chunk = value[lo:lo + width]
        out = out ^ chunk
    return out
