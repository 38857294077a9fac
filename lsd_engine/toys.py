"""Small analytic potentials (numpy, batched, picklable) for tests, demos and benchmarks.

Each function maps positions (B, N, 3) Å to (energies (B,) eV, forces (B, N, 3) eV/Å).
Wrap with ``FunctionModel``; ``functools.partial`` of them stays picklable for dask.
"""

from __future__ import annotations

import numpy as np


def _pair_geometry(positions: np.ndarray):
    n = positions.shape[1]
    i, j = np.triu_indices(n, 1)
    vectors = positions[:, i, :] - positions[:, j, :]  # (B, P, 3)
    distances = np.linalg.norm(vectors, axis=-1)  # (B, P)
    return i, j, vectors, distances


def _pair_forces(positions: np.ndarray, i, j, vectors, distances, d_energy_d_r) -> np.ndarray:
    """Forces from pair energies with derivative dE/dr (B, P), vectorised with np.add.at."""
    pair_force = -(d_energy_d_r / distances)[..., None] * vectors  # force on atom i
    forces = np.zeros_like(positions)
    np.add.at(forces, (slice(None), i), pair_force)
    np.add.at(forces, (slice(None), j), -pair_force)
    return forces


def morse_cluster(positions: np.ndarray, depth_eV: float = 0.5, width_per_A: float = 1.5,
                  r0_A: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Morse pair potentials D (1 - exp(-a (r - r0)))^2 over all pairs."""
    i, j, vectors, r = _pair_geometry(positions)
    decay = np.exp(-width_per_A * (r - r0_A))
    energies = (depth_eV * (1.0 - decay) ** 2).sum(axis=1)
    d_energy = 2.0 * depth_eV * width_per_A * decay * (1.0 - decay)
    return energies, _pair_forces(positions, i, j, vectors, r, d_energy)


def harmonic_bonds(positions: np.ndarray, k_eV_per_A2: float = 1.0,
                   r0_A: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Sum of harmonic pair springs k/2 (r - r0)^2 over all pairs (a crude Morse draft)."""
    i, j, vectors, r = _pair_geometry(positions)
    energies = (0.5 * k_eV_per_A2 * (r - r0_A) ** 2).sum(axis=1)
    return energies, _pair_forces(positions, i, j, vectors, r, k_eV_per_A2 * (r - r0_A))


def harmonic_wells(positions: np.ndarray, k_eV_per_A2: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Independent isotropic harmonic wells at the origin, U = k/2 |x|^2 per atom."""
    energies = 0.5 * k_eV_per_A2 * np.sum(positions * positions, axis=(1, 2))
    return energies, -k_eV_per_A2 * positions


def lennard_jones(positions: np.ndarray, sigma_A: float = 3.4, epsilon_eV: float = 0.0104,
                  cutoff_A: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Lennard-Jones pairs 4ε((σ/r)^12 - (σ/r)^6) within ``cutoff_A`` (shifted to 0 there)."""
    i, j, vectors, r = _pair_geometry(positions)
    inside = r < cutoff_A
    sr6 = (sigma_A / r) ** 6
    shift = 4.0 * epsilon_eV * ((sigma_A / cutoff_A) ** 12 - (sigma_A / cutoff_A) ** 6)
    energies = np.where(inside, 4.0 * epsilon_eV * (sr6 * sr6 - sr6) - shift, 0.0).sum(axis=1)
    d_energy = np.where(inside, -24.0 * epsilon_eV * (2.0 * sr6 * sr6 - sr6) / r, 0.0)
    return energies, _pair_forces(positions, i, j, vectors, r, d_energy)
