"""The model registry: metadata, errors at creation, ASE calculators, pickling."""

import pickle
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from lsd_engine import models, systems
from lsd_engine.errors import LSDError
from lsd_engine.models.checks import batch_vs_single, perturbed_positions

REQUIRED = {"amber14", "emt", "ase", "ani-1x", "gfn2-xtb", "gfn1-xtb-batched", "gfn2-xtb-batched",
            "sevennet-0", "chgnet", "uma"}


def test_available_lists_every_model_with_metadata():
    specs = {s.name: s for s in models.available()}
    assert REQUIRED <= set(specs)
    for spec in specs.values():
        assert spec.role in ("draft", "target", "draft or target")
        assert spec.cost in ("cheap", "moderate", "expensive", "depends")
        assert spec.periodic or spec.nonperiodic
        assert spec.install and spec.package and spec.description
        d = spec.to_dict()
        assert "factory" not in d and d["name"] == spec.name
    assert specs["ani-1x"].elements == ("H", "C", "N", "O") and specs["ani-1x"].batched
    assert "Cu" in specs["emt"].elements and specs["emt"].role == "draft"
    assert not specs["chgnet"].nonperiodic and not specs["gfn1-xtb-batched"].periodic
    assert not specs["gfn2-xtb"].batched and specs["sevennet-0"].batched
    table = models.format_table()
    assert all(name in table for name in REQUIRED)


def test_unknown_name_lists_available():
    with pytest.raises(LSDError, match="unknown model 'nope'.*amber14.*ani-1x"):
        models.create("nope", systems.copper_fcc(2))


def test_unsupported_elements_and_periodicity_fail_at_creation():
    cu = systems.copper_fcc(2)
    with pytest.raises(models.UnsupportedSystemError, match="does not support element.*Cu.*H, C, N, O"):
        models.create("ani-1x", cu)
    ala = systems.alanine_dipeptide()
    with pytest.raises(models.UnsupportedSystemError, match="periodic"):
        models.create("chgnet", ala)
    with pytest.raises(models.UnsupportedSystemError, match="does not support periodic"):
        models.create("gfn1-xtb-batched", cu)
    with pytest.raises(models.UnsupportedSystemError, match="element.*Zn"):
        models.create("emt", Atoms("Zn2", positions=[[0, 0, 0], [2.5, 0, 0]]))


def test_missing_backend_names_the_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tblite", None)  # makes `import tblite` raise ImportError
    monkeypatch.setitem(sys.modules, "tblite.interface", None)
    with pytest.raises(models.MissingBackendError, match="pip install tblite"):
        models.create("gfn2-xtb", systems.alanine_dipeptide())


def test_emt_equals_ase_and_batches():
    cu = systems.copper_fcc(2)
    model = models.create("emt", cu)
    x = perturbed_positions(cu, 4, 0.1, seed=1)
    energies, forces = model.evaluate(x)
    for b in range(4):
        ref = cu.copy()
        ref.positions = x[b]
        ref.calc = EMT()
        assert energies[b] == pytest.approx(ref.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(forces[b], ref.get_forces(), atol=1e-12)
    assert energies.dtype == np.float64 and forces.shape == (4, 32, 3)
    assert max(batch_vs_single(model, x)) == 0.0


def test_ase_prefix_and_from_ase_calculator():
    atoms = Atoms("Ar3", positions=[[0, 0, 0], [3.8, 0, 0], [0, 3.7, 0.2]])
    by_name = models.create("ase:lj", atoms, sigma=3.4, epsilon=0.0104, rc=10.0)
    by_path = models.create("ase:ase.calculators.lj.LennardJones", atoms, sigma=3.4, epsilon=0.0104, rc=10.0)
    wrapped = models.from_ase_calculator(LennardJones(sigma=3.4, epsilon=0.0104, rc=10.0), atoms)
    ref = atoms.copy()
    ref.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=10.0)
    for model in (by_name, by_path, wrapped):
        e, f = model.evaluate(atoms.positions[None])
        assert e[0] == pytest.approx(ref.get_potential_energy(), abs=1e-14)
        np.testing.assert_allclose(f[0], ref.get_forces(), atol=1e-14)
    assert models.create("ase:EMT", systems.copper_fcc(2)).name == "ase:EMT"
    with pytest.raises(LSDError, match="unknown ASE calculator"):
        models.create("ase:NoSuchCalculator", atoms)
    with pytest.raises(LSDError, match="needs a calculator"):
        models.create("ase", atoms)


def test_models_pickle_by_recipe():
    cu = systems.copper_fcc(2)
    model = models.create("emt", cu)
    clone = pickle.loads(pickle.dumps(model))
    x = perturbed_positions(cu, 2, 0.05)
    np.testing.assert_array_equal(model.evaluate(x)[1], clone.evaluate(x)[1])
    assert clone.name == "emt" and clone.n_atoms == 32


def test_wrong_shape_is_rejected():
    model = models.create("emt", systems.copper_fcc(2))
    with pytest.raises(ValueError, match="bound to 32 atoms"):
        model.evaluate(np.zeros((1, 4, 3)))


def test_threads_option_is_local_to_evaluate():
    import torch

    before = torch.get_num_threads()
    model = models.create("ani-1x", systems.alanine_dipeptide(), threads=1)
    seen = []
    original = model._evaluate
    model._evaluate = lambda x: (seen.append(torch.get_num_threads()), original(x))[1]
    model.evaluate(systems.alanine_dipeptide().positions[None])
    assert seen == [1] and torch.get_num_threads() == before
