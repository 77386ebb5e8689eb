"""Run the cocotb tests of tb_match_action on the generated MatchActionCore Verilog.

One Verilator model per data width (64 and 512 bits), built once per session and cached by
:mod:`amnic.sim.cocotb_runner`. The default suite sends about 21,000 packets in all; the ``soak``
runs (``pytest -m soak``) send thirty times as many with other seeds.
"""

import functools

import pytest
from tb_match_action import make_core

from amnic.cli.export import export_verilog
from amnic.sim import cocotb_runner


@functools.cache
def model(width):
    top = f"amnic_match_action_w{width}"
    verilog, _ = export_verilog(make_core(width), top)
    return cocotb_runner.build(top, verilog)


def _run(width, testcase, **env):
    result = cocotb_runner.run(model(width), "tb_match_action", testcase,
                               extra_env={k: str(v) for k, v in env.items()})
    assert result.passed, result.report


def test_random_traffic_512():
    _run(512, "random_traffic_512", MA_PACKETS=15_000, MA_SEED=1)


def test_random_traffic_64():
    _run(64, "random_traffic_64", MA_PACKETS=2_000, MA_SEED=2)


def test_table_updates_during_traffic():
    _run(512, "table_updates_during_traffic", MA_PACKETS=4_000, MA_SEED=3)


@pytest.mark.parametrize("width", [64, 512])
def test_bad_input_no_hang(width):
    _run(width, "bad_input_no_hang")


@pytest.mark.soak
def test_random_traffic_512_soak():
    _run(512, "random_traffic_512", MA_PACKETS=500_000, MA_POOL=10_000, MA_SEED=11)


@pytest.mark.soak
def test_random_traffic_64_soak():
    _run(64, "random_traffic_64", MA_PACKETS=100_000, MA_POOL=10_000, MA_SEED=15)


@pytest.mark.soak
@pytest.mark.parametrize("width,seed", [(512, 13), (64, 14)])
def test_table_updates_during_traffic_soak(width, seed):
    _run(width, "table_updates_during_traffic", MA_PACKETS=40_000, MA_POOL=5_000, MA_SEED=seed)
