"""sevennet-0 and chgnet equal their packages' own ASE calculators; batches equal singles."""

import warnings

import numpy as np
import pytest

from lsd_engine import models, systems
from lsd_engine.models.checks import batch_vs_single, perturbed_positions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from chgnet.model.dynamics import CHGNetCalculator
    from sevenn.calculator import SevenNetCalculator


@pytest.fixture(scope="module")
def copper():
    return systems.copper_fcc(2)


def _compare_with_calculator(model, atoms, calc, x, e_tol, f_tol):
    energies, forces = model.evaluate(x)
    for b in range(len(x)):
        ref = atoms.copy()
        ref.positions = x[b]
        ref.calc = calc
        assert energies[b] == pytest.approx(ref.get_potential_energy(), abs=e_tol)
        np.testing.assert_allclose(forces[b], ref.get_forces(), atol=f_tol)
    return energies, forces


def test_sevennet0_equals_sevenn_calculator(copper):
    model = models.create("sevennet-0", copper, threads=1)
    x = perturbed_positions(copper, 2, 0.05, seed=9)
    _compare_with_calculator(model, copper, SevenNetCalculator("7net-0", device="cpu"), x, 1e-4, 1e-5)
    de, df = batch_vs_single(model, x)
    assert de < 1e-4 and df < 1e-5  # float32 model


def test_sevennet_molecule_without_cell():
    mol = systems.alanine_dipeptide()
    model = models.create("sevennet-0", mol, threads=1)
    x = perturbed_positions(mol, 2, 0.05, seed=10)
    _compare_with_calculator(model, mol, SevenNetCalculator("7net-0", device="cpu"), x, 1e-4, 1e-5)


def test_chgnet_equals_chgnet_calculator(copper):
    model = models.create("chgnet", copper, threads=1)
    x = perturbed_positions(copper, 2, 0.05, seed=11)
    calc = CHGNetCalculator(use_device="cpu")
    _compare_with_calculator(model, copper, calc, x, 1e-4, 1e-5)
    de, df = batch_vs_single(model, x)
    assert de < 1e-4 and df < 1e-5
