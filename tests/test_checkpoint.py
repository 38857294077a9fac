"""Checkpoint/restart identity, and interrupted runs that leave usable files."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

from exactness import POOR_DRAFT, TARGET, start_atoms
from lsd_engine import CheckpointError, FunctionModel, LangevinMD, LangevinParams, SpeculativeSampler

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)


def _sampler(target=TARGET, seed=9):
    return SpeculativeSampler(start_atoms(), POOR_DRAFT, target, PARAMS, lookahead=4, error_correction=True, seed=seed)


@pytest.mark.parametrize("stop_at", [30, 31, 33])
def test_resumed_sampler_continues_the_identical_trajectory(tmp_path, stop_at):
    reference = _sampler().run(70)  # one uninterrupted run; the checkpoint may fall inside a round
    first = _sampler()
    first.run(stop_at, checkpoint=tmp_path / "state.npz")
    resumed = _sampler(seed=123)  # the seed is restored from the checkpoint
    resumed.load_checkpoint(tmp_path / "state.npz")
    assert resumed.step == stop_at and resumed.seed == 9
    tail = resumed.run(70 - stop_at)
    np.testing.assert_array_equal(tail.positions, reference.positions[stop_at:])
    np.testing.assert_array_equal(tail.momenta, reference.momenta[stop_at:])
    np.testing.assert_array_equal(tail.steps, np.arange(stop_at, 71))


def test_plain_md_checkpoint_round_trip(tmp_path):
    reference = LangevinMD(start_atoms(), TARGET, PARAMS, seed=2).run(25)
    md = LangevinMD(start_atoms(), TARGET, PARAMS, seed=2)
    md.run(10, checkpoint=tmp_path / "md.npz")
    again = LangevinMD(start_atoms(), TARGET, PARAMS, seed=2)
    again.load_checkpoint(tmp_path / "md.npz")
    np.testing.assert_array_equal(again.run(15).positions, reference.positions[10:])


class InterruptAfter:
    """A target that behaves like TARGET but raises ``error`` on its n-th call."""

    def __init__(self, n_calls: int, error: BaseException):
        self.calls, self.n_calls, self.error = 0, n_calls, error

    def __call__(self, positions):
        self.calls += 1
        if self.calls == self.n_calls:
            raise self.error
        return TARGET.evaluate(positions)


def test_ctrl_c_leaves_checkpoint_and_trajectory_that_resume_identically(tmp_path):
    reference = _sampler().run(60)
    traj, ckpt = tmp_path / "run.traj", tmp_path / "state.npz"
    target = FunctionModel(InterruptAfter(12, KeyboardInterrupt()), name="morse")
    sampler = _sampler(target)
    with pytest.raises(KeyboardInterrupt):
        sampler.run(60, trajectory=traj, checkpoint=ckpt, checkpoint_every=10_000)
    stopped_at = sampler.step
    assert 0 < stopped_at < 60
    frames = read(traj, index=":")
    assert len(frames) == stopped_at + 1  # the file ends exactly at the checkpoint
    np.testing.assert_array_equal(frames[-1].positions, reference.positions[stopped_at])
    resumed = _sampler()
    resumed.load_checkpoint(ckpt)
    resumed.run(60 - stopped_at, trajectory=traj, append=True)
    frames = read(traj, index=":")
    assert len(frames) == 61
    np.testing.assert_allclose(np.array([f.positions for f in frames]), reference.positions, rtol=0, atol=0)


def test_bad_checkpoints_are_rejected_with_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        _sampler().load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        _sampler().load_checkpoint(tmp_path / "junk.npz")
    _sampler().run(3, checkpoint=tmp_path / "ok.npz")
    other = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, LangevinParams(2.0, 300.0, 10.0), seed=9)
    with pytest.raises(CheckpointError, match="Langevin parameters"):
        other.load_checkpoint(tmp_path / "ok.npz")
    bigger = start_atoms()
    bigger.cell = [5.0, 5.0, 5.0]
    bigger = bigger.repeat((2, 1, 1))
    with pytest.raises(CheckpointError, match="another system"):
        SpeculativeSampler(bigger, POOR_DRAFT, TARGET, PARAMS).load_checkpoint(tmp_path / "ok.npz")
