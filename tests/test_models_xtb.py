"""gfn2-xtb (tblite) and gfn*-xtb-batched (dxtb) equal their packages' own results."""

import warnings

import numpy as np
import pytest
import torch

from lsd_engine import models, systems
from lsd_engine.errors import LSDError
from lsd_engine.models.checks import batch_vs_single, perturbed_positions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import dxtb
    import tad_mctc.units as au
    from tblite.ase import TBLite


@pytest.mark.parametrize("solvent", ["vacuum", "implicit"])
def test_gfn2_xtb_equals_tblite_ase(solvent):
    atoms = systems.alanine_dipeptide(solvent)
    model = models.create("gfn2-xtb", atoms, threads=1)
    assert model.solvent == ("water" if solvent == "implicit" else None)
    x = perturbed_positions(atoms, 2, 0.05, seed=6)
    energies, forces = model.evaluate(x)
    for b in range(2):
        ref = atoms.copy()
        ref.positions = x[b]
        ref.calc = TBLite(method="GFN2-xTB", verbosity=0,
                          solvation=("alpb", "water") if solvent == "implicit" else None)
        assert energies[b] == pytest.approx(ref.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(forces[b], ref.get_forces(), atol=1e-7)
    de, df = batch_vs_single(model, x)
    assert de == 0.0 and df == 0.0  # fixed initial guess: deterministic


def test_gfn2_xtb_implicit_differs_and_charge_option():
    atoms = systems.alanine_dipeptide()
    x = atoms.positions[None]
    vac = models.create("gfn2-xtb", atoms).evaluate(x)[0][0]
    alpb = models.create("gfn2-xtb", atoms, solvent="water").evaluate(x)[0][0]
    assert alpb < vac - 0.1
    cation = models.create("gfn2-xtb", atoms, charge=1, spin=2)
    assert cation.charge == 1 and cation.evaluate(x)[0][0] > vac + 5  # ionisation costs eV
    with pytest.raises(LSDError, match="spin"):
        models.create("gfn2-xtb", atoms, spin=0)


def _dxtb_reference(method, numbers, positions):
    cls = dxtb.calculators.GFN2Calculator if method == "gfn2" else dxtb.calculators.GFN1Calculator
    calc = cls(torch.tensor(numbers), opts={"verbosity": 0}, dtype=torch.float64)
    pos = torch.tensor(positions * au.AA2AU, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        energy = calc.get_energy(pos).item() * au.AU2EV
        calc.reset()
        forces = calc.get_forces(pos).detach().numpy() * au.AU2EV * au.AA2AU
    return energy, forces


@pytest.mark.parametrize("method", ["gfn1", "gfn2"])
def test_dxtb_batched_equals_dxtb(method):
    atoms = systems.alanine_dipeptide()
    model = models.create(f"{method}-xtb-batched", atoms, threads=1)
    assert model.batched
    x = perturbed_positions(atoms, 3, 0.05, seed=7)
    energies, forces = model.evaluate(x)
    ref_e, ref_f = _dxtb_reference(method, atoms.numbers, x[0])
    assert energies[0] == pytest.approx(ref_e, abs=1e-6)
    np.testing.assert_allclose(forces[0], ref_f, atol=1e-5)
    again = model.evaluate(x)  # dxtb caches by input; repeated positions must not reuse stale graphs
    np.testing.assert_array_equal(again[1], forces)
    de, df = batch_vs_single(model, x)
    # one SCF for the whole batch converges to the batch's tolerance, not bit-identically
    assert de < 1e-6 and df < 1e-4


def test_dxtb_gfn2_agrees_with_tblite_gfn2():
    atoms = systems.alanine_dipeptide()
    x = perturbed_positions(atoms, 1, 0.05, seed=8)
    e_dxtb, f_dxtb = models.create("gfn2-xtb-batched", atoms, threads=1).evaluate(x)
    e_tb, f_tb = models.create("gfn2-xtb", atoms).evaluate(x)
    assert e_dxtb[0] == pytest.approx(e_tb[0], abs=5e-3)  # two implementations of one method
    assert np.max(np.abs(f_dxtb - f_tb)) < 5e-3
