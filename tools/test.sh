#!/usr/bin/env bash
# Run the amnic test suite: set up what is missing (tools/setup.sh), then pytest in parallel.
#
#   tools/test.sh                      # the whole default suite (soak tests excluded)
#   tools/test.sh tests/unit -k crc    # extra arguments go to pytest
#   tools/test.sh -m soak              # the long randomized runs
#   AMNIC_TEST_JOBS=1 tools/test.sh    # pytest-xdist worker count (default: auto)
#
# Works from any directory; simulator builds are cached under build/sim/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/tools/setup.sh"
cd "$REPO"
exec "$REPO/.venv/bin/python" -m pytest -n "${AMNIC_TEST_JOBS:-auto}" -q -ra "$@"
