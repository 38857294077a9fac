"""Synthetic labels for the learning tests: smooth trajectories with analytic target and draft forces."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from lsd_engine import LangevinParams
from lsd_engine.learning.geometry import covalent_graph_pairs
from lsd_engine.learning.labels import LabelSet
from lsd_engine.systems import alanine_dipeptide, copper_fcc


def smooth_path(x0: np.ndarray, n: int, amplitude: float, seed: int, correlation: float = 0.9) -> np.ndarray:
    """Positions x0 + an AR(1)-smoothed random walk bounded by an Ornstein-Uhlenbeck pull."""
    rng = np.random.default_rng(seed)
    x = np.empty((n,) + x0.shape)
    d = np.zeros_like(x0)
    v = np.zeros_like(x0)
    for t in range(n):
        v = correlation * v + np.sqrt(1 - correlation ** 2) * rng.standard_normal(x0.shape)
        d = 0.97 * d + 0.25 * amplitude * v
        x[t] = x0 + d
    return x


def _spring_forces(x: np.ndarray, i: np.ndarray, j: np.ndarray, k: np.ndarray, r0: np.ndarray,
                   shifts: np.ndarray | None = None) -> np.ndarray:
    vec = x[..., j, :] - x[..., i, :] + (0 if shifts is None else shifts)
    r = np.linalg.norm(vec, axis=-1)
    f = (k * (r - r0) / r)[..., None] * vec  # force on i toward j when stretched
    out = np.zeros_like(x)
    np.add.at(out, (slice(None), i), f)
    np.add.at(out, (slice(None), j), -f)
    return out


def molecule_labels(n: int = 240, seed: int = 0) -> tuple[Atoms, LabelSet, LangevinParams]:
    """Alanine dipeptide geometry; draft = springs on bonds, target = draft + per-pair springs
    on 1-2/1-3 pairs (a residual the bonded correction can represent exactly)."""
    atoms = alanine_dipeptide("vacuum")
    x0 = atoms.get_positions()
    x = smooth_path(x0, n, 0.05, seed)
    pairs, hops = covalent_graph_pairs(x0, atoms.numbers, 2)
    r0 = np.linalg.norm(pairs.vectors(x0), axis=1)
    rng = np.random.default_rng(123)
    k_draft = np.where(hops == 1, 20.0, 0.0)
    k_extra = rng.uniform(1.0, 4.0, len(pairs))
    draft = _spring_forces(x, pairs.i, pairs.j, k_draft, r0)
    target = draft + _spring_forces(x, pairs.i, pairs.j, k_extra, r0 + 0.02)
    labels = LabelSet(x, target, np.zeros(n), atoms.numbers.copy(), atoms.get_masses().copy(),
                      draft_forces=draft, meta={"timestep_fs": 0.5, "temperature_K": 300.0, "friction_per_ps": 10.0})
    return atoms, labels, LangevinParams(0.5, 300.0, 10.0)


def metal_labels(n: int = 200, seed: int = 0) -> tuple[Atoms, LabelSet, LangevinParams]:
    """Cu32 near its lattice sites: target = ASE's EMT, draft = 0.8 x EMT (a smooth many-body residual)."""
    from ase.calculators.emt import EMT

    atoms = copper_fcc(2)
    x = smooth_path(atoms.get_positions(), n, 0.02, seed)
    calc_atoms = atoms.copy()
    calc_atoms.calc = EMT()
    target = np.empty_like(x)
    for t in range(n):
        calc_atoms.positions = x[t]
        target[t] = calc_atoms.get_forces()
    labels = LabelSet(x, target, np.zeros(n), atoms.numbers.copy(), atoms.get_masses().copy(),
                      np.array(atoms.cell[:]), np.array(atoms.pbc), 0.8 * target,
                      meta={"timestep_fs": 1.0, "temperature_K": 1500.0, "friction_per_ps": 1.0})
    return atoms, labels, LangevinParams(1.0, 1500.0, 1.0)


def feed(correction, labels: LabelSet, sizes=(3, 5, 1, 7, 4, 2, 6)) -> list[int]:
    """Observe the labels in rounds of the given sizes (cycled); returns the round end indices."""
    t, k, ends = 0, 0, []
    while t < len(labels):
        b = min(sizes[k % len(sizes)], len(labels) - t)
        correction.observe(labels.positions[t:t + b], labels.target_forces[t:t + b], labels.draft_forces[t:t + b])
        t += b
        k += 1
        ends.append(t)
    return ends
