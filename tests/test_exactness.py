"""Statistical exactness: LSD final-state distribution == plain target MD.

From one fixed start state, 2000 independent LSD runs of 10 steps (lookahead 3,
which does not divide 10) vs 2000 independent plain target-MD runs, compared
on every coordinate, every momentum, pair distances and |p|^2 with two-sample
KS tests, Bonferroni-corrected to a family-wise alpha of 1e-3 (FAMILY_ALPHA).
The drafts are poor enough that about half of the drafted steps are rejected,
so the repair path carries as much weight as the accept path. Seeds are fixed,
so the outcome is deterministic. The planted-bug tests prove the test has power:
each classic mistake is caught with p-values far below the threshold.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from exactness import (FAMILY_ALPHA, POOR_DRAFT, compare, lsd_factory, md_factory, run_many)
from lsd_engine import FunctionModel, LangevinParams, SpeculativeSampler
from lsd_engine.coupling import reflect
from lsd_engine.kernel import momentum_mean
from lsd_engine.toys import harmonic_bonds

N_RUNS = 2000
N_STEPS = 10
LOOKAHEAD = 3
MD_SEED0 = 10**6  # disjoint from the LSD seeds 0..N_RUNS-1, so the samples are independent

NO_EC = dict(draft=POOR_DRAFT, error_correction=False, params=LangevinParams(1.0, 300.0, 10.0))
WITH_EC = dict(draft=FunctionModel(partial(harmonic_bonds, k_eV_per_A2=0.5), name="harmonic-soft"),
               error_correction=True, params=LangevinParams(2.0, 300.0, 10.0))
CONFIGS = {"no-ec": NO_EC, "ec": WITH_EC}


@pytest.fixture(scope="module")
def target_md_samples():
    return {name: run_many(md_factory(cfg["params"]), N_RUNS, N_STEPS, MD_SEED0) for name, cfg in CONFIGS.items()}


def _acceptance(sampler_class, cfg) -> float:
    return lsd_factory(sampler_class, lookahead=LOOKAHEAD, **cfg)(0).run(400).stats.acceptance_rate


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_lsd_final_state_distribution_matches_target_md(config, target_md_samples):
    cfg = CONFIGS[config]
    assert 0.3 < _acceptance(SpeculativeSampler, cfg) < 0.7, "the test needs about half the steps rejected"
    lsd = run_many(lsd_factory(lookahead=LOOKAHEAD, **cfg), N_RUNS, N_STEPS, 0)
    result = compare(lsd, target_md_samples[config])
    worst = int(np.argmin(result.p_values))
    assert not result.rejects(), (f"LSD differs from target MD in {result.names[worst]} "
                                  f"(p={result.min_p:.2e}, threshold {FAMILY_ALPHA / len(result.p_values):.1e})")


# -- planted bugs: each must be detected by the same comparison -------------------------------
class DraftMeanAfterRejection(SpeculativeSampler):
    """Bug: the repaired step reflects around the draft mean instead of the target mean."""

    def _repair(self, momenta, target_force, noise, delta):
        mean_target = momentum_mean(momenta, target_force, self.constants)
        mean_draft = mean_target - self.constants.noise_scale * delta
        return mean_draft + self.constants.noise_scale * reflect(noise, delta)


class FreshNoiseOnRejection(SpeculativeSampler):
    """Bug: a rejected step draws fresh target noise instead of reflecting the draft noise."""

    def _repair(self, momenta, target_force, noise, delta):
        fresh = np.random.default_rng(abs(hash(noise.tobytes())) % 2**32).standard_normal(noise.shape)
        return momentum_mean(momenta, target_force, self.constants) + self.constants.noise_scale * fresh


class CorrectionMissingFromAcceptance(SpeculativeSampler):
    """Bug: EC shifts the proposal, but the acceptance test uses the uncorrected draft mean."""

    def _mean_shift(self, target_forces, draft_forces, correction):
        return super()._mean_shift(target_forces, draft_forces, None)


@pytest.mark.parametrize("bug, config", [(DraftMeanAfterRejection, "no-ec"), (FreshNoiseOnRejection, "no-ec"),
                                         (CorrectionMissingFromAcceptance, "ec")])
def test_planted_bug_is_detected(bug, config, target_md_samples):
    cfg = CONFIGS[config]
    buggy = run_many(lsd_factory(bug, lookahead=LOOKAHEAD, **cfg), N_RUNS, N_STEPS, 0)
    result = compare(buggy, target_md_samples[config])
    assert result.rejects(), f"{bug.__name__} went undetected (min p={result.min_p:.2e})"
