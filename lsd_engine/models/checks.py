"""Checks for a force model adapter: batch vs one-by-one, finite output, timing.

Used by the test suite and the benchmark; handy when writing a new adapter.
"""

from __future__ import annotations

import time

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


def time_per_call(model: ForceModel, positions: np.ndarray, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time (s) of ``model.evaluate(positions)``.

    Each call gets positions shifted by a different tiny amount (1e-6 Å steps), so a
    backend that caches results for unchanged inputs (ASE calculators do) is timed
    doing the work.
    """
    times = []
    for k in range(warmup + max(1, repeats)):
        shifted = positions + (k + 1) * 1e-6
        start = time.perf_counter()
        model.evaluate(shifted)
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))
