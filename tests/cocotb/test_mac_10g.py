"""Run the cocotb tests of tb_mac_10g on the generated Verilog (Verilator, or SIM=icarus)."""

import functools

import pytest

from amnic.cli.export import export_verilog
from amnic.mac.mac_10g import Mac10G
from amnic.sim import cocotb_runner

DOMAINS = (("tx", "XGMII transmit clock"), ("rx", "XGMII receive clock"))


@functools.cache
def model():
    verilog, _ = export_verilog(Mac10G(), "amnic_mac_10g", domains=DOMAINS)
    return cocotb_runner.build("amnic_mac_10g", verilog)


@pytest.mark.parametrize("testcase", [
    "tx_all_sizes",
    "tx_back_to_back_min_ifg",
    "tx_line_rate_speed",
    "tx_bad_frame_and_underrun",
    "rx_all_sizes",
    "rx_random_frames_zero_loss",
    "rx_bad_input",
    "flow_control_pause",
    "flow_control_pfc",
])
def test_mac_10g(testcase):
    result = cocotb_runner.run(model(), "tb_mac_10g", testcase)
    assert result.passed, result.report
