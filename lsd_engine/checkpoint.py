"""Checkpoint files: the full sampler state in one .npz, written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError

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


def save_checkpoint(path: str | os.PathLike, state: CheckpointState) -> None:
    path = Path(path)
    meta = {
        "format_version": FORMAT_VERSION, "sampler": state.sampler, "step": state.step,
        "seed": state.seed, "energy": state.energy, "params": state.params, "options": state.options,
        "sampler_state": state.sampler_state,
    }
    arrays = {"positions": state.positions, "momenta": state.momenta, "numbers": state.numbers,
              "masses": state.masses, "meta": np.array(json.dumps(meta))}
    for name, value in state.arrays.items():
        arrays[f"state/{name}"] = value
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> CheckpointState:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k != "meta"}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable LSD checkpoint: {exc}") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format_version')!r}")
    try:
        return CheckpointState(
            sampler=meta["sampler"], step=int(meta["step"]), seed=int(meta["seed"]),
            positions=arrays["positions"], momenta=arrays["momenta"], energy=meta["energy"],
            arrays={k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")},
            numbers=arrays["numbers"], masses=arrays["masses"],
            params=meta["params"], options=meta.get("options", {}),
            sampler_state=meta.get("sampler_state", {}))
    except KeyError as exc:
        raise CheckpointError(f"{path}: checkpoint is missing field {exc}") from exc
