"""Checks for a force model adapter: batch vs one-by-one, finite output (timing: ``lsd_engine.timing``).

Used by the test suite and the benchmark; handy when writing a new adapter.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .base import ForceModel


def perturbed_positions(atoms: Atoms, count: int, scale: float = 0.05, seed: int = 0) -> np.ndarray:
    """``count`` copies of the positions with Gaussian noise of ``scale`` Å: (count, N, 3)."""
    rng = np.random.default_rng(seed)
    return atoms.positions[None] + rng.normal(0.0, scale, (count, len(atoms), 3))


def batch_vs_single(model: ForceModel, positions: np.ndarray) -> tuple[float, float]:
    """Largest |ΔE| (eV) and |ΔF| (eV/Å) between one batched call and one call per configuration."""
    energies, forces = model.evaluate(positions)
    singles = [model.evaluate(positions[b:b + 1]) for b in range(len(positions))]
    e1 = np.concatenate([s[0] for s in singles])
    f1 = np.concatenate([s[1] for s in singles])
    return float(np.max(np.abs(energies - e1))), float(np.max(np.abs(forces - f1)))
