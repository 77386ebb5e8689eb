"""The PCIe DMA core: the UltraScale+ hard IP's user interface on one side, registers and host
memory access for the rest of the NIC on the other.

Port names are the hard IP's (PG213 "Port Descriptions"), so the generated Verilog connects to
``pcie4_uscale_plus`` / ``pcie4c_uscale_plus`` directly: ``m_axis_cq_*``, ``s_axis_cc_*``,
``s_axis_rq_*``, ``m_axis_rc_*``, ``cfg_max_payload``, ``cfg_max_read_req`` and
``pcie_cq_np_req``.

BAR0 map (byte offsets, ``bar_bits`` = 20 by default):

============  ==========  ==============================================================
offset        size        contents
============  ==========  ==============================================================
0x00000       0x100       :data:`REGISTERS`: identification, link settings, counters
0x08000       (vectors)   MSI-X table, then the pending-bit array at
                          :attr:`PcieDmaCore.msix_pba_offset` (PCIe 7.7.2)
0x10000       0x80        descriptor and completion queues
                          (:data:`amnic.dma.queues.REGISTERS`)
0x40000       16/queue    interrupt moderation per completion queue
                          (:class:`amnic.dma.moderation.InterruptModerator`)
half of BAR0  half        the application window: AXI4-Lite master ``m_axil`` (offsets
                          relative to the window), for the registers of the rest of the NIC
============  ==========  ==============================================================

Reads of unmapped offsets return 0 (counted in ``bus_errors``); writes there are ignored.

Host memory: the DMA write and read engines share the requester request bus (RQ, whole TLPs
round robin); the read engine takes the completions (RC). Other cores reach host memory through
the AXI4 slave ``s_axi`` (:class:`~amnic.dma.axi_port.HostMemoryPort`); the engines split at
the Max_Payload_Size / Max_Read_Request_Size the host programmed and at 4 KB boundaries.
Queues: TX packets the host posts leave on ``m_axis_tx`` (``tuser`` bit 0: a buffer read
failed, bits 16:1: TX queue), RX packets arrive on ``s_axis_rx`` (``tuser`` bit 0 on the last
beat: the packet is bad and is dropped, bits 16:1: RX queue), or,
with ``control.loopback`` set, every TX packet returns on the RX queue of the same number.
Completions of both go to the completion queue each queue names; every completion written is
an event for that queue's interrupt moderation, whose interrupts become MSI-X messages.
Interrupts: ``interrupt`` requests an MSI-X message for a vector from other cores (MSI when the
host enabled only MSI), subject to the table's masks.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterBusDecoder, RegisterFile
from amnic.csr import version as block_version
from amnic.csr.ids import PCIE_DMA
from amnic.stream import PacketSignature
from amnic.stream.axi4 import Axi4Signature
from amnic.stream.axil import AxiLiteSignature, RegisterBusToAxiLite

from .axi_port import HostMemoryPort
from .axis import Bus, HardIpRx, HardIpStreamSignature, HardIpTx, default_straddle
from .commands import DmaError
from .completer import Completer
from .host_queues import HostQueues, merge_streams
from .moderation import InterruptModerator
from .msix import MsixController
from .ports import DmaReadMux, DmaWriteMux, ReadBuffer
from .queues import REGISTERS as QUEUE_REGISTERS
from .rc_align import CompletionAligner
from .read import TIMEOUT_BITS, DmaReadEngine
from .rq_framer import RequestFramer, RequestStreamSignature
from .tlp_mux import TlpArbiter
from .window import DmaReadWindow, DmaWriteWindow
from .write import DmaWriteEngine

__all__ = ["PcieDmaCore", "REGISTERS", "DEFAULT_READ_TIMEOUT"]

#: Reset value of the ``read_timeout`` register in cycles (about 4 ms at 250 MHz).
DEFAULT_READ_TIMEOUT = 1 << 20

_COUNTERS = (
    ("mmio_reads", "Memory reads of BAR0 the completer answered successfully."),
    ("mmio_writes", "Memory writes to BAR0 the completer performed."),
    ("unsupported", "Requests answered Unsupported Request, or dropped as unsupported "
                    "posted requests (PCIe 2.3.1): I/O, atomics, locked reads, messages, "
                    "other BARs, reads longer than 32 DWORDs."),
    ("malformed", "Writes whose payload was shorter or longer than their length field."),
    ("bus_errors", "BAR0 accesses to offsets where nothing is mapped (reads returned 0)."),
    ("write_tlps", "Memory write TLPs the DMA write engine sent."),
    ("read_timeouts", "DMA read requests that ended in a completion timeout (PCIe 2.8)."),
    ("unexpected_completions", "Completions with an unknown or stale tag, dropped."),
    ("reads_outstanding", "DMA read requests waiting for completions now."),
    ("host_port_errors", "AXI4 host-memory port bursts answered SLVERR (refused bursts and "
                         "transfers the engines reported failed)."),
    ("msix_sent", "MSI-X / MSI messages the hard IP sent."),
    ("msix_failed", "MSI-X / MSI messages the hard IP refused."),
    ("window_refused", "DMA transfers refused because they left the address window "
                       "(`window_base`..`window_limit`); they ended with status OUT_OF_WINDOW."),
    ("read_errors", "DMA reads that ended with a failed completion: Unsupported Request, "
                    "Completer Abort, poisoned data (PCIe 2.3.2, 2.7.2) or a malformed one "
                    "(timeouts are in `read_timeouts`)."),
)

REGISTERS = RegisterBlock(
    "pcie_dma", PCIE_DMA, block_version(1, 0),
    [
        Register("scratch", 0x0C, Access.RW,
                 "Scratch register: holds what software writes, for bus tests."),
        Register("control", 0x80, Access.RW, "Device control.",
                 fields=(Field("loopback", 0, 1, "TX packets return on the RX queue of the "
                               "same number instead of leaving on m_axis_tx; s_axis_rx is "
                               "held off. Change it only while no packet is moving."),
                         Field("window", 1, 1, "Refuse every DMA transfer (descriptors, "
                               "buffers, completion entries, the AXI4 host-memory port) that "
                               "is not wholly inside `window_base`..`window_limit`."))),
        Register("read_timeout", 0x84, Access.RW, "DMA read completion timeout in clock "
                 "cycles (PCIe 2.8; the reset value is about 4 ms at 250 MHz). Change it only "
                 "while no DMA read is outstanding.",
                 fields=(Field("cycles", 0, TIMEOUT_BITS, "Cycles (at least 1)."),),
                 init=DEFAULT_READ_TIMEOUT),
        Register("window_base", 0x88, Access.RW, "First host byte address DMA may touch "
                 "while `control.window` is set.", width=64),
        Register("window_limit", 0x90, Access.RW, "Last host byte address DMA may touch "
                 "(inclusive) while `control.window` is set.", width=64),
        Register("window_fault", 0x98, Access.RO, "Host address of the latest transfer "
                 "refused by the window.", width=64),
        Register("link", 0x10, Access.RO, "Settings the host programmed, as the hard IP "
                 "reports them (PCIe Device Control register, 7.5.3.4).",
                 fields=(Field("max_payload", 0, 3, "Max_Payload_Size: 128 << value bytes."),
                         Field("max_read_request", 3, 3,
                               "Max_Read_Request_Size: 128 << value bytes."))),
        Register("interface", 0x14, Access.RO, "Build parameters.",
                 fields=(Field("width", 0, 10, "PCIe user interface width in bits."),
                         Field("bar_bits", 10, 6, "log2 of the BAR0 size in bytes."),
                         Field("rq_straddle", 16, 1, "Two TLPs may share an RQ beat (the "
                               "hard IP's RQ straddle option must be on)."),
                         Field("rc_straddle", 17, 1, "Two TLPs may share an RC beat (the "
                               "hard IP's RC straddle option must be on)."))),
        *(Register(name, 0x18 + 4 * i, Access.RO, doc) for i, (name, doc)
          in enumerate(_COUNTERS)),
    ],
    "PCIe interface of the DMA core: identification, link settings and completer counters.",
    size=0x100,
)


class PcieDmaCore(wiring.Component):
    """PCIe endpoint logic on the UltraScale+ integrated block.

    Parameters
    ----------
    width : int
        User interface width: 256 (Gen3 x8) or 512 (Gen3 x16, Gen4 x8).
    bar_bits : int
        log2 of the BAR0 size in bytes (the hard IP's BAR0 aperture must match).
    msix_vectors : int
        MSI-X table size (the hard IP's MSI-X capability must say the same, table in BAR0 at
        :attr:`msix_table_offset`, PBA at :attr:`msix_pba_offset`).
    read_tags : int
        Outstanding DMA read requests (256 needs Extended Tag Field Enable).
    tx_queues, rx_queues, completion_queues : int
        Queue counts (per-queue state in block RAM).
    rq_straddle : bool
        Let a DMA request start in DWORD 8 of a beat (:class:`~amnic.dma.rq_framer.
        RequestFramer`; 512 bit only, default on there, where full-rate writes need it). The
        hard IP's RQ straddle option must match; ``interface.rq_straddle`` tells software.
    rc_straddle : bool
        Accept completions that start in the upper half of an RC beat (:class:`~amnic.dma.
        rc_align.CompletionAligner`; default on at 512 bit). The hard IP's RC straddle option
        (two TLPs per beat) must match; ``interface.rc_straddle`` tells software.

    Attributes
    ----------
    m_axis_cq : In(HardIpStreamSignature(Bus.CQ, width))
    s_axis_cc : Out(HardIpStreamSignature(Bus.CC, width))
    s_axis_rq : Out(HardIpStreamSignature(Bus.RQ, width))
    m_axis_rc : In(HardIpStreamSignature(Bus.RC, width))
    cfg_max_payload : In(2)
        ``cfg_max_payload`` of the hard IP (00: 128 bytes ... 11: 1024 bytes).
    cfg_max_read_req : In(3)
        ``cfg_max_read_req`` of the hard IP (000: 128 bytes ... 101: 4096 bytes).
    pcie_cq_np_req : Out(2)
        Non-posted request credits granted to the hard IP: always 1 (one per cycle). The
        completer back-pressures CQ while it works.
    cfg_interrupt_msix_* , cfg_interrupt_msi_*
        The hard IP's interrupt interface (MSI-X external table mode, PF0).
    m_axil : Out(AxiLiteSignature(bar_bits - 1))
        The application half of BAR0.
    s_axi : In(Axi4Signature(64, width, 8))
        Host memory for other cores.
    interrupt : In(stream.Signature(range(msix_vectors)))
        Interrupt requests from other cores.
    m_axis_tx : Out(PacketSignature(width, 17))
        Packets from the TX queues.
    s_axis_rx : In(PacketSignature(width, 17))
        Packets for the RX queues (``user`` bit 0 on the last beat: bad, drop it).
    """

    def __init__(self, width=256, *, bar_bits=20, msix_vectors=64, read_tags=256,
                 tx_queues=256, rx_queues=256, completion_queues=256, rq_straddle=None,
                 rc_straddle=None):
        if not 17 <= bar_bits <= 30:
            raise ValueError(f"bar_bits must be 17..30, not {bar_bits}")
        self.width = width
        self.rq_straddle = default_straddle(width) if rq_straddle is None else rq_straddle
        self.rc_straddle = default_straddle(width) if rc_straddle is None else rc_straddle
        self.bar_bits = bar_bits
        self.app_base = 1 << (bar_bits - 1)
        self.read_tags = read_tags
        self.msix = MsixController(msix_vectors)
        self.msix_table_offset = 0x8000
        self.msix_pba_offset = self.msix_table_offset + self.msix.pba_offset
        if self.msix.size > 0x8000:
            raise ValueError(f"{msix_vectors} MSI-X vectors do not fit the 32 KB window")
        self.queue_counts = (tx_queues, rx_queues, completion_queues)
        self.queue_offset = 0x10000
        self.moderation_offset = 0x40000
        self.moderation = InterruptModerator(completion_queues, vectors=msix_vectors)
        if self.moderation.size > 0x40000:
            raise ValueError(f"{completion_queues} completion queues do not fit the "
                             f"moderation window")
        super().__init__({
            "m_axis_cq": In(HardIpStreamSignature(Bus.CQ, width)),
            "s_axis_cc": Out(HardIpStreamSignature(Bus.CC, width)),
            "s_axis_rq": Out(HardIpStreamSignature(Bus.RQ, width)),
            "m_axis_rc": In(HardIpStreamSignature(Bus.RC, width)),
            "cfg_max_payload": In(2),
            "cfg_max_read_req": In(3),
            "pcie_cq_np_req": Out(2),
            "cfg_interrupt_msix_enable": In(4),
            "cfg_interrupt_msix_mask": In(4),
            "cfg_interrupt_msix_address": Out(64),
            "cfg_interrupt_msix_data": Out(32),
            "cfg_interrupt_msix_int": Out(1),
            "cfg_interrupt_msix_sent": In(1),
            "cfg_interrupt_msix_fail": In(1),
            "cfg_interrupt_msi_enable": In(4),
            "cfg_interrupt_msi_mmenable": In(12),
            "cfg_interrupt_msi_int": Out(32),
            "cfg_interrupt_msi_sent": In(1),
            "cfg_interrupt_msi_fail": In(1),
            "m_axil": Out(AxiLiteSignature(bar_bits - 1)),
            "s_axi": In(Axi4Signature(64, width, 8)),
            "interrupt": In(stream.Signature(range(msix_vectors))),
            "m_axis_tx": Out(PacketSignature(width, 17)),
            "s_axis_rx": In(PacketSignature(width, 17)),
        })

    def elaborate(self, platform):
        m = Module()
        width = self.width

        # Completer: host requests to BAR0.
        m.submodules.cq = cq = HardIpRx(Bus.CQ, width)
        m.submodules.cc = cc = HardIpTx(Bus.CC, width)
        m.submodules.completer = completer = Completer(width, self.bar_bits)
        wiring.connect(m, wiring.flipped(self.m_axis_cq), cq.i)
        wiring.connect(m, cc.o, wiring.flipped(self.s_axis_cc))
        wiring.connect(m, cq.o, completer.cq)
        wiring.connect(m, completer.cc, cc.i)
        m.d.comb += self.pcie_cq_np_req.eq(1)

        m.submodules.decoder = decoder = RegisterBusDecoder(self.bar_bits, [
            (0, REGISTERS.size),
            (self.msix_table_offset, self.msix.size),
            (self.queue_offset, QUEUE_REGISTERS.size),
            (self.moderation_offset, self.moderation.size),
            (self.app_base, self.app_base),
        ])
        wiring.connect(m, completer.bus, decoder.bus)
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, decoder.target(0), regs.bus)
        m.submodules.msix = msix = self.msix
        wiring.connect(m, decoder.target(1), msix.bus)
        m.submodules.app = app = RegisterBusToAxiLite(self.bar_bits - 1)
        wiring.connect(m, decoder.target(4), app.bus)
        wiring.connect(m, app.m_axil, wiring.flipped(self.m_axil))

        # Requester: DMA engines on RQ/RC, shared by their clients.
        m.submodules.write = write = DmaWriteEngine(width)
        m.submodules.read = read = DmaReadEngine(width, tags=self.read_tags,
                                                     timeout_cycles=DEFAULT_READ_TIMEOUT)
        m.submodules.rq_mux = rq_mux = TlpArbiter(RequestStreamSignature(width), 2)
        m.submodules.rq = rq = RequestFramer(width, straddle=self.rq_straddle)
        m.submodules.rc = rc = CompletionAligner(width, straddle=self.rc_straddle)
        wiring.connect(m, write.rq, rq_mux.i0)
        wiring.connect(m, read.rq, rq_mux.i1)
        wiring.connect(m, rq_mux.o, rq.i)
        wiring.connect(m, rq.o, wiring.flipped(self.s_axis_rq))
        wiring.connect(m, wiring.flipped(self.m_axis_rc), rc.i)
        wiring.connect(m, rc.o, read.rc)
        m.d.comb += [
            write.max_payload.eq(self.cfg_max_payload),
            read.max_read_request.eq(self.cfg_max_read_req),
        ]
        m.submodules.write_mux = write_mux = DmaWriteMux(width, 3)
        m.submodules.read_mux = read_mux = DmaReadMux(width, 3)
        m.submodules.write_window = write_window = DmaWriteWindow(width)
        m.submodules.read_window = read_window = DmaReadWindow(width)
        wiring.connect(m, write_mux.engine, write_window.client)
        wiring.connect(m, read_mux.engine, read_window.client)
        wiring.connect(m, write_window.engine.cmd, write.cmd)
        wiring.connect(m, write_window.engine.data, write.data)
        wiring.connect(m, write.status, write_window.engine.status)
        wiring.connect(m, read_window.engine.cmd, read.cmd)
        wiring.connect(m, read.data, read_window.engine.data)
        wiring.connect(m, read.status, read_window.engine.status)
        for window in (write_window, read_window):
            m.d.comb += [window.window.enable.eq(regs.value.control[1]),
                         window.window.base.eq(regs.value.window_base),
                         window.window.limit.eq(regs.value.window_limit)]
        m.d.comb += read.timeout.eq(regs.value.read_timeout[:TIMEOUT_BITS])
        read_errors = Signal(32)
        with m.If(read.status.valid & read.status.ready &
                  ((read.status.payload.error == DmaError.COMPLETION) |
                   (read.status.payload.error == DmaError.MALFORMED))):
            m.d.sync += read_errors.eq(read_errors + 1)

        # The AXI4 port's reads go through a buffer for all the data it has asked for, so a
        # master slow to take its data (RREADY low) never holds up the in-order read data of
        # the others (the queues buffer their own).
        m.submodules.host_read_buffer = host_read_buffer = ReadBuffer(width, 2 * 256)
        wiring.connect(m, host_read_buffer.engine, read_mux.c0)
        m.submodules.host_port = host_port = HostMemoryPort(width)
        wiring.connect(m, wiring.flipped(self.s_axi), host_port.s_axi)
        wiring.connect(m, host_port.wr, write_mux.c0)
        wiring.connect(m, host_port.rd, host_read_buffer.client)

        # Queues.
        m.submodules.queues = queues = HostQueues(width, *self.queue_counts)
        m.submodules.moderation = moderation = self.moderation
        wiring.connect(m, decoder.target(2), queues.bus)
        wiring.connect(m, decoder.target(3), moderation.bus)
        wiring.connect(m, queues.tx_read, read_mux.c1)
        wiring.connect(m, queues.rx_read, read_mux.c2)
        wiring.connect(m, queues.rx_write, write_mux.c1)
        wiring.connect(m, queues.cq_write, write_mux.c2)
        wiring.connect(m, queues.events, moderation.event)
        wiring.connect(m, queues.m_axis_tx, wiring.flipped(self.m_axis_tx))
        wiring.connect(m, wiring.flipped(self.s_axis_rx), queues.s_axis_rx)
        m.d.comb += queues.loopback.eq(regs.value.control[0])

        # Interrupts.
        merge_streams(m, "irq", [moderation.irq, self.interrupt], msix.request)
        m.d.comb += [
            msix.msix_enable.eq(self.cfg_interrupt_msix_enable[0]),
            msix.msix_mask.eq(self.cfg_interrupt_msix_mask[0]),
            self.cfg_interrupt_msix_int.eq(msix.msix_int),
            self.cfg_interrupt_msix_address.eq(msix.msix_address),
            self.cfg_interrupt_msix_data.eq(msix.msix_data),
            msix.msix_sent.eq(self.cfg_interrupt_msix_sent),
            msix.msix_fail.eq(self.cfg_interrupt_msix_fail),
            msix.msi_enable.eq(self.cfg_interrupt_msi_enable[0]),
            msix.msi_mmenable.eq(self.cfg_interrupt_msi_mmenable[:3]),
            self.cfg_interrupt_msi_int.eq(msix.msi_int),
            msix.msi_sent.eq(self.cfg_interrupt_msi_sent),
            msix.msi_fail.eq(self.cfg_interrupt_msi_fail),
        ]

        status = regs.status
        m.d.comb += [
            status.link.eq(self.cfg_max_payload | self.cfg_max_read_req << 3),
            status.interface.eq(self.width | self.bar_bits << 10 | self.rq_straddle << 16 |
                                    self.rc_straddle << 17),
            status.mmio_reads.eq(completer.reads),
            status.mmio_writes.eq(completer.writes),
            status.unsupported.eq(completer.unsupported),
            status.malformed.eq(completer.malformed),
            status.bus_errors.eq(completer.bus_errors),
            status.write_tlps.eq(write.tlps),
            status.read_timeouts.eq(read.timeouts),
            status.unexpected_completions.eq(read.unexpected_completions),
            status.reads_outstanding.eq(read.outstanding),
            status.host_port_errors.eq(host_port.write_errors + host_port.read_errors),
            status.msix_sent.eq(msix.sent),
            status.msix_failed.eq(msix.failed),
            status.window_refused.eq(write_window.refused + read_window.refused),
            status.read_errors.eq(read_errors),
        ]
        # The latest refusal of either direction (the write's if both in one cycle).
        with m.If(write_window.fault):
            m.d.sync += status.window_fault.eq(write_window.fault_address)
        with m.Elif(read_window.fault):
            m.d.sync += status.window_fault.eq(read_window.fault_address)
        return m
