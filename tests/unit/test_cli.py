"""The ``amnic`` command line: core registry, ``list``, ``generate``, ``bench`` and progress."""

import io
import json
import re
import shutil
import subprocess
import sys

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

import amnic.bench
from amnic.cli import cores
from amnic.cli.cores import CoreSpec, Param, ParamError
from amnic.cli.main import bench_modules, main
from amnic.cli.progress import Progress, progress
from amnic.stream import PacketSignature


def run(argv):
    """Run ``amnic argv`` in-process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def run_process(*argv, cwd=None):
    """Run ``amnic argv`` as a separate process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "amnic.cli.main", *argv],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


class _Register(wiring.Component):
    """One registered stage between two packet streams.

    Attributes
    ----------
    i : In(PacketSignature(width))
        Beats to forward.
    o : Out(PacketSignature(width))
        The same beats one cycle later.
    """

    def __init__(self, width):
        super().__init__({"i": In(PacketSignature(width)), "o": Out(PacketSignature(width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(~self.o.valid | self.o.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        return m


def _register_factory(width, mode, fast):
    if mode == "bad":
        raise ValueError("mode 'bad' cannot be built")
    return _Register(width)


TEST_SPEC = CoreSpec(
    "test_register",
    "a one-stage packet register used by the CLI tests",
    _register_factory,
    params=[
        Param("width", "int", 64, "data width in bits", min=8, max=512, multiple_of=8),
        Param("mode", "choice", "plain", "how to build it", choices=("plain", "bad")),
        Param("fast", "bool", False, "an unused switch"),
    ],
    top="test_register_w{width}",
    domains=[("sync", "stream clock")],
)


@pytest.fixture
def test_core(monkeypatch):
    monkeypatch.setitem(cores.REGISTRY, TEST_SPEC.name, TEST_SPEC)
    return TEST_SPEC


# --------------------------------------------------------------------------------------------
# Registry


def test_param_parsing_and_validation():
    width = Param("width", "int", 64, "w", min=8, max=512, multiple_of=8)
    assert width.parse("128") == 128
    assert width.parse("0x40") == 64
    for bad in ("12", "1024", "0", "sixty", "1.5"):
        with pytest.raises(ParamError, match="width"):
            width.parse(bad)
    flag = Param("fcs", "bool", True, "f")
    assert [flag.parse(t) for t in ("true", "1", "On", "no", "FALSE", "0")] == [
        True, True, True, False, False, False]
    with pytest.raises(ParamError, match="true or false"):
        flag.parse("maybe")
    lanes = Param("lanes", "choice", 4, "l", choices=(1, 2, 4, 8))
    assert lanes.parse("8") == 8 and isinstance(lanes.parse("8"), int)
    with pytest.raises(ParamError, match="choose from: 1, 2, 4, 8"):
        lanes.parse("3")
    with pytest.raises(ParamError):
        Param("depth", "int", 3, "d", min=4)  # a default must itself be valid


def test_spec_resolve_top_and_domains(test_core):
    values = test_core.resolve({"width": "32", "fast": "yes"})
    assert values == {"width": 32, "mode": "plain", "fast": True}
    assert test_core.top_name(values) == "test_register_w32"
    assert test_core.clock_domains(values) == (("sync", "stream clock"),)
    with pytest.raises(ParamError, match="no parameter 'depth'; its parameters: width, mode"):
        test_core.resolve({"depth": "4"})
    with pytest.raises(KeyError, match="core 'nope' unknown; choose from: .*test_register"):
        cores.get("nope")


def test_register_rejects_duplicates_and_bad_names(test_core):
    with pytest.raises(ValueError, match="already registered"):
        cores.register(TEST_SPEC)
    with pytest.raises(ValueError, match="must match"):
        CoreSpec("Bad-Name", "x", _register_factory)


def test_unavailable_core_is_reported_not_fatal(monkeypatch, tmp_path):
    broken = CoreSpec("broken", "a core whose module is missing", _register_factory,
                      module="amnic.no_such_module")
    monkeypatch.setitem(cores.REGISTRY, "broken", broken)
    assert "ModuleNotFoundError" in broken.unavailable()
    status, out, _ = run(["list"])
    assert status == 0
    assert "broken" in out and "[unavailable: ModuleNotFoundError" in out
    assert "crc32" in out  # the other cores still list
    status, _, err = run(["generate", "broken", "-o", str(tmp_path)])
    assert status == 1
    assert err.startswith("amnic: error: core 'broken' is unavailable") and err.count("\n") == 1


# --------------------------------------------------------------------------------------------
# amnic list / generate


def test_list_shows_cores_and_parameters(test_core):
    status, out, _ = run(["list"])
    assert status == 0
    assert "crc32" in out and "Parallel CRC-32" in out
    assert re.search(r"^test_register +a one-stage packet register used by the CLI tests$", out,
                     re.MULTILINE)
    assert "width (int, default 64; 8..512, multiple of 8): data width in bits" in out
    assert "mode (choice, default plain; plain, bad): how to build it" in out
    status, brief, _ = run(["list", "--brief"])
    assert status == 0 and "width (int" not in brief and "crc32" in brief


def test_generate_stream_core(test_core, tmp_path):
    status, out, err = run(["generate", "test_register", "-p", "width=32", "-o", str(tmp_path)])
    assert status == 0, err
    v = tmp_path / "test_register_w32.v"
    md = tmp_path / "test_register_w32.md"
    assert f"wrote {v}" in out and f"wrote {md}" in out
    text = v.read_text()
    assert "module test_register_w32(" in text
    header = text.split("\n/*")[0]
    assert "//   width = 32" in header and "//   mode = plain" in header
    assert "//   fast = false" in header
    for port, width in [("s_axis_i_tdata", 32), ("s_axis_i_tkeep", 4), ("s_axis_i_tvalid", 1),
                        ("s_axis_i_tready", 1), ("s_axis_i_tlast", 1), ("s_axis_i_tuser", 1),
                        ("m_axis_o_tdata", 32), ("m_axis_o_tready", 1), ("clk", 1),
                        ("rst", 1)]:
        assert f"[{width:>3}] {port} " in header, port
        assert port in text.split("\n/*", 1)[1], port
    doc = md.read_text()
    assert "# `test_register_w32`" in doc
    assert "amnic generate test_register -p width=32 -p mode=plain -p fast=false" in doc
    assert "| `width` | `32` | `64` | data width in bits |" in doc
    assert "| `sync` | `clk` | `rst` | stream clock |" in doc
    assert "| `s_axis_i_tdata` | input | 32 | i packet stream data | Beats to forward. |" in doc
    assert "| `s_axis_i_tkeep` | input | 4 | i packet stream byte enables |  |" in doc
    assert "| `m_axis_o_tvalid` | output | 1 |" in doc
    assert "One registered stage between two packet streams." in doc


def test_generate_default_directory_and_top_override(test_core, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["generate", "test_register", "--top", "my_reg"])
    assert status == 0, err
    assert "module my_reg(" in (tmp_path / "build/test_register/my_reg.v").read_text()
    assert (tmp_path / "build/test_register/my_reg.md").exists()


#: Parameters that keep the biggest cores quick to convert in the test below.
SMALLER = {"match_action": {"flow_entries": 1024}, "flow_table": {"entries": 1024}}


@pytest.mark.parametrize("name", cores.names())
def test_every_registered_core_generates(name, tmp_path):
    spec = cores.get(name)
    assert not spec.unavailable(), f"{name}: {spec.unavailable()}"
    # Flow tables at their default 64K entries take minutes to write out; 1K shows the same.
    small = SMALLER.get(name, {})
    argv = [a for k, v in small.items() for a in ("-p", f"{k}={v}")]
    status, _, err = run(["generate", name, "-o", str(tmp_path), *argv])
    assert status == 0, err
    values = spec.resolve({k: str(v) for k, v in small.items()})
    top = spec.top_name(values)
    v = tmp_path / f"{top}.v"
    text = v.read_text()
    assert f"module {top}(" in text
    for p in spec.params:
        assert f"//   {p.name} = {p.format(values[p.name])}" in text
    if shutil.which("iverilog"):
        check = subprocess.run(["iverilog", "-g2012", "-tnull", str(v)],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("argv, message", [
    (["generate", "foo"], "amnic: error: core 'foo' unknown; choose from: "),
    (["generate", "test_register", "-p", "width=12"],
     "amnic: error: parameter 'width' = 12 must be a multiple of 8"),
    (["generate", "test_register", "-p", "width=wide"],
     "amnic: error: parameter 'width' must be an integer, not 'wide'"),
    (["generate", "test_register", "-p", "depth=4"],
     "amnic: error: core 'test_register' has no parameter 'depth'"),
    (["generate", "test_register", "-p", "width"],
     "amnic: error: parameter 'width' must be written NAME=VALUE"),
    (["generate", "test_register", "-p", "mode=fancy"],
     "amnic: error: parameter 'mode' = 'fancy' not allowed; choose from: plain, bad"),
    (["generate", "test_register", "-p", "mode=bad"],
     "amnic: error: core 'test_register': mode 'bad' cannot be built"),
    (["generate", "test_register", "--top", "9lives"],
     "amnic: error: '9lives' is not a Verilog module name"),
    (["generate"], "amnic: error: name a core (one of: "),
    (["generate", "test_register", "--all"], "amnic: error: give either a core name or --all"),
])
def test_generate_usage_errors(test_core, tmp_path, argv, message):
    status, out, err = run([*argv, "-o", str(tmp_path / "out")])
    assert status == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


class _Broken(_Register):
    def elaborate(self, platform):
        raise RuntimeError("elaboration exploded\nsecond line")


def test_internal_failure_is_one_line_unless_traceback_asked(test_core, monkeypatch, tmp_path):
    spec = CoreSpec("test_broken", "fails to elaborate", lambda: _Broken(8))
    monkeypatch.setitem(cores.REGISTRY, spec.name, spec)
    status, _, err = run(["generate", "test_broken", "-o", str(tmp_path)])
    assert status == 1
    assert err == ("amnic: error: generating core 'test_broken' failed: RuntimeError: "
                   "elaboration exploded (--traceback shows where)\n")
    with pytest.raises(RuntimeError, match="elaboration exploded"):
        run(["generate", "test_broken", "--traceback", "-o", str(tmp_path)])
    # With --all the other cores are still generated.
    monkeypatch.setattr(cores, "REGISTRY", {"test_broken": spec, "test_register": test_core})
    status, out, err = run(["generate", "--all", "-o", str(tmp_path / "all")])
    assert status == 1
    assert "generating core 'test_broken' failed" in err
    assert "amnic: 1 of 2 cores failed or were skipped" in err
    assert (tmp_path / "all/test_register/test_register_w64.v").exists()


def test_errors_from_the_real_command_have_no_traceback(tmp_path):
    proc = run_process("generate", "foo", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("amnic: error: core 'foo' unknown; choose from: ")
    assert "crc32" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_process("generate", "crc32", "-p", "width=13", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "amnic: error: parameter 'width' = 13 must be a multiple of 8\n"
    proc = run_process("generate", "crc32", "-p", "width=16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "build/crc32/amnic_crc32_w16.v").exists()


def test_generate_all_and_docs(test_core, tmp_path, monkeypatch):
    # Only the small test core (each real core is generated once above), to keep this fast; a
    # core whose module is missing is skipped with a warning and a non-zero status.
    broken = CoreSpec("broken", "missing", _register_factory, module="amnic.no_such_module")
    monkeypatch.setattr(cores, "REGISTRY", {"test_register": test_core, "broken": broken})
    status, out, err = run(["generate", "--all", "-o", str(tmp_path / "gen")])
    assert status == 1
    assert "amnic: warning: skipped core 'broken' (ModuleNotFoundError" in err
    assert not (tmp_path / "gen" / "broken").exists()
    monkeypatch.setattr(cores, "REGISTRY", {"test_register": test_core})
    status, out, err = run(["generate", "--all", "-o", str(tmp_path / "gen")])
    assert status == 0, err
    for spec in cores.all_specs():
        top = spec.top_name(spec.defaults())
        assert (tmp_path / "gen" / spec.name / f"{top}.v").exists()
        assert (tmp_path / "gen" / spec.name / f"{top}.md").exists()
    assert "Generating" in err  # start/finish lines even when stderr is not a terminal

    docs = tmp_path / "docs"
    status, out, err = run(["generate", "--docs", str(docs)])
    assert status == 0, err
    assert sorted(p.name for p in docs.iterdir()) == sorted(
        [f"{n}.md" for n in cores.names()] + ["index.md"])
    page = (docs / "test_register.md").read_text()
    assert "| `width` | int | `64` | 8..512, multiple of 8 | data width in bits |" in page
    assert "| `mode` | choice | `plain` | plain, bad | how to build it |" in page
    assert "`test_register_w64`" in page and "| `m_axis_o_tdata` | output | 64 |" in page
    index = (docs / "index.md").read_text()
    assert "| [`test_register`](test_register.md) | a one-stage packet register" in index
    # Regenerating gives identical files, so committed docs only change when the cores do.
    before = {p.name: p.read_text() for p in docs.iterdir()}
    run(["generate", "--docs", str(docs)])
    assert before == {p.name: p.read_text() for p in docs.iterdir()}


# --------------------------------------------------------------------------------------------
# amnic bench


def test_bench_unknown_name_lists_the_available_ones():
    status, out, err = run(["bench", "no_such_bench"])
    assert status == 2
    assert err.startswith("amnic: error: benchmark 'no_such_bench' unknown; choose from: ")
    assert err.count("\n") == 1
    names = ", ".join(bench_modules()) or "none"
    assert err.rstrip().endswith(names)


BENCH_SOURCE = '''\
"""Echo benchmark: records the arguments it was given."""

import argparse
import json
import re


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="64")
    args = parser.parse_args(argv)
    with open(args.json, "w") as f:
        json.dump({"argv": argv, "quick": args.quick, "sizes": args.sizes}, f)
    print("size  cycles")
    return 3 if args.sizes == "fail" else 0
'''

HELPER_SOURCE = '''\
"""Shared helpers, not a benchmark (no main/run)."""

def table(rows):
    return rows
'''

RUN_SOURCE = '''\
"""Run-style benchmark."""

import json
import re


def run(args):
    args.json.write_text(json.dumps({"quick": args.quick, "extra": args.extra}))
'''


@pytest.fixture
def fake_benches(tmp_path, monkeypatch):
    pkg = tmp_path / "benches"
    pkg.mkdir()
    (pkg / "echo_test.py").write_text(BENCH_SOURCE)
    (pkg / "helpers_test.py").write_text(HELPER_SOURCE)
    (pkg / "runstyle_test.py").write_text(RUN_SOURCE)
    (pkg / "_private_test.py").write_text(BENCH_SOURCE)
    monkeypatch.setattr(amnic.bench, "__path__", [*amnic.bench.__path__, str(pkg)])
    yield pkg
    for name in ("echo_test", "runstyle_test"):
        sys.modules.pop(f"amnic.bench.{name}", None)


def test_bench_dispatch(fake_benches, tmp_path, monkeypatch, capsys):
    available = bench_modules()
    assert available["echo_test"] == "Echo benchmark: records the arguments it was given."
    assert "helpers_test" not in available and "_private_test" not in available
    status, out, _ = run(["bench"])
    assert status == 0 and "echo_test" in out and "runstyle_test" in out

    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    status, _, _ = run(["bench", "echo_test", "--quick", "--sizes", "64,1518"])
    assert status == 0 and "size  cycles" in capsys.readouterr().out
    result = json.loads((tmp_path / "build/bench/echo_test.json").read_text())
    assert result == {
        "argv": ["--json", "build/bench/echo_test.json", "--quick", "--sizes", "64,1518"],
        "quick": True,
        "sizes": "64,1518",
    }
    status, _, _ = run(["bench", "echo_test", "--json", "out/r.json", "--sizes", "fail"])
    assert status == 3  # the benchmark's own status is the command's
    assert json.loads((tmp_path / "out/r.json").read_text())["quick"] is False

    status, _, _ = run(["bench", "runstyle_test", "--extra-flag"])
    assert status == 0
    assert json.loads((tmp_path / "build/bench/runstyle_test.json").read_text()) == {
        "quick": False, "extra": ["--extra-flag"]}


def test_other_commands_reject_unknown_options():
    with pytest.raises(SystemExit) as exc:
        run(["list", "--frobnicate"])
    assert exc.value.code == 2


# --------------------------------------------------------------------------------------------
# Progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_quiet_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("AMNIC_PROGRESS", raising=False)
    stream = io.StringIO()
    with progress("Synthesizing", total=3, stream=stream) as p:
        for _ in range(3):
            p.advance(note="core")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Synthesizing... (3 steps)"
    assert lines[1].startswith("Synthesizing: done, 3/3 (100%) in ")
    assert len(lines) == 2


def test_progress_redraws_on_a_terminal_and_reports_failure(monkeypatch):
    monkeypatch.delenv("AMNIC_PROGRESS", raising=False)
    monkeypatch.setattr(Progress, "REDRAW_INTERVAL", 0.0)
    stream = _Tty()
    with pytest.raises(RuntimeError):
        with progress("Simulating", total=4, stream=stream) as p:
            p.advance(note="64 B")
            p.advance(note="1518 B")
            raise RuntimeError("boom")
    text = stream.getvalue()
    assert "\rSimulating: 1/4 (25%) 64 B " in text
    assert "\rSimulating: 2/4 (50%) 1518 B " in text
    assert text.endswith("\n") and "\rSimulating: failed, 2/4 (50%) in " in text

    monkeypatch.setenv("AMNIC_PROGRESS", "0")
    silent = _Tty()
    with progress("Quiet", total=1, stream=silent) as p:
        p.advance()
    assert silent.getvalue() == ""


def test_module_entry_point_prints_help():
    proc = run_process("--help")
    assert proc.returncode == 0
    for command in ("list", "generate", "bench"):
        assert command in proc.stdout
    assert proc.stderr == ""
