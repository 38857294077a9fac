"""Analytic pair potentials as registry models (numpy, a whole batch per call): ``lj``.

Cheap and exactly known: the dashboard's teaching preset runs LSD with an ``lj`` target
and a deliberately wrong ``lj`` draft (another σ), so the three distributions (draft MD,
target MD, LSD) converge on two CPU cores within minutes.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ..toys import lennard_jones
from ._bound import BoundModel


class LennardJonesModel(BoundModel):
    """4ε((σ/r)^12 − (σ/r)^6) over all pairs within the cutoff (energy shifted to 0 there); eV, Å."""

    batched = True

    def __init__(self, atoms: Atoms, sigma_A: float = 3.4, epsilon_eV: float = 0.0104, cutoff_A: float = 10.0):
        super().__init__(atoms, f"lj(σ={sigma_A:g} Å, ε={epsilon_eV:g} eV)")
        for key, value in (("sigma_A", sigma_A), ("epsilon_eV", epsilon_eV), ("cutoff_A", cutoff_A)):
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise LSDError(f"lj: {key} must be a positive number, got {value!r}")
        self.sigma_A, self.epsilon_eV, self.cutoff_A = float(sigma_A), float(epsilon_eV), float(cutoff_A)

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return lennard_jones(positions, self.sigma_A, self.epsilon_eV, self.cutoff_A)


def make_lj(atoms: Atoms, **options) -> LennardJonesModel:
    return LennardJonesModel(atoms, **options)
