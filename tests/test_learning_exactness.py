"""Statistical exactness with learning switched on: LSD with an online draft correction
must still sample plain target MD's final-state distribution.

Same harness as tests/test_exactness.py (2000 independent 10-step runs from one start,
K = 3, KS tests on every coordinate, momentum, pair distance and |p|², Bonferroni to a
family-wise α = 10⁻³). Each run gets a fresh correction that learns from its own rounds.
Needs the sampler integration (``SpeculativeSampler(..., draft_correction=...)``); until
then the tests are skipped.
"""

from __future__ import annotations

import inspect
from functools import partial

import numpy as np
import pytest

from exactness import FAMILY_ALPHA, TARGET, compare, md_factory, run_many, start_atoms
from lsd_engine import FunctionModel, LangevinParams, SpeculativeSampler
from lsd_engine.learning import BondedCorrection, FirstOrderCorrection, RadialCorrection
from lsd_engine.toys import harmonic_bonds

INTEGRATED = "draft_correction" in inspect.signature(SpeculativeSampler.__init__).parameters
pytestmark = pytest.mark.skipif(not INTEGRATED, reason="sampler integration pending (draft_correction=)")

N_RUNS = 2000
N_STEPS = 10
LOOKAHEAD = 3
MD_SEED0 = 10**6
PARAMS = LangevinParams(2.0, 300.0, 10.0)
DRAFT = FunctionModel(partial(harmonic_bonds, k_eV_per_A2=0.5), name="harmonic-soft")
MASSES = start_atoms().get_masses()
NUMBERS = start_atoms().numbers


def _neural():
    from lsd_engine.learning.neural import DescriptorSpec, NeuralCorrection

    spec = DescriptorSpec(species=(1,), n_radial=4, n_angles=2, n_angular_radii=2, hidden=(8,))
    return NeuralCorrection(NUMBERS, MASSES, spec=spec, buffer_size=16, batch_size=4, steps_per_observe=1,
                            min_labels=2)


#: LSD runs per correction (the network's autograd makes its runs ~10x slower; 800 runs vs 2000 target-MD
#: runs still resolve the shifts the planted-bug tests of test_exactness.py produce)
RUNS = {"neural": 800}

CORRECTIONS = {
    "first-order": lambda: FirstOrderCorrection(3, window=4, ridge=1e-2),
    "radial": lambda: RadialCorrection(NUMBERS, MASSES, cutoff=4.0, n_radial=6, r_min=0.8, embedding=(),
                                       forgetting=1.0),
    "bonded": lambda: BondedCorrection(NUMBERS, MASSES, separation=1, degree=2, cross_separation=1,
                                       bond_scale=2.6, forgetting=1.0),
    "neural": _neural,
}


def _factory(make):
    return lambda seed: SpeculativeSampler(start_atoms(), DRAFT, TARGET, PARAMS, lookahead=LOOKAHEAD, seed=seed,
                                           draft_correction=make())


@pytest.fixture(scope="module")
def target_md_sample():
    return run_many(md_factory(PARAMS), N_RUNS, N_STEPS, MD_SEED0)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CORRECTIONS))
def test_lsd_with_online_learning_matches_target_md(name, target_md_sample):
    stats = _factory(CORRECTIONS[name])(0).run(400).stats
    assert stats.acceptance_rate < 0.97, "the test needs rejections to have power"
    lsd = run_many(_factory(CORRECTIONS[name]), RUNS.get(name, N_RUNS), N_STEPS, 0)
    result = compare(lsd, target_md_sample)
    worst = int(np.argmin(result.p_values))
    assert not result.rejects(), (f"LSD with the {name} correction differs from target MD in "
                                  f"{result.names[worst]} (p={result.min_p:.2e}, threshold "
                                  f"{FAMILY_ALPHA / len(result.p_values):.1e})")


@pytest.mark.parametrize("name", sorted(CORRECTIONS))
def test_learning_run_is_reproducible_and_resumes_from_a_checkpoint(name, tmp_path):
    """Same seed, same trajectory; a run split by a checkpoint continues identically
    (the correction's state() is in the checkpoint)."""
    whole = _factory(CORRECTIONS[name])(7).run(40)
    again = _factory(CORRECTIONS[name])(7).run(40)
    np.testing.assert_array_equal(whole.positions, again.positions)
    first = _factory(CORRECTIONS[name])(7)
    first.run(17, checkpoint=tmp_path / "c.npz")
    resumed = _factory(CORRECTIONS[name])(7)
    resumed.load_checkpoint(tmp_path / "c.npz")
    rest = resumed.run(23)
    np.testing.assert_array_equal(rest.positions[-1], whole.positions[-1])
