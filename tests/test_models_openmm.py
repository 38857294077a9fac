"""amber14 (OpenMM) equals OpenMM's own result converted to eV and eV/Å."""

import pickle

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
from scipy import constants

from lsd_engine import models, systems
from lsd_engine.errors import LSDError
from lsd_engine.models.checks import batch_vs_single, perturbed_positions

# kJ/mol -> eV from CODATA (scipy), independent of the ASE constants the adapter uses
KJMOL_TO_EV = 1000.0 / (constants.Avogadro * constants.electron_volt)


def openmm_reference(atoms, xml, platform, positions, **create):
    pdb = app.PDBFile(atoms.info["lsd_system"]["topology_file"])
    system = app.ForceField(*xml).createSystem(pdb.topology, constraints=None, rigidWater=False, **create)
    properties = {"DeterministicForces": "true", "Threads": "1"} if platform == "CPU" else {}  # as the adapter
    context = openmm.Context(system, openmm.VerletIntegrator(1.0), openmm.Platform.getPlatformByName(platform),
                             properties)
    if atoms.pbc.any():
        context.setPeriodicBoxVectors(*[openmm.Vec3(*row) * 0.1 for row in atoms.cell.array])
    out = []
    for x in positions:
        context.setPositions(x * unit.angstrom)
        state = context.getState(getEnergy=True, getForces=True)
        e = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) * KJMOL_TO_EV
        f = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.angstrom) * KJMOL_TO_EV
        out.append((e, f))
    return np.array([o[0] for o in out]), np.stack([o[1] for o in out])


@pytest.mark.parametrize("solvent, xml, platform, create", [
    ("vacuum", ("amber14-all.xml",), "Reference", {"nonbondedMethod": app.NoCutoff}),
    ("implicit", ("amber14-all.xml", "implicit/gbn2.xml"), "CPU", {"nonbondedMethod": app.NoCutoff}),
])
def test_amber14_equals_openmm(solvent, xml, platform, create):
    atoms = systems.alanine_dipeptide(solvent)
    model = models.create("amber14", atoms)
    x = perturbed_positions(atoms, 3, 0.05, seed=2)
    energies, forces = model.evaluate(x)
    ref_e, ref_f = openmm_reference(atoms, xml, platform, x, **create)
    np.testing.assert_allclose(energies, ref_e, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(forces, ref_f, rtol=1e-6, atol=1e-6)
    de, df = batch_vs_single(model, x)
    assert de < 1e-9 and df < 1e-5  # CPU platform: fixed-point sums, float32 pair terms


def test_cpu_platform_evaluations_are_bit_reproducible():
    # LSD's same seed -> same trajectory needs a draft that returns the same forces for the same positions.
    atoms = systems.alanine_dipeptide("implicit")
    energies, forces = models.create("amber14", atoms).evaluate(atoms.get_positions()[None].repeat(12, 0))
    assert np.ptp(energies) == 0.0 and np.ptp(forces, axis=0).max() == 0.0


def test_implicit_solvent_comes_from_the_system():
    vac = models.create("amber14", systems.alanine_dipeptide("vacuum"))
    gb = models.create("amber14", systems.alanine_dipeptide("implicit"))
    x = systems.alanine_dipeptide().positions[None]
    assert abs(vac.evaluate(x)[0][0] - gb.evaluate(x)[0][0]) > 0.1  # GB solvation energy, eV
    assert any("GB" in type(f).__name__ for f in gb.system.getForces())


def test_amber14_explicit_pme():
    atoms = systems.alanine_dipeptide("explicit")
    model = models.create("amber14", atoms)
    assert model.periodic and model.n_atoms == 2269
    x = perturbed_positions(atoms, 1, 0.01, seed=3)
    energies, forces = model.evaluate(x)
    ref_e, ref_f = openmm_reference(atoms, ("amber14-all.xml", "amber14/tip3p.xml"), "CPU", x,
                                    nonbondedMethod=app.PME, nonbondedCutoff=0.9 * unit.nanometer)
    np.testing.assert_allclose(energies, ref_e, rtol=1e-6)
    np.testing.assert_allclose(forces, ref_f, rtol=1e-5, atol=1e-4)


def test_amber14_errors():
    from ase import Atoms

    bare = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with pytest.raises(LSDError, match="needs a topology"):
        models.create("amber14", bare)
    ala = systems.alanine_dipeptide()
    with pytest.raises(LSDError, match="periodic"):
        models.create("amber14", ala, solvent="explicit")
    shuffled = ala[[1, 0] + list(range(2, 22))]
    with pytest.raises(LSDError, match="disagree on the element"):
        models.create("amber14", shuffled)


def test_amber14_pickles():
    atoms = systems.alanine_dipeptide()
    model = models.create("amber14", atoms)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(model.evaluate(atoms.positions[None])[1], clone.evaluate(atoms.positions[None])[1])


def test_amber14_bulk_water_picks_a_cutoff_below_half_the_box():
    water = systems.water_box()
    model = models.create("amber14", water)
    cutoffs = {f.getCutoffDistance().value_in_unit(unit.nanometer)
               for f in model.system.getForces() if isinstance(f, openmm.NonbondedForce)}
    assert cutoffs == {0.6}
    e, f = model.evaluate(water.positions[None])
    assert np.isfinite(e).all() and np.abs(f).max() < 50  # an equilibrated box: moderate forces
    with pytest.raises(LSDError, match="below half the box"):
        models.create("amber14", water, nonbonded_cutoff_nm=0.9)
