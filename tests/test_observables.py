"""Observables: dihedrals against ASE, histograms, Jensen-Shannon, temperature, basins."""

import numpy as np
import pytest
from ase import units

from lsd_engine import observables as obs
from lsd_engine import systems


def test_dihedrals_match_ase():
    atoms = systems.alanine_dipeptide()
    rng = np.random.default_rng(1)
    frames = atoms.positions[None] + rng.normal(0, 0.4, (50, len(atoms), 3))
    phi, psi = obs.phi_psi(frames)
    for t in range(0, 50, 7):
        atoms.positions = frames[t]
        for ours, idx in ((phi[t], systems.ALANINE_PHI), (psi[t], systems.ALANINE_PSI)):
            reference = atoms.get_dihedral(*idx)  # degrees in [0, 360)
            assert ((ours - reference + 180) % 360 - 180) == pytest.approx(0, abs=1e-9)
    assert phi.shape == (50,) and np.all((phi >= -180) & (phi < 180))


def test_dihedral_known_values_and_shapes():
    square = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1]])
    assert obs.dihedrals(square) == pytest.approx(90.0)
    trans = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1], [-1, 0, 1]])
    assert obs.dihedrals(trans) == pytest.approx(-180.0)
    assert obs.dihedrals(np.stack([square, trans] * 3).reshape(3, 2, 4, 3)).shape == (3, 2)
    with pytest.raises(ValueError):
        obs.dihedrals(np.zeros((3, 3)))


def test_ramachandran_histogram_and_js():
    rng = np.random.default_rng(2)
    phi = rng.uniform(-180, 180, 5000)
    psi = rng.uniform(-180, 180, 5000)
    hist, edges = obs.ramachandran_histogram(phi, psi, bins=18)
    assert hist.shape == (18, 18) and hist.sum() == pytest.approx(1.0)
    assert edges[0] == -180 and edges[-1] == 180
    counts, _ = obs.ramachandran_histogram(phi, psi, bins=18, density=False)
    assert counts.sum() == 5000
    other, _ = obs.ramachandran_histogram(rng.normal(-70, 20, 5000), rng.normal(140, 20, 5000), bins=18)
    js = obs.jensen_shannon(hist, other)
    assert 0 < js <= 1
    assert js == pytest.approx(obs.jensen_shannon(other, hist))
    assert obs.jensen_shannon(hist, hist) == pytest.approx(0, abs=1e-12)
    assert obs.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert obs.jensen_shannon([1, 0], [0, 1], base=np.e) == pytest.approx(np.log(2))
    assert obs.jensen_shannon([2, 2], [1, 1]) == pytest.approx(0.0)  # normalised internally
    with pytest.raises(ValueError):
        obs.jensen_shannon([1, 2], [1, 2, 3])


def test_kinetic_temperature_of_maxwell_boltzmann_momenta():
    rng = np.random.default_rng(3)
    masses = rng.uniform(1, 60, 200)
    temperature = 300.0
    p = rng.normal(size=(400, 200, 3)) * np.sqrt(masses[:, None] * units.kB * temperature)
    temps = obs.kinetic_temperature(p, masses)
    assert temps.shape == (400,)
    assert temps.mean() == pytest.approx(temperature, rel=0.01)
    single = obs.kinetic_temperature(p[0], masses)
    assert single == pytest.approx(temps[0])
    assert obs.kinetic_temperature(p[0], masses, constrained_dof=3) > single


def test_basin_populations_partition_the_plane():
    grid = np.linspace(-180, 179, 120)
    phi, psi = np.meshgrid(grid, grid)
    pops = obs.basin_populations(phi, psi)
    assert set(pops) == {"C7eq", "C5", "alphaR", "C7ax", "alphaL"}
    assert sum(pops.values()) == pytest.approx(1.0)
    labels = obs.assign_basins(np.array([-80, -150, -70, 70, 60]), np.array([70, 160, -40, -70, 45]))
    assert labels.tolist() == ["C7eq", "C5", "alphaR", "C7ax", "alphaL"]
