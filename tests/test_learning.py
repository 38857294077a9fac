"""Online draft corrections: protocol, exactness rule (no information from the future),
determinism, checkpoint round trips, what they learn, and their cost."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from ase import Atoms

from learning_data import feed, metal_labels, molecule_labels
from lsd_engine.corrections import ConstantCorrection, DraftCorrection
from lsd_engine.learning import (CORRECTIONS, BondedCorrection, FirstOrderCorrection, RecordingCorrection,
                                 load_labels, make_correction, replay_rounds, save_labels)

MOLECULE = molecule_labels()
METAL = metal_labels()
SMALL_NEURAL = dict(spec=None, buffer_size=64, batch_size=4, steps_per_observe=1, min_labels=8)


def _make(name: str, which):
    atoms, labels, _ = which
    if name == "neural":
        from lsd_engine.learning.neural import DescriptorSpec

        spec = DescriptorSpec(species=tuple(sorted(set(atoms.numbers.tolist()))), n_radial=4, n_angles=2,
                              n_angular_radii=2, hidden=(8,))
        return make_correction("neural", atoms, **{**SMALL_NEURAL, "spec": spec})
    return make_correction(name, atoms)


CASES = [("first-order", MOLECULE), ("bonded", MOLECULE), ("radial", METAL), ("radial+first-order", METAL),
         ("first-order", METAL), ("neural", MOLECULE)]
IDS = [f"{name}-{'molecule' if which is MOLECULE else 'metal'}" for name, which in CASES]


def _probe(which, n: int = 3) -> np.ndarray:
    return which[1].positions[-n:] + 0.01


@pytest.mark.parametrize("name, which", CASES, ids=IDS)
def test_protocol_and_exact_at_the_reference(name, which):
    correction = _make(name, which)
    assert isinstance(correction, DraftCorrection)
    labels = which[1]
    x = labels.positions[0]
    np.testing.assert_array_equal(correction.correction(x), np.zeros_like(x))  # nothing observed: no correction
    feed(correction, labels.slice(0, 40))
    ref, residual = labels.positions[39], labels.residuals[39]
    np.testing.assert_allclose(correction.correction(ref), residual, atol=1e-10)  # anchored at x_ref


@pytest.mark.parametrize("name, which", CASES, ids=IDS)
def test_never_uses_information_from_the_future_of_the_round(name, which):
    """The correction after round r depends only on labels up to round r: a run that
    later sees more labels gave, at that point, exactly the same correction; and
    correction() is pure (state unchanged, same value every call)."""
    labels = which[1].slice(0, 60)
    full, truncated = _make(name, which), _make(name, which)
    ends = feed(full, labels)
    probes = _probe(which)
    # replay the same stream, stopping after each round: compare with a fresh object fed only that far
    live = _make(name, which)
    t = 0
    for r, end in enumerate(ends):
        live.observe(labels.positions[t:end], labels.target_forces[t:end], labels.draft_forces[t:end])
        t = end
        if r in (2, len(ends) // 2):
            before = {k: np.array(v, copy=True) for k, v in live.state().items()}
            first = [live.correction(p) for p in probes]
            truncated = _make(name, which)
            feed(truncated, labels.slice(0, end))
            for p, value in zip(probes, first):
                np.testing.assert_array_equal(truncated.correction(p), value)
                np.testing.assert_array_equal(live.correction(p), value)  # repeated calls: same value
            after = live.state()
            assert before.keys() == after.keys()
            for key in before:
                np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    for p in probes:  # and the live object ends where the one-shot feed ended
        np.testing.assert_array_equal(live.correction(p), full.correction(p))


def test_replay_passes_only_labels_from_before_the_round():
    """The offline harness: every correction(x) at state t+k is evaluated by an object that has
    seen labels up to the round start t only."""
    _, labels, params = MOLECULE
    seen = {"last": -1}
    index = {labels.positions[t].tobytes(): t for t in range(len(labels))}

    class Spy(ConstantCorrection):
        def observe(self, positions, target_forces, draft_forces):
            seen["last"] = index[np.asarray(positions[-1]).tobytes()]
            super().observe(positions, target_forces, draft_forces)

        def correction(self, positions):
            t = index[np.asarray(positions).tobytes()]
            assert t > seen["last"], f"correction at state {t} after seeing label {seen['last']}"
            return super().correction(positions)

    replay_rounds(labels, Spy(), params, lookahead=8)


@pytest.mark.parametrize("name, which", CASES, ids=IDS)
def test_same_labels_same_order_same_correction_and_state_round_trip(name, which):
    labels = which[1].slice(0, 50)
    a, b = _make(name, which), _make(name, which)
    feed(a, labels.slice(0, 30))
    feed(b, labels.slice(0, 30))
    probes = _probe(which)
    for p in probes:
        np.testing.assert_array_equal(a.correction(p), b.correction(p))
    # checkpoint: state() through an .npz file, restore into a fresh object, continue identically
    buffer = io.BytesIO()
    np.savez(buffer, **a.state())
    buffer.seek(0)
    with np.load(buffer) as data:
        state = {k: data[k] for k in data.files}
    c = _make(name, which)
    c.restore(state)
    for p in probes:
        np.testing.assert_array_equal(c.correction(p), a.correction(p))
    rest = labels.slice(30, 50)
    feed(a, rest)
    feed(c, rest)
    for p in probes:
        np.testing.assert_array_equal(c.correction(p), a.correction(p))


def test_bonded_learns_a_residual_it_can_represent():
    atoms, labels, params = MOLECULE
    constant = replay_rounds(labels, ConstantCorrection(), params, lookahead=8, burn_in=120, time_calls=False)
    bonded = replay_rounds(labels, BondedCorrection(atoms.numbers, atoms.get_masses(), degree=2,
                                                    cross_separation=0, forgetting=1.0), params, lookahead=8,
                           burn_in=120, time_calls=False)
    assert bonded.acceptance_by_depth[-1] > 0.99 > constant.acceptance_by_depth[-1] + 0.05
    assert bonded.rms_error_by_depth[-1] < 0.05 * constant.rms_error_by_depth[-1]


def test_metal_corrections_beat_constant_ec():
    atoms, labels, params = METAL
    results = {name: replay_rounds(labels, make_correction(name, atoms), params, lookahead=8, burn_in=80,
                                   time_calls=False) for name in ("constant", "first-order", "radial+first-order")}
    e = {name: r.expected_steps_per_round for name, r in results.items()}
    assert e["first-order"] > e["constant"] and e["radial+first-order"] > e["constant"], e


def test_first_order_is_exact_for_a_linear_residual():
    atoms, labels, params = MOLECULE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((66, 66))
    j = 0.5 * (a + a.T)
    residual = ((labels.positions - labels.positions[0]).reshape(len(labels), -1) @ j).reshape(labels.positions.shape)
    correction = FirstOrderCorrection(22, window=80, ridge=1e-9)
    zero = np.zeros_like(residual)
    for t in range(0, 100, 4):  # 100 labels span the 66 dimensions
        correction.observe(labels.positions[t:t + 4], residual[t:t + 4], zero[t:t + 4])
    x = labels.positions[101]
    np.testing.assert_allclose(correction.correction(x), residual[101], atol=1e-4 * np.abs(residual[101]).max())


@pytest.mark.parametrize("name, which, limit_ms", [("first-order", MOLECULE, 2.0), ("bonded", MOLECULE, 2.0),
                                                    ("radial+first-order", METAL, 10.0)])
def test_cost_per_draft_step_and_per_round(name, which, limit_ms):
    """Generous bounds (a shared, noisy machine): the corrections must stay far below a target call."""
    correction = _make(name, which)
    labels = which[1]
    feed(correction, labels.slice(0, 60))
    times = []
    for p in labels.positions[60:90]:
        t0 = time.perf_counter()
        correction.correction(p)
        times.append(time.perf_counter() - t0)
    assert np.median(times) * 1e3 < limit_ms
    times = []
    for t in range(60, 90, 5):
        t0 = time.perf_counter()
        correction.observe(labels.positions[t:t + 5], labels.target_forces[t:t + 5], labels.draft_forces[t:t + 5])
        times.append(time.perf_counter() - t0)
    assert np.median(times) * 1e3 < 20 * limit_ms


def test_make_correction_names_and_online_choice():
    molecule, metal = MOLECULE[0], METAL[0]
    assert make_correction("none", molecule) is None
    assert make_correction("online", molecule).name == "bonded"
    assert make_correction("online", metal).name == "radial+first-order"
    assert set(CORRECTIONS) >= {"constant", "first-order", "bonded", "radial", "neural", "online"}
    with pytest.raises(ValueError, match="molecules"):
        make_correction("bonded", metal)
    with pytest.raises(ValueError, match="unknown draft correction"):
        make_correction("magic", molecule)
    with pytest.raises(ValueError, match="one shape"):
        make_correction("first-order", molecule).observe(np.zeros((2, 22, 3)), np.zeros((2, 22, 3)),
                                                         np.zeros((1, 22, 3)))


def test_recording_correction_saves_an_lsd_runs_labels(tmp_path):
    atoms, labels, _ = MOLECULE
    recorder = RecordingCorrection(make_correction("bonded", atoms))
    feed(recorder, labels.slice(0, 20))
    path = tmp_path / "labels.npz"
    save_labels(path, recorder.labels(atoms))
    back = load_labels(path)
    np.testing.assert_array_equal(back.positions, labels.positions[:20])
    np.testing.assert_array_equal(back.residuals, labels.residuals[:20])
    assert back.meta["source"] == "lsd-run"


class _WildModel(FirstOrderCorrection):
    """A model that predicts a huge, wrong residual change: the gate and the trust region must contain it."""

    def _model(self, positions):
        out = super()._model(positions)
        return None if out is None else out + 1e3 * np.sin(37.0 * positions)


def test_validation_gate_falls_back_to_constant_ec_for_a_bad_model():
    atoms, labels, _ = MOLECULE
    wild = _WildModel(22, window=8)
    feed(wild, labels.slice(0, 60))
    x = labels.positions[61]
    assert not wild.uses_model  # it scored worse than constant EC on every fresh round
    np.testing.assert_array_equal(wild.correction(x), labels.residuals[59])
    good = make_correction("first-order", atoms)  # a model that helps: the gate opens
    residual = 0.3 * (labels.positions - labels.positions[0])
    zero = np.zeros_like(residual)
    for t in range(0, 60, 4):
        good.observe(labels.positions[t:t + 4], residual[t:t + 4], zero[t:t + 4])
    assert good.uses_model


def test_trust_region_bounds_the_change_per_atom():
    atoms, labels, _ = MOLECULE
    wild = _WildModel(22, window=8)
    wild.gate = False
    feed(wild, labels.slice(0, 60))
    change = wild.correction(labels.positions[61] + 0.05) - labels.residuals[59]
    assert np.linalg.norm(change, axis=1).max() <= wild.max_change_eV_per_A * (1 + 1e-12)
    assert np.linalg.norm(change, axis=1).max() > 0.5 * wild.max_change_eV_per_A  # it did clip, not vanish


def test_bonded_on_a_system_without_covalent_pairs_learns_nothing_and_stays_constant_ec():
    """A loose H4 cluster has no bonds: the bonded fit has no terms, observe still works, and the
    correction is constant EC."""
    atoms = Atoms("H4", positions=[[0, 0, 0], [1.5, 0, 0], [0.75, 1.3, 0], [0.75, 0.45, 1.2]])
    correction = make_correction("online", atoms)
    x = atoms.positions[None] + np.zeros((3, 1, 1))
    residual = np.random.default_rng(0).normal(0, 0.1, x.shape)
    correction.observe(x, residual, np.zeros_like(x))
    correction.observe(x, residual, np.zeros_like(x))
    assert correction.n_params == 0 and not correction.uses_model
    np.testing.assert_array_equal(correction.correction(atoms.positions), residual[-1])
