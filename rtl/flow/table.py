"""The exact-match flow table: a two-bank cuckoo hash table with per-entry counters.

Organisation
------------
``entries`` slots are split into two banks, one per hash function of :mod:`amnic.flow.hash`.
Each bank groups its ``entries // 2`` slots into buckets of ``ways`` slots that are read
together, so a key has ``2 * ways`` candidate slots: the ``ways`` slots of bucket
``h0(key)`` in bank 0 and those of bucket ``h1(key)`` in bank 1 (bucketised cuckoo hashing:
with ``ways = 4`` a table fills to well over 90 % before an insertion fails, against about
50 % with one slot per bucket). A slot holds ``{valid, key, action}``
(:class:`FlowSlotLayout`); its counters (:class:`FlowCountersLayout`) live in a separate
memory addressed by entry index.

An entry's **index**, used by the lookup result, the ``index`` register and the driver, is
``bank * entries/2 + bucket * ways + way``.

Placing keys (cuckoo moves, full-table reporting) is software's job
(:class:`amnic.sim.flow_table_driver.FlowTableDriver` models it). The hardware only requires
that a key be present in at most one slot, except while software moves it: a key found in
several slots is reported at the first of them in index order.

Lookup pipeline
---------------
One request per cycle, results in order after a fixed :data:`LATENCY` of 4 cycles: the result
of a request taken at clock edge *n* is offered on ``o`` from edge *n* + 3 on, so that it can
be taken at edge *n* + 4 at the earliest. Stages:
hash (registered XOR trees) → both bucket reads → key compare and priority select → counter
read → counter update and result. The whole pipeline advances when the result register is
free or taken (``~o.valid | o.ready``) and holds otherwise; ``i.ready`` is that condition, so
back-pressure stalls the pipeline without dropping or reordering anything.

Counters
--------
Every hit adds 1 to the entry's packet counter, the request's ``length`` to its byte counter,
and stores ``now`` (sampled in the cycle the result is taken) as its last-hit time. The update
is a read-modify-write spread over two stages; the value written by the previous result is
forwarded, so hits to one entry in consecutive cycles are all counted. Counters wrap modulo
their width.

Host commands and atomicity
---------------------------
Software writes staging registers (key, action, index) and sets one bit of ``command``:

``write``
    Store ``{valid=1, key, action}`` in the slot and zero its counters. Lookups that read the
    slot before the write and are still in the pipeline keep the old entry's result but do
    not count (their packet belonged to the old entry, whose counters are gone).
``update``
    Store ``{valid=1, key, action}``, keeping the counters: changes the action of the key the
    slot holds. In-flight lookups count as usual.
``clear``
    Mark the slot empty (its key and action become unspecified), keeping its counters
    (readable until the next ``write``). Lookups in flight that had already matched the slot
    still count; the command completes only when they have left the pipeline (at most three
    advances of it; a pipeline held by back-pressure holds the command too), so a ``read``
    after a ``clear`` returns final counts.
``read``
    Copy the slot (valid, key, action) and its counters, as of one clock edge, into the
    ``read_*`` registers.

Several bits set at once run in that order, one after another. A command with ``index``
outside the table is dropped and sets ``status.rejected``. Software must not change the
staging registers while ``status.busy``; a command uses their values of the cycle it runs in.

Every slot change is one write of the whole slot word, so a lookup sees the old or the new
entry, never a mix. Both bucket reads of a lookup happen in the same cycle, so a key that
software moves by writing its new slot before clearing the old one is found throughout.

The counter memory has two ports: one reads counters for the lookup pipeline, the other
writes the updated counters of every hit. ``write`` (which zeroes counters) and ``read``
(which reads them) use the second port in a cycle without a counter update; they wait for
such a cycle, so lookups are never held up by software. ``update`` and ``clear`` touch only
the bank memories, whose second port belongs to software, and never wait. A cycle without a
counter update is any cycle without a hit result being taken (a miss, an idle or a stalled
cycle); only an uninterrupted run of hits, one per cycle, delays a ``write`` or ``read`` —
for as long as the run lasts.

Bad input: lookups have no invalid inputs (any key is looked up; ``length`` is taken as
is). Commands with an out-of-range index are rejected as above; writes to read-only
registers and unmapped offsets follow :class:`~amnic.csr.file.RegisterFile`.
"""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from amnic.csr.bus import RegisterBusSignature
from amnic.csr.file import RegisterFile
from amnic.csr.ids import FLOW_TABLE
from amnic.csr.regmap import Access, Field, Register, RegisterBlock, version

from .hash import DEFAULT_SEED, HASH_FUNCTIONS, FlowHashUnit
from .key import FLOW_KEY_BITS, FlowKey

__all__ = [
    "PACKETS_BITS", "BYTES_BITS", "TIME_BITS", "LENGTH_BITS", "MAX_ACTION_BITS", "KEY_WORDS",
    "ACTION_WORDS", "LATENCY", "Command", "REGISTERS",
    "FlowSlotLayout", "FlowCountersLayout", "FlowLookupRequest", "FlowLookupResult",
    "FlowTable",
]

#: Width of the per-entry packet counter.
PACKETS_BITS = 48
#: Width of the per-entry byte counter.
BYTES_BITS = 64
#: Width of the last-hit timestamp and of the ``now`` input.
TIME_BITS = 32
#: Width of the byte count of a lookup request.
LENGTH_BITS = 16
#: Registers hold actions of up to this many bits.
MAX_ACTION_BITS = 128
#: 32-bit words of a key in the staging and read-back registers.
KEY_WORDS = -(-FLOW_KEY_BITS // 32)
#: 32-bit words of an action in the staging and read-back registers.
ACTION_WORDS = MAX_ACTION_BITS // 32
#: Cycles from a request's handshake to its result being offered.
LATENCY = 4


class Command:
    """Bit positions of the ``command`` register's fields."""

    WRITE = 0
    UPDATE = 1
    CLEAR = 2
    READ = 3


def _registers():
    ro, rw = Access.RO, Access.RW
    regs = [
        Register("entries", 0x10, ro, "Number of entries (both banks)."),
        Register("ways", 0x14, ro, "Slots per bucket: a key may sit in any of the `ways` "
                 "slots of its bucket in either bank."),
        Register("key_width", 0x18, ro, "Key width in bits (FlowKey, 341)."),
        Register("action_width", 0x1C, ro, "Action width in bits."),
        Register("counter_widths", 0x20, ro, "Widths of the per-entry counters.", fields=(
            Field("packets", 0, 8, "Packet counter bits."),
            Field("bytes", 8, 8, "Byte counter bits."),
            Field("last_hit", 16, 8, "Last-hit timestamp bits."),
        )),
        Register("hash_seed", 0x24, ro, "Seed of the two H3 hash functions (amnic.flow.hash): "
                 "software derives its bucket indices from it."),
        Register("time", 0x28, ro, "The current value of the `now` time base that last-hit "
                 "timestamps are taken from (for ageing: idle time = time - read_last_hit)."),
        Register("command", 0x30, Access.W1S, "Slot commands on the slot `index` names. Write "
                 "1 to start; a bit reads 1 until its command has completed. Several bits run "
                 "in the order write, update, clear, read.", fields=(
                     Field("write", Command.WRITE, 1, "Store {valid, key_*, action_*} and zero "
                           "the slot's counters."),
                     Field("update", Command.UPDATE, 1, "Store {valid, key_*, action_*}, "
                           "keeping the counters (change an entry's action)."),
                     Field("clear", Command.CLEAR, 1, "Mark the slot empty; counters are kept. "
                           "Completes when lookups that matched the slot have been counted."),
                     Field("read", Command.READ, 1, "Copy the slot and its counters into the "
                           "read_* registers."),
                 )),
        Register("status", 0x34, ro, "Command status.", fields=(
            Field("busy", 0, 1, "A command is pending or running."),
            Field("rejected", 1, 1, "The last command was dropped because `index` >= "
                  "`entries`; cleared by the next command that runs."),
        )),
        Register("index", 0x38, rw, "Target slot: bank * entries/2 + bucket * ways + way."),
    ]
    regs += [Register(f"action_{w}", 0x40 + 4 * w, rw,
                      f"Staging action, bits {32 * w + 31}:{32 * w}.")
             for w in range(ACTION_WORDS)]
    regs += [Register(f"key_{w}", 0x50 + 4 * w, rw,
                      f"Staging key (FlowKey bit pattern), bits {32 * w + 31}:{32 * w}.")
             for w in range(KEY_WORDS)]
    regs += [
        Register("read_status", 0x80, ro, "Slot read by the last `read` command.", fields=(
            Field("valid", 0, 1, "The slot holds an entry."),
        )),
        Register("read_last_hit", 0x84, ro, "`now` at the slot's last counted hit (meaningless "
                 "while read_packets is 0)."),
        Register("read_packets", 0x88, ro, f"Packets counted for the slot ({PACKETS_BITS} bits, "
                 "wrapping).", width=64),
        Register("read_bytes", 0x90, ro, f"Bytes counted for the slot ({BYTES_BITS} bits, "
                 "wrapping).", width=64),
    ]
    regs += [Register(f"read_action_{w}", 0xA0 + 4 * w, ro,
                      f"Action of the slot read, bits {32 * w + 31}:{32 * w}.")
             for w in range(ACTION_WORDS)]
    regs += [Register(f"read_key_{w}", 0xB0 + 4 * w, ro,
                      f"Key of the slot read, bits {32 * w + 31}:{32 * w}.")
             for w in range(KEY_WORDS)]
    return RegisterBlock(
        "flow_table", FLOW_TABLE, version(1, 0), regs,
        "Exact-match flow table (two-bank cuckoo hash): slot commands through staging "
        "registers, per-entry packet/byte counters and last-hit time.")


#: The register map of :class:`FlowTable`.
REGISTERS = _registers()


class FlowSlotLayout(data.StructLayout):
    """One slot of a bank: ``{valid, key, action}``."""

    def __init__(self, action_width):
        super().__init__({"valid": 1, "key": FlowKey, "action": action_width})


class FlowCountersLayout(data.StructLayout):
    """The counters of one entry: ``{packets, bytes, last_hit}``."""

    def __init__(self):
        super().__init__({"packets": PACKETS_BITS, "bytes": BYTES_BITS, "last_hit": TIME_BITS})


class FlowLookupRequest(data.StructLayout):
    """A lookup: ``key``, ``length`` (bytes added to the byte counter on a hit) and ``tag``
    (returned unchanged with the result)."""

    def __init__(self, tag_width=8):
        super().__init__({"key": FlowKey, "length": LENGTH_BITS, "tag": tag_width})


class FlowLookupResult(data.StructLayout):
    """A lookup result: ``hit``; ``action`` and ``index`` of the entry found (0 on a miss);
    ``tag`` of the request."""

    def __init__(self, entries, action_width, tag_width=8):
        super().__init__({"hit": 1, "action": action_width, "index": range(entries),
                          "tag": tag_width})


class _BucketCompare(wiring.Component):
    """Combinational: compare a key with the ``2 * ways`` slots of its two buckets.

    ``match[b][w]`` is set when slot ``w`` of ``rows[b]`` is valid and holds ``key``. The first
    match in index order gives ``hit``, ``index``, ``action`` and ``stale`` (that slot's bit of
    ``stale``); without a match they are 0.
    """

    def __init__(self, slot, ways, hash_width, index_bits, action_width):
        self.ways = ways
        super().__init__({
            "key": In(FlowKey),
            "buckets": In(data.ArrayLayout(hash_width, HASH_FUNCTIONS)),
            "rows": In(data.ArrayLayout(data.ArrayLayout(slot, ways), HASH_FUNCTIONS)),
            "stale": In(data.ArrayLayout(ways, HASH_FUNCTIONS)),
            "match": Out(data.ArrayLayout(ways, HASH_FUNCTIONS)),
            "hit": Out(1),
            "index": Out(index_bits),
            "action": Out(action_width),
            "hit_stale": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ways = self.ways
        way_bits = exact_log2(ways)
        for b in range(HASH_FUNCTIONS):
            for w in range(ways):
                candidate = self.rows[b][w]
                m.d.comb += self.match[b][w].eq(
                    candidate.valid & (candidate.key.as_value() == self.key.as_value()))
        for b in reversed(range(HASH_FUNCTIONS)):  # the last assignment wins: lowest index
            for w in reversed(range(ways)):
                with m.If(self.match[b][w]):
                    m.d.comb += [
                        self.hit.eq(1),
                        self.index.eq(Cat(Const(w, way_bits), self.buckets[b], Const(b, 1))),
                        self.action.eq(self.rows[b][w].action),
                        self.hit_stale.eq(self.stale[b][w]),
                    ]
        return m


class _CounterUpdate(Elaboratable):
    """Combinational: ``updated``, the counters of an entry after one more hit.

    The base is ``forwarded`` when ``forward`` is set, else ``stored``; ``updated`` adds one
    packet and ``length`` bytes to it and sets ``last_hit`` to ``now``. (Takes the table's
    ``now`` itself, so that only this small module follows the time base in simulation.)
    """

    def __init__(self, now):
        self.now = now
        self.stored = Signal(FlowCountersLayout())
        self.forward = Signal()
        self.forwarded = Signal(FlowCountersLayout())
        self.length = Signal(LENGTH_BITS)
        self.updated = Signal(FlowCountersLayout())

    def elaborate(self, platform):
        m = Module()
        base = Signal(FlowCountersLayout())
        m.d.comb += [
            base.eq(Mux(self.forward, self.forwarded, self.stored)),
            self.updated.packets.eq(base.packets + 1),
            self.updated.bytes.eq(base.bytes + self.length),
            self.updated.last_hit.eq(self.now),
        ]
        return m


class _StatusRegisters(Elaboratable):
    """Drives the read-only registers of a :class:`FlowTable`'s register file: parameters,
    time, command status, and the slot (``entry``, ``counters``) the last ``read`` fetched."""

    def __init__(self, table, regs, *, entry, counters, busy, rejected):
        self.table = table
        self.regs = regs
        self.entry = entry
        self.counters = counters
        self.busy = busy
        self.rejected = rejected

    def elaborate(self, platform):
        m = Module()
        table, status, entry = self.table, self.regs.status, self.entry
        m.d.comb += [
            status.entries.eq(table.entries),
            status.ways.eq(table.ways),
            status.key_width.eq(FLOW_KEY_BITS),
            status.action_width.eq(table.action_width),
            status.counter_widths.eq(PACKETS_BITS | BYTES_BITS << 8 | TIME_BITS << 16),
            status.hash_seed.eq(table.seed),
            status.time.eq(table.now),
            status.status.eq(Cat(self.busy, self.rejected)),
            status.read_status.eq(entry.valid),
            status.read_last_hit.eq(self.counters.last_hit),
            status.read_packets.eq(self.counters.packets),
            status.read_bytes.eq(self.counters.bytes),
        ]
        key = entry.key.as_value()
        for w in range(ACTION_WORDS):
            if 32 * w < table.action_width:
                m.d.comb += getattr(status, f"read_action_{w}").eq(entry.action[32 * w:][:32])
        for w in range(KEY_WORDS):
            m.d.comb += getattr(status, f"read_key_{w}").eq(key[32 * w:][:32])
        return m


def _check_power_of_two(name, value):
    try:
        exact_log2(value)
    except ValueError:
        raise ValueError(f"{name} must be a power of two, not {value}") from None


class FlowTable(wiring.Component):
    """Exact-match flow table with host slot commands and per-entry counters.

    See the module notes for the organisation, the pipeline and the command semantics.

    Parameters
    ----------
    entries : int
        Number of slots, a power of two; half in each bank. 65536 by default.
    action_width : int
        Bits of the opaque action word (1 to :data:`MAX_ACTION_BITS`).
    ways : int
        Slots per bucket (a power of two); ``entries // (2 * ways)`` must be at least 2.
    tag_width : int
        Bits of the tag passed from request to result (0 for none).
    seed : int
        Seed of the hash functions (32 bits; see :mod:`amnic.flow.hash`).
    ram_style : str or None
        ``ram_style`` attribute put on the memories (``"block"``, ``"ultra"`` for UltraScale+
        UltraRAM); ``None`` leaves the choice to the synthesis tool.

    Attributes
    ----------
    i : In(stream.Signature(FlowLookupRequest(tag_width)))
        Lookup requests; one taken per cycle while ``o`` is not back-pressured.
    o : Out(stream.Signature(FlowLookupResult(entries, action_width, tag_width)))
        Results, in request order, :data:`LATENCY` cycles after their requests.
    now : In(TIME_BITS)
        Free-running time base (a cycle or tick counter); stored as the last-hit time.
    bus : In(RegisterBusSignature(REGISTERS.addr_width))
        Register access to :data:`REGISTERS` (:class:`~amnic.csr.file.RegisterFile`).
    """

    registers = REGISTERS

    def __init__(self, entries=65536, action_width=32, *, ways=4, tag_width=8,
                 seed=DEFAULT_SEED, ram_style=None):
        _check_power_of_two("entries", entries)
        _check_power_of_two("ways", ways)
        if entries // (2 * ways) < 2:
            raise ValueError(f"{entries} entries of {ways} ways leave fewer than 2 buckets "
                             "per bank")
        if not 1 <= action_width <= MAX_ACTION_BITS:
            raise ValueError(f"action width must be 1 to {MAX_ACTION_BITS}, not {action_width}")
        if tag_width < 0:
            raise ValueError(f"tag width must not be negative, not {tag_width}")
        if not 0 <= seed < 1 << 32:
            raise ValueError(f"seed {seed:#x} does not fit the 32-bit hash_seed register")
        self.entries = entries
        self.action_width = action_width
        self.ways = ways
        self.tag_width = tag_width
        self.seed = seed
        self.ram_style = ram_style
        self.bank_slots = entries // 2
        self.buckets = self.bank_slots // ways
        self.hash_width = exact_log2(self.buckets)
        super().__init__({
            "i": In(stream.Signature(FlowLookupRequest(tag_width))),
            "o": Out(stream.Signature(FlowLookupResult(entries, action_width, tag_width))),
            "now": In(TIME_BITS),
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        ways, entries = self.ways, self.entries
        way_bits = exact_log2(ways)
        index_bits = exact_log2(entries)
        attrs = {"ram_style": self.ram_style} if self.ram_style else None

        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)

        slot = FlowSlotLayout(self.action_width)
        rows = data.ArrayLayout(data.ArrayLayout(slot, ways), HASH_FUNCTIONS)
        lookup_rd, host_wr, host_rd = [], [], []
        for b in range(HASH_FUNCTIONS):
            bank = Memory(shape=rows.elem_shape, depth=self.buckets, init=[], attrs=attrs)
            m.submodules[f"bank{b}"] = bank
            lookup_rd.append(bank.read_port())
            host_wr.append(bank.write_port(granularity=1))
            host_rd.append(bank.read_port())
        counters = Memory(shape=FlowCountersLayout(), depth=entries, init=[], attrs=attrs)
        m.submodules.counters = counters
        count_rd = counters.read_port()  # the lookup pipeline's read
        count_wr = counters.write_port()  # counter updates, and zeroing by `write`
        count_host_rd = counters.read_port()  # `read`, sharing the write port's address

        # ---- the slot a command works on --------------------------------------------------------
        op_index = Signal(index_bits)
        m.d.comb += op_index.eq(regs.value.index[:index_bits])
        host_way = op_index[:way_bits]
        host_bucket = op_index[way_bits:index_bits - 1]
        host_bank = op_index[index_bits - 1]
        way_onehot = Signal(ways)
        m.d.comb += way_onehot.eq(Cat(host_way == w for w in range(ways)))
        host_write = Signal()  # `write` runs: zero the slot's counters, and do not count the
        # lookups in flight that read the slot's old entry
        host_entry_en = Signal()  # a bank write of the slot (write, update, clear)

        # ---- lookup pipeline ------------------------------------------------------------------
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # S1: hashes.
        m.submodules.hash = hasher = FlowHashUnit(self.hash_width, seed=self.seed)
        m.d.comb += hasher.key.eq(self.i.payload.key)
        s1_valid = Signal()
        s1 = Signal(FlowLookupRequest(self.tag_width))
        s1_hash = Signal(data.ArrayLayout(self.hash_width, HASH_FUNCTIONS))
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1.eq(self.i.payload),
                s1_hash.eq(hasher.hashes),
            ]

        # S2: both buckets, read at the edge that loads S2. `s2_stale` marks the slots a
        # `write` has replaced since (a write in the edge of the read included).
        for b in range(HASH_FUNCTIONS):
            m.d.comb += [
                lookup_rd[b].addr.eq(s1_hash[b]),
                lookup_rd[b].en.eq(advance),
            ]
        s2_valid = Signal()
        s2 = Signal(FlowLookupRequest(self.tag_width))
        s2_bucket = Signal(data.ArrayLayout(self.hash_width, HASH_FUNCTIONS))
        s2_stale = Signal(data.ArrayLayout(ways, HASH_FUNCTIONS))
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2.eq(s1), s2_bucket.eq(s1_hash)]
        for b in range(HASH_FUNCTIONS):
            bucket_next = Mux(advance, s1_hash[b], s2_bucket[b])
            stale_held = Mux(advance, 0, s2_stale[b])
            replaced = host_write & (host_bank == b) & (bucket_next == host_bucket)
            m.d.sync += s2_stale[b].eq(stale_held | Mux(replaced, way_onehot, 0))

        m.submodules.compare = compare = _BucketCompare(
            slot, ways, self.hash_width, index_bits, self.action_width)
        m.d.comb += [
            compare.key.eq(s2.key),
            compare.buckets.eq(s2_bucket),
            compare.stale.eq(s2_stale),
        ]
        for b in range(HASH_FUNCTIONS):
            m.d.comb += compare.rows[b].eq(lookup_rd[b].data)

        # S3 and S4 carry the result; a `stale` hit is not counted.
        def result_stage(name):
            return {
                "valid": Signal(name=f"{name}_valid"),
                "hit": Signal(name=f"{name}_hit"),
                "index": Signal(index_bits, name=f"{name}_index"),
                "action": Signal(self.action_width, name=f"{name}_action"),
                "length": Signal(LENGTH_BITS, name=f"{name}_length"),
                "tag": Signal(self.tag_width, name=f"{name}_tag"),
                "stale": Signal(name=f"{name}_stale"),
            }

        def load_stage(stage, incoming):
            with m.If(advance):
                m.d.sync += [stage[k].eq(v) for k, v in incoming.items() if k != "stale"]
            index_next = Mux(advance, incoming["index"], stage["index"])
            stale_next = Mux(advance, incoming["stale"], stage["stale"])
            m.d.sync += stage["stale"].eq(stale_next | (host_write & (index_next == op_index)))

        s3 = result_stage("s3")
        load_stage(s3, {"valid": s2_valid, "hit": compare.hit, "index": compare.index,
                        "action": compare.action, "length": s2.length, "tag": s2.tag,
                        "stale": compare.hit_stale})
        m.d.comb += [
            count_rd.addr.eq(s3["index"]),
            count_rd.en.eq(advance),
        ]
        s4 = result_stage("s4")
        load_stage(s4, s3)

        # S4: counter update. The only counter write a lookup's counter read can miss is the
        # one made in the edge of that read (by the result ahead of it): it is forwarded.
        last_valid = Signal()
        last_index = Signal(index_bits)
        last_value = Signal(FlowCountersLayout())
        m.submodules.update = update = _CounterUpdate(self.now)
        m.d.comb += [
            update.stored.eq(count_rd.data),
            update.forward.eq(last_valid & (last_index == s4["index"])),
            update.forwarded.eq(last_value),
            update.length.eq(s4["length"]),
        ]
        count_en = Signal()
        m.d.comb += count_en.eq(s4["valid"] & s4["hit"] & ~s4["stale"] & advance)
        port_addr = Signal(index_bits)  # shared by the counter write and host read ports
        m.d.comb += [
            count_wr.addr.eq(port_addr),
            count_host_rd.addr.eq(port_addr),
        ]
        with m.If(count_en):
            m.d.comb += [
                port_addr.eq(s4["index"]),
                count_wr.data.eq(update.updated),
                count_wr.en.eq(1),
            ]
            m.d.sync += [
                last_valid.eq(1),
                last_index.eq(s4["index"]),
                last_value.eq(update.updated),
            ]
        with m.Else():  # the port is free for `write` (zeroing) and `read`
            m.d.comb += port_addr.eq(op_index)
            with m.If(host_write):
                m.d.comb += [
                    count_wr.data.eq(0),
                    count_wr.en.eq(1),
                ]
                with m.If(last_index == op_index):
                    m.d.sync += last_valid.eq(0)

        m.d.comb += [
            self.o.valid.eq(s4["valid"]),
            self.o.payload.hit.eq(s4["hit"]),
            self.o.payload.action.eq(s4["action"]),
            self.o.payload.index.eq(s4["index"]),
            self.o.payload.tag.eq(s4["tag"]),
        ]

        # ---- host commands --------------------------------------------------------------------
        # A slot write stores the staged key and action; `clear` stores valid = 0 with them.
        staged_key = Cat(getattr(regs.value, f"key_{w}") for w in range(KEY_WORDS))
        staged_action = Cat(getattr(regs.value, f"action_{w}") for w in range(ACTION_WORDS))
        staged = Signal(slot)
        m.d.comb += [
            staged.key.eq(staged_key[:FLOW_KEY_BITS]),
            staged.action.eq(staged_action[:self.action_width]),
        ]
        for b in range(HASH_FUNCTIONS):
            m.d.comb += [
                host_wr[b].addr.eq(host_bucket),
                host_wr[b].en.eq(Mux(host_entry_en & (host_bank == b), way_onehot, 0)),
                host_rd[b].addr.eq(host_bucket),
            ]
            for w in range(ways):
                m.d.comb += host_wr[b].data[w].eq(staged)

        command = regs.value.command
        done = Signal(4)  # command bits to clear
        m.d.comb += regs.clear.command.eq(done)
        in_range = Signal()
        m.d.comb += in_range.eq(regs.value.index < entries)
        rejected = Signal()
        # The slot the last `read` fetched. The host read ports read every cycle (no read
        # enable: a port shared with writes would need extra registers to hold its output),
        # so the slot is copied in the cycle after the read.
        read_entry = Signal(slot)
        read_counters = Signal(FlowCountersLayout())

        # Lookups in flight that matched the slot and will still be counted into it.
        inflight = Signal()
        m.d.comb += inflight.eq(
            (s2_valid & compare.match.as_value().bit_select(host_bank * ways + host_way, 1)
             & (Mux(host_bank, s2_bucket[1], s2_bucket[0]) == host_bucket))
            | (s3["valid"] & s3["hit"] & ~s3["stale"] & (s3["index"] == op_index))
            | (s4["valid"] & s4["hit"] & ~s4["stale"] & (s4["index"] == op_index)))

        with m.FSM() as fsm:
            with m.State("IDLE"):
                # The lowest command bit set runs; `write` and `read` wait for a cycle in
                # which no counter update needs the counter memory's second port.
                pending = Signal(4)
                m.d.comb += pending.eq(command[:4])
                first = Signal(4)  # the lowest bit set
                m.d.comb += first.eq(pending & (~pending + 1))
                ready = ~(first[Command.WRITE] | first[Command.READ]) | ~count_en
                with m.If(pending.any() & ready):
                    with m.If(~in_range):
                        m.d.comb += done.eq(first)
                        m.d.sync += rejected.eq(1)
                    with m.Else():
                        m.d.sync += rejected.eq(0)
                        with m.If(first[Command.CLEAR]):
                            m.next = "DRAIN"
                        with m.Elif(first[Command.READ]):
                            m.next = "LATCH"
                        with m.Else():
                            m.d.comb += done.eq(first)
                        m.d.comb += [
                            host_write.eq(first[Command.WRITE]),
                            host_entry_en.eq(first[:3].any()),
                        ]
                        m.d.comb += staged.valid.eq(~first[Command.CLEAR])
            with m.State("DRAIN"):
                with m.If(~inflight):
                    m.d.comb += done[Command.CLEAR].eq(1)
                    m.next = "IDLE"
            with m.State("LATCH"):
                m.d.comb += done[Command.READ].eq(1)
                m.d.sync += read_counters.eq(count_host_rd.data)
                with m.Switch(Cat(host_way, host_bank)):
                    for b in range(HASH_FUNCTIONS):
                        for w in range(ways):
                            with m.Case(b * ways + w):
                                m.d.sync += read_entry.eq(host_rd[b].data[w])
                m.next = "IDLE"

        m.submodules.status = _StatusRegisters(
            self, regs, entry=read_entry, counters=read_counters,
            busy=command.any() | ~fsm.ongoing("IDLE"), rejected=rejected)
        return m
