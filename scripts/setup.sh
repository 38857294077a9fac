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
# The dashboard's browser test drives Debian's chromium through Playwright (never `playwright install`).
if [[ "${1:-}" == "test" ]] && ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
    else
        echo "note: install Debian's chromium for the dashboard browser test (it is skipped without it)" >&2
    fi
fi
