"""The dashboard's three-way comparison (lsd_dashboard.comparison) on samples whose law is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms, units

from lsd_dashboard.comparison import CHUNK_STEPS, Comparison, KineticTemperature, PairDistances, verdict
from lsd_engine.systems import argon_cluster


def _maxwell_boltzmann(rng, masses, temperature_K, frames):
    sigma = np.sqrt(masses * units.kB * temperature_K)[None, :, None]
    return rng.normal(size=(frames, len(masses), 3)) * sigma


def test_kinetic_temperature_law_is_the_canonical_one():
    rng = np.random.default_rng(0)
    masses = np.full(13, 39.95)
    observable = KineticTemperature(masses, 30.0)
    exact = observable.exact()
    assert exact.sum() == pytest.approx(1.0, abs=1e-4)  # the bins cover ±5 standard deviations
    momenta = _maxwell_boltzmann(rng, masses, 30.0, 20_000)
    observable.add("target MD", np.zeros((20_000, 13, 3)), momenta, np.zeros(20_000))
    report = observable.report()
    # exact samples: the divergence to the exact law is sampling noise only (40 bins, 20 000 samples)
    assert report["js_exact_target"] < 2e-3
    hot = KineticTemperature(masses, 30.0)
    hot.add("target MD", np.zeros((20_000, 13, 3)), momenta * math.sqrt(1.1), np.zeros(20_000))
    assert hot.report()["js_exact_target"] > 10 * report["js_exact_target"]  # 10 % too hot is seen


def test_pair_distances_use_the_minimum_image():
    atoms = Atoms("Cu2", positions=[[0.1, 0, 0], [9.9, 0, 0]], cell=[10, 10, 10], pbc=True)
    observable = PairDistances(atoms.numbers, (29, 29), r_max=5.0, cell=atoms.cell, pbc=atoms.pbc)
    counts = observable.counts(atoms.positions[None], None, None)
    k = int(np.argmax(counts))
    assert counts.sum() == 1 and observable.edges[k] <= 0.2 < observable.edges[k + 1]  # 0.2 Å, not 9.8 Å


def test_verdicts():
    assert verdict(0.01, 0.02, 1.0, below=True) is True
    assert verdict(0.03, 0.02, 1.0, below=True) is False
    assert verdict(0.2, 0.02, 5.0, below=False) is True
    assert verdict(math.nan, 0.02, 5.0, below=False) is None


def _feed(comparison, run, rng, frames, scale=1.0, temperature_K=30.0, atoms=None):
    """Blocks of a fake cluster run: atoms jiggling around ``scale`` x the icosahedron, MB momenta."""
    base = atoms.get_positions() * scale
    for _ in range(frames // CHUNK_STEPS):
        positions = base[None] + rng.normal(scale=0.15, size=(CHUNK_STEPS, len(atoms), 3))
        momenta = _maxwell_boltzmann(rng, atoms.get_masses(), temperature_K, CHUNK_STEPS)
        energies = -0.45 + 0.001 * rng.normal(size=CHUNK_STEPS)
        comparison.add(run, positions, momenta, energies)


def test_same_law_is_converged_and_a_wrong_draft_differs():
    rng = np.random.default_rng(1)
    atoms = argon_cluster()
    comparison = Comparison(atoms, 30.0, None)
    assert comparison.converged() is None  # nothing yet
    _feed(comparison, "target MD", rng, 4000, atoms=atoms)
    _feed(comparison, "LSD", rng, 4000, atoms=atoms)
    _feed(comparison, "draft MD", rng, 4000, scale=3.0 / 3.4, atoms=atoms)
    reports = {r["name"]: r for r in comparison.reports()}
    assert set(reports) == {"Ar–Ar distances", "kinetic temperature", "potential energy"}
    distances = reports["Ar–Ar distances"]
    assert distances["lsd_consistent"] and distances["draft_differs"]
    assert distances["js_draft MD"] > 20 * distances["noise"]
    assert comparison.converged() is True


def test_a_biased_lsd_is_not_converged():
    rng = np.random.default_rng(2)
    atoms = argon_cluster()
    comparison = Comparison(atoms, 30.0, None)
    _feed(comparison, "target MD", rng, 4000, atoms=atoms)
    _feed(comparison, "LSD", rng, 4000, scale=1.03, atoms=atoms)  # a 3 % bias must be caught
    _feed(comparison, "draft MD", rng, 4000, scale=3.0 / 3.4, atoms=atoms)
    assert comparison.converged() is False
