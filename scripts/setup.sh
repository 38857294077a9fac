#!/usr/bin/env bash
# Install LSD and what it needs on a fresh machine.
#   scripts/setup.sh        the package, its model backends, dask and the dashboard
#   scripts/setup.sh test   the same plus the test tools (and the browser for the dashboard test)
# Every pip call uses constraints.txt (pins torch to 2.13.0; on our machines that is the CPU wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="all"
if [[ "${1:-}" == "test" ]]; then
    extras="all,test"
fi
PIP="python3 -m pip install --disable-pip-version-check -c constraints.txt"
$PIP "torch==2.13.0"
$PIP -e ".[${extras}]"
