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
# dxtb (gfn*-xtb-batched) pins tad-mctc 0.7, which declares numpy<2 while fairchem-core needs numpy>=2;
# it runs correctly on numpy 2, so it goes in without its declared dependencies (`pip check` will complain).
$PIP --no-deps dxtb==0.4.0 tad-mctc==0.7.0 tad-dftd3==0.6.0 tad-dftd4==0.8.0 tad-multicharge==0.5.0 tad-libcint==0.3.0
$PIP h5py pydantic tomli tomli-w opt-einsum psutil
# The dashboard's browser test drives Debian's chromium through Playwright (never `playwright install`).
if [[ "${1:-}" == "test" ]] && ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
    else
        echo "note: install Debian's chromium for the dashboard browser test (it is skipped without it)" >&2
    fi
fi
