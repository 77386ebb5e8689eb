"""Run the interrupt tests of tb_pcie_dma_irq on the generated PcieDmaCore at both widths (the
Verilator model is the one test_pcie_dma builds, once per width)."""

import pytest
from test_pcie_dma import model

from amnic.sim import cocotb_runner


# The interrupt logic does not depend on the width: 512 bit runs with the soak tests.
@pytest.mark.parametrize("width", [256, pytest.param(512, marks=pytest.mark.soak)])
@pytest.mark.parametrize("testcase", [
    "msi_fallback", "moderation_threshold", "moderation_timer", "msix_masking",
])
def test_pcie_dma_irq(width, testcase):
    result = cocotb_runner.run(model(width), "tb_pcie_dma_irq", testcase)
    assert result.passed, result.report
