"""Host side of the DMA descriptor queues (:mod:`amnic.dma.queues`): memory, rings and driver.

* :class:`HostMemory` — a ``bytearray`` standing for host memory, with a bump allocator;
* :class:`DmaReadModel` / :class:`DmaWriteModel` — Amaranth-simulator testbenches that play
  the DMA engines behind a :func:`~amnic.dma.ports.DmaReadPortSignature` /
  :func:`~amnic.dma.ports.DmaWritePortSignature` port against that memory, with a fixed
  latency, random back-pressure and injectable errors. Commands, data and statuses run in
  separate testbenches, as the streams of a port are independent;
* :class:`DescriptorRing` — a TX or RX ring: the host writes descriptors and advances its
  producer index (free-running 16 bits); :func:`rx_placement` tells how a received packet is
  spread over the RX buffers;
* :class:`CompletionRing` — a completion ring: the host reads entries at its consumer index
  while their phase bit is the one expected for the current pass, and rejects duplicates;
* :class:`QueueDriver` — the register sequences of the ``dma_queues`` block (offsets from
  :data:`amnic.dma.queues.REGISTERS`) over any backend with ``async read(offset)`` and
  ``async write(offset, value)`` (e.g. :class:`amnic.sim.csr_bus.SimulatorBackend`).

Formats and index rules are those documented in :mod:`amnic.dma.queues`.
"""

import struct
from collections import deque
from dataclasses import dataclass

from amnic.dma.commands import DmaError
from amnic.dma.queues import REGISTERS, CompletionStatus, QueueKind
from amnic.dma.rx_queues import SCATTER_BLOCK

__all__ = [
    "DESCRIPTOR_BYTES", "ENTRY_BYTES", "MORE", "HostMemory", "DmaReadModel", "DmaWriteModel",
    "DescriptorRing", "Completion", "CompletionRing", "QueueDriver", "pack_descriptor",
    "DuplicateCompletionError", "rx_placement",
]

DESCRIPTOR_BYTES = 16
ENTRY_BYTES = 16
#: Descriptor flag: the packet continues in the next descriptor.
MORE = 1


def pack_descriptor(address, length, flags=0):
    """The 16 bytes of a descriptor."""
    return struct.pack("<QII", address, length, flags)


class HostMemory:
    """Host memory: ``size`` bytes, zeroed, with an aligned bump allocator."""

    def __init__(self, size=1 << 22, *, base=0x1000_0000):
        self.data = bytearray(size)
        self.base = base
        self.next = 0

    def alloc(self, size, align=64):
        """Address of ``size`` fresh zero bytes."""
        self.next = -(-self.next // align) * align
        address = self.base + self.next
        self.next += size
        if self.next > len(self.data):
            raise MemoryError("host memory model exhausted")
        return address

    def _span(self, address, length):
        offset = address - self.base
        if offset < 0 or offset + length > len(self.data):
            raise IndexError(f"access {address:#x}+{length} outside host memory")
        return offset

    def read(self, address, length):
        offset = self._span(address, length)
        return bytes(self.data[offset:offset + length])

    def write(self, address, data):
        offset = self._span(address, len(data))
        self.data[offset:offset + len(data)] = data


def _beats(data, lanes):
    for start in range(0, len(data), lanes):
        chunk = data[start:start + lanes]
        yield {"data": int.from_bytes(chunk, "little"), "keep": (1 << len(chunk)) - 1,
               "last": int(start + lanes >= len(data))}


async def _wait(ctx, ready):
    """Tick until ``ready`` is sampled high at a clock edge."""
    while True:
        _, _, value = await ctx.tick().sample(ready)
        if value:
            return


class _Model:
    def __init__(self, port, memory, width, rng, *, latency, ready, gap, errors):
        self.port = port
        self.memory = memory
        self.lanes = width // 8
        self.rng = rng
        self.latency = latency
        self.ready = ready
        self.gap = gap
        self.errors = errors or (lambda address, length: None)
        self.now = 0
        self.commands = deque()  # (due cycle, address, length, id)
        self.statuses = deque()  # (due cycle, id, error)
        self.log = []  # (address, length, error) of every command, in order

    def benches(self):
        """The testbenches to add with ``background=True``."""
        return [self._cmd, self._data, self._status]

    async def _cmd(self, ctx):
        cmd = self.port.cmd
        while True:
            ctx.set(cmd.ready, self.rng.random() < self.ready)
            _, _, valid, ready, payload = await ctx.tick().sample(cmd.valid, cmd.ready,
                                                                  cmd.payload)
            self.now += 1
            if valid and ready:
                assert 1 <= payload.length <= 1 << 16, payload
                self.commands.append((self.now + self.latency, payload.address,
                                      payload.length, payload.id))

    async def _status(self, ctx):
        status = self.port.status
        while True:
            if not self.statuses or self.statuses[0][0] > self.now:
                await ctx.tick()
                continue
            _, ident, error = self.statuses.popleft()
            ctx.set(status.payload, {"id": ident, "error": error})
            ctx.set(status.valid, 1)
            await _wait(ctx, status.ready)
            ctx.set(status.valid, 0)


class DmaReadModel(_Model):
    """The read engine behind a read port (client's ``cmd`` taken with probability ``ready``
    per cycle; data starts ``latency`` cycles after the command; each beat is offered after an
    idle cycle with probability ``gap``). ``errors(address, length)`` returns a
    :class:`~amnic.dma.commands.DmaError` for a command that fails (its data still arrives,
    zero filled) or ``None``."""

    def __init__(self, port, memory, width, rng, *, latency=50, ready=0.8, gap=0.1,
                 errors=None):
        super().__init__(port, memory, width, rng, latency=latency, ready=ready, gap=gap,
                         errors=errors)

    async def _data(self, ctx):
        port = self.port.data
        while True:
            if not self.commands or self.commands[0][0] > self.now:
                await ctx.tick()
                continue
            _, address, length, ident = self.commands.popleft()
            error = self.errors(address, length) or DmaError.OK
            self.log.append((address, length, error))
            payload = (self.memory.read(address, length) if error == DmaError.OK
                       else bytes(length))
            for beat in _beats(payload, self.lanes):
                while self.rng.random() < self.gap:
                    await ctx.tick()
                ctx.set(port.payload, beat)
                ctx.set(port.valid, 1)
                await _wait(ctx, port.ready)
                ctx.set(port.valid, 0)
            self.statuses.append((self.now, ident, error))


class DmaWriteModel(_Model):
    """The write engine behind a write port: takes each command's data (ready with
    probability ``ready`` per cycle), writes it to memory unless ``errors`` fails the command,
    and returns the status ``latency`` cycles later."""

    def __init__(self, port, memory, width, rng, *, latency=50, ready=0.8, gap=0.1,
                 errors=None):
        super().__init__(port, memory, width, rng, latency=latency, ready=ready, gap=gap,
                         errors=errors)

    async def _data(self, ctx):
        port = self.port.data
        while True:
            if not self.commands:
                await ctx.tick()
                continue
            _, address, length, ident = self.commands.popleft()
            payload = bytearray()
            while True:
                ready = self.rng.random() < self.ready
                ctx.set(port.ready, ready)
                _, _, valid, beat = await ctx.tick().sample(port.valid, port.payload)
                if not (ready and valid):
                    continue
                keep = beat.keep
                n = keep.bit_length()
                assert keep == (1 << n) - 1, f"keep {keep:#x} not packed"
                assert beat.last or n == self.lanes, "short beat before the last"
                payload += beat.data.to_bytes(self.lanes, "little")[:n]
                if beat.last:
                    break
            ctx.set(port.ready, 0)
            assert len(payload) == length, f"{len(payload)} bytes written, command {length}"
            error = self.errors(address, length) or DmaError.OK
            self.log.append((address, length, error))
            if error == DmaError.OK:
                self.memory.write(address, payload)
            self.statuses.append((self.now + self.latency, ident, error))


def rx_placement(length, sizes):
    """Where the RX queues put a packet of ``length`` bytes, given the sizes of the buffers
    posted from the consumer index on (:mod:`amnic.dma.rx_queues`): the bytes each buffer used
    takes, and the completion status (a :class:`~amnic.dma.queues.CompletionStatus`)."""
    takes = []
    remaining = length
    for n, size in enumerate(sizes):
        final = n == len(sizes) - 1
        if remaining <= size:
            usable = remaining
        else:
            usable = size if final else size - size % SCATTER_BLOCK
        takes.append(usable)
        if usable == 0:
            return takes, CompletionStatus.BAD_DESCRIPTOR
        remaining -= usable
        if remaining == 0:
            return takes, CompletionStatus.OK
    return takes, CompletionStatus.TRUNCATED


class DescriptorRing:
    """A TX or RX descriptor ring of ``2**log_size`` entries in ``memory``, starting at
    free-running index ``start``."""

    def __init__(self, memory, log_size, *, start=0):
        self.memory = memory
        self.log_size = log_size
        self.size = 1 << log_size
        self.base = memory.alloc(self.size * DESCRIPTOR_BYTES)
        self.start = start
        self.producer = start
        self.posted = 0  # descriptors posted since the start (not wrapped)

    def address_of(self, index):
        return self.base + (index % self.size) * DESCRIPTOR_BYTES

    def post(self, address, length, flags=0):
        """Write a descriptor at the producer index and advance it; returns its index."""
        index = self.producer
        self.memory.write(self.address_of(index), pack_descriptor(address, length, flags))
        self.producer = (self.producer + 1) & 0xFFFF
        self.posted += 1
        return index

    def in_flight(self, consumer):
        """Descriptors posted and not yet consumed, given the device's consumer index."""
        return (self.producer - consumer) & 0xFFFF


class DuplicateCompletionError(AssertionError):
    """A completion entry reported a descriptor index already completed."""


@dataclass(frozen=True)
class Completion:
    """One completion entry, decoded."""

    queue: int
    status: int
    kind: int
    index: int
    length: int
    phase: int
    descriptors: int = 0  #: descriptors the packet used

    @classmethod
    def unpack(cls, raw):
        queue, status, kind, index, count, length, top = struct.unpack("<HBBHHI3xB", raw)
        assert raw[12:15] == b"\0\0\0", f"reserved bytes set: {raw}"
        assert top & 0x7F == 0, f"reserved bits of byte 15 set: {raw}"
        return cls(queue, status, kind, index, length, top >> 7, count)


class CompletionRing:
    """A completion ring of ``2**log_size`` entries; the host consumes entries from
    free-running index ``start``.

    The ring is zeroed, except that a slot whose first entry (from ``start`` on) falls on a
    phase-0 pass gets phase 1, so it reads as stale until written (needed only when ``start``
    is not on an even pass, i.e. bit ``log_size`` of ``start`` is set).
    """

    def __init__(self, memory, log_size, *, start=0):
        self.memory = memory
        self.log_size = log_size
        self.size = 1 << log_size
        self.base = memory.alloc(self.size * ENTRY_BYTES)
        self.consumer = start
        # Zeroed entries read as stale only on a pass whose phase is 1; for a start index on
        # a phase-0 pass, give each slot the opposite of the phase its first entry will have.
        for slot in range(self.size):
            first = start + (slot - start) % self.size
            if self.expected_phase(first) == 0:
                self.memory.write(self.base + slot * ENTRY_BYTES + 15, b"\x80")
        self.seen = set()
        self.received = []

    def expected_phase(self, index):
        return ((index >> self.log_size) & 1) ^ 1

    def poll(self):
        """Consume every new entry (phase as expected for its pass); returns them."""
        new = []
        while True:
            address = self.base + (self.consumer % self.size) * ENTRY_BYTES
            entry = Completion.unpack(self.memory.read(address, ENTRY_BYTES))
            if entry.phase != self.expected_phase(self.consumer):
                break
            key = (entry.kind, entry.queue, entry.index)
            if key in self.seen:
                raise DuplicateCompletionError(f"completion {entry} seen twice")
            self.seen.add(key)
            new.append(entry)
            self.consumer = (self.consumer + 1) & 0xFFFF
        self.received += new
        return new


class QueueDriver:
    """Register sequences of the ``dma_queues`` block over ``backend``."""

    def __init__(self, backend):
        self.backend = backend

    async def _write(self, name, value):
        register = REGISTERS[name]
        for half, offset in enumerate(register.words):
            await self.backend.write(offset, (value >> (32 * half)) & 0xFFFF_FFFF)

    async def _read(self, name):
        register = REGISTERS[name]
        value = 0
        for half, offset in enumerate(register.words):
            value |= await self.backend.read(offset) << (32 * half)
        return value

    async def _command(self, bit):
        await self._write("command", bit)
        for _ in range(200):
            if not await self._read("command") & bit:
                return
        raise TimeoutError("queue command did not finish")

    async def configure(self, kind, queue, *, base, log_size, enable=True, cq=0, weight=1,
                        producer=0, consumer=None):
        """Write a queue's configuration and indices (clears its error)."""
        kind = QueueKind(kind).value
        consumer = producer if consumer is None else consumer
        await self._write("queue_select", queue | kind << 16)
        await self._write("base", base)
        await self._write("config", log_size | int(enable) << 4 | weight << 8 | cq << 16)
        await self._write("producer", producer)
        await self._write("consumer", consumer)
        await self._command(1)

    async def disable(self, kind, queue):
        info = await self.read(kind, queue)
        await self.configure(kind, queue, base=info["base"], log_size=info["log_size"],
                             enable=False, cq=info["cq"], weight=info["weight"],
                             producer=info["producer"], consumer=info["consumer"])

    async def read(self, kind, queue):
        """A queue's configuration, indices, error and statistics, as a dict."""
        kind = QueueKind(kind).value
        await self._write("queue_select", queue | kind << 16)
        await self._command(2)
        config = await self._read("config")
        return {
            "base": await self._read("base"),
            "log_size": config & 0xF, "enable": config >> 4 & 1, "weight": config >> 8 & 0xFF,
            "cq": config >> 16,
            "producer": await self._read("producer"),
            "consumer": await self._read("consumer"),
            "error": await self._read("error"),
            "packets": await self._read("packets"),
            "bytes": await self._read("bytes"),
            "drops": await self._read("drops"),
        }

    async def doorbell(self, kind, queue, index):
        name = {QueueKind.TX: "tx_doorbell", QueueKind.RX: "rx_doorbell",
                QueueKind.CQ: "cq_doorbell"}[QueueKind(kind)]
        await self._write(name, queue << 16 | (index & 0xFFFF))

    async def counter(self, name):
        """A global register (``bad_doorbells``, ``lost_doorbells``, ...)."""
        return await self._read(name)
