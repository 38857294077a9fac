"""Distillation: train, save, load by name/path, transfer, CLI."""

from __future__ import annotations

import argparse
import json
import pickle

import numpy as np
import pytest

from learning_data import metal_labels, molecule_labels
from lsd_engine import models
from lsd_engine.distill import DistilledModel, add_distill_arguments, distill, distill_command
from lsd_engine.errors import LSDError
from lsd_engine.learning import save_labels
from lsd_engine.systems import alanine_dipeptide, copper_fcc


def _finite_difference_forces(model, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    out = np.zeros_like(x)
    for a in range(x.shape[0]):
        for c in range(3):
            d = np.zeros_like(x)
            d[a, c] = eps
            out[a, c] = -(model.evaluate((x + d)[None])[0][0] - model.evaluate((x - d)[None])[0][0]) / (2 * eps)
    return out


def test_bonded_distill_save_load_by_name_and_pickle(tmp_path):
    atoms, labels, params = molecule_labels(n=200)
    path = tmp_path / "ala.npz"
    report = distill(labels, path, base="none", kind="bonded", atoms=atoms, params=params,
                     options={"degree": 2, "cross_separation": 0}, log=lambda *_: None)
    assert report.training_time_s > 0 and report.n_train == 160 and report.n_validation == 40
    assert report.rms_residual_after < 1e-3 * report.rms_residual_before  # representable residual
    assert report.validation["acceptance_by_depth"][15] > 0.99
    model = models.create(f"distilled:{path}", atoms)
    assert isinstance(model, DistilledModel) and model.name == f"distilled:{path}"
    x = labels.positions[-5:]
    energies, forces = model.evaluate(x)
    np.testing.assert_allclose(forces, labels.target_forces[-5:], atol=1e-3)  # base 'none': all learned
    np.testing.assert_allclose(_finite_difference_forces(model, x[0]), forces[0], atol=1e-5)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.evaluate(x)[1], forces)
    with pytest.raises(LSDError, match="only fits the molecule"):
        models.create(f"distilled:{path}", copper_fcc(2))


def test_radial_distill_transfers_to_a_larger_cell(tmp_path):
    atoms, labels, params = metal_labels(n=120)
    path = tmp_path / "cu.npz"
    report = distill(labels, path, base="none", kind="auto", atoms=atoms, params=params, log=lambda *_: None)
    assert report.kind == "radial"
    assert report.rms_residual_after < 0.3 * report.rms_residual_before
    big = copper_fcc(3)
    model = models.create(f"distilled:{path}", big)
    x = big.get_positions() + np.random.default_rng(0).normal(0, 0.05, (108, 3))
    energy, forces = model.evaluate(x[None])
    assert forces.shape == (1, 108, 3) and np.isfinite(energy).all()
    assert abs(forces[0].sum(axis=0)).max() < 1e-9  # a pair/embedding model conserves momentum


def test_neural_distill_round_trip(tmp_path):
    pytest.importorskip("torch")
    atoms, labels, params = molecule_labels(n=40)
    path = tmp_path / "nn.npz"
    report = distill(labels, path, base="none", kind="neural", atoms=atoms, params=params, epochs=1,
                     log=lambda *_: None)
    assert report.kind == "neural"
    a = models.create(f"distilled:{path}", atoms).evaluate(labels.positions[:2])
    b = models.create(f"distilled:{path}", atoms).evaluate(labels.positions[:2])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_files_and_systems(tmp_path):
    atoms = alanine_dipeptide()
    with pytest.raises(LSDError, match="not found"):
        models.create(f"distilled:{tmp_path / 'missing.npz'}", atoms)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(LSDError, match="not a distilled draft"):
        models.create(f"distilled:{tmp_path / 'other.npz'}", atoms)
    _, labels, _ = metal_labels(n=20)
    with pytest.raises(LSDError, match="does not match"):
        distill(labels, tmp_path / "x.npz", base="none", atoms=atoms, log=lambda *_: None)


def test_distill_command_from_a_label_file(tmp_path, capsys):
    atoms, labels, _ = molecule_labels(n=60)
    save_labels(tmp_path / "labels.npz", labels)
    parser = argparse.ArgumentParser()
    add_distill_arguments(parser)
    args = parser.parse_args(["--labels", str(tmp_path / "labels.npz"), "--draft", "none", "--kind", "bonded",
                              "--output", str(tmp_path / "d.npz"), "--json", str(tmp_path / "r.json")])
    assert distill_command(args) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["kind"] == "bonded" and report["training_time_s"] > 0
    assert "distilled:" in capsys.readouterr().out
