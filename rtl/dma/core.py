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
half of BAR0  half        the application window: AXI4-Lite master ``m_axil`` (offsets
                          relative to the window), for the registers of the rest of the NIC
============  ==========  ==============================================================

Reads of unmapped offsets return 0 (counted in ``bus_errors``); writes there are ignored.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterBusDecoder, RegisterFile
from amnic.csr import version as block_version
from amnic.csr.ids import PCIE_DMA
from amnic.stream.axil import AxiLiteSignature, RegisterBusToAxiLite

from .axis import Bus, HardIpRx, HardIpStreamSignature, HardIpTx
from .completer import Completer

__all__ = ["PcieDmaCore", "REGISTERS"]

_COUNTERS = (
    ("mmio_reads", "Memory reads of BAR0 the completer answered successfully."),
    ("mmio_writes", "Memory writes to BAR0 the completer performed."),
    ("unsupported", "Requests answered Unsupported Request, or dropped as unsupported "
                    "posted requests (PCIe 2.3.1): I/O, atomics, locked reads, messages, "
                    "other BARs, reads longer than 32 DWORDs."),
    ("malformed", "Writes whose payload was shorter or longer than their length field."),
    ("bus_errors", "BAR0 accesses to offsets where nothing is mapped (reads returned 0)."),
)

REGISTERS = RegisterBlock(
    "pcie_dma", PCIE_DMA, block_version(1, 0),
    [
        Register("scratch", 0x0C, Access.RW,
                 "Scratch register: holds what software writes, for bus tests."),
        Register("link", 0x10, Access.RO, "Settings the host programmed, as the hard IP "
                 "reports them (PCIe Device Control register, 7.5.3.4).",
                 fields=(Field("max_payload", 0, 3, "Max_Payload_Size: 128 << value bytes."),
                         Field("max_read_request", 3, 3,
                               "Max_Read_Request_Size: 128 << value bytes."))),
        Register("interface", 0x14, Access.RO, "Build parameters.",
                 fields=(Field("width", 0, 10, "PCIe user interface width in bits."),
                         Field("bar_bits", 10, 6, "log2 of the BAR0 size in bytes."))),
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

    Attributes
    ----------
    m_axis_cq : In(HardIpStreamSignature(Bus.CQ, width))
    s_axis_cc : Out(HardIpStreamSignature(Bus.CC, width))
    cfg_max_payload : In(2)
        ``cfg_max_payload`` of the hard IP (00: 128 bytes ... 11: 1024 bytes).
    cfg_max_read_req : In(3)
        ``cfg_max_read_req`` of the hard IP (000: 128 bytes ... 101: 4096 bytes).
    pcie_cq_np_req : Out(2)
        Non-posted request credits granted to the hard IP: always 1 (one per cycle). The
        completer back-pressures CQ while it works.
    m_axil : Out(AxiLiteSignature(bar_bits - 1))
        The application half of BAR0.
    """

    def __init__(self, width=256, *, bar_bits=20):
        if not 12 <= bar_bits <= 30:
            raise ValueError(f"bar_bits must be 12..30, not {bar_bits}")
        self.width = width
        self.bar_bits = bar_bits
        self.app_base = 1 << (bar_bits - 1)
        super().__init__({
            "m_axis_cq": In(HardIpStreamSignature(Bus.CQ, width)),
            "s_axis_cc": Out(HardIpStreamSignature(Bus.CC, width)),
            "cfg_max_payload": In(2),
            "cfg_max_read_req": In(3),
            "pcie_cq_np_req": Out(2),
            "m_axil": Out(AxiLiteSignature(bar_bits - 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.cq = cq = HardIpRx(Bus.CQ, self.width)
        m.submodules.cc = cc = HardIpTx(Bus.CC, self.width)
        m.submodules.completer = completer = Completer(self.width, self.bar_bits)
        wiring.connect(m, wiring.flipped(self.m_axis_cq), cq.i)
        wiring.connect(m, cc.o, wiring.flipped(self.s_axis_cc))
        wiring.connect(m, cq.o, completer.cq)
        wiring.connect(m, completer.cc, cc.i)
        m.d.comb += self.pcie_cq_np_req.eq(1)

        m.submodules.decoder = decoder = RegisterBusDecoder(
            self.bar_bits, [(0, REGISTERS.size), (self.app_base, self.app_base)])
        wiring.connect(m, completer.bus, decoder.bus)
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, decoder.target(0), regs.bus)
        m.submodules.app = app = RegisterBusToAxiLite(self.bar_bits - 1)
        wiring.connect(m, decoder.target(1), app.bus)
        wiring.connect(m, app.m_axil, wiring.flipped(self.m_axil))

        m.d.comb += [
            regs.status.link.eq(self.cfg_max_payload | self.cfg_max_read_req << 3),
            regs.status.interface.eq(self.width | self.bar_bits << 10),
            regs.status.mmio_reads.eq(completer.reads),
            regs.status.mmio_writes.eq(completer.writes),
            regs.status.unsupported.eq(completer.unsupported),
            regs.status.malformed.eq(completer.malformed),
            regs.status.bus_errors.eq(completer.bus_errors),
        ]
        return m
