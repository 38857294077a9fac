"""The analytic ``lj`` model against ASE's Lennard-Jones calculator and finite differences."""

from __future__ import annotations

import numpy as np
from ase.calculators.lj import LennardJones

from lsd_engine import models
from lsd_engine.systems import argon_cluster


def test_lj_matches_ase_and_its_forces_are_the_gradient():
    atoms = argon_cluster()
    rng = np.random.default_rng(0)
    positions = atoms.get_positions()[None] + rng.normal(scale=0.1, size=(3, len(atoms), 3))
    model = models.create("lj", atoms, sigma_A=3.0, epsilon_eV=0.01, cutoff_A=8.0)
    energies, forces = model.evaluate(positions)
    for b in range(3):  # a whole batch at once, the same as ASE one by one
        probe = atoms.copy()
        probe.set_positions(positions[b])
        probe.calc = LennardJones(sigma=3.0, epsilon=0.01, rc=8.0)
        assert abs(energies[b] - probe.get_potential_energy()) < 1e-10
        np.testing.assert_allclose(forces[b], probe.get_forces(), atol=1e-10)
    h, (i, k) = 1e-5, (4, 1)
    plus, minus = positions[:1].copy(), positions[:1].copy()
    plus[0, i, k] += h
    minus[0, i, k] -= h
    numeric = -(model.evaluate(plus)[0][0] - model.evaluate(minus)[0][0]) / (2 * h)
    assert abs(numeric - forces[0, i, k]) < 1e-7
