"""Run the cocotb tests of tb_mac_10g_ptp on the generated Mac10GPtp Verilog.

Two configurations: 96-bit time of day with a 16-bit transmit tag and flow control (the
default), and 64-bit nanoseconds without tag or flow control.
"""

import functools

import pytest

from amnic.cli.export import export_verilog
from amnic.mac.mac_10g_ptp import Mac10GPtp
from amnic.sim import cocotb_runner

DOMAINS = (("tx", "XGMII transmit clock"), ("rx", "XGMII receive clock"))
CONFIGS = {
    "tod96": dict(ts_format="tod96", period_ns="6.4", tag_width=16, flow_control=True),
    "ns64": dict(ts_format="ns64", period_ns="6.4", tag_width=0, flow_control=False),
}


@functools.cache
def model(config):
    params = CONFIGS[config]
    name = f"amnic_mac_10g_ptp_{config}"
    verilog, _ = export_verilog(Mac10GPtp(**params), name, domains=DOMAINS, parameters=params)
    return cocotb_runner.build(name, verilog)


@pytest.mark.parametrize("testcase", [
    "tx_timestamps",
    "rx_timestamps",
    "both_directions_back_to_back",
])
def test_mac_10g_ptp(testcase):
    result = cocotb_runner.run(model("tod96"), "tb_mac_10g_ptp", testcase)
    assert result.passed, result.report


def test_mac_10g_ptp_ns64():
    result = cocotb_runner.run(model("ns64"), "tb_mac_10g_ptp")
    assert result.passed, result.report
