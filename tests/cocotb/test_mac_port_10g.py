"""Run the cocotb tests of tb_mac_port_10g on the generated Verilog."""

import functools

from amnic.cli.export import export_verilog
from amnic.mac.port_10g import MacPort10G
from amnic.sim import cocotb_runner

DOMAINS = (("sync", "user clock"), ("tx", "XGMII transmit clock"),
           ("rx", "XGMII receive clock"))


@functools.cache
def model():
    verilog, _ = export_verilog(MacPort10G(), "amnic_mac_port_10g", domains=DOMAINS)
    return cocotb_runner.build("amnic_mac_port_10g", verilog)


def test_fifos_and_statistics():
    result = cocotb_runner.run(model(), "tb_mac_port_10g", "fifos_and_statistics")
    assert result.passed, result.report
