"""Host driver model of the PCIe DMA core, on cocotbext-pcie's root complex.

Written the way a Linux driver would be, so one can follow it: probe the device (check the
block ids in BAR0), enable MSI-X, allocate completion, TX and RX rings in host memory, post TX
buffers and refill RX, take interrupts, poll completions, re-arm moderation, read statistics
and recover queues. Every register offset comes from the register descriptions
(:data:`amnic.dma.core.REGISTERS`, :data:`amnic.dma.queues.REGISTERS`,
:mod:`amnic.dma.moderation`), the same ones that generate the Markdown reference and the C
headers.

It runs inside a cocotb test: ``host`` is an :class:`amnic.sim.pcie_host.PcieHost` whose
:meth:`~amnic.sim.pcie_host.PcieHost.enumerate` has been awaited.
"""

from collections import defaultdict

from cocotb.triggers import Event

from amnic.csr.ids import DMA_QUEUES, PCIE_DMA
from amnic.dma import moderation
from amnic.dma.core import REGISTERS
from amnic.dma.queues import QueueKind

from .dma_rings import MORE, CompletionRing, DescriptorRing, HostMemory, QueueDriver

__all__ = ["NicDriver", "BarRegisters", "RootComplexMemory"]

OFFSET = {r.name: r.offset for r in REGISTERS.registers}


class BarRegisters:
    """32-bit register access to a window of a BAR (the backend :class:`QueueDriver` uses)."""

    def __init__(self, bar, base):
        self.bar, self.base = bar, base

    async def read(self, offset):
        return await self.bar.read_dword(self.base + offset)

    async def write(self, offset, value):
        await self.bar.write_dword(self.base + offset, value)


class RootComplexMemory(HostMemory):
    """Host memory the device may DMA to: one region of the root complex's memory space,
    handed out by :class:`HostMemory`'s allocator."""

    def __init__(self, rc, size=1 << 22):
        self.base, self.data = rc.alloc_region(size)
        self.next = 0


class NicDriver:
    """The driver of one device.

    Parameters
    ----------
    host : PcieHost
        Enumerated host (root complex and the device's function).
    core : PcieDmaCore
        The core's parameters (window offsets); the driver reads the counts from registers.
    """

    def __init__(self, host, core):
        self.host, self.core = host, core
        self.bar = host.bar0
        self.memory = RootComplexMemory(host.rc)
        self.queues = QueueDriver(BarRegisters(self.bar, core.queue_offset))
        self.moderation = BarRegisters(self.bar, core.moderation_offset)
        self.completion_rings = {}
        self.tx_rings, self.rx_rings = {}, {}
        self.rx_buffers = defaultdict(dict)  # queue -> descriptor index -> (address, size)
        self.interrupts = defaultdict(int)
        self.interrupt_event = Event()

    # -- probe ------------------------------------------------------------------------------

    async def probe(self, vectors=8):
        """Check that BAR0 holds the blocks this driver knows, and enable MSI-X vectors."""
        if await self.bar.read_dword(0) != PCIE_DMA:
            raise RuntimeError("BAR0 does not start with the PCIe DMA block")
        if await self.bar.read_dword(4) >> 16 != REGISTERS.version >> 16:
            raise RuntimeError("unsupported PCIe DMA register-map major version")
        if await self.bar.read_dword(self.core.queue_offset) != DMA_QUEUES:
            raise RuntimeError("no queue block where expected")
        self.counts = tuple([await self.queues.counter(name) for name in
                             ("tx_queues", "rx_queues", "completion_queues")])
        function = self.host.function
        self.vectors = await function.alloc_irq_vectors(1, vectors)
        for vector in range(self.vectors):
            function.request_irq(vector, self._handler(vector))
        return self.counts

    def _handler(self, vector):
        async def handle():
            self.interrupts[vector] += 1
            self.interrupt_event.set()
        return handle

    async def read_register(self, name):
        return await self.bar.read_dword(OFFSET[name])

    async def set_loopback(self, enable):
        await self.bar.write_dword(OFFSET["control"], int(enable))

    # -- completion queues and interrupt moderation ------------------------------------------

    async def create_completion_queue(self, cq, log_size, *, vector=0, threshold=1, timer=0):
        """A completion ring raising ``vector`` after ``threshold`` entries or ``timer`` us."""
        ring = CompletionRing(self.memory, log_size)
        self.completion_rings[cq] = ring
        await self.queues.configure(QueueKind.CQ, cq, base=ring.base, log_size=log_size,
                                    cq=vector)
        base = cq * moderation.SOURCE_BYTES
        await self.moderation.write(base + moderation.CONFIG, vector | threshold << 16)
        await self.moderation.write(base + moderation.TIMER, timer)
        await self.rearm(cq)
        return ring

    async def rearm(self, cq):
        """Allow the next interrupt of ``cq`` (after the driver has serviced it)."""
        await self.moderation.write(cq * moderation.SOURCE_BYTES + moderation.CONTROL,
                                    moderation.ARM)

    async def poll(self, cq):
        """New completion entries of ``cq``; tells the device how far the host has read."""
        ring = self.completion_rings[cq]
        entries = ring.poll()
        if entries:
            await self.queues.doorbell(QueueKind.CQ, cq, ring.consumer)
        return entries

    # -- TX ---------------------------------------------------------------------------------

    async def create_tx_queue(self, queue, log_size, *, cq, weight=1):
        ring = DescriptorRing(self.memory, log_size)
        self.tx_rings[queue] = ring
        await self.queues.configure(QueueKind.TX, queue, base=ring.base, log_size=log_size,
                                    cq=cq, weight=weight)
        return ring

    def queue_tx(self, queue, packet, segments=1):
        """Copy ``packet`` into ``segments`` buffers and post their descriptors (no doorbell
        yet); returns the index of the first descriptor."""
        ring = self.tx_rings[queue]
        cuts = sorted({0, len(packet)} | {len(packet) * k // segments
                                          for k in range(1, segments)})
        pieces = [packet[a:b] for a, b in zip(cuts, cuts[1:])] or [b""]
        first = None
        for n, piece in enumerate(pieces):
            address = self.memory.alloc(max(len(piece), 1))
            self.memory.write(address, piece)
            index = ring.post(address, len(piece), MORE if n < len(pieces) - 1 else 0)
            first = index if first is None else first
        return first

    async def kick_tx(self, queue):
        await self.queues.doorbell(QueueKind.TX, queue, self.tx_rings[queue].producer)

    # -- RX ---------------------------------------------------------------------------------

    async def create_rx_queue(self, queue, log_size, *, cq):
        ring = DescriptorRing(self.memory, log_size)
        self.rx_rings[queue] = ring
        await self.queues.configure(QueueKind.RX, queue, base=ring.base, log_size=log_size,
                                    cq=cq)
        return ring

    async def refill_rx(self, queue, count, size=9600):
        """Post ``count`` receive buffers of ``size`` bytes."""
        ring = self.rx_rings[queue]
        for _ in range(count):
            address = self.memory.alloc(size)
            index = ring.post(address, size)
            self.rx_buffers[queue][index] = (address, size)
        await self.queues.doorbell(QueueKind.RX, queue, ring.producer)

    def received(self, entry):
        """The bytes of an RX completion's packet."""
        address, size = self.rx_buffers[entry.queue].pop(entry.index)
        return self.memory.read(address, min(entry.length, size))

    # -- statistics and recovery ------------------------------------------------------------

    async def stats(self, kind, queue):
        return await self.queues.read(kind, queue)

    async def recover(self, kind, queue):
        """Bring a queue stopped by an error back: write its configuration again with the
        indices where the host is (no device reset)."""
        info = await self.queues.read(kind, queue)
        ring = (self.tx_rings if kind == QueueKind.TX else self.rx_rings)[queue]
        await self.queues.configure(kind, queue, base=info["base"], log_size=info["log_size"],
                                    cq=info["cq"], weight=info["weight"] or 1,
                                    producer=info["consumer"], consumer=info["consumer"])
        ring.producer = info["consumer"]
