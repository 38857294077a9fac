"""The asynchronous (streaming) mode, in process: bitwise identity with the synchronous mode, statistics,
checkpoints, errors, and the statistical exactness harness with planted streaming bugs.

``ShuffledExecutor`` completes submitted target jobs in a seeded random order, several at a time,
like workers that finish out of order; the scheduler must still verify strictly in step order.
"""

from __future__ import annotations

import concurrent.futures as cf
from functools import partial

import numpy as np
import pytest

from exactness import (FAMILY_ALPHA, POOR_DRAFT, TARGET, compare, lsd_factory, md_factory, run_many,
                       start_atoms)
from lsd_engine import FunctionModel, LangevinMD, LangevinParams, LocalExecutor, ModelError, SpeculativeSampler
from lsd_engine.executors import Executor, Job
from lsd_engine.models.base import evaluate_checked
from lsd_engine.streaming import StreamingScheduler
from lsd_engine.toys import harmonic_bonds

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)
SOFT_DRAFT = FunctionModel(partial(harmonic_bonds, k_eV_per_A2=0.5), name="harmonic-soft")


class ShuffledExecutor(Executor):
    """Holds submitted jobs and completes them one at a time in a seeded random order."""

    def __init__(self, capacity: int = 3, seed: int = 0):
        self._capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._waiting: list[Job] = []

    @property
    def capacity(self) -> int:
        return self._capacity

    def evaluate(self, model, positions, *, role, first_step):
        return evaluate_checked(model, positions, role=role, first_step=first_step)

    def submit(self, model, positions, *, role, first_step):
        job = Job(self, cf.Future(), model, np.array(positions), role, first_step)
        self._waiting.append(job)
        return job

    def wait_any(self, jobs, timeout=None):
        while not any(job.done() for job in jobs):
            job = self._waiting.pop(self._rng.integers(len(self._waiting)))  # stale (cancelled) jobs too
            job.future.set_result(self.evaluate(job.model, job.positions, role=job.role, first_step=job.first_step))

    def cancel_job(self, job):
        job.cancelled = True  # like a worker already running it: it may still complete, and must be ignored


EXECUTORS = {"immediate": LocalExecutor, "thread": partial(LocalExecutor, threads=2), "shuffled": ShuffledExecutor}


def _split_run(mode, executor=None, lookahead=3, error_correction=True, draft=POOR_DRAFT, parts=(37, 1, 20)):
    sampler = SpeculativeSampler(start_atoms(), draft, TARGET, PARAMS, lookahead=lookahead,
                                 error_correction=error_correction, seed=3, mode=mode, executor=executor)
    results = [sampler.run(n) for n in parts]
    return sampler, results


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
@pytest.mark.parametrize("lookahead", [1, 3, 8])
@pytest.mark.parametrize("error_correction", [False, True])
def test_async_reproduces_sync_bit_for_bit_with_the_same_statistics(executor, lookahead, error_correction):
    sync, expected = _split_run("sync", lookahead=lookahead, error_correction=error_correction)
    with EXECUTORS[executor]() as ex:
        streamed, results = _split_run("async", ex, lookahead=lookahead, error_correction=error_correction)
    for got, want in zip(results, expected):
        for name in ("positions", "momenta", "energies", "kinds", "steps"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        for name in ("rounds", "accepted_steps", "repaired_steps", "target_steps", "verified_by_depth"):
            np.testing.assert_array_equal(got.stats[name], want.stats[name], err_msg=name)
        np.testing.assert_array_equal(got.stats.acceptance_by_depth, want.stats.acceptance_by_depth)
        assert got.stats.target_evaluations >= got.stats.n_steps  # one state per job, wasted ones included
    assert streamed.round_left == sync.round_left
    assert (streamed.draft_correction is None) == (sync.draft_correction is None) == (not error_correction)
    if error_correction:
        np.testing.assert_array_equal(streamed.draft_correction.residual, sync.draft_correction.residual)


@pytest.mark.parametrize("error_correction", [False, True])
def test_async_with_draft_equal_to_target_is_plain_md(error_correction):
    md = LangevinMD(start_atoms(), TARGET, PARAMS, seed=5).run(30)
    lsd = SpeculativeSampler(start_atoms(), TARGET, TARGET, PARAMS, lookahead=4, error_correction=error_correction,
                             seed=5, mode="async", executor=ShuffledExecutor()).run(30)
    np.testing.assert_array_equal(lsd.positions, md.positions)
    np.testing.assert_array_equal(lsd.energies, md.energies)
    assert lsd.stats.acceptance_rate == 1.0


def test_async_checkpoint_resumes_the_identical_trajectory(tmp_path):
    whole = SpeculativeSampler(start_atoms(), SOFT_DRAFT, TARGET, PARAMS, lookahead=4, seed=2).run(50)
    first = SpeculativeSampler(start_atoms(), SOFT_DRAFT, TARGET, PARAMS, lookahead=4, seed=2, mode="async",
                               executor=ShuffledExecutor())
    first.run(23, checkpoint=tmp_path / "c.npz")
    resumed = SpeculativeSampler(start_atoms(), SOFT_DRAFT, TARGET, PARAMS, lookahead=4, mode="async",
                                 executor=ShuffledExecutor(seed=1))
    resumed.load_checkpoint(tmp_path / "c.npz")
    rest = resumed.run(27)
    np.testing.assert_array_equal(rest.positions, whole.positions[23:])
    np.testing.assert_array_equal(rest.momenta, whole.momenta[23:])


class NanAfter:
    def __init__(self, n_calls):
        self.calls, self.n_calls = 0, n_calls

    def __call__(self, positions):
        energies, forces = TARGET.evaluate(positions)
        self.calls += 1
        if self.calls >= self.n_calls:
            forces[:] = np.nan
        return energies, forces


def test_async_model_error_names_the_step_and_keeps_the_verified_trajectory():
    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, FunctionModel(NanAfter(15), name="flaky"), PARAMS,
                                 lookahead=3, seed=1, mode="async")
    with pytest.raises(ModelError, match=r"target model 'flaky'.*NaN/inf.*step \d+") as info:
        sampler.run(100)
    assert info.value.partial_result.steps[-1] == sampler.step > 0
    assert info.value.step > sampler.step


def test_mode_is_checked_and_recorded():
    with pytest.raises(ValueError, match="mode must be 'sync' or 'async'"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, mode="streaming")
    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, mode="async")
    assert sampler._options()["mode"] == "async"

    class EvaluateOnly:
        def evaluate(self, model, positions, *, role, first_step):
            return evaluate_checked(model, positions, role=role, first_step=first_step)

    SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, executor=EvaluateOnly()).run(5)  # sync: enough
    with pytest.raises(TypeError, match="mode='async' needs an executor with submit"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, mode="async", executor=EvaluateOnly())


# -- statistical exactness through the harness, and planted streaming bugs ----------------------
N_RUNS, N_STEPS, LOOKAHEAD, MD_SEED0 = 2000, 10, 3, 10**6


class KeepsStaleDrafts(StreamingScheduler):
    """Bug: a rejection does not cancel the newer drafts, which started from the un-repaired state."""

    def _cancel_newer(self, entry):
        pass


class VerifiesOutOfOrder(StreamingScheduler):
    """Bug: verifies whichever result arrives first instead of waiting for the oldest step."""

    def _ready(self):
        return next((e for e in self.pending if e.job is not None and e.job.done()), None)


def _async_factory(scheduler=StreamingScheduler, **options):
    sampler_class = type(f"Async{scheduler.__name__}", (SpeculativeSampler,), {"streaming_scheduler": scheduler})
    return lsd_factory(partial(sampler_class, mode="async", executor=ShuffledExecutor(seed=7)),
                       lookahead=LOOKAHEAD, **options)


@pytest.fixture(scope="module")
def target_md_sample():
    return run_many(md_factory(PARAMS), N_RUNS, N_STEPS, MD_SEED0)


def test_async_final_state_distribution_matches_target_md(target_md_sample):
    """Streaming with out-of-order arrivals (EC on, so rounds wait for their bonus step)."""
    sampler = _async_factory(error_correction=True, draft=SOFT_DRAFT)(0)
    assert 0.3 < sampler.run(400).stats.acceptance_rate < 0.8
    result = compare(run_many(_async_factory(error_correction=True, draft=SOFT_DRAFT), N_RUNS, N_STEPS, 0),
                     target_md_sample)
    assert not result.rejects(), f"async LSD differs from target MD (min p={result.min_p:.2e})"


@pytest.mark.parametrize("bug", [KeepsStaleDrafts, VerifiesOutOfOrder])
def test_planted_streaming_bug_is_detected(bug, target_md_sample):
    buggy = run_many(_async_factory(bug, error_correction=False), N_RUNS, N_STEPS, 0)
    result = compare(buggy, target_md_sample)
    assert result.rejects(), f"{bug.__name__} went undetected (min p={result.min_p:.2e}, alpha {FAMILY_ALPHA})"
