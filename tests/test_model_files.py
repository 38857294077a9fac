"""Model and state files from disk are data: crafted or truncated files are refused, nothing is run.

Distilled drafts (header base model and options, format fields, array shapes), label
files, checkpoints, and the registry's ``ase:<dotted path>`` resolution.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from learning_data import molecule_labels
from lsd_engine import CheckpointError, models
from lsd_engine.distill import distill, read_distilled_file
from lsd_engine.errors import LSDError
from lsd_engine.learning import load_labels, save_labels
from lsd_engine.models.ase_models import resolve_calculator_class


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> tuple[Path, object]:
    """A genuine small bonded distilled draft (base 'none') and its molecule."""
    atoms, labels, params = molecule_labels(n=40)
    path = tmp_path_factory.mktemp("distilled") / "ok.npz"
    distill(labels, path, base="none", kind="bonded", atoms=atoms, params=params,
            options={"degree": 2, "cross_separation": 0}, log=lambda *_: None)
    return path, atoms


def _crafted(source: Path, target: Path, header_changes: dict | None = None, arrays: dict | None = None,
             drop: tuple[str, ...] = ()) -> Path:
    """A copy of the distilled file ``source`` with header fields and arrays replaced."""
    with np.load(source, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        content = {k: data[k] for k in data.files if k != "header"}
    header.update(header_changes or {})
    content.update(arrays or {})
    for name in drop:
        content.pop(name, None)
    with open(target, "wb") as handle:
        np.savez(handle, header=np.array(json.dumps(header)), **content)
    return target


def test_a_crafted_base_never_runs_a_command(distilled, tmp_path):
    path, atoms = distilled
    marker = tmp_path / "pwned"
    for base, options in [("ase:os.system", {"command": f"touch {marker}"}),
                          ("ase:subprocess.getoutput", {"cmd": f"touch {marker}"}),
                          ("ase:os:system", {"command": f"touch {marker}"})]:
        bad = _crafted(path, tmp_path / "bad.npz", {"base": base, "base_options": options})
        with pytest.raises(LSDError) as error:
            models.create(f"distilled:{bad}", atoms)
        message = str(error.value)
        assert str(bad) in message and "'base'" in message and base in message, message
        assert not marker.exists(), base
    # the registry refuses a dotted path that is not an ASE calculator class, and calls nothing
    with pytest.raises(LSDError, match="not an ASE calculator class"):
        models.create("ase:os.system", atoms, command=f"touch {marker}")
    assert not marker.exists()


@pytest.mark.parametrize("changes, field", [
    ({"base": "ase:lj"}, "'base'"),  # even a real ASE calculator: ase:<Name> may take command=/file options
    ({"base": "ase:ase.calculators.lj.LennardJones"}, "'base'"),
    ({"base": "uma:/tmp/checkpoint.pt"}, "'base'"),  # a path: torch checkpoints unpickle
    ({"base": "distilled:/tmp/other.npz"}, "'base'"),
    ({"base": "amber14:anything"}, "'base'"),
    ({"base": "no-such-model"}, "'base'"),
    ({"base": ["emt"]}, "'base'"),
    ({"base": "amber14", "base_options": {"pdb": "/etc/passwd"}}, "pdb"),  # path-like options
    ({"base": "amber14", "base_options": {"extra_xml": ["/tmp/x.xml"]}}, "extra_xml"),
    ({"base": "emt", "base_options": {"asap_cutoff": True}}, "asap_cutoff"),  # not on emt's allowlist
    ({"base": "ani-1x", "base_options": {"model_index": 99}}, "model_index"),
    ({"base": "ani-1x", "base_options": {"precision": {"nested": 1}}}, "precision"),
    ({"base": "none", "base_options": {"x": 1}}, "base_options"),
    ({"base_options": ["command"]}, "base_options"),
    ({"version": 2}, "'version'"),
    ({"kind": "pickle"}, "'kind'"),
    ({"numbers": [1, 6, 0]}, "'numbers'"),
    ({"numbers": "HCO"}, "'numbers'"),
    ({"options": {"degree": 2, "__class__": 1}}, "__class__"),
    ({"options": {"degree": "2; import os"}}, "degree"),
    ({"options": {"degree": 10 ** 9}}, "degree"),
])
def test_crafted_headers_are_refused_naming_the_file_and_field(distilled, tmp_path, changes, field):
    path, atoms = distilled
    bad = _crafted(path, tmp_path / "bad.npz", changes)
    with pytest.raises(LSDError) as error:
        models.create(f"distilled:{bad}", atoms)
    message = str(error.value)
    assert str(bad) in message and field in message, message
    assert "\n" not in message


def test_crafted_arrays_are_refused(distilled, tmp_path):
    path, atoms = distilled
    cases = [({"coef": np.zeros((3, 3))}, (), "'coef'"), ({"coef": np.zeros(7)}, (), "'coef'"),
             ({"x0": np.zeros((5, 3))}, (), "'x0'"), ({"coef": np.array(["a", "b"])}, (), "dtype"),
             ({"coef": np.full(3, np.nan)}, (), "non-finite"), ({"extra": np.zeros(2)}, (), "'extra'"),
             ({}, ("coef",), "'coef'")]
    for arrays, drop, field in cases:
        bad = _crafted(path, tmp_path / "bad.npz", arrays=arrays, drop=drop)
        with pytest.raises(LSDError) as error:
            models.create(f"distilled:{bad}", atoms)
        assert str(bad) in str(error.value) and field in str(error.value), (field, str(error.value))


def test_a_safe_base_loads_and_the_untouched_file_still_works(distilled, tmp_path):
    path, atoms = distilled
    assert read_distilled_file(path)[0]["base"] == "none"
    with_emt = _crafted(path, tmp_path / "emt.npz", {"base": "emt", "base_options": {}})
    model = models.create(f"distilled:{with_emt}", atoms)
    plain = models.create(f"distilled:{path}", atoms)
    emt = models.create("emt", atoms)
    x = atoms.get_positions()[None]
    np.testing.assert_allclose(model.evaluate(x)[1], plain.evaluate(x)[1] + emt.evaluate(x)[1], rtol=1e-10)
    # distill() refuses up front a base it could not load again
    _, labels, _ = molecule_labels(n=8)
    with pytest.raises(LSDError, match="'base'"):
        distill(labels, tmp_path / "never.npz", base="ase:lj", kind="bonded", atoms=atoms, log=lambda *_: None)
    assert not (tmp_path / "never.npz").exists()


def _truncated(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def test_truncated_npz_files_give_one_error_naming_the_file(distilled, tmp_path):
    path, atoms = distilled
    bad = _truncated(path, tmp_path / "distilled.npz")
    with pytest.raises(LSDError, match="not a readable distilled draft") as error:
        models.create(f"distilled:{bad}", atoms)
    assert str(bad) in str(error.value)

    _, labels, _ = molecule_labels(n=8)
    save_labels(tmp_path / "labels.npz", labels)
    assert len(load_labels(tmp_path / "labels.npz")) == 8
    bad = _truncated(tmp_path / "labels.npz", tmp_path / "cut-labels.npz")
    with pytest.raises(LSDError, match="not a readable label file") as error:
        load_labels(bad)
    assert str(bad) in str(error.value)

    from lsd_engine.checkpoint import load_checkpoint

    sampler = _toy_sampler()
    sampler.run(2, checkpoint=tmp_path / "ok.npz")
    assert load_checkpoint(tmp_path / "ok.npz").step == 2
    bad = _truncated(tmp_path / "ok.npz", tmp_path / "cut.npz")
    with pytest.raises(CheckpointError, match="not a readable LSD checkpoint") as error:
        sampler.load_checkpoint(bad)
    assert str(bad) in str(error.value)


def test_malformed_label_and_checkpoint_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "labels.npz", positions=np.zeros((4, 3, 3)), target_forces=np.zeros((4, 2, 3)))
    with pytest.raises(LSDError, match="'target_forces'"):
        load_labels(tmp_path / "labels.npz")
    np.savez(tmp_path / "labels.npz", positions=np.zeros((4, 3)), target_forces=np.zeros((4, 3)))
    with pytest.raises(LSDError, match="'positions'"):
        load_labels(tmp_path / "labels.npz")
    sampler = _toy_sampler()
    sampler.run(2, checkpoint=tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as data:
        arrays = {k: data[k] for k in data.files}
    from lsd_engine.checkpoint import load_checkpoint

    meta = json.loads(str(arrays["meta"]))
    crafted_params = np.array(json.dumps({**meta, "params": {"timestep_fs": 1.0, "command": "id"}}))
    for name, value in [("positions", np.zeros((7, 3))), ("momenta", np.array(["x"])), ("meta", np.array("[1]")),
                        ("meta", crafted_params)]:
        np.savez(tmp_path / "bad.npz", **{**arrays, name: value})
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(tmp_path / "bad.npz")
        message = str(error.value)
        assert str(tmp_path / "bad.npz") in message and (name in message or "header" in message or "params" in message)


def _toy_sampler():
    from exactness import POOR_DRAFT, TARGET, start_atoms
    from lsd_engine import LangevinParams, SpeculativeSampler

    return SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, LangevinParams(1.0, 300.0, 10.0), lookahead=2, seed=1)


@pytest.mark.parametrize("spec", ["os.system", "os:system", "subprocess.Popen", "builtins.eval", "ase.io.read",
                                  "os", "a.b;c", "os.path..join"])
def test_ase_registry_resolves_only_calculator_classes(spec):
    with pytest.raises(LSDError) as error:
        resolve_calculator_class(spec)
    assert spec in str(error.value)


def test_ase_registry_still_takes_typed_calculators():
    from ase.calculators.lj import LennardJones

    assert resolve_calculator_class("lj") is LennardJones
    assert resolve_calculator_class("ase.calculators.lj.LennardJones") is LennardJones
    assert resolve_calculator_class("ase.calculators.lj:LennardJones") is LennardJones
