#!/usr/bin/env bash
# Set up everything amnic needs to simulate, verify and benchmark, on Debian/Ubuntu.
#
#   tools/setup.sh            # from any directory; safe to run again (it only does what is missing)
#   tools/setup.sh --dry-run  # say what would be done, change nothing
#
# 1. System packages that pip cannot provide, via apt-get (as root, or through sudo):
#    tshark (wire dissection), iverilog (the Icarus simulator), g++/make/perl (to build the
#    Verilator models), zlib and lz4 headers (Verilator FST waveforms), the Python shared
#    library (which cocotb embeds) and python3-venv. Skipped entirely when all are present.
#    Set AMNIC_SKIP_APT=1 to never call apt-get (system packages managed elsewhere).
# 2. A virtual environment in <repo>/.venv (Python >= 3.11; PYTHON=/path/to/python3 to choose).
# 3. `pip install -e '.[dev]'` into it: amaranth, Yosys, Verilator, cocotb and its bus models,
#    scapy, pytest. Skipped when the installed packages already satisfy pyproject.toml; a stamp
#    file (.venv/.amnic-setup-stamp, the hash of pyproject.toml) makes the next check instant.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
STAMP="$VENV/.amnic-setup-stamp"
DRY_RUN=0

for arg in "$@"; do
    case "$arg" in
        --dry-run|-n) DRY_RUN=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' \
                       "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { echo "setup: $*"; }
run() {
    if [ "$DRY_RUN" = 1 ]; then say "would run: $*"; else "$@"; fi
}

# ---------------------------------------------------------------------------------------------
# Python interpreter: PYTHON, else python3.

PYTHON="${PYTHON:-python3}"
python_ok() {
    command -v "$1" >/dev/null 2>&1 &&
        "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# 1. System packages.

missing=()
need_cmd() {  # need_cmd COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need_file() {  # need_file PATTERN PACKAGE   (PATTERN may contain globs)
    compgen -G "$1" >/dev/null || missing+=("$2")
}

need_cmd tshark tshark
need_cmd iverilog iverilog
need_cmd g++ g++
need_cmd make make
need_cmd perl perl
need_file "/usr/include/zlib.h" zlib1g-dev
need_file "/usr/include/lz4.h" liblz4-dev

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    missing+=(python3)
elif ! python_ok "$PYTHON"; then
    echo "setup: $PYTHON is older than 3.11; set PYTHON=/path/to/python3.11 or newer" >&2
    exit 1
else
    # The venv module with ensurepip (Debian splits it into python3-venv), only if .venv is to
    # be created.
    if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        missing+=(python3-venv)
    fi
    # cocotb loads the Python shared library into the simulator.
    pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if ! "$PYTHON" - <<'EOF'
import glob, os, sys, sysconfig
ver = "%d.%d" % sys.version_info[:2]
dirs = {sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LIBPL") or ""}
multiarch = sysconfig.get_config_var("MULTIARCH")
if multiarch:
    dirs |= {f"/usr/lib/{multiarch}", f"/lib/{multiarch}"}
found = [p for d in dirs if d for p in glob.glob(os.path.join(d, f"libpython{ver}*.so*"))]
sys.exit(0 if found else 1)
EOF
    then
        missing+=("libpython$pyver")
    fi
fi

if [ "${#missing[@]}" -eq 0 ]; then
    say "system packages: all present"
elif [ "${AMNIC_SKIP_APT:-0}" = 1 ]; then
    say "system packages missing (AMNIC_SKIP_APT=1, not installing): ${missing[*]}"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: missing ${missing[*]} and no apt-get here; install them by hand" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "setup: missing ${missing[*]}; run as root or install sudo" >&2
            exit 1
        fi
    fi
    say "installing missing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Do not let the tshark package ask whether non-root users may capture packets.
    if [ "$DRY_RUN" = 1 ]; then
        say "would preseed wireshark-common/install-setuid=false"
    else
        echo "wireshark-common wireshark-common/install-setuid boolean false" |
            "${SUDO[@]}" debconf-set-selections
    fi
    run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. The virtual environment.

if [ -x "$VENV/bin/python" ]; then
    say "virtual environment: $VENV exists"
else
    if ! python_ok "$PYTHON" && [ "$DRY_RUN" = 0 ]; then
        echo "setup: no Python >= 3.11 found as '$PYTHON'; set PYTHON=/path/to/python3" >&2
        exit 1
    fi
    say "creating virtual environment $VENV"
    run "$PYTHON" -m venv "$VENV"
fi

# ---------------------------------------------------------------------------------------------
# 3. The amnic package and its development dependencies.

want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import amnic' 2>/dev/null; then
    say "python packages: up to date (pyproject.toml unchanged)"
    exit 0
fi

# Are the requirements of pyproject.toml (base + [dev]) already met, with amnic installed
# editable from this checkout? Then only the stamp needs writing.
satisfied() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$REPO" <<'EOF'
import importlib.metadata as md
import importlib.util
import pathlib
import sys
import tomllib

try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

repo = pathlib.Path(sys.argv[1]).resolve()
pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
project = pyproject["project"]
reqs = project.get("dependencies", []) + project.get("optional-dependencies", {}).get("dev", [])
for text in reqs:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": "dev"}):
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        sys.exit(1)
try:
    if md.version(project["name"]) != project["version"]:
        sys.exit(1)
except md.PackageNotFoundError:
    sys.exit(1)
# Every package directory of pyproject.toml must map onto this checkout (an editable install
# made before a mapping was added does not know it), and every console script must exist.
package_dirs = pyproject.get("tool", {}).get("setuptools", {}).get("package-dir", {})
for name, folder in package_dirs.items():
    spec = importlib.util.find_spec(name)
    where = spec.submodule_search_locations if spec else None
    if (repo / folder).resolve() not in [pathlib.Path(p).resolve() for p in where or ()]:
        sys.exit(1)
bindir = pathlib.Path(sys.executable).parent
for script in project.get("scripts", {}):
    if not (bindir / script).exists():
        sys.exit(1)
EOF
}

if satisfied; then
    say "python packages: already satisfy pyproject.toml"
else
    say "installing amnic (editable) with its [dev] dependencies into $VENV"
    run "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$REPO[dev]"
fi
if [ "$DRY_RUN" = 0 ]; then
    echo "$want" >"$STAMP"
fi
say "done; run the tests with tools/test.sh"
