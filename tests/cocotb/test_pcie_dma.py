"""Run the cocotb tests of tb_pcie_dma on the generated PcieDmaCore (Verilator, or SIM=icarus)."""

import functools

import pytest

from amnic.cli.export import export_verilog
from amnic.dma.core import PcieDmaCore
from amnic.sim import cocotb_runner


@functools.cache
def model(width):
    name = f"amnic_pcie_dma_w{width}"
    verilog, _ = export_verilog(PcieDmaCore(width), name)
    return cocotb_runner.build(name, verilog)


@pytest.mark.parametrize("width", [256, 512])
@pytest.mark.parametrize("testcase", [
    "mmio_registers", "app_window", "bad_requests", "mmio_read_latency",
    "host_memory_mps128", "host_memory_mps256", "host_memory_mps512", "loopback_queues",
    "queue_bad_input", "host_memory_errors", "dma_window",
])
def test_pcie_dma(width, testcase):
    result = cocotb_runner.run(model(width), "tb_pcie_dma", testcase)
    assert result.passed, result.report
