"""A simulated PCIe host around a generated amnic PCIe core (cocotb).

:func:`attach` puts cocotbext-pcie's UltraScale+ integrated-block model
(``UltraScalePlusPcieDevice``) in front of the design's hard-IP ports and connects it to a
``RootComplex`` with host memory, so a test (or the driver model) sees the design as a host
would: enumerate it, map its BARs, give it memory to DMA into and take its interrupts.

The model drives the design's clock (``clk``, the hard IP's ``user_clk``) and reset (``rst``,
``user_reset``). Only the ports the design has are connected.
"""

from dataclasses import dataclass

from cocotbext.axi import AxiStreamBus
from cocotbext.pcie.core import RootComplex
from cocotbext.pcie.core.caps import PciCapId
from cocotbext.pcie.xilinx.us import UltraScalePlusPcieDevice

from amnic.dma.axis import default_straddle

__all__ = ["PcieHost", "attach", "BAR0", "IO_BAR"]

#: BAR index of the register BAR.
BAR0 = 0
#: BAR index of a small I/O BAR the tests configure, so the host can send I/O requests that
#: the design must refuse (Unsupported Request).
IO_BAR = 2

# PCI Express Capability: Device Control (PCIe 7.5.3.4) and its Max_Read_Request_Size field.
_DEVICE_CONTROL = 0x8
_MRRS_SHIFT = 12

# Model keyword -> design port name, for the optional configuration/status ports.
_OPTIONAL_PORTS = (
    "cfg_max_payload", "cfg_max_read_req", "pcie_cq_np_req", "pcie_cq_np_req_count",
    "cfg_interrupt_msi_enable", "cfg_interrupt_msi_mmenable", "cfg_interrupt_msi_int",
    "cfg_interrupt_msi_sent", "cfg_interrupt_msi_fail", "cfg_interrupt_msix_enable",
    "cfg_interrupt_msix_mask", "cfg_interrupt_msix_address", "cfg_interrupt_msix_data",
    "cfg_interrupt_msix_int", "cfg_interrupt_msix_sent", "cfg_interrupt_msix_fail",
)


@dataclass
class PcieHost:
    """The host side of a test: root complex, device model, and once enumerated the device's
    handle (``function``) and BAR windows."""

    rc: RootComplex
    device: UltraScalePlusPcieDevice
    max_read_request: int = 512
    function: object = None

    @property
    def bar0(self):
        return self.function.bar_window[BAR0]

    @property
    def io_bar(self):
        return self.function.bar_window[IO_BAR]

    async def enumerate(self):
        """Enumerate the bus, enable memory/I/O decoding and bus mastering on the device."""
        await self.rc.enumerate()
        self.function = self.rc.find_device(self.device.functions[0].pcie_id)
        await self.function.enable_device()
        await self.function.set_master()
        await self.set_max_read_request(self.max_read_request)
        return self.function

    async def set_max_read_request(self, nbytes):
        """Program the device's Max_Read_Request_Size (128..4096 bytes; the root complex model
        programs only Max_Payload_Size when it enumerates)."""
        code = (nbytes // 128).bit_length() - 1
        control = await self.function.capability_read_dword(PciCapId.EXP, _DEVICE_CONTROL)
        control = control & ~(7 << _MRRS_SHIFT) | code << _MRRS_SHIFT
        await self.function.capability_write_dword(PciCapId.EXP, _DEVICE_CONTROL, control)


def attach(dut, *, bar0_bits, max_payload=256, max_read_request=512, msix_vectors=0,
           msix_bar_offset=0,
           msix_pba_offset=0, extended_tag=True, straddle=None):
    """Create the host and device model for ``dut``; the model starts driving ``dut.clk``.

    Parameters
    ----------
    dut
        cocotb handle of a top-level with the hard IP's port names.
    bar0_bits : int
        log2 of the BAR0 size.
    max_payload, max_read_request : int
        Max_Payload_Size and Max_Read_Request_Size in bytes (128..4096; the device supports up
        to 1024 bytes of payload) that the root complex programs at enumeration.
    msix_vectors : int
        MSI-X table size (0: no MSI-X capability). Table and PBA live in BAR0 at the given
        offsets.
    extended_tag : bool
        Advertise 8-bit tags (256 outstanding reads).
    straddle : bool or None
        The hard IP's RQ and RC straddle options (two TLPs per beat; RQ at 512 bit only);
        ``None`` takes the core's default for the width
        (:func:`amnic.dma.axis.default_straddle`).
    """
    ports = {name: getattr(dut, name) for name in _OPTIONAL_PORTS if hasattr(dut, name)}
    msix = dict(pf0_msix_enable=bool(msix_vectors),
                pf0_msix_table_size=max(msix_vectors - 1, 0), pf0_msix_table_bir=BAR0,
                pf0_msix_table_offset=msix_bar_offset, pf0_msix_pba_bir=BAR0,
                pf0_msix_pba_offset=msix_pba_offset)
    width = len(dut.m_axis_cq_tdata)
    if straddle is None:
        straddle = default_straddle(width)
    device = UltraScalePlusPcieDevice(
        pcie_generation=3,
        pcie_link_width=8 if width == 256 else 16,
        user_clk_frequency=250e6,
        alignment="dword",
        pf_count=1,
        max_payload_size=1024,
        enable_client_tag=True,
        enable_extended_tag=extended_tag,
        enable_parity=False,
        enable_rx_msg_interface=False,
        rq_straddle=straddle and width == 512,
        rc_straddle=straddle,
        enable_sriov=False,
        enable_extended_configuration=False,
        pf0_msi_enable=True,
        pf0_msi_count=32,
        **msix,
        user_clk=dut.clk,
        user_reset=dut.rst,
        cq_bus=AxiStreamBus.from_prefix(dut, "m_axis_cq"),
        cc_bus=AxiStreamBus.from_prefix(dut, "s_axis_cc"),
        rq_bus=AxiStreamBus.from_prefix(dut, "s_axis_rq") if hasattr(dut, "s_axis_rq_tdata")
        else None,
        rc_bus=AxiStreamBus.from_prefix(dut, "m_axis_rc") if hasattr(dut, "m_axis_rc_tdata")
        else None,
        **ports,
    )
    device.functions[0].configure_bar(BAR0, 1 << bar0_bits)
    device.functions[0].configure_bar(IO_BAR, 256, io=True)
    rc = RootComplex()
    rc.max_payload_size = (max_payload // 128).bit_length() - 1
    rc.make_port().connect(device)
    return PcieHost(rc, device, max_read_request)
