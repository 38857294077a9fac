"""ani-1x equals torchani's own result (its ASE interface and its Hartree output)."""

import warnings

import numpy as np
import pytest
import torch

from lsd_engine import models, systems
from lsd_engine.models.ani import load_ani1x_ensemble
from lsd_engine.models.checks import batch_vs_single, perturbed_positions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torchani


@pytest.fixture(scope="module")
def ala():
    return systems.alanine_dipeptide()


def test_ani1x_float64_equals_torchani(ala):
    model = models.create("ani-1x", ala, precision="float64", threads=1)
    x = perturbed_positions(ala, 3, 0.05, seed=4)
    energies, forces = model.evaluate(x)
    reference = load_ani1x_ensemble().double()
    assert len(reference.neural_networks) == 8
    calc = reference.ase()  # torchani's ASE calculator: eV and eV/Å with its own constants
    for b in range(3):
        atoms = ala.copy()
        atoms.positions = x[b]
        atoms.calc = calc
        assert energies[b] == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(forces[b], atoms.get_forces(), atol=1e-8)
    species = torch.tensor(ala.numbers)[None]
    hartree = reference((species, torch.tensor(x[:1]))).energies.item()
    assert energies[0] == pytest.approx(torchani.units.hartree2ev(hartree), abs=1e-9)
    de, df = batch_vs_single(model, x)
    assert de < 1e-9 and df < 1e-9


def test_ani1x_float32_batch_equals_single(ala):
    model = models.create("ani-1x", ala, threads=1)
    assert model.batched and model.dtype == torch.float32
    x = perturbed_positions(ala, 5, 0.05, seed=5)
    de, df = batch_vs_single(model, x)
    assert de < 1e-3 and df < 1e-4  # float32 (energies ~ -1.3e4 eV)
    e64, f64 = models.create("ani-1x", ala, precision="float64").evaluate(x)
    e32, f32 = model.evaluate(x)
    assert np.max(np.abs(f32 - f64)) < 1e-3


def test_ani1x_single_network_and_periodic():
    water = systems.water_box()
    model = models.create("ani-1x", water, model_index=0, precision="float64", threads=1)
    assert model.periodic and model.name == "ani-1x[0]"
    e, f = model.evaluate(water.positions[None])
    reference = load_ani1x_ensemble(0).double()
    ref_atoms = water.copy()
    ref_atoms.calc = reference.ase()
    assert e[0] == pytest.approx(ref_atoms.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(f[0], ref_atoms.get_forces(), atol=1e-8)
    shifted = water.positions + water.cell.array[0]  # an image of atom positions: same E, F
    e2, f2 = model.evaluate(shifted[None])
    assert e2[0] == pytest.approx(e[0], abs=1e-8)
    np.testing.assert_allclose(f2[0], f[0], atol=1e-8)
