"""gfn-ff equals the gfnff package's own ASE calculator; forces are -dE/dx; options and bad input."""

import numpy as np
import pytest
from ase.build import molecule
from gfnff import GFNFF

from lsd_engine import models, systems
from lsd_engine.errors import LSDError
from lsd_engine.models.checks import batch_vs_single, perturbed_positions


def _package_results(atoms, positions, **calc_options):
    """Energies and forces of gfnff's ASE calculator, its topology set up at ``atoms.positions``
    (as the adapter's is), then moved to each of ``positions``."""
    ref = atoms.copy()
    ref.calc = GFNFF(**calc_options)
    ref.get_potential_energy()
    out = []
    for x in positions:
        ref.positions = x
        out.append((ref.get_potential_energy(), ref.get_forces()))
    return out


@pytest.mark.parametrize("solvent", ["vacuum", "implicit"])
def test_gfnff_equals_package_ase_calculator(solvent):
    atoms = systems.alanine_dipeptide(solvent)
    model = models.create("gfn-ff", atoms)
    assert model.solvent == ("water" if solvent == "implicit" else "")
    x = perturbed_positions(atoms, 3, 0.05, seed=2)
    energies, forces = model.evaluate(x)
    reference = _package_results(atoms, x, solvent=model.solvent)
    for b, (ref_e, ref_f) in enumerate(reference):
        assert energies[b] == pytest.approx(ref_e, abs=1e-9)
        np.testing.assert_allclose(forces[b], ref_f, atol=1e-9)
    de, df = batch_vs_single(model, x)
    assert de == 0.0 and df == 0.0  # one OpenMP thread (the default): bit-for-bit reproducible
    again = models.create("gfn-ff", atoms, threads=None).evaluate(x)
    np.testing.assert_allclose(again[1], forces, atol=1e-10)


def test_gfnff_periodic_cell_equals_package():
    atoms = molecule("CH3CH2OH")
    atoms.cell = [6.0, 6.5, 7.0]  # close enough that images interact
    atoms.pbc = True
    model = models.create("gfn-ff", atoms)
    assert model.periodic
    x = perturbed_positions(atoms, 1, 0.02, seed=3)
    energies, forces = model.evaluate(x)
    (ref_e, ref_f), = _package_results(atoms, x)
    isolated = atoms.copy()
    isolated.pbc = False
    assert energies[0] != pytest.approx(models.create("gfn-ff", isolated).evaluate(x)[0][0], abs=1e-4)
    assert energies[0] == pytest.approx(ref_e, abs=1e-8)
    np.testing.assert_allclose(forces[0], ref_f, atol=1e-8)


def test_gfnff_forces_are_minus_energy_gradient():
    atoms = systems.alanine_dipeptide()
    model = models.create("gfn-ff", atoms)
    x = perturbed_positions(atoms, 1, 0.05, seed=4)[0]
    _, forces = model.evaluate(x)
    h = 1e-5
    rng = np.random.default_rng(0)
    for atom, axis in zip(rng.integers(0, len(atoms), 8), rng.integers(0, 3, 8)):
        plus, minus = x.copy(), x.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        numeric = -(model.evaluate(plus)[0][0] - model.evaluate(minus)[0][0]) / (2 * h)
        assert numeric == pytest.approx(forces[0, atom, axis], abs=1e-5, rel=1e-5)


def test_gfnff_any_molecule_charge_and_bad_input():
    ethanol = molecule("CH3CH2OH")
    model = models.create("gfn-ff", ethanol)
    energy = model.evaluate(ethanol.positions)[0][0]
    assert models.create("gfn-ff", ethanol, solvent="h2o").evaluate(ethanol.positions)[0][0] < energy
    assert models.create("gfn-ff", ethanol, charge=1).evaluate(ethanol.positions)[0][0] != pytest.approx(energy)
    with pytest.raises(LSDError, match="unknown implicit solvent 'seawater'"):
        models.create("gfn-ff", ethanol, solvent="seawater")
    slab = ethanol.copy()
    slab.cell = [10, 10, 10]
    slab.pbc = (True, True, False)
    with pytest.raises(LSDError, match="some directions only"):
        models.create("gfn-ff", slab)
