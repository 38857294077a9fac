"""uma: fairchem's real loader, predict unit and AtomicData batching, on a random-weight
UMA-like checkpoint built offline here (docs/models.md, UMA). Compared with FAIRChemCalculator."""

import warnings

import numpy as np
import pytest

from lsd_engine import models, systems
from lsd_engine.errors import LSDError
from lsd_engine.models.checks import batch_vs_single, perturbed_positions
from lsd_engine.models.uma import write_random_checkpoint

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fairchem.core.calculate import pretrained_mlip
    from fairchem.core.calculate.ase_calculator import FAIRChemCalculator
    from fairchem.core.units.mlip_unit.api.inference import InferenceSettings


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_random_checkpoint(str(tmp_path_factory.mktemp("uma") / "uma_random.pt"))


@pytest.fixture(scope="module")
def reference_unit(checkpoint):
    settings = InferenceSettings(compile=False, merge_mole=False, activation_checkpointing=False, tf32=False)
    return pretrained_mlip.get_predict_unit(checkpoint, inference_settings=settings, device="cpu")


@pytest.mark.parametrize("system, task", [("alanine", "omol"), ("copper", "omat")])
def test_uma_equals_fairchem_calculator(checkpoint, reference_unit, system, task):
    atoms = systems.alanine_dipeptide() if system == "alanine" else systems.copper_fcc(2)
    model = models.create(f"uma:{checkpoint}", atoms, threads=1)
    assert model.task == task and model.batched
    x = perturbed_positions(atoms, 3, 0.05, seed=12)
    energies, forces = model.evaluate(x)
    calc = FAIRChemCalculator(reference_unit, task_name=task)
    for b in range(3):
        ref = atoms.copy()
        ref.positions = x[b]
        ref.info = {"charge": 0, "spin": 1}
        ref.calc = calc
        assert energies[b] == pytest.approx(ref.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(forces[b], ref.get_forces(), atol=1e-5)
    de, df = batch_vs_single(model, x)
    assert de < 1e-4 and df < 1e-5  # float32
    assert np.abs(forces).max() > 0


def test_uma_charge_spin_and_task_options(checkpoint):
    atoms = systems.alanine_dipeptide()
    neutral = models.create(f"uma:{checkpoint}", atoms)
    cation = models.create(f"uma:{checkpoint}", atoms, charge=1, spin=2)
    x = atoms.positions[None]
    assert cation.charge == 1 and cation.spin == 2
    assert neutral.evaluate(x)[0][0] != cation.evaluate(x)[0][0]  # charge/spin embedding is used
    assert models.create(f"uma:{checkpoint}", atoms, task="omat").task == "omat"
    with pytest.raises(LSDError, match="task 'oc20' is not in this checkpoint"):
        models.create(f"uma:{checkpoint}", atoms, task="oc20")


def test_uma_missing_weights_explain_how_to_provide_them(tmp_path):
    atoms = systems.alanine_dipeptide()
    with pytest.raises(LSDError, match=r"(?s)no checkpoint file.*huggingface.co/facebook/UMA.*uma:/absolute/path"):
        models.create(f"uma:{tmp_path}/missing.pt", atoms)
    with pytest.raises(LSDError, match="neither a checkpoint file nor a fairchem model name"):
        models.create("uma:not-a-model", atoms)
    from huggingface_hub import get_token

    if get_token() is None:  # CI: no token, nothing cached -> a clear error, no network
        with pytest.raises(LSDError, match=r"(?s)uma-s-1p1.*no Hugging Face token.*HF_TOKEN"):
            models.create("uma:uma-s-1p1", atoms)
