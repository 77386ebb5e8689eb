"""Host-side driver model of the exact-match flow table (:mod:`amnic.flow.table`).

The hardware stores and looks up entries; this driver decides where they go. It keeps a shadow
of every slot, places keys by bucketised cuckoo hashing with the same hash functions as the
hardware (:class:`amnic.flow.hash.FlowHashes`, seeded from the ``hash_seed`` register), and
issues slot commands through the registers of :data:`amnic.flow.table.REGISTERS` — offsets
come from that description, never from copies.

Register access goes through a *backend*: any object with ``async read(offset) -> int`` and
``async write(offset, value)`` on 32-bit words at byte offsets of the block. The same driver
therefore runs on the Amaranth simulator (:class:`amnic.sim.csr_bus.SimulatorBackend`), on
cocotb or over PCIe.

Insertion: if one of the key's ``2 * ways`` candidate slots is empty the key goes there.
Otherwise a breadth-first search over displacements looks for the shortest chain of moves
that ends in an empty slot, examining at most ``max_search`` occupied slots; if it finds
none, :exc:`TableFullError` is raised before anything is written, so the table and the
shadow stay as they were. A chain is carried out from its far end: each move first writes the
entry into its new slot, then clears the old one, so a lookup finds the key throughout (both
bucket reads of a lookup are made in the same cycle; there is no window in which a present
key misses).

Counters survive moves: after clearing the old slot (the hardware completes a clear only when
every lookup that matched the slot has been counted) the driver reads its final counters and
keeps them as a per-key base that later readings add to. Packet and byte totals are Python
integers (the hardware counters wrap at 48 and 64 bits per slot).
"""

from collections import deque
from dataclasses import dataclass

from amnic.csr.ids import FLOW_TABLE
from amnic.flow.hash import FlowHashes
from amnic.flow.key import FLOW_KEY_BITS
from amnic.flow.table import ACTION_WORDS, KEY_WORDS, REGISTERS, Command

__all__ = [
    "FlowTableError", "TableFullError", "DuplicateKeyError",
    "CommandRejectedError", "FlowCounters", "SlotContents", "CuckooShadow", "FlowTableDriver",
]

#: Register-map major version this driver understands.
MAJOR_VERSION = 1


class FlowTableError(Exception):
    """Base class of the driver's errors."""


class TableFullError(FlowTableError):
    """No chain of at most ``max_search`` displacements frees a slot for the key."""


class DuplicateKeyError(FlowTableError):
    """The key is already in the table."""


class CommandRejectedError(FlowTableError):
    """The hardware rejected a command, or does not answer or identify as a flow table."""


@dataclass(frozen=True)
class FlowCounters:
    """Counters of a flow: ``last_hit`` is ``None`` until the first packet."""

    packets: int
    bytes: int
    last_hit: int | None


@dataclass(frozen=True)
class SlotContents:
    """A slot as read from the hardware (raw counters of this slot only)."""

    valid: bool
    key: int
    action: int
    packets: int
    bytes: int
    last_hit: int


class CuckooShadow:
    """Where every key is, and where a new key can go: the placement logic, without I/O.

    Parameters
    ----------
    entries, ways : int
        Table geometry, as the hardware reports it.
    hashes : FlowHashes
        The hardware's hash functions.
    max_search : int
        Occupied slots the displacement search may examine per insertion.
    """

    def __init__(self, entries, ways, hashes, *, max_search=500):
        self.entries = entries
        self.ways = ways
        self.bank_slots = entries // 2
        self.buckets = self.bank_slots // ways
        self.hashes = hashes
        self.max_search = max_search
        self.slots = [None] * entries  # key per slot
        self.where = {}  # key -> slot index
        self.actions = {}  # key -> action
        self._buckets = {}  # key -> (bucket in bank 0, bucket in bank 1)

    def __len__(self):
        return len(self.where)

    @property
    def load(self):
        """Fraction of slots in use."""
        return len(self.where) / self.entries

    def bucket_slots(self, key, bank):
        """The slot indices of ``key``'s bucket in ``bank``."""
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = tuple(self.hashes.bucket(key, b, self.buckets) for b in (0, 1))
            self._buckets[key] = buckets
        first = bank * self.bank_slots + buckets[bank] * self.ways
        return range(first, first + self.ways)

    def candidates(self, key):
        """All slots ``key`` may occupy, in the hardware's priority (index) order."""
        return [*self.bucket_slots(key, 0), *self.bucket_slots(key, 1)]

    def plan(self, key):
        """The slots of the shortest displacement chain for ``key``: ``[p0, ..., pn]``, where
        ``p0`` is one of ``key``'s candidates, ``pn`` is empty, and the occupant of ``p(i)``
        moves to ``p(i+1)``. Raises :exc:`TableFullError` if the search finds no empty slot.
        """
        if key in self.where:
            raise DuplicateKeyError(f"key {key:#x} is already at slot {self.where[key]}")
        start = self.candidates(key)
        for s in start:
            if self.slots[s] is None:
                return [s]
        parent = dict.fromkeys(start)
        queue = deque(start)
        examined = 0
        while queue and examined < self.max_search:
            s = queue.popleft()
            examined += 1
            occupant = self.slots[s]
            other = 1 - s // self.bank_slots
            for t in self.bucket_slots(occupant, other):
                if t in parent:
                    continue
                parent[t] = s
                if self.slots[t] is None:
                    path = [t]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1]
                queue.append(t)
        raise TableFullError(
            f"no free slot for key {key:#x} within {self.max_search} displacements "
            f"({len(self.where)} of {self.entries} slots in use, load {self.load:.3f})")

    def place(self, key, action, slot):
        assert self.slots[slot] is None
        self.slots[slot] = key
        self.where[key] = slot
        self.actions[key] = action

    def move(self, src, dst):
        key = self.slots[src]
        assert key is not None and self.slots[dst] is None
        self.slots[dst] = key
        self.slots[src] = None
        self.where[key] = dst

    def remove(self, key):
        slot = self.where.pop(key)
        self.slots[slot] = None
        del self.actions[key]
        return slot


def _offset(name):
    return REGISTERS[name].offset


class FlowTableDriver:
    """Inserts, modifies and deletes flows in a :class:`~amnic.flow.table.FlowTable`.

    Create it with :meth:`open`, which checks the block's identity and reads its geometry.
    Methods are coroutines and must not run concurrently with each other.

    Parameters
    ----------
    backend
        Register access (see the module notes).
    max_search : int
        Occupied slots a cuckoo insertion may examine before reporting the table full.
    poll_limit : int
        Status reads to wait for a command before giving up with
        :exc:`CommandRejectedError`.

    The driver assumes it is the only writer of the block's staging registers: it skips
    writes of values it wrote last. Call :meth:`forget_staging` after anything else wrote them.
    If a register access fails in the middle of an operation (bus error, command timeout),
    the shadow may no longer match the hardware; :meth:`scan` rebuilds it.
    """

    def __init__(self, backend, *, max_search=500, poll_limit=10_000):
        self.backend = backend
        self.max_search = max_search
        self.poll_limit = poll_limit
        self._staged = {}  # offset -> value last written (staging registers only)
        self.shadow = None
        self._base = {}  # key -> FlowCounters of the slots it left
        #: Number of moves made by insertions so far.
        self.moves = 0

    @classmethod
    async def open(cls, backend, **kwargs):
        """Identify the block, read its geometry and return a driver for an empty table.

        The table's slots must be empty (after configuration, or after :meth:`clear_all`);
        use :meth:`scan` instead to adopt the entries of a running table.
        """
        self = cls(backend, **kwargs)
        type_id = await backend.read(_offset("type_id"))
        if type_id != FLOW_TABLE:
            raise CommandRejectedError(f"block type {type_id:#010x} is not a flow table "
                                       f"({FLOW_TABLE:#010x})")
        ver = await backend.read(_offset("version"))
        if ver >> 16 != MAJOR_VERSION:
            raise CommandRejectedError(f"register map version {ver >> 16}.{ver & 0xFFFF} is "
                                       f"not {MAJOR_VERSION}.x")
        key_width = await backend.read(_offset("key_width"))
        if key_width != FLOW_KEY_BITS:
            raise CommandRejectedError(f"key width {key_width} is not {FLOW_KEY_BITS}")
        self.entries = await backend.read(_offset("entries"))
        self.ways = await backend.read(_offset("ways"))
        self.action_width = await backend.read(_offset("action_width"))
        self.seed = await backend.read(_offset("hash_seed"))
        self.hashes = FlowHashes(self.seed)
        self.shadow = CuckooShadow(self.entries, self.ways, self.hashes,
                                   max_search=self.max_search)
        return self

    def forget_staging(self):
        """Rewrite every staging register on its next use (another writer changed them)."""
        self._staged.clear()

    # ---- queries on the shadow -----------------------------------------------------------------

    def __len__(self):
        return len(self.shadow)

    def __contains__(self, key):
        return key in self.shadow.where

    @property
    def load(self):
        """Fraction of the table's slots in use."""
        return self.shadow.load

    def lookup(self, key):
        """``(index, action)`` of ``key`` as the driver placed it, or ``None``."""
        index = self.shadow.where.get(key)
        return None if index is None else (index, self.shadow.actions[key])

    # ---- table updates --------------------------------------------------------------------------

    async def insert(self, key, action):
        """Add ``key`` with ``action``; return its slot index.

        Raises :exc:`DuplicateKeyError` if present and :exc:`TableFullError` if no slot can be
        freed (the table is left unchanged in both cases).
        """
        self._check(key, action)
        path = self.shadow.plan(key)
        for src, dst in reversed(list(zip(path, path[1:]))):
            await self._move(src, dst)
        await self._stage_entry(key, action)
        await self._command(Command.WRITE, path[0])
        self.shadow.place(key, action, path[0])
        self._base[key] = FlowCounters(0, 0, None)
        return path[0]

    async def modify(self, key, action):
        """Give ``key`` a new action, keeping its counters. Raises :exc:`KeyError` if absent."""
        self._check(key, action)
        index = self.shadow.where[key]
        await self._stage_entry(key, action)
        await self._command(Command.UPDATE, index)
        self.shadow.actions[key] = action

    async def delete(self, key):
        """Remove ``key``; return its final :class:`FlowCounters`. Raises :exc:`KeyError` if
        absent."""
        index = self.shadow.where[key]
        slot = await self._clear_and_read(index)
        total = self._merge(self._base.pop(key), slot)
        self.shadow.remove(key)
        return total

    async def counters(self, key):
        """The :class:`FlowCounters` of ``key`` now (all slots it has occupied)."""
        slot = await self.read_slot(self.shadow.where[key])
        return self._merge(self._base[key], slot)

    async def now(self):
        """The hardware's current time base (compare with ``last_hit`` for ageing)."""
        return await self.backend.read(_offset("time"))

    async def read_slot(self, index):
        """The hardware contents of slot ``index`` (:class:`SlotContents`)."""
        await self._command(Command.READ, index)
        return await self._read_back()

    async def scan(self):
        """Rebuild the shadow from the hardware's slots (to adopt a running table).

        Counters already in the slots become the keys' counters."""
        self.shadow = CuckooShadow(self.entries, self.ways, self.hashes,
                                   max_search=self.max_search)
        self._base = {}
        for index in range(self.entries):
            slot = await self.read_slot(index)
            if slot.valid:
                if slot.key in self.shadow.where:
                    raise CommandRejectedError(f"key {slot.key:#x} found in slots "
                                               f"{self.shadow.where[slot.key]} and {index}")
                self.shadow.place(slot.key, slot.action, index)
                self._base[slot.key] = FlowCounters(0, 0, None)

    async def clear_all(self):
        """Empty every slot of the hardware and the shadow."""
        for index in range(self.entries):
            await self._command(Command.CLEAR, index)
        self.shadow = CuckooShadow(self.entries, self.ways, self.hashes,
                                   max_search=self.max_search)
        self._base = {}

    # ---- internals ----------------------------------------------------------------------------

    def _check(self, key, action):
        if not 0 <= key < 1 << FLOW_KEY_BITS:
            raise ValueError(f"key {key:#x} does not fit {FLOW_KEY_BITS} bits")
        if not 0 <= action < 1 << self.action_width:
            raise ValueError(f"action {action:#x} does not fit {self.action_width} bits")

    async def _move(self, src, dst):
        key = self.shadow.slots[src]
        await self._stage_entry(key, self.shadow.actions[key])
        await self._command(Command.WRITE, dst)  # new slot first: the key is never absent
        left = await self._clear_and_read(src)
        self._base[key] = self._merge(self._base[key], left)
        self.shadow.move(src, dst)
        self.moves += 1

    async def _clear_and_read(self, index):
        await self._command((1 << Command.CLEAR) | (1 << Command.READ), index, mask=True)
        return await self._read_back()

    @staticmethod
    def _merge(base, slot):
        last = slot.last_hit if slot.packets else base.last_hit
        return FlowCounters(base.packets + slot.packets, base.bytes + slot.bytes, last)

    async def _stage(self, name, value):
        offset = _offset(name)
        if self._staged.get(offset) != value:
            await self.backend.write(offset, value)
            self._staged[offset] = value

    async def _stage_entry(self, key, action):
        for w in range(KEY_WORDS):
            await self._stage(f"key_{w}", (key >> (32 * w)) & 0xFFFF_FFFF)
        for w in range(-(-self.action_width // 32)):
            await self._stage(f"action_{w}", (action >> (32 * w)) & 0xFFFF_FFFF)
        assert -(-self.action_width // 32) <= ACTION_WORDS

    async def _command(self, command, index, *, mask=False):
        """Run a command (a bit number, or a bit mask with ``mask``) on slot ``index``."""
        if not 0 <= index < self.entries:
            raise IndexError(f"slot {index} outside a table of {self.entries}")
        await self._stage("index", index)
        await self.backend.write(_offset("command"), command if mask else 1 << command)
        for _ in range(self.poll_limit):
            status = await self.backend.read(_offset("status"))
            if not status & 1:
                break
        else:
            raise CommandRejectedError(f"command {command} on slot {index} did not complete")
        if status & 2:
            raise CommandRejectedError(f"command {command} on slot {index} was rejected")

    async def _read_words(self, prefix, count):
        value = 0
        for w in range(count):
            value |= await self.backend.read(_offset(f"{prefix}_{w}")) << (32 * w)
        return value

    async def _read64(self, name):
        low, high = REGISTERS[name].words
        value = await self.backend.read(low)
        return value | await self.backend.read(high) << 32

    async def _read_back(self):
        valid = bool(await self.backend.read(_offset("read_status")) & 1)
        key = action = 0
        if valid:
            key = await self._read_words("read_key", KEY_WORDS)
            action = await self._read_words("read_action", -(-self.action_width // 32))
        return SlotContents(
            valid=valid, key=key, action=action,
            packets=await self._read64("read_packets"),
            bytes=await self._read64("read_bytes"),
            last_hit=await self.backend.read(_offset("read_last_hit")),
        )
