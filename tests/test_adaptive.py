"""Adaptive lookahead: choices on synthetic acceptance profiles, bounds, determinism, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from lsd_engine import theory
from lsd_engine.adaptive import AdaptiveLookahead, monotone_profile

# docs/theory.md §11 costs, one thread: ANI-1x ensemble 11.7 ms single, 35.9 ms for 16 states; amber 0.023 ms
COSTS = {"draft_step_s": 2.3e-5, "target_batch_s": {1: 0.0117, 16: 0.0359}}
PROFILES = {
    "declining": np.array([.92, .9, .88, .87, .85, .84, .83, .82, .81, .8, .8, .8, .8, .8, .8, .8]),
    "excellent": np.full(16, 0.98),
    "poor": np.array([.7, .5, .3, .2] + [.1] * 12),
    "hopeless": np.full(16, 0.3),
}


def _simulate(policy: AdaptiveLookahead, profile: np.ndarray, rounds: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    chosen = []
    for _ in range(rounds):
        k = policy.choose()
        chosen.append(k)
        accepted = 0
        while accepted < k and rng.random() < profile[accepted]:
            accepted += 1
        policy.record_round(min(accepted + 1, k), accepted)
    return chosen


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_choice_converges_to_the_theoretical_optimum(name):
    profile = PROFILES[name]
    best = theory.optimal_lookahead(profile, COSTS["draft_step_s"], COSTS["target_batch_s"], max_lookahead=16)
    chosen = _simulate(AdaptiveLookahead(1, 16, COSTS), profile, 500, seed=1)
    k = int(np.bincount(chosen[250:]).argmax())
    # the speedup of the chosen K is within 3% of the best (flat optimum: neighbouring K are as good)
    s = theory.synchronous_speedup(profile, k, COSTS["draft_step_s"], COSTS["target_batch_s"])
    assert s >= 0.97 * best.speedup, (k, best)


def test_bounds_are_respected_and_the_first_round_explores():
    policy = AdaptiveLookahead(3, 6, COSTS)
    assert policy.choose() == 6  # first round: k_max, to see every depth
    chosen = _simulate(policy, PROFILES["hopeless"], 50, seed=0) + _simulate(policy, PROFILES["excellent"], 50, 0)
    assert min(chosen) >= 3 and max(chosen) <= 6
    assert AdaptiveLookahead(1, 8, COSTS, initial=2).choose() == 2


def test_deterministic_given_the_same_history_and_checkpoint_round_trip():
    a, b = AdaptiveLookahead(1, 16, COSTS), AdaptiveLookahead(1, 16, COSTS)
    assert _simulate(a, PROFILES["declining"], 100, 3) == _simulate(b, PROFILES["declining"], 100, 3)
    c = AdaptiveLookahead(1, 16, COSTS)
    c.restore({k: np.array(v) for k, v in a.state().items()})
    np.testing.assert_array_equal(c.acceptance_by_depth(), a.acceptance_by_depth())
    assert _simulate(c, PROFILES["poor"], 60, 4) == _simulate(a, PROFILES["poor"], 60, 4)


def test_fixed_costs_ignore_timings_and_measured_costs_follow_them():
    fixed = AdaptiveLookahead(1, 8, COSTS)
    measured = AdaptiveLookahead(1, 8, COSTS, cost_mode="measured", cost_smoothing=0.5)
    for policy in (fixed, measured):
        for _ in range(20):
            k = policy.choose()
            policy.record_round(k, k, draft_seconds=k * 1e-3, drafted_steps=k, target_seconds=1.0, batch_size=k + 1)
    assert fixed.draft_step_s == COSTS["draft_step_s"] and fixed.target_cost(1) == pytest.approx(0.0117)
    assert measured.draft_step_s == pytest.approx(1e-3, rel=1e-3)
    assert measured.target_cost(measured.last_choice + 1) > 0.5


def test_estimate_is_monotone_and_unseen_depths_inherit_the_deepest():
    policy = AdaptiveLookahead(1, 10, COSTS, initial=4)
    for outcome in [(4, 4), (3, 2), (4, 4), (1, 0), (4, 3)]:
        policy.choose()
        policy.record_round(*outcome)
    a = policy.acceptance_by_depth()
    assert np.all(np.diff(a) <= 1e-12)
    assert np.all(a[4:] == a[3])
    np.testing.assert_allclose(monotone_profile(np.array([0.9, 0.95, 0.5, 0.6]), np.ones(4)),
                               [0.925, 0.925, 0.55, 0.55])


def test_bad_arguments():
    with pytest.raises(ValueError, match="k_min"):
        AdaptiveLookahead(0, 4, COSTS)
    with pytest.raises(ValueError, match="k_max"):
        AdaptiveLookahead(5, 4, COSTS)
    with pytest.raises(ValueError, match="costs"):
        AdaptiveLookahead(1, 4)
    with pytest.raises(ValueError, match="cost_mode"):
        AdaptiveLookahead(1, 4, COSTS, cost_mode="sometimes")
    with pytest.raises(ValueError, match="accepted"):
        AdaptiveLookahead(1, 4, COSTS).record_round(2, 3)


def test_from_models_measures_costs_once():
    from exactness import POOR_DRAFT, TARGET, start_atoms

    policy = AdaptiveLookahead.from_models(POOR_DRAFT, TARGET, start_atoms().positions, 1, 6, extra_draft_s=1e-3,
                                           repeats=1)
    assert policy.draft_step_s >= 1e-3 and policy.target_s.shape == (7,) and np.all(policy.target_s > 0)
    assert 1 <= policy.choose() <= 6
