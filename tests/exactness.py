"""Shared harness for statistical exactness tests: many independent short runs
from one fixed start state, LSD vs plain target MD, compared coordinate by
coordinate with two-sample Kolmogorov-Smirnov tests and a Bonferroni correction."""

from __future__ import annotations

import multiprocessing
import os
import warnings
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


#: Worker processes for ``run_many`` (the runs are independent and each is seeded by its index, so the
#: sample is the same for any number; on 2 cores this halves the statistical tests' wall time).
#: LSD_TEST_PROCESSES=1 runs them in the test's own process.
PROCESSES = max(1, int(os.environ.get("LSD_TEST_PROCESSES", min(2, os.cpu_count() or 1))))
MIN_RUNS_PER_PROCESS = 100  # below this, starting the processes costs more than it saves
WORKER_TIMEOUT_S = 900  # the slowest sample (neural learning, 800 runs) takes about 60 s

_JOB: tuple | None = None  # (make_sampler, n_steps), inherited by the forked workers


def _run_seeds(make_sampler, n_steps: int, seeds: range) -> tuple[np.ndarray, np.ndarray]:
    positions = np.empty((len(seeds),) + start_atoms().positions.shape)
    momenta = np.empty_like(positions)
    for r, seed in enumerate(seeds):
        sampler = make_sampler(seed)
        sampler.run(n_steps, stride=n_steps)
        positions[r], momenta[r] = sampler.positions, sampler.momenta
    return positions, momenta


def _worker_start() -> None:
    import sys

    if "torch" in sys.modules:  # a forked child must not enter the parent's OpenMP thread pool
        sys.modules["torch"].set_num_threads(1)


def _worker(seeds: range) -> tuple[np.ndarray, np.ndarray]:
    make_sampler, n_steps = _JOB
    return _run_seeds(make_sampler, n_steps, seeds)


def run_many(make_sampler, n_runs: int, n_steps: int, first_seed: int,
             processes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Final positions and momenta of ``n_runs`` independent runs (seeds first_seed, first_seed+1, ...),
    the same whether they run here or split over ``processes`` forked workers (default ``PROCESSES``)."""
    global _JOB
    processes = min(PROCESSES if processes is None else processes, n_runs // MIN_RUNS_PER_PROCESS)
    seeds = range(first_seed, first_seed + n_runs)
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _run_seeds(make_sampler, n_steps, seeds)
    bounds = np.linspace(0, n_runs, processes + 1).round().astype(int)
    _JOB = (make_sampler, n_steps)  # closures cannot be pickled: the children inherit them by fork
    try:
        with multiprocessing.get_context("fork").Pool(processes, initializer=_worker_start) as pool:
            pending = pool.map_async(_worker, [seeds[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
            parts = pending.get(timeout=WORKER_TIMEOUT_S)
    except multiprocessing.TimeoutError:  # a forked child stuck on a lock another thread held: run here
        warnings.warn(f"run_many: forked workers gave no result in {WORKER_TIMEOUT_S} s; running in process")
        return _run_seeds(make_sampler, n_steps, seeds)
    finally:
        _JOB = None
    return np.concatenate([p for p, _ in parts]), np.concatenate([m for _, m in parts])


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
