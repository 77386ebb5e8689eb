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
from cocotbext.pcie.core.caps import PciCapId

from amnic.csr.ids import DMA_QUEUES, PCIE_DMA
from amnic.dma import moderation, msix
from amnic.dma.core import REGISTERS
from amnic.dma.queues import QueueKind

from .dma_rings import (
    MORE,
    CompletionRing,
    DescriptorRing,
    HostMemory,
    QueueDriver,
    rx_placement,
)

__all__ = ["NicDriver", "BarRegisters", "RootComplexMemory"]

OFFSET = {r.name: r.offset for r in REGISTERS.registers}
_CONTROL_FIELDS = {f.name: f.offset for r in REGISTERS.registers if r.name == "control"
                   for f in r.fields}
_LOOPBACK_BIT, _WINDOW_BIT = _CONTROL_FIELDS["loopback"], _CONTROL_FIELDS["window"]

# Interrupt capability fields (PCIe Base Specification 7.7.1.2 MSI Message Control, 7.7.2.2
# MSI-X Message Control, 7.7.2 MSI-X table entry layout).
_MESSAGE_CONTROL = 0x2  # byte offset of Message Control in the MSI and MSI-X capabilities
_MSI_ENABLE = 1 << 0
_MSI_CAPABLE_SHIFT, _MSI_ENABLED_SHIFT = 1, 4  # Multiple Message Capable / Enable, 3 bits each
_MSIX_FUNCTION_MASK = 1 << 14
_VECTOR_CONTROL = 0xC  # Vector Control DWORD of a table entry; bit 0 is the Mask Bit
# Moderation register fields (amnic.dma.moderation.InterruptModerator register window).
_THRESHOLD_SHIFT = 16  # CONFIG [31:16]; the vector is [15:0]
_COUNT_SHIFT = 16  # CONTROL read [31:16]; [0] armed, [1] expired


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

    async def probe(self, vectors=8, *, msi=False):
        """Check that BAR0 holds the blocks this driver knows, and enable MSI-X vectors (with
        ``msi``, MSI instead: :meth:`enable_msi`)."""
        if await self.bar.read_dword(0) != PCIE_DMA:
            raise RuntimeError("BAR0 does not start with the PCIe DMA block")
        if await self.bar.read_dword(4) >> 16 != REGISTERS.version >> 16:
            raise RuntimeError("unsupported PCIe DMA register-map major version")
        if await self.bar.read_dword(self.core.queue_offset) != DMA_QUEUES:
            raise RuntimeError("no queue block where expected")
        self.counts = tuple([await self.queues.counter(name) for name in
                             ("tx_queues", "rx_queues", "completion_queues")])
        function = self.host.function
        if msi:
            await self.enable_msi(vectors)
            return self.counts
        self.vectors = await function.alloc_irq_vectors(1, vectors)
        for vector in range(self.vectors):
            function.request_irq(vector, self._handler(vector))
        return self.counts

    def _handler(self, vector):
        async def handle():
            self.interrupts[vector] += 1
            self.interrupt_event.set()
        return handle

    # -- MSI and MSI-X ----------------------------------------------------------------------

    async def enable_msi(self, vectors):
        """Use MSI, not MSI-X: program the MSI capability, take every message the root complex
        allocated (``interrupts[m]`` counts message ``m``) and enable ``vectors`` messages
        (:meth:`set_msi_messages`). The core sends queue vector ``v`` as message
        ``v mod messages``. Returns the number of messages enabled."""
        function = self.host.function
        if await function.enable_msi_range(1, vectors) < 0:
            raise RuntimeError("MSI could not be enabled (no capability, or MSI-X is on)")
        for message in range(len(function.msi_vectors)):
            function.request_irq(message, self._handler(message))
        return await self.set_msi_messages(vectors)

    async def set_msi_messages(self, count):
        """Write MSI Multiple Message Enable for ``count`` messages, rounded up to a power of
        two and limited by Multiple Message Capable (PCIe 7.7.1.2); MSI is disabled while the
        field changes. Returns the number of messages enabled (also in ``vectors``)."""
        function = self.host.function
        control = await function.capability_read_word(PciCapId.MSI, _MESSAGE_CONTROL)
        capable = control >> _MSI_CAPABLE_SHIFT & 7
        enabled = min((max(count, 1) - 1).bit_length(), capable)
        control = control & ~(7 << _MSI_ENABLED_SHIFT) | enabled << _MSI_ENABLED_SHIFT
        await function.capability_write_word(PciCapId.MSI, _MESSAGE_CONTROL,
                                             control & ~_MSI_ENABLE)
        await function.capability_write_word(PciCapId.MSI, _MESSAGE_CONTROL,
                                             control | _MSI_ENABLE)
        self.vectors = 1 << enabled
        return self.vectors

    def _msix_entry(self, vector):
        return self.core.msix_table_offset + vector * msix.ENTRY_BYTES

    async def mask_vector(self, vector, masked=True):
        """Set or clear the Mask Bit of MSI-X table entry ``vector`` (PCIe 7.7.2.4)."""
        await self.bar.write_dword(self._msix_entry(vector) + _VECTOR_CONTROL, int(masked))

    async def vector_masked(self, vector):
        return bool(await self.bar.read_dword(self._msix_entry(vector) + _VECTOR_CONTROL) & 1)

    async def pending_vectors(self):
        """The vectors whose Pending Bit is set in the MSI-X PBA (PCIe 7.7.2.5)."""
        pending = set()
        for dword in range((self.core.msix.vectors + 31) // 32):
            bits = await self.bar.read_dword(self.core.msix_pba_offset + 4 * dword)
            pending |= {32 * dword + bit for bit in range(32) if bits >> bit & 1}
        return pending

    async def set_function_mask(self, masked):
        """Set or clear the MSI-X Function Mask (PCIe 7.7.2.2)."""
        function = self.host.function
        control = await function.capability_read_word(PciCapId.MSIX, _MESSAGE_CONTROL)
        control = control | _MSIX_FUNCTION_MASK if masked else control & ~_MSIX_FUNCTION_MASK
        await function.capability_write_word(PciCapId.MSIX, _MESSAGE_CONTROL, control)

    async def read_register(self, name):
        return await self.bar.read_dword(OFFSET[name])

    async def _set_control(self, bit, enable):
        control = await self.bar.read_dword(OFFSET["control"])
        control = control | 1 << bit if enable else control & ~(1 << bit)
        await self.bar.write_dword(OFFSET["control"], control)

    async def set_loopback(self, enable):
        await self._set_control(_LOOPBACK_BIT, enable)

    async def set_dma_window(self, base=None, limit=None):
        """Let the device DMA only to host bytes ``base``..``limit`` (inclusive; by default
        the driver's own memory), or to anywhere with ``base=False``."""
        if base is False:
            await self._set_control(_WINDOW_BIT, False)
            return
        base = self.memory.base if base is None else base
        limit = self.memory.base + len(self.memory.data) - 1 if limit is None else limit
        for name, value in (("window_base", base), ("window_limit", limit)):
            await self.bar.write_dword(OFFSET[name], value & 0xFFFF_FFFF)
            await self.bar.write_dword(OFFSET[name] + 4, value >> 32)
        await self._set_control(_WINDOW_BIT, True)

    async def window_fault(self):
        """Host address of the latest transfer the window refused."""
        low = await self.bar.read_dword(OFFSET["window_fault"])
        return low | await self.bar.read_dword(OFFSET["window_fault"] + 4) << 32

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

    async def set_moderation(self, cq, *, vector=None, threshold=None, timer=None):
        """Change the given moderation settings of ``cq`` (the others keep their values):
        interrupt ``vector``, count ``threshold``, ``timer`` in timer units (0: none)."""
        base = cq * moderation.SOURCE_BYTES
        if vector is not None or threshold is not None:
            config = await self.moderation.read(base + moderation.CONFIG)
            vector = config & 0xFFFF if vector is None else vector
            threshold = config >> _THRESHOLD_SHIFT if threshold is None else threshold
            await self.moderation.write(base + moderation.CONFIG,
                                        vector | threshold << _THRESHOLD_SHIFT)
        if timer is not None:
            await self.moderation.write(base + moderation.TIMER, timer)

    async def moderation_control(self, cq, bits):
        """Write ``bits`` (:data:`~amnic.dma.moderation.ARM`, ``CLEAR``, ``DISARM``) to the
        CONTROL register of ``cq``."""
        await self.moderation.write(cq * moderation.SOURCE_BYTES + moderation.CONTROL, bits)

    async def moderation_settings(self, cq):
        """``cq``'s moderation settings as the device reads them back: ``vector``,
        ``threshold``, ``timer``."""
        base = cq * moderation.SOURCE_BYTES
        config = await self.moderation.read(base + moderation.CONFIG)
        return {"vector": config & 0xFFFF, "threshold": config >> _THRESHOLD_SHIFT,
                "timer": await self.moderation.read(base + moderation.TIMER)}

    async def moderation_state(self, cq):
        """``cq``'s moderation state: ``armed``, ``expired`` (0/1) and pending ``count``."""
        value = await self.moderation.read(cq * moderation.SOURCE_BYTES + moderation.CONTROL)
        return {"armed": value & 1, "expired": value >> 1 & 1, "count": value >> _COUNT_SHIFT}

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
        """The bytes of an RX completion's packet (all of it unless TRUNCATED), gathered
        from the buffers it used, which go back to the driver."""
        buffers = [self.rx_buffers[entry.queue].pop((entry.index + k) & 0xFFFF)
                   for k in range(entry.descriptors)]
        takes, _ = rx_placement(entry.length, [size for _, size in buffers])
        return b"".join(self.memory.read(address, n) for (address, _), n in zip(buffers, takes))

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
