"""Adaptive lookahead inside the sampler: K chosen per round from finished rounds only.

Exactness: the statistical harness of test_exactness.py (2000 LSD runs vs 2000 target-MD
runs, KS per coordinate, Bonferroni to family alpha 1e-3) with K changing every round.
Reproducibility: sync == async bit for bit, split runs and checkpoint resumes continue
the identical trajectory, draft == target is plain MD.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from exactness import FAMILY_ALPHA, POOR_DRAFT, TARGET, compare, md_factory, run_many, start_atoms
from lsd_engine import FunctionModel, LangevinMD, LangevinParams, LocalExecutor, SpeculativeSampler
from lsd_engine.adaptive import AdaptiveLookahead
from lsd_engine.toys import harmonic_bonds

PARAMS = LangevinParams(timestep_fs=2.0, temperature_K=300.0, friction_per_ps=10.0)
SOFT_DRAFT = FunctionModel(partial(harmonic_bonds, k_eV_per_A2=0.5), name="harmonic-soft")


def _policy(k_max: int = 8) -> AdaptiveLookahead:
    return AdaptiveLookahead(1, k_max, {"draft_step_s": 1e-4, "target_batch_s": lambda b: 1e-2 + 1e-3 * b},
                             prior_weight=1.0)


class LastRoundPolicy:
    """K = 1 + 2 x (steps accepted in the last round), within 1..k_max: changes nearly every round."""

    k_min, k_max = 1, 5

    def __init__(self):
        self.k = 3
        self.history: list[tuple[int, int]] = []

    def choose(self) -> int:
        return self.k

    def record_round(self, verified, accepted, **timings) -> None:
        self.history.append((verified, accepted))
        self.k = min(self.k_max, 1 + 2 * accepted)

    def state(self):
        return {"k": np.array(self.k)}

    def restore(self, state):
        self.k = int(state["k"])


def _sampler(policy, mode="sync", error_correction=True, draft=POOR_DRAFT, seed=3, executor=None):
    return SpeculativeSampler(start_atoms(), draft, TARGET, PARAMS, seed=seed, error_correction=error_correction,
                              mode=mode, executor=executor if executor is not None else LocalExecutor(),
                              lookahead_policy=policy)


@pytest.mark.parametrize("error_correction", [True, False])
def test_async_reproduces_sync_with_adaptive_lookahead(error_correction):
    sync = _sampler(_policy(), "sync", error_correction).run(300)
    streamed = _sampler(_policy(), "async", error_correction, executor=LocalExecutor(threads=2)).run(300)
    used = np.flatnonzero(sync.stats.rounds_by_lookahead)
    assert len(used) >= 2, f"the policy never changed K ({sync.stats.rounds_by_lookahead})"
    np.testing.assert_array_equal(sync.positions, streamed.positions)
    np.testing.assert_array_equal(sync.momenta, streamed.momenta)
    np.testing.assert_array_equal(sync.kinds, streamed.kinds)
    np.testing.assert_array_equal(sync.stats.rounds_by_lookahead, streamed.stats.rounds_by_lookahead)
    np.testing.assert_array_equal(sync.stats.verified_by_depth, streamed.stats.verified_by_depth)


def test_adaptive_with_draft_equal_to_target_is_plain_md():
    lsd = SpeculativeSampler(start_atoms(), TARGET, TARGET, PARAMS, seed=5, lookahead_policy=_policy()).run(120)
    md = LangevinMD(start_atoms(), TARGET, PARAMS, seed=5).run(120)
    np.testing.assert_array_equal(lsd.positions, md.positions)
    np.testing.assert_array_equal(lsd.momenta, md.momenta)


def test_policy_sees_each_finished_round_once_with_its_counts():
    policy = LastRoundPolicy()
    result = _sampler(policy).run(200)
    verified, accepted = np.array(policy.history).T
    assert len(policy.history) == result.stats.rounds_by_lookahead.sum()
    # every round's counts, added up by depth, are the run's acceptance statistics
    assert verified.sum() == result.stats.verified_by_depth.sum()
    assert np.all((accepted == verified) | (accepted == verified - 1))
    assert accepted.sum() == result.stats.accepted_steps


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_split_runs_and_checkpoint_resume_continue_the_same_trajectory(mode, tmp_path):
    whole = _sampler(_policy(), mode).run(90)
    first = _sampler(_policy(), mode)
    first.run(37)
    first.save_checkpoint(tmp_path / "c.npz")
    part = first.run(53)
    resumed = _sampler(_policy(), mode, seed=99)
    resumed.load_checkpoint(tmp_path / "c.npz")
    rest = resumed.run(53)
    np.testing.assert_array_equal(whole.positions[-53:], part.positions[1:])
    np.testing.assert_array_equal(whole.positions[-53:], rest.positions[1:])
    np.testing.assert_array_equal(whole.momenta[-1], rest.momenta[-1])
    assert resumed.lookahead == first.lookahead


def test_checkpoint_without_policy_state_is_refused(tmp_path):
    plain = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=4)
    plain.run(10)
    plain.save_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="lookahead-policy"):
        _sampler(_policy()).load_checkpoint(tmp_path / "plain.npz")


def test_bad_policies_are_named():
    class Incomplete:
        k_max = 4

        def choose(self):
            return 2

    with pytest.raises(TypeError, match="record_round"):
        _sampler(Incomplete())

    class OutOfRange(LastRoundPolicy):
        def choose(self):
            return 9

    with pytest.raises(ValueError, match="1..5"):
        _sampler(OutOfRange())


N_RUNS, N_STEPS, MD_SEED0 = 2000, 10, 10**6


def test_adaptive_lookahead_keeps_the_target_distribution():
    """EC on, so K decides where the correction is refreshed: a K that peeked at the round would bias it."""
    probe = _sampler(LastRoundPolicy(), draft=SOFT_DRAFT).run(400).stats
    assert 0.3 < probe.acceptance_rate < 0.8
    assert np.count_nonzero(probe.rounds_by_lookahead) >= 3
    factory = lambda seed: _sampler(LastRoundPolicy(), draft=SOFT_DRAFT, seed=seed)  # noqa: E731
    result = compare(run_many(factory, N_RUNS, N_STEPS, 0), run_many(md_factory(PARAMS), N_RUNS, N_STEPS, MD_SEED0))
    assert not result.rejects(), f"adaptive LSD differs from target MD (min p={result.min_p:.2e}, alpha {FAMILY_ALPHA})"
