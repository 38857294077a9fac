"""Shared harness for statistical exactness tests: many independent short runs
from one fixed start state, LSD vs plain target MD, compared coordinate by
coordinate with two-sample Kolmogorov-Smirnov tests and a Bonferroni correction."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from ase import Atoms
from scipy import stats

from lsd_engine import FunctionModel, LangevinMD, LangevinParams, SpeculativeSampler
from lsd_engine.toys import harmonic_bonds, morse_cluster

FAMILY_ALPHA = 1e-3  # family-wise significance of one comparison of two samplers


def start_atoms() -> Atoms:
    """Fixed start: 3 hydrogens near a Morse minimum, with fixed non-zero momenta."""
    atoms = Atoms("H3", positions=[[0.0, 0.0, 0.0], [1.45, 0.1, 0.0], [0.2, 1.55, 0.1]])
    atoms.set_momenta(np.array([[0.3, -0.2, 0.1], [-0.1, 0.25, -0.2], [0.05, 0.1, 0.3]]) * 0.1)
    return atoms


TARGET = FunctionModel(morse_cluster, name="morse")
POOR_DRAFT = FunctionModel(partial(harmonic_bonds, k_eV_per_A2=1.0), name="harmonic")


@dataclass
class Comparison:
    p_values: np.ndarray
    names: list[str]

    @property
    def min_p(self) -> float:
        return float(self.p_values.min())

    def rejects(self, alpha: float = FAMILY_ALPHA) -> bool:
        return bool(self.min_p < alpha / len(self.p_values))


def final_state_features(positions: np.ndarray, momenta: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Every coordinate and momentum of the final state, plus pair distances and kinetic energy."""
    n_runs, n_atoms = positions.shape[:2]
    names = [f"x{a}{c}" for a in range(n_atoms) for c in "xyz"] + [f"p{a}{c}" for a in range(n_atoms) for c in "xyz"]
    i, j = np.triu_indices(n_atoms, 1)
    distances = np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)
    names += [f"r{a}{b}" for a, b in zip(i, j)] + ["sum_p2"]
    features = np.concatenate([positions.reshape(n_runs, -1), momenta.reshape(n_runs, -1), distances,
                               (momenta ** 2).sum(axis=(1, 2))[:, None]], axis=1)
    return features, names


def run_many(make_sampler, n_runs: int, n_steps: int, first_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Final positions and momenta of ``n_runs`` independent runs (seeds first_seed, first_seed+1, ...)."""
    positions = np.empty((n_runs,) + start_atoms().positions.shape)
    momenta = np.empty_like(positions)
    for r in range(n_runs):
        sampler = make_sampler(first_seed + r)
        sampler.run(n_steps, stride=n_steps)
        positions[r], momenta[r] = sampler.positions, sampler.momenta
    return positions, momenta


def compare(sample_a: tuple[np.ndarray, np.ndarray], sample_b: tuple[np.ndarray, np.ndarray]) -> Comparison:
    fa, names = final_state_features(*sample_a)
    fb, _ = final_state_features(*sample_b)
    p = np.array([stats.ks_2samp(fa[:, c], fb[:, c]).pvalue for c in range(fa.shape[1])])
    return Comparison(p, names)


PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)


def lsd_factory(sampler_class=SpeculativeSampler, draft=POOR_DRAFT, lookahead: int = 3,
                error_correction: bool = False, params: LangevinParams = PARAMS):
    return lambda seed: sampler_class(start_atoms(), draft, TARGET, params, lookahead=lookahead,
                                      error_correction=error_correction, seed=seed)


def md_factory(params: LangevinParams = PARAMS):
    return lambda seed: LangevinMD(start_atoms(), TARGET, params, seed=seed)
