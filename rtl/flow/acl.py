"""The ACL stage: priority-ordered ternary rules evaluated before the flow table.

Each rule holds a value and a mask over the bits of a :class:`~amnic.flow.key.FlowKey`; a key
matches a valid rule when every masked bit equals the rule's value (``key & mask == value &
mask``; bits outside the mask are "don't care"). When several rules match, the one with the
**lowest index** wins. The winner's :class:`AclAction` gives

* a verdict, :attr:`AclVerdict.ALLOW` or :attr:`AclVerdict.DENY`, and
* a tenant restriction: the queue range ``[queue_first, queue_first + queue_count)`` the packet
  is confined to, whatever the flow table later decides. A range that runs past queue 4095 is
  clipped there (it never wraps to queue 0); ``queue_count`` 0 allows no queue at all.

A key that matches no rule gets the default verdict of the ``control`` register (ALLOW after
reset, so a NIC without rules forwards traffic) and the whole queue space. A driver that
isolates tenants sets the default to DENY and gives every tenant rules that match its VNI, VLAN
or function (port) field fully, each with a range inside the tenant's queues: a packet of a
tenant then either matches one of its own rules or is denied, and :class:`TenantGuard` refuses
any delivery outside the range, so no flow-table entry can move it to another tenant's queues.

Rules are written through staging registers (:data:`REGISTERS`) and a command. A rule changes
between two lookups: each lookup sees every rule either before or after a write, never a mix of
the two (the stage keeps one cycle free of lookups between its compare and its action select
while a rule changes, which costs the lookup stream at most one idle cycle per rule write).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterFile, version
from amnic.csr.bus import RegisterBusSignature
from amnic.csr.ids import ACL

from .key import FLOW_KEY_BITS, FlowKey

__all__ = [
    "AclVerdict", "AclAction", "AclEntry", "AclRequest", "AclResult", "Acl", "TenantGuard",
    "REGISTERS", "KEY_WORDS", "QUEUE_BITS", "QUEUES", "ACTION_VALID_BIT", "acl_action_value",
]

#: Width of a queue number (as in :class:`amnic.flow.action.FlowAction`).
QUEUE_BITS = 12
#: Number of queues a range can cover.
QUEUES = 1 << QUEUE_BITS
#: 32-bit words of a key in the staging registers.
KEY_WORDS = (FLOW_KEY_BITS + 31) // 32


class AclVerdict(enum.Enum, shape=1):
    """What the ACL decides for a packet."""

    ALLOW = 0  #: the packet continues to the flow table, confined to the rule's queue range
    DENY = 1  #: the packet is dropped


class AclAction(data.Struct):
    """The action of an ACL rule.

    Attributes
    ----------
    verdict : AclVerdict
    queue_first : unsigned(12)
        First queue the packet may be delivered to.
    queue_count : unsigned(13)
        Number of queues from ``queue_first`` (0..4096); the range is clipped at queue 4095.
    """

    verdict: AclVerdict
    queue_first: QUEUE_BITS
    queue_count: QUEUE_BITS + 1


class AclEntry(data.Struct):
    """One rule slot as stored."""

    value: FlowKey
    mask: FlowKey
    action: AclAction
    valid: 1


#: Bit of the ``action`` register that holds the rule's valid flag.
ACTION_VALID_BIT = 31


def acl_action_value(verdict=AclVerdict.ALLOW, queue_first=0, queue_count=QUEUES, valid=1):
    """The ``action`` register word for a rule (for drivers and tests)."""
    raw = AclAction.const({"verdict": AclVerdict(verdict), "queue_first": queue_first,
                           "queue_count": queue_count}).as_value().value
    return raw | int(bool(valid)) << ACTION_VALID_BIT


def _action_fields():
    layout = AclAction.as_shape()
    docs = {
        "verdict": "0: ALLOW, 1: DENY.",
        "queue_first": "First queue of the range the matched packet is confined to.",
        "queue_count": "Queues in the range (0..4096; clipped at queue 4095, 0 allows none).",
    }
    fields = [Field(name, f.offset, f.width, docs[name]) for name, f in layout]
    fields.append(Field("valid", ACTION_VALID_BIT, 1,
                        "The rule takes part in lookups. A read command loads it."))
    return tuple(fields)


def _registers():
    regs = [
        Register("rules", 0x0C, Access.RO, "Number of rule slots."),
        Register("control", 0x10, Access.RW, "Stage settings.",
                 fields=(Field("default_verdict", 0, 1,
                               "Verdict for a key that matches no rule: 0 ALLOW (reset), "
                               "1 DENY. Such a key may go to any queue."),)),
        Register("index", 0x14, Access.RW,
                 "Rule slot a command acts on; 0 is the highest priority. Commands on a slot "
                 "at or beyond `rules` do nothing, and a read of one loads zeros."),
        Register("command", 0x18, Access.W1S,
                 "Rule commands; each bit clears when done. Several bits at once run in the "
                 "order clear, write, read.",
                 fields=(Field("write", 0, 1, "Install `value_*`, `mask_*` and `action` as rule "
                                              "`index`, between two lookups."),
                         Field("read", 1, 1, "Load rule `index` into `value_*`, `mask_*` and "
                                             "`action`."),
                         Field("clear", 2, 1, "Invalidate rule `index` (it reads back as zeros)."
                               ))),
        Register("action", 0x1C, Access.RW,
                 "Staged rule action (AclAction layout) and valid flag. Reset: valid, ALLOW, "
                 "queues 0..4095.",
                 init=acl_action_value(), fields=_action_fields()),
    ]
    for w in range(KEY_WORDS):
        hi = min(32 * w + 31, FLOW_KEY_BITS - 1)
        regs.append(Register(f"value_{w}", 0x40 + 4 * w, Access.RW,
                             f"Staged rule value, key bits {hi}:{32 * w} (FlowKey layout)."))
    for w in range(KEY_WORDS):
        hi = min(32 * w + 31, FLOW_KEY_BITS - 1)
        regs.append(Register(f"mask_{w}", 0x80 + 4 * w, Access.RW,
                             f"Staged rule mask, key bits {hi}:{32 * w}; a 1 bit must equal the "
                             f"value, a 0 bit is ignored."))
    return RegisterBlock("acl", ACL, version(1, 0), regs,
                         "Priority-ordered ternary ACL rules, written through staging registers "
                         "so each rule changes at once between two lookups.")


#: The ACL's register map.
REGISTERS = _registers()


class AclRequest(data.StructLayout):
    """A lookup: the key and a tag the stage returns with the result."""

    def __init__(self, tag_width):
        super().__init__({"key": FlowKey, "tag": tag_width})


class AclResult(data.StructLayout):
    """The outcome of a lookup.

    ``hit`` is 1 when a rule matched; ``index`` is then the winning rule (0 on a miss);
    ``action`` is the rule's action, or on a miss the default verdict with the whole queue
    space (``queue_first`` 0, ``queue_count`` 4096).
    """

    def __init__(self, rules, tag_width):
        super().__init__({"hit": 1, "index": range(rules), "action": AclAction,
                          "tag": tag_width})


def _first_match(match, actions, lo, hi, width):
    """``(any, index, action)`` of the lowest set bit of ``match[lo:hi]``, as a balanced tree of
    two-way selections (log2 levels), so the priority encoder and the action multiplexer are
    one structure."""
    if hi - lo == 1:
        return match[lo], Const(lo, width), actions[lo]
    mid = (lo + hi) // 2
    a_any, a_index, a_action = _first_match(match, actions, lo, mid, width)
    b_any, b_index, b_action = _first_match(match, actions, mid, hi, width)
    return a_any | b_any, Mux(a_any, a_index, b_index), Mux(a_any, a_action, b_action)


class Acl(wiring.Component):
    """Priority-ordered ternary rule stage.

    Every key is compared with all rules in parallel (rules live in flip-flops); a tree picks
    the lowest-index match and its action. One lookup per cycle, results in order. Latency is
    three cycles from the input handshake to ``o.valid`` (input register, compare, select);
    ``o`` stalling stalls the stage (``valid`` never waits on ``ready``).

    A rule write or clear takes effect in a cycle in which no lookup is between the compare
    and the select stage and none enters it, so every lookup sees one consistent rule set; the
    stage inserts one idle cycle for it. While ``o`` is stalled with a lookup in the select
    stage, the command waits (its bit stays set) until the stage moves.

    Parameters
    ----------
    rules : int
        Number of rule slots (2..1024); rule 0 has the highest priority.
    tag_width : int
        Width of the tag carried from request to result.

    Attributes
    ----------
    i : In(stream.Signature(AclRequest(tag_width)))
        Lookups.
    o : Out(stream.Signature(AclResult(rules, tag_width)))
        Results, one per lookup, in order.
    bus : In(RegisterBusSignature)
        Rule and control registers (:data:`REGISTERS`).
    """

    def __init__(self, rules=64, *, tag_width=16):
        if not 2 <= rules <= 1024:
            raise ValueError(f"rule count must be 2..1024, not {rules}")
        if tag_width < 1:
            raise ValueError(f"tag width must be at least 1, not {tag_width}")
        self.rules = rules
        self.tag_width = tag_width
        super().__init__({
            "i": In(stream.Signature(AclRequest(tag_width))),
            "o": Out(stream.Signature(AclResult(rules, tag_width))),
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        rules = self.rules
        index_width = Shape.cast(range(rules)).width

        # Registers and the staged rule.
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        m.d.comb += regs.status.rules.eq(rules)
        command = regs.value.command
        staged = Signal(AclEntry)
        m.d.comb += [
            staged.value.as_value().eq(
                Cat(getattr(regs.value, f"value_{w}") for w in range(KEY_WORDS))),
            staged.mask.as_value().eq(
                Cat(getattr(regs.value, f"mask_{w}") for w in range(KEY_WORDS))),
            staged.action.as_value().eq(regs.value.action),
            staged.valid.eq(regs.value.action[ACTION_VALID_BIT]),
        ]
        slot = regs.value.index[:index_width]
        in_range = regs.value.index < rules

        entries = [Signal(AclEntry, name=f"rule_{n}") for n in range(rules)]
        # A copy of the rules in RAM, for reading them back without a wide multiplexer.
        m.submodules.shadow = shadow = Memory(shape=AclEntry, depth=rules, init=[])
        shadow_wr = shadow.write_port()
        shadow_rd = shadow.read_port()

        # Lookup pipeline: s0 (input register) -> s1 (match vector) -> o (selected result).
        s0_valid = Signal()
        s0 = Signal(AclRequest(self.tag_width))
        s1_valid = Signal()
        s1_match = Signal(rules)
        s1_tag = Signal(self.tag_width)

        o_free = ~self.o.valid | self.o.ready
        s1_free = ~s1_valid | o_free
        changing = command[0] | command[2]
        # The rule set changes at the end of a cycle in which s1 empties and nothing enters it.
        update = Signal()
        m.d.comb += update.eq(changing & s1_free)
        s0_to_s1 = s1_free & ~update
        m.d.comb += self.i.ready.eq(~s0_valid | s0_to_s1)

        with m.If(self.i.ready):
            m.d.sync += [s0_valid.eq(self.i.valid), s0.eq(self.i.payload)]

        key = s0.key.as_value()
        with m.If(s1_free):
            m.d.sync += [s1_valid.eq(s0_valid & s0_to_s1), s1_tag.eq(s0.tag)]
            m.d.sync += s1_match.eq(Cat(
                e.valid & ((key ^ e.value.as_value()) & e.mask.as_value() == 0)
                for e in entries))

        hit, index, action = _first_match(
            s1_match, [e.action.as_value() for e in entries], 0, rules, index_width)
        default = Signal(AclAction)
        m.d.comb += [
            default.verdict.eq(regs.value.control[0]),
            default.queue_first.eq(0),
            default.queue_count.eq(QUEUES),
        ]
        o = self.o.payload
        with m.If(o_free):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                o.hit.eq(hit),
                o.index.eq(Mux(hit, index, 0)),
                o.action.as_value().eq(Mux(hit, action, default.as_value())),
                o.tag.eq(s1_tag),
            ]

        # Commands: clear, then write, then read; each bit clears when its action is done.
        clearing = command[2]
        new_entry = Mux(clearing, 0, staged.as_value())
        with m.If(update & in_range):
            for n, entry in enumerate(entries):
                with m.If(slot == n):
                    m.d.sync += entry.as_value().eq(new_entry)
        m.d.comb += [
            shadow_wr.addr.eq(slot),
            shadow_wr.data.eq(new_entry),
            shadow_wr.en.eq(update & in_range),
            shadow_rd.addr.eq(slot),
        ]
        reading = Signal()
        m.d.sync += reading.eq(command[1] & ~changing & ~reading)
        readback = Signal(AclEntry)
        # The valid flags come from the flip-flops, which a reset clears (the RAM keeps its
        # contents), so a slot reads back valid exactly when it takes part in lookups.
        valid_flags = Cat(e.valid for e in entries)
        m.d.comb += [
            readback.eq(Mux(in_range, shadow_rd.data, 0)),
            readback.valid.eq(in_range & valid_flags.bit_select(slot, 1)),
        ]
        value_bits, mask_bits = readback.value.as_value(), readback.mask.as_value()
        for w in range(KEY_WORDS):
            m.d.comb += [
                getattr(regs.load, f"value_{w}").eq(value_bits[32 * w:32 * w + 32]),
                getattr(regs.load_en, f"value_{w}").eq(reading),
                getattr(regs.load, f"mask_{w}").eq(mask_bits[32 * w:32 * w + 32]),
                getattr(regs.load_en, f"mask_{w}").eq(reading),
            ]
        m.d.comb += [
            regs.load.action.eq(readback.action.as_value()
                                | readback.valid << ACTION_VALID_BIT),
            regs.load_en.action.eq(reading),
            regs.clear.command.eq(Cat(update & ~clearing, reading, update & clearing)),
        ]
        return m


class TenantGuard(wiring.Component):
    """Decide whether a packet may be delivered to a proposed queue (combinational).

    ``allowed`` is 1 when ``action.verdict`` is ALLOW and ``queue_first <= queue <
    queue_first + queue_count`` (the sum taken without wrapping, so a range never reaches
    back to low queues). The pipeline feeds it the ACL result of a packet and the queue the
    flow table (or RSS) chose, and drops the packet when ``allowed`` is 0.

    Attributes
    ----------
    action : In(AclAction)
        The packet's ACL action (from :class:`Acl`'s result).
    queue : In(12)
        The proposed destination queue.
    allowed : Out(1)
    """

    action: In(AclAction)
    queue: In(QUEUE_BITS)
    allowed: Out(1)

    def elaborate(self, platform):
        m = Module()
        a = self.action
        end = a.queue_first + a.queue_count  # 14 bits: no wrap
        m.d.comb += self.allowed.eq((a.verdict == AclVerdict.ALLOW)
                                    & (self.queue >= a.queue_first) & (self.queue < end))
        return m
