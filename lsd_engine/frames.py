"""Frame files of a run: ASE .traj / extended-XYZ frames with momenta and energies, and JSON summaries.

The biomolecular formats (.dcd / .xtc with a PDB topology, the CSV state log) are in
:mod:`lsd_engine.formats`, which builds on :class:`FrameWriter`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


def frame_atoms(numbers, masses, cell, pbc, positions, momenta, energy: float) -> Atoms:
    """An ase.Atoms frame with momenta and the potential energy attached."""
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc, masses=masses)
    atoms.set_momenta(momenta, apply_constraint=False)
    atoms.calc = SinglePointCalculator(atoms, energy=float(energy))
    return atoms


def write_ase_frames(path: str | os.PathLike, frames: Sequence[Atoms], append: bool) -> None:
    """Append (or write) frames to ``path``: ASE .traj, else extended XYZ."""
    if not frames and append:
        return
    if Path(path).suffix.lower() == ".traj":
        from ase.io.trajectory import Trajectory

        with Trajectory(str(path), mode="a" if append else "w") as traj:
            for atoms in frames:
                traj.write(atoms)
    else:
        from ase.io import write

        write(str(path), list(frames), format="extxyz", append=append)


class FrameWriter:
    """A trajectory file of a running simulation: ``add`` buffers frames, ``flush`` appends them.

    Flushing together with the checkpoint keeps the file and the checkpoint
    consistent: after an interrupt, the file ends exactly at the checkpoint step.
    """

    def __init__(self, path: str | os.PathLike, append: bool):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise FileNotFoundError(f"trajectory folder does not exist: {self.path.parent}")
        self._append = append and self.path.exists()

    @property
    def starts_new_file(self) -> bool:
        """True until the first flush when the file is (re)written from scratch."""
        return not self._append

    def add(self, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray,
            steps: np.ndarray | None = None) -> None:
        """Frames (F, N, 3) Å, (F, N, 3), (F,) eV of trajectory steps ``steps`` to write at the next flush."""
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError


class TrajectoryFile(FrameWriter):
    """ASE .traj or extended-XYZ frames with momenta and the target energy."""

    def __init__(self, path: str | os.PathLike, template: Atoms, append: bool):
        super().__init__(path, append)
        self._numbers = template.get_atomic_numbers()
        self._masses = template.get_masses()
        self._cell = np.array(template.get_cell())
        self._pbc = template.get_pbc()
        self._pending: list[Atoms] = []

    def add(self, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray,
            steps: np.ndarray | None = None) -> None:
        for x, p, e in zip(positions, momenta, energies):
            self._pending.append(frame_atoms(self._numbers, self._masses, self._cell, self._pbc, x, p, e))

    def flush(self) -> None:
        if self._pending or not self._append:
            write_ase_frames(self.path, self._pending, append=self._append)
        self._pending = []
        self._append = True


def write_summary(path: str | os.PathLike, summary: dict[str, Any]) -> None:
    """Write a JSON summary atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    os.replace(tmp, path)
