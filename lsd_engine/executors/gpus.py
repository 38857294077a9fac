"""How many NVIDIA GPUs this process may use, and whether NVML could be asked at all.

dask-cuda counts GPUs through NVML (the ``pynvml`` module). Two packages install a
``pynvml.py``: ``nvidia-ml-py`` (what dask-cuda needs) and the old ``nvidia-ml-py3``
(a chgnet dependency); whichever is installed last wins, and the old one lacks calls
dask-cuda makes. So "NVML failed" must not read as "no GPU": :func:`gpu_inventory`
reports a failure on a machine that has NVIDIA devices as ``error``, and the dask
executor turns it into a warning instead of quietly starting CPU workers.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass

__all__ = ["GPUInventory", "gpu_inventory", "PYNVML_FIX"]

#: What to run when pynvml is the wrong package (README, GPUs).
#: chgnet imports ``nvidia_smi`` from nvidia-ml-py3, so that package stays; only ``pynvml.py`` is replaced.
PYNVML_FIX = "pip install --force-reinstall --no-deps 'nvidia-ml-py>=12'"

#: NVML return codes that mean "no NVIDIA driver here" (a CPU machine), not a broken install.
_NO_DRIVER_CODES = (9, 12)  # NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIBRARY_NOT_FOUND


@dataclass(frozen=True)
class GPUInventory:
    """count: GPUs this process may use (CUDA_VISIBLE_DEVICES applied); error: why NVML could
    not count them on a machine that looks like it has some (None when healthy or GPU-less)."""

    count: int
    error: str | None = None


def gpu_inventory() -> GPUInventory:
    """Count the usable GPUs through NVML; a broken NVML on a GPU machine is an ``error``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", None)
    if visible is not None and visible.strip() in ("", "-1"):
        return GPUInventory(0)
    try:
        import pynvml
    except ImportError as exc:
        return GPUInventory(0, _if_gpu_machine(f"pynvml is not importable ({exc}); install nvidia-ml-py"))
    if not hasattr(pynvml, "nvmlDeviceGetMigMode"):  # nvidia-ml-py3 7.x: older than anything dask-cuda calls
        old = f"pynvml at {getattr(pynvml, '__file__', '?')} is nvidia-ml-py3's old module; fix: {PYNVML_FIX}"
        if _if_gpu_machine(old) is not None:
            return GPUInventory(0, _if_gpu_machine(old))
    try:
        pynvml.nvmlInit()
        count = int(pynvml.nvmlDeviceGetCount())
    except Exception as exc:  # noqa: BLE001 - classified below
        if getattr(exc, "value", None) in _NO_DRIVER_CODES:
            return GPUInventory(0, _if_gpu_machine(f"NVML: {exc}"))
        where = getattr(pynvml, "__file__", "pynvml")
        return GPUInventory(0, f"NVML failed ({type(exc).__name__}: {exc}) through {where}; if chgnet's "
                               f"nvidia-ml-py3 replaced nvidia-ml-py's pynvml, fix it with: {PYNVML_FIX}")
    if visible is not None:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    if count == 0:
        return GPUInventory(0, _if_gpu_machine("NVML reports 0 GPUs"))
    return GPUInventory(count)


def _if_gpu_machine(reason: str) -> str | None:
    """``reason`` when this machine shows signs of NVIDIA GPUs (device files, or torch already
    imported and seeing CUDA), else None: a plain CPU machine is not an error."""
    signs = glob.glob("/dev/nvidia[0-9]*")
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                signs.append(f"torch sees {torch.cuda.device_count()} GPU(s)")
        except Exception:  # noqa: BLE001
            pass
    if not signs:
        return None
    return f"{reason}, yet this machine has NVIDIA GPUs ({', '.join(signs)})"
