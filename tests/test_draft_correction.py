"""The draft-correction hook: learning only from the past, frozen within a round, checkpointed."""

from __future__ import annotations

import numpy as np
import pytest

from exactness import POOR_DRAFT, TARGET, start_atoms
from lsd_engine import FunctionModel, LangevinParams, SpeculativeSampler
from lsd_engine.corrections import ConstantCorrection
from lsd_engine.executors import LocalExecutor

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)


class Spy(ConstantCorrection):
    """Constant EC that logs every call: ('C', x) drafting, ('O', labels) learning."""

    name = "spy"

    def __init__(self, log):
        super().__init__()
        self.log = log

    def correction(self, positions):
        self.log.append(("C", positions.copy()))
        return super().correction(positions)

    def observe(self, positions, target_forces, draft_forces):
        self.log.append(("O", positions.copy()))
        super().observe(positions, target_forces, draft_forces)


class LoggedTarget:
    def __init__(self, log):
        self.log = log

    def __call__(self, positions):
        self.log.append(("T", positions.copy()))
        return TARGET.evaluate(positions)


def _events(mode):
    log = []
    target = FunctionModel(LoggedTarget(log), name="morse")
    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, target, PARAMS, lookahead=4, seed=2, mode=mode,
                                 draft_correction=Spy(log), executor=LocalExecutor())
    for n in (13, 1, 40):  # split runs: rounds continue across calls
        sampler.run(n)
    return log


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_learning_only_sees_positions_the_target_already_evaluated(mode):
    evaluated: list[np.ndarray] = []
    observed = 0
    for kind, data in _events(mode):
        if kind == "T":
            evaluated.extend(data)
        elif kind == "O":
            for label in data:
                assert any(np.array_equal(label, x) for x in evaluated), "a label from the future"
                observed += 1
    assert observed > 20


def test_correction_is_frozen_between_drafting_and_verification():
    # Synchronous rounds: the drafts of a round (C...) reach the target (T) before any learning (O).
    log = _events("sync")
    pending_drafts = False
    for kind, _ in log:
        if kind == "C":
            pending_drafts = True
        elif kind == "T":
            pending_drafts = False
        elif kind == "O":
            assert not pending_drafts, "the correction changed while drafted steps awaited verification"


def test_checkpoint_mid_round_keeps_the_round_labels(tmp_path):
    def make():
        return SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=6, seed=4,
                                  draft_correction=ConstantCorrection())

    reference = make().run(50)
    stop = next(n for n in range(5, 40) if _mid_round(make, n))  # a checkpoint inside a round
    first = make()
    first.run(stop, checkpoint=tmp_path / "c.npz")
    resumed = make()
    resumed.load_checkpoint(tmp_path / "c.npz")
    assert len(resumed.round.labels) == len(first.round.labels) > 0
    np.testing.assert_array_equal(resumed.run(50 - stop).positions, reference.positions[stop:])


def _mid_round(make, n_steps):
    sampler = make()
    sampler.run(n_steps)
    return bool(sampler.round.labels)


def test_bad_draft_correction_arguments():
    with pytest.raises(TypeError, match="DraftCorrection"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, draft_correction=object())
    with pytest.raises(ValueError, match="error_correction"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, error_correction=False,
                           draft_correction=ConstantCorrection())
