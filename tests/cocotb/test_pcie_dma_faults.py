"""Run the cocotb tests of tb_pcie_dma_faults (completion faults and reordering from the host)
on the generated PcieDmaCore, at both interface widths, on the models test_pcie_dma builds."""

import pytest
from test_pcie_dma import model

from amnic.sim import cocotb_runner


@pytest.mark.parametrize("width", [256, 512])
@pytest.mark.parametrize("testcase", [
    "completion_reordering", "completion_reordering_rcb", "poisoned_and_aborted",
    "completion_timeout", "hard_ip_timeout", "tx_descriptor_poisoned", "tx_buffer_poisoned",
])
def test_pcie_dma_faults(width, testcase):
    result = cocotb_runner.run(model(width), "tb_pcie_dma_faults", testcase)
    assert result.passed, result.report
