"""Checkpoint files: the full sampler state in one .npz, written atomically.

A checkpoint is data: it is read with ``allow_pickle=False`` and every array and
header field is checked, so a truncated or crafted file gives one
:class:`CheckpointError` naming the file and the field.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError, LSDError

FORMAT_VERSION = 1


@dataclass
class CheckpointState:
    """Everything needed to continue a trajectory bit for bit.

    arrays: named state arrays of the sampler (its draft correction, the labels of an
    unfinished round); energy: target energy of the last force-evaluation point.
    """

    sampler: str
    step: int
    seed: int
    positions: np.ndarray
    momenta: np.ndarray
    energy: float | None
    arrays: dict[str, np.ndarray]
    numbers: np.ndarray
    masses: np.ndarray
    params: dict[str, float]
    options: dict[str, Any]
    sampler_state: dict[str, Any] = field(default_factory=dict)  # e.g. the position inside a round
    run_config: dict[str, Any] | None = None  # the run's settings (``RunConfig.to_dict()``), when known


def save_checkpoint(path: str | os.PathLike, state: CheckpointState) -> None:
    path = Path(path)
    meta = {
        "format_version": FORMAT_VERSION, "sampler": state.sampler, "step": state.step,
        "seed": state.seed, "energy": state.energy, "params": state.params, "options": state.options,
        "sampler_state": state.sampler_state,
    }
    if state.run_config is not None:
        meta["run_config"] = state.run_config
    arrays = {"positions": state.positions, "momenta": state.momenta, "numbers": state.numbers,
              "masses": state.masses, "meta": np.array(json.dumps(meta))}
    for name, value in state.arrays.items():
        arrays[f"state/{name}"] = value
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


#: What a damaged or foreign .npz raises while it is opened and read.
UNREADABLE_NPZ = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, json.JSONDecodeError)


def read_npz(path: str | os.PathLike, error: type[LSDError], *, not_found: str, kind: str,
             header: str | None = None, no_header: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """The arrays of an .npz data file, read without pickle, and its JSON header when it has one.

    The reader behind checkpoints, distilled drafts and label files. ``header`` names the
    0-d string array holding a JSON header (None: no header; the first value returned is
    then None); its decoded value is returned as it is, for the caller to check. Every
    failure raises ``error`` naming the file: ``"{not_found}: {path}"`` when there is no
    such file, ``no_header`` (formatted with ``path``) when the header array is missing, and
    ``"{path} is not a readable {kind} (truncated or not an .npz): ..."`` for a damaged or
    foreign file (anything in :data:`UNREADABLE_NPZ`, a header that is not JSON included).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{not_found}: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if header is not None and header not in data.files:
                raise error(no_header.format(path=path))
            decoded = json.loads(str(data[header])) if header is not None else None
            arrays = {k: data[k] for k in data.files if k != header}
    except LSDError:
        raise
    except UNREADABLE_NPZ as exc:
        raise error(f"{path} is not a readable {kind} (truncated or not an .npz): "
                    f"{type(exc).__name__}: {exc}") from None
    return decoded, arrays


def load_checkpoint(path: str | os.PathLike) -> CheckpointState:
    path = Path(path)
    meta, arrays = read_npz(path, CheckpointError, not_found="checkpoint file not found", kind="LSD checkpoint",
                            header="meta", no_header="{path} is not an LSD checkpoint (it has no 'meta' header)")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: the checkpoint header is not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format_version')!r}")
    try:
        state = CheckpointState(
            sampler=meta["sampler"], step=int(meta["step"]), seed=int(meta["seed"]),
            positions=arrays["positions"], momenta=arrays["momenta"], energy=meta["energy"],
            arrays={k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")},
            numbers=arrays["numbers"], masses=arrays["masses"],
            params=meta["params"], options=meta.get("options", {}),
            sampler_state=meta.get("sampler_state", {}), run_config=meta.get("run_config"))
    except KeyError as exc:
        raise CheckpointError(f"{path}: checkpoint is missing field {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint field has the wrong type: {exc}") from exc
    _check_state(path, state)
    return state


def _check_state(path: Path, state: CheckpointState) -> None:
    """Shapes, dtypes and header types of a loaded checkpoint (CheckpointError naming the field)."""
    n = state.numbers.shape[0] if state.numbers.ndim == 1 else -1
    expected = {"numbers": ((n,), "iu"), "masses": ((n,), "f"), "positions": ((n, 3), "f"), "momenta": ((n, 3), "f")}
    for name, (shape, kinds) in expected.items():
        value = getattr(state, name)
        if n < 1 or value.shape != shape or value.dtype.kind not in kinds:
            raise CheckpointError(f"{path}: checkpoint field '{name}' has shape {value.shape} and dtype {value.dtype}; "
                                  f"expected {shape if n >= 1 else '(N,)'} of {'integers' if kinds == 'iu' else 'floats'}")
    for name, value in state.arrays.items():
        if value.dtype.kind not in "biufU":
            raise CheckpointError(f"{path}: checkpoint array 'state/{name}' has dtype {value.dtype}; expected numbers")
    if state.step < 0 or state.seed < 0:
        raise CheckpointError(f"{path}: checkpoint step ({state.step}) and seed ({state.seed}) must be non-negative")
    if state.energy is not None and not isinstance(state.energy, (int, float)):
        raise CheckpointError(f"{path}: checkpoint field 'energy' must be a number, got {state.energy!r}")
    for name in ("params", "options", "sampler_state"):
        if not isinstance(getattr(state, name), dict):
            raise CheckpointError(f"{path}: checkpoint field '{name}' must be a JSON object")
    from dataclasses import fields

    from .params import LangevinParams

    names = {f.name for f in fields(LangevinParams)}
    if set(state.params) != names or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             for v in state.params.values()):
        raise CheckpointError(f"{path}: checkpoint field 'params' must hold the numbers {', '.join(sorted(names))}; "
                              f"got {state.params}")
    if state.run_config is not None and not isinstance(state.run_config, dict):
        raise CheckpointError(f"{path}: checkpoint field 'run_config' must be a JSON object")
