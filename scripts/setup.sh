#!/usr/bin/env bash
# Install LSD and what it needs on a fresh machine.
#   scripts/setup.sh        the package, its model backends, dask and the dashboard
#   scripts/setup.sh test   the same plus the test tools (and the browser for the dashboard test)
#   scripts/setup.sh gpu    the CUDA build of torch, everything above but the browser, and dask-cuda
#                           (LSD_TORCH_INDEX_URL picks the CUDA build, default cu128; README "GPUs")
# Every pip call uses constraints.txt (pins torch to 2.13.0; on our machines that is the CPU wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="all"
if [[ "${1:-}" == "test" ]]; then
    extras="all,test"
elif [[ "${1:-}" == "gpu" ]]; then
    extras="all,test,gpu"
elif [[ -n "${1:-}" ]]; then
    echo "usage: scripts/setup.sh [test|gpu]" >&2
    exit 2
fi
PIP="python3 -m pip install --disable-pip-version-check -c constraints.txt"
if [[ "${1:-}" == "gpu" ]]; then
    # torch==2.13.0 from PyTorch's CUDA index (2.13.0+cu128 satisfies the pin); the driver must support that CUDA.
    $PIP "torch==2.13.0" --index-url "${LSD_TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu128}"
else
    $PIP "torch==2.13.0"
fi
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
if [[ "${1:-}" == "gpu" ]]; then
    # chgnet's nvidia-ml-py3 and dask-cuda's nvidia-ml-py both install pynvml.py; the last one installed wins.
    # chgnet only needs nvidia-ml-py3's nvidia_smi.py, so keep it and put nvidia-ml-py's pynvml.py back on top.
    $PIP --force-reinstall --no-deps "nvidia-ml-py>=12"
    python3 -c "import pynvml, sys; sys.exit(0 if hasattr(pynvml, 'nvmlDeviceGetMigMode') else
        'pynvml is still nvidia-ml-py3\'s old module: pip install --force-reinstall --no-deps nvidia-ml-py')"
    python3 -m lsd_engine.models.devices
fi
