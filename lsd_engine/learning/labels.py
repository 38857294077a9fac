"""Target-labelled configurations: recording them from a target MD run, saving and loading .npz.

A label set is a sequence of half-step positions x'_t (T, N, 3) Å where the target
force was evaluated, with the target forces (and energies) there and, optionally,
the raw draft forces at the same positions. It is what the online corrections see
through ``observe`` and what ``lsd_engine.distill`` trains on. The order is the
trajectory order (t = step index - 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ..models.base import ForceModel, evaluate_checked

__all__ = ["LabelFileError", "LabelSet", "RecordingModel", "record_target_md", "load_labels", "save_labels"]


@dataclass
class LabelSet:
    """Target labels along a trajectory (half-step positions, in step order)."""

    positions: np.ndarray  # (T, N, 3) Å
    target_forces: np.ndarray  # (T, N, 3) eV/Å
    target_energies: np.ndarray  # (T,) eV
    numbers: np.ndarray  # (N,)
    masses: np.ndarray  # (N,) amu, as used by the dynamics
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    draft_forces: np.ndarray | None = None  # (T, N, 3) raw draft forces, if known
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def residuals(self) -> np.ndarray:
        """F_target - F_draft at the labels (needs draft forces)."""
        if self.draft_forces is None:
            raise ValueError("this label set has no draft forces; call with_draft(draft) first")
        return self.target_forces - self.draft_forces

    def atoms(self) -> Atoms:
        """The bound system (species, cell, pbc, masses) at the first labelled positions."""
        atoms = Atoms(numbers=self.numbers, positions=self.positions[0], cell=self.cell, pbc=self.pbc)
        atoms.set_masses(self.masses)
        return atoms

    def with_draft(self, draft: ForceModel, batch: int = 256) -> "LabelSet":
        """A copy with the raw draft forces evaluated at every label (in batches)."""
        chunks = [evaluate_checked(draft, self.positions[i:i + batch], role="draft", first_step=i)[1]
                  for i in range(0, len(self), batch)]
        meta = {**self.meta, "draft": getattr(draft, "name", "draft")}
        return LabelSet(self.positions, self.target_forces, self.target_energies, self.numbers, self.masses,
                        self.cell, self.pbc, np.concatenate(chunks), meta)

    def concatenate(self, other: "LabelSet") -> "LabelSet":
        """These labels followed by ``other``'s (same system; draft forces kept only if both have them)."""
        if not np.array_equal(self.numbers, other.numbers):
            raise ValueError("cannot join label sets of different systems (atomic numbers differ)")
        draft = (None if self.draft_forces is None or other.draft_forces is None
                 else np.concatenate([self.draft_forces, other.draft_forces]))
        return LabelSet(np.concatenate([self.positions, other.positions]),
                        np.concatenate([self.target_forces, other.target_forces]),
                        np.concatenate([self.target_energies, other.target_energies]), self.numbers, self.masses,
                        self.cell, self.pbc, draft, dict(self.meta))

    def slice(self, start: int = 0, stop: int | None = None) -> "LabelSet":
        s = np.s_[start:stop]
        return LabelSet(self.positions[s], self.target_forces[s], self.target_energies[s], self.numbers,
                        self.masses, self.cell, self.pbc,
                        None if self.draft_forces is None else self.draft_forces[s], dict(self.meta))


class RecordingModel(ForceModel):
    """Wraps a model and keeps every (positions, energies, forces) it returns."""

    def __init__(self, model: ForceModel):
        self.model = model
        self.name = getattr(model, "name", "model")
        self.n_atoms = getattr(model, "n_atoms", None)
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        energies, forces = self.model.evaluate(positions)
        self.calls.append((np.array(positions, dtype=float), np.asarray(energies, dtype=float).copy(),
                           np.asarray(forces, dtype=float).copy()))
        return energies, forces


def record_target_md(atoms: Atoms, target: ForceModel, params, n_steps: int, seed: int = 0,
                     draft: ForceModel | None = None, log_every: int = 0) -> LabelSet:
    """Plain target Langevin MD (the ABOBA kernel of ``LangevinMD``) with every force label kept.

    Returns the ``n_steps`` half-step positions with their target forces and energies
    (and draft forces when ``draft`` is given).
    """
    from ..langevin_md import LangevinMD

    recorder = RecordingModel(target)
    md = LangevinMD(atoms, recorder, params, seed=seed)
    done = 0
    block = log_every if log_every > 0 else n_steps
    while done < n_steps:
        md.run(min(block, n_steps - done))
        done = md.step
        if log_every:
            print(f"  target MD step {done}/{n_steps}", flush=True)
    calls = recorder.calls[1:]  # the first call is the initial energy at the start positions
    positions = np.concatenate([c[0] for c in calls])
    labels = LabelSet(positions=positions, target_forces=np.concatenate([c[2] for c in calls]),
                      target_energies=np.concatenate([c[1] for c in calls]),
                      numbers=np.asarray(atoms.numbers).copy(), masses=atoms.get_masses().copy(),
                      cell=np.array(atoms.cell[:]), pbc=np.array(atoms.pbc),
                      meta={"source": "target-md", "target": recorder.name, "seed": int(seed),
                            **{k: float(v) for k, v in params.to_dict().items()}})
    return labels.with_draft(draft) if draft is not None else labels


def save_labels(path: str | os.PathLike, labels: LabelSet) -> None:
    """Write a label set to an .npz file (``load_labels`` reads it back)."""
    arrays = {"positions": labels.positions, "target_forces": labels.target_forces,
              "target_energies": labels.target_energies, "numbers": labels.numbers, "masses": labels.masses,
              "cell": labels.cell, "pbc": labels.pbc,
              "meta_keys": np.array(list(labels.meta), dtype=str),
              "meta_values": np.array([str(v) for v in labels.meta.values()], dtype=str)}
    if labels.draft_forces is not None:
        arrays["draft_forces"] = labels.draft_forces
    np.savez_compressed(path, **arrays)


class LabelFileError(LSDError, ValueError):
    """A label file that is missing, truncated or malformed (the message names the file and the array)."""


def load_labels(path: str | os.PathLike) -> LabelSet:
    """Read an .npz written by ``save_labels`` (or any .npz with positions and target_forces).

    The file is data: read without pickle, each array's shape and dtype checked, so a
    truncated or malformed file raises one :class:`LabelFileError` naming the file.
    """
    from ..checkpoint import read_npz

    path = Path(path)
    _, arrays = read_npz(path, LabelFileError, not_found="labels file not found", kind="label file")
    if "positions" not in arrays or "target_forces" not in arrays:
        raise LabelFileError(f"{path}: a label file needs the arrays 'positions' and 'target_forces'")
    positions = arrays["positions"]
    if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] < 1 or positions.shape[1] < 1:
        raise LabelFileError(f"{path}: array 'positions' has shape {positions.shape}; expected (T, N, 3)")
    t, n = positions.shape[:2]
    expected = {"positions": ((t, n, 3), "fiu"), "target_forces": ((t, n, 3), "fiu"), "target_energies": ((t,), "fiu"),
                "numbers": ((n,), "iu"), "masses": ((n,), "fiu"), "cell": ((3, 3), "fiu"), "pbc": ((3,), "biu"),
                "draft_forces": ((t, n, 3), "fiu"), "meta_keys": (None, "U"), "meta_values": (None, "U")}
    for name, (shape, kinds) in expected.items():
        value = arrays.get(name)
        if value is not None and ((shape is not None and value.shape != shape) or value.dtype.kind not in kinds):
            raise LabelFileError(f"{path}: array {name!r} has shape {value.shape} and dtype {value.dtype}; "
                                 f"expected shape {shape}" if shape else f"{path}: array {name!r} must hold strings")
    if "meta_keys" in arrays and arrays["meta_keys"].shape != arrays.get("meta_values", np.array([])).shape:
        raise LabelFileError(f"{path}: arrays 'meta_keys' and 'meta_values' differ in length")

    def floats(name: str, default: np.ndarray) -> np.ndarray:
        return np.asarray(arrays[name], dtype=float) if name in arrays else default

    meta = dict(zip(arrays["meta_keys"].tolist(), arrays["meta_values"].tolist())) if "meta_keys" in arrays else {}
    return LabelSet(
        positions=np.asarray(positions, dtype=float), target_forces=floats("target_forces", None),
        target_energies=floats("target_energies", np.full(t, np.nan)),
        numbers=np.asarray(arrays["numbers"]) if "numbers" in arrays else np.zeros(n, dtype=int),
        masses=floats("masses", np.ones(n)), cell=floats("cell", np.zeros((3, 3))),
        pbc=np.asarray(arrays["pbc"], dtype=bool) if "pbc" in arrays else np.zeros(3, dtype=bool),
        draft_forces=floats("draft_forces", None) if "draft_forces" in arrays else None, meta=meta)
