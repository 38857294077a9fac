"""Where a torch-backed model computes: the one place a ``device`` option is read.

``device`` is "auto" (the default: the first CUDA GPU when torch sees one, else the
CPU), "cpu", "cuda" (this process's current GPU) or "cuda:N". A requested GPU that
this process cannot use is an error naming the model and the reason, never a quiet
move to the CPU. ``python -m lsd_engine.models.devices`` prints what this machine
offers (torch build, CUDA devices, NVML, dask-cuda).

Setting ``LSD_DETERMINISTIC=1`` in the environment makes every model built here ask
torch for deterministic algorithms (``torch.use_deterministic_algorithms``; on CUDA
with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``). GPU results are then repeatable run to run
on one machine, at some cost in speed, but still differ from the CPU's in the last
bits; operations without a deterministic GPU kernel raise instead of running.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from typing import Any

from ..errors import LSDError

__all__ = ["DEVICE_CHOICES", "DEFAULT_DEVICE", "DETERMINISTIC_ENV", "DeviceError", "check_device_name",
           "describe_device", "device_report", "model_device", "resolve_device", "use_deterministic_if_asked"]

#: The default of every model's ``device`` option.
DEFAULT_DEVICE = "auto"
#: The device names a form or URL may choose (any "cuda:N" is accepted from Python and config files).
DEVICE_CHOICES = ("auto", "cpu", "cuda")
#: Environment variable that turns on torch's deterministic algorithms for models built here.
DETERMINISTIC_ENV = "LSD_DETERMINISTIC"

_NAME = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(LSDError, ValueError):
    """A device name that is not valid, or a GPU this process cannot use."""


def check_device_name(requested: Any, model: str = "") -> str:
    """``requested`` as a normalised device name; raises :class:`DeviceError` for anything else.

    Needs no torch: configuration files and the CLI check names with it before building."""
    where = f"{model}: " if model else ""
    if requested is None:
        return DEFAULT_DEVICE
    if not isinstance(requested, str):
        raise DeviceError(f"{where}device must be a string ('auto', 'cpu', 'cuda' or 'cuda:N'), "
                          f"got {requested!r}")
    name = requested.strip().lower()
    if not _NAME.match(name):
        raise DeviceError(f"{where}unknown device {requested!r}; choose 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return name


def resolve_device(requested: Any = DEFAULT_DEVICE, model: str = ""):
    """The ``torch.device`` a model named ``model`` computes on.

    "auto" is CUDA when ``torch.cuda.is_available()``, else the CPU. "cuda" is this
    process's current GPU (inside a dask-cuda worker, the worker's own GPU).
    Raises :class:`DeviceError` naming the model when a CUDA device is asked for and
    this torch build has no CUDA, no GPU is visible, or the index is out of range.
    """
    name = check_device_name(requested, model)
    import torch

    use_deterministic_if_asked()
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
    where = f"{model}: " if model else ""
    if not available:
        raise DeviceError(f"{where}device {name!r} was requested but torch cannot use a GPU here: "
                          f"{_why_no_cuda(torch)}. Use device='cpu' (or 'auto'), or install a CUDA build of "
                          "torch (README, GPUs)")
    index = int(name.split(":", 1)[1]) if ":" in name else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"{where}device {name!r} was requested but this process sees {count} GPU(s) "
                          f"(cuda:0..cuda:{count - 1}; CUDA_VISIBLE_DEVICES="
                          f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r})")
    return torch.device("cuda", index)


def _why_no_cuda(torch: Any) -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "CUDA_VISIBLE_DEVICES hides every GPU"
    return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU "
            "(no NVIDIA driver loaded, a driver older than this CUDA build needs, or no GPU)")


def use_deterministic_if_asked() -> bool:
    """Turn on torch's deterministic algorithms when ``LSD_DETERMINISTIC`` is 1/true/yes; returns
    whether they are on. Process-wide, as torch's setting is; never turned off here."""
    if os.environ.get(DETERMINISTIC_ENV, "").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for repeatable GEMMs
    import torch

    if not torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    return True


def describe_device(device: Any) -> dict[str, Any]:
    """``{"device": "cuda:0", "device_name": "NVIDIA H200"}`` (or ``"cpu"``, the processor name)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return {"device": f"cuda:{index}", "device_name": torch.cuda.get_device_name(index)}
    return {"device": str(device), "device_name": _cpu_name()}


def model_device(model: Any) -> dict[str, Any]:
    """Where a model computes: its own ``describe_device()`` when it has one (a deferred model),
    else :func:`describe_device` of its ``device`` attribute, else the CPU (numpy, OpenMM on its
    CPU platform, tblite, ASE)."""
    describe = getattr(model, "describe_device", None)
    if callable(describe):
        return describe()
    device = getattr(model, "device", None)
    if device is None:
        return {"device": "cpu", "device_name": _cpu_name()}
    return describe_device(device)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


def device_report() -> dict[str, Any]:
    """What this machine offers LSD: torch build and CUDA devices, NVML, dask-cuda, determinism."""
    report: dict[str, Any] = {"python": sys.version.split()[0], "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
                              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                              "deterministic": os.environ.get(DETERMINISTIC_ENV, "") != ""}
    try:
        import torch
    except ImportError as exc:
        report["torch"] = f"not importable ({exc})"
    else:
        report["torch"] = torch.__version__
        report["torch_cuda"] = torch.version.cuda
        report["cuda_available"] = bool(torch.cuda.is_available())
        report["gpus"] = []
        if report["cuda_available"]:
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                report["gpus"].append({"device": f"cuda:{i}", "name": props.name,
                                       "memory_GiB": round(props.total_memory / 2**30, 1),
                                       "capability": f"{props.major}.{props.minor}"})
        else:
            report["why_no_cuda"] = _why_no_cuda(torch)
        report["auto_device"] = str(resolve_device("auto"))
    from ..executors.gpus import gpu_inventory

    inventory = gpu_inventory()
    report["nvml_gpus"] = inventory.count
    report["nvml_error"] = inventory.error
    report["dask_cuda"] = _version("dask_cuda")
    return report


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return str(getattr(importlib.import_module(module), "__version__", "installed"))
    except Exception as exc:  # noqa: BLE001 - report a broken install instead of failing the report
        return f"broken ({type(exc).__name__}: {exc})"


def main(argv: list[str] | None = None) -> int:
    """``python -m lsd_engine.models.devices [--json]``: what LSD sees on this machine."""
    argv = sys.argv[1:] if argv is None else argv
    report = device_report()
    if "--json" in argv:
        print(json.dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if key == "gpus":
            for gpu in value or []:
                print(f"  {gpu['device']}: {gpu['name']}, {gpu['memory_GiB']} GiB, compute {gpu['capability']}")
            continue
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
