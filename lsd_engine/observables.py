"""Observables of trajectories: dihedrals, Ramachandran histograms, Jensen-Shannon divergence,
kinetic temperature and alanine-dipeptide basin populations. All vectorised numpy.

Angles are in degrees in [-180, 180). Positions in Å, momenta in amu·Å/ASE-time
(as ``ase.Atoms.get_momenta()`` and the samplers' results), masses in amu.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from ase import units

__all__ = [
    "ALANINE_BASINS", "basin_populations", "dihedrals", "jensen_shannon", "kinetic_temperature",
    "phi_psi", "ramachandran_histogram", "assign_basins",
]


def dihedrals(points: np.ndarray) -> np.ndarray:
    """Dihedral angles (degrees, in [-180, 180)) of quadruplets ``points[..., 4, 3]``.

    Same convention as IUPAC / ``ase.Atoms.get_dihedral`` (which returns it modulo 360).
    """
    p = np.asarray(points, dtype=float)
    if p.shape[-2:] != (4, 3):
        raise ValueError(f"dihedrals needs points of shape (..., 4, 3), got {p.shape}")
    b0 = p[..., 0, :] - p[..., 1, :]
    b1 = p[..., 2, :] - p[..., 1, :]
    b2 = p[..., 3, :] - p[..., 2, :]
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    x = np.sum(v * w, axis=-1)
    y = np.sum(np.cross(b1n, v) * w, axis=-1)
    angle = np.degrees(np.arctan2(y, x))
    return _wrap(angle)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (np.asarray(angle) + 180.0) % 360.0 - 180.0


def phi_psi(positions: np.ndarray, phi_indices: Sequence[int] = (4, 6, 8, 14),
            psi_indices: Sequence[int] = (6, 8, 14, 16)) -> tuple[np.ndarray, np.ndarray]:
    """φ and ψ (degrees) of every frame of ``positions`` (T, N, 3) or (N, 3).

    Defaults are the alanine-dipeptide indices of :mod:`lsd_engine.systems`; for a
    system from there pass ``**{k: info[k] for k in ("phi_indices", "psi_indices")}``.
    """
    x = np.asarray(positions, dtype=float)
    phi = dihedrals(x[..., list(phi_indices), :])
    psi = dihedrals(x[..., list(psi_indices), :])
    return phi, psi


def ramachandran_histogram(phi: np.ndarray, psi: np.ndarray, bins: int = 36,
                           density: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """2-D histogram over [-180, 180)² (rows φ, columns ψ) and the shared bin edges.

    density=True normalises the counts to probabilities that sum to 1.
    """
    phi = _wrap(np.asarray(phi, dtype=float).ravel())
    psi = _wrap(np.asarray(psi, dtype=float).ravel())
    if phi.shape != psi.shape:
        raise ValueError(f"phi and psi need the same length, got {phi.shape} and {psi.shape}")
    edges = np.linspace(-180.0, 180.0, int(bins) + 1)
    counts, _, _ = np.histogram2d(phi, psi, bins=(edges, edges))
    if density:
        total = counts.sum()
        counts = counts / total if total > 0 else counts
    return counts, edges


def jensen_shannon(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """Jensen-Shannon divergence between two histograms (normalised here), in bits by default.

    Symmetric, 0 iff p == q, at most 1 bit (log(2) nats). Empty bins are fine.
    """
    p = np.asarray(p, dtype=float).ravel()
    q = np.asarray(q, dtype=float).ravel()
    if p.shape != q.shape:
        raise ValueError(f"histograms need the same shape, got {p.shape} and {q.shape}")
    if np.any(p < 0) or np.any(q < 0) or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("histograms must be non-negative with a positive total")
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    value = 0.5 * (kl(p) + kl(q)) / np.log(base)
    return max(value, 0.0)


def kinetic_temperature(momenta: np.ndarray, masses: np.ndarray, constrained_dof: int = 0) -> np.ndarray:
    """Instantaneous kinetic temperature (K): 2 KE / (k_B · n_dof) per frame.

    momenta: (T, N, 3) or (N, 3); masses: (N,) amu. n_dof = 3N - constrained_dof
    (Langevin dynamics conserves no momentum, so the default removes none).
    """
    p = np.asarray(momenta, dtype=float)
    m = np.asarray(masses, dtype=float)
    if p.shape[-2:] != (m.shape[0], 3):
        raise ValueError(f"momenta shape {p.shape} does not match {m.shape[0]} masses")
    kinetic = 0.5 * np.einsum("...ij,...ij->...", p, p / m[:, None])
    n_dof = 3 * m.shape[0] - int(constrained_dof)
    if n_dof <= 0:
        raise ValueError("no degrees of freedom left")
    return 2.0 * kinetic / (n_dof * units.kB)


#: Coarse partition of the Ramachandran plane into the alanine-dipeptide basins
#: (degrees; each basin a list of φ-range × ψ-range rectangles, half-open [lo, hi)).
#: φ < 0: αR for -120 ≤ ψ < 30, otherwise β-region split at φ = -120 into C5 (φ < -120)
#: and C7eq. φ ≥ 0: C7ax for ψ < 0, αL for ψ ≥ 0. Every point belongs to exactly one basin.
ALANINE_BASINS: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {
    "C7eq": [((-120.0, 0.0), (30.0, 180.0)), ((-120.0, 0.0), (-180.0, -120.0))],
    "C5": [((-180.0, -120.0), (30.0, 180.0)), ((-180.0, -120.0), (-180.0, -120.0))],
    "alphaR": [((-180.0, 0.0), (-120.0, 30.0))],
    "C7ax": [((0.0, 180.0), (-180.0, 0.0))],
    "alphaL": [((0.0, 180.0), (0.0, 180.0))],
}


def assign_basins(phi: np.ndarray, psi: np.ndarray,
                  basins: Mapping[str, list] = ALANINE_BASINS) -> np.ndarray:
    """Basin name per frame ("" where no basin contains the point)."""
    phi = _wrap(np.asarray(phi, dtype=float))
    psi = _wrap(np.asarray(psi, dtype=float))
    labels = np.full(phi.shape, "", dtype=object)
    for name, boxes in basins.items():
        inside = np.zeros(phi.shape, dtype=bool)
        for (f0, f1), (s0, s1) in boxes:
            inside |= (phi >= f0) & (phi < f1) & (psi >= s0) & (psi < s1)
        labels[inside & (labels == "")] = name
    return labels


def basin_populations(phi: np.ndarray, psi: np.ndarray,
                      basins: Mapping[str, list] = ALANINE_BASINS) -> dict[str, float]:
    """Fraction of frames in each basin (C7eq, C5, alphaR, C7ax, alphaL by default)."""
    labels = assign_basins(phi, psi, basins)
    n = labels.size
    if n == 0:
        raise ValueError("no frames")
    return {name: float(np.count_nonzero(labels == name)) / n for name in basins}
