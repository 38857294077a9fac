"""The reporter protocol of the run loop: live data, stop / pause between rounds, exact RunStats sums."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from ase.io import read

from exactness import POOR_DRAFT, TARGET, start_atoms
from lsd_engine import LangevinMD, LangevinParams, RunStats, SpeculativeSampler, StepKind
from lsd_engine.reporters import LiveReporter, Reporter, RunControl

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)


def sampler(**kw) -> SpeculativeSampler:
    return SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=4, seed=3, **kw)


class Calls(Reporter):
    """Records the protocol calls it receives."""

    def __init__(self):
        self.calls = []

    def start(self, run):
        self.calls.append(("start", run.start_step, int(run.initial.kinds[0])))

    def report(self, update):
        self.calls.append(("report", update.first_step, update.step))

    def flush(self, run):
        self.calls.append(("flush", run.simulation.step))

    def finish(self, run, stats, error):
        self.calls.append(("finish", stats.n_steps, error))


def test_live_updates_are_the_run_exactly_and_change_nothing():
    reference = sampler().run(80)
    updates = []
    result = sampler().run(80, reporters=[LiveReporter(updates.append)])
    np.testing.assert_array_equal(result.positions, reference.positions)
    assert result.stats.target_calls == reference.stats.target_calls  # no round cut for reporting
    joined = {key: np.concatenate([getattr(u, key) for u in updates])
              for key in ("steps", "positions", "momenta", "energies", "kinds")}
    np.testing.assert_array_equal(joined["steps"], np.arange(81))
    for key in ("positions", "momenta", "energies", "kinds"):
        np.testing.assert_array_equal(joined[key], getattr(result, key))
    assert updates[0].kinds[0] == StepKind.INITIAL and len(updates) == result.stats.rounds + 1
    assert [u.final for u in updates] == [False] * (len(updates) - 1) + [True]
    for u in updates[:-1]:  # cumulative exact counts up to each update's last state
        kinds = joined["kinds"][1:u.steps[-1] + 1]
        assert u.stats.n_steps == u.steps[-1]
        assert u.stats.accepted_steps == np.sum(kinds == StepKind.ACCEPTED)
        assert u.stats.accepted_by_depth.sum() == u.stats.accepted_steps
    assert updates[-1].stats.to_dict() == result.stats.to_dict() and len(updates[-1]) == 0


def test_throttled_live_updates_come_at_save_points_and_the_end():
    updates = []
    result = sampler().run(60, checkpoint_every=25, reporters=[LiveReporter(updates.append, every_s=1e9)])
    ends = [int(u.steps[-1]) for u in updates[:-1]]  # the final update: the final stats, no states left
    assert len(updates) == 4 and ends[0] >= 25 and ends[1] >= 50 and ends[2] == 60
    assert updates[-1].final and len(updates[-1]) == 0 and updates[-1].stats.n_steps == 60
    np.testing.assert_array_equal(np.concatenate([u.positions for u in updates]), result.positions)
    with pytest.raises(ValueError, match="every_s"):
        LiveReporter(print, every_s=-1)
    with pytest.raises(TypeError, match="callable"):
        LiveReporter(3)


def test_protocol_calls_in_order_with_save_points():
    calls = Calls()
    md = LangevinMD(start_atoms(), TARGET, PARAMS, seed=1)
    md.run(7, checkpoint_every=3, reporters=[calls])
    assert calls.calls == [("start", 0, StepKind.INITIAL), *[("report", s, s) for s in (1, 2, 3)], ("flush", 3),
                           *[("report", s, s) for s in (4, 5, 6)], ("flush", 6), ("report", 7, 7), ("flush", 7),
                           ("finish", 7, None)]


def test_stop_between_rounds_then_continue_is_the_uninterrupted_run(tmp_path):
    reference = sampler().run(90)
    control = RunControl()
    stopper = Calls()
    stopper.report = lambda update: control.stop() if update.step >= 30 else None
    sim = sampler()
    first = sim.run(90, control=control, reporters=[stopper], trajectory=tmp_path / "t.traj",
                    checkpoint=tmp_path / "c.npz")
    assert first.stopped and 30 <= first.steps[-1] < 90 and first.stats.n_steps == first.steps[-1]
    assert len(read(tmp_path / "t.traj", index=":")) == len(first)  # flushed as at a normal end
    rest = sim.run(90 - int(first.steps[-1]))
    assert not rest.stopped
    np.testing.assert_array_equal(np.concatenate([first.positions, rest.positions[1:]]), reference.positions)
    # stopped at a round end: no round was cut, so no target call was added
    assert first.stats.target_calls + rest.stats.target_calls == reference.stats.target_calls
    total = first.stats + rest.stats
    assert total.rounds == reference.stats.rounds and total.n_steps == 90
    np.testing.assert_array_equal(total.accepted_by_depth, reference.stats.accepted_by_depth)
    np.testing.assert_array_equal(total.acceptance_by_depth, reference.stats.acceptance_by_depth)
    assert total.acceptance_rate == reference.stats.acceptance_rate
    with pytest.raises(TypeError, match="RunControl"):
        sim.run(5, control=threading.Event())


def test_pause_waits_at_a_round_end_outside_the_run_times():
    control = RunControl()
    seen = []

    def pause_once(update):
        seen.extend(update.steps.tolist())
        if update.stats.n_steps >= 20 and not seen_at_pause:
            control.pause()
            seen_at_pause.append(update.step)
            threading.Timer(0.4, resume).start()

    def resume():
        at_resume.append(seen[-1])  # the states up to the pause were delivered before waiting
        control.resume()

    seen_at_pause: list[int] = []
    at_resume: list[int] = []
    started = time.perf_counter()
    result = sampler().run(60, control=control, reporters=[LiveReporter(pause_once)])
    assert time.perf_counter() - started >= 0.4
    assert result.stats.wall_time_s < 0.4 and not result.stopped and result.steps[-1] == 60
    assert seen == list(range(61)) and at_resume == seen_at_pause


def test_runstats_add_up_exactly():
    sim = sampler()
    blocks = [sim.run(n).stats for n in (17, 1, 30, 12)]  # blocks cut rounds: each block's counts differ
    total = sum(blocks)
    assert total.to_dict() == RunStats.combine(blocks).to_dict()
    assert total.n_steps == 60 and total.rounds == sum(b.rounds for b in blocks)
    assert total.target_calls == sum(b.target_calls for b in blocks)
    assert total.time_target_s == pytest.approx(sum(b.time_target_s for b in blocks))
    np.testing.assert_array_equal(total.verified_by_depth, sum(b.verified_by_depth for b in blocks))
    np.testing.assert_array_equal(total.accepted_by_depth, sum(b.accepted_by_depth for b in blocks))
    assert total.accepted_by_depth.dtype == np.int64
    assert total.acceptance_rate == total.accepted_by_depth.sum() / total.verified_by_depth.sum()
    assert total.accepted_steps == total.accepted_by_depth.sum()
    # counts of different lengths (adaptive K, plain MD) are zero-padded; never-verified depths are NaN
    short = RunStats(n_steps=2, verified_by_depth=np.array([2]), accepted_by_depth=np.array([1]),
                     rounds_by_lookahead=np.array([0, 2]))
    mixed = short + RunStats(verified_by_depth=np.array([0, 0, 0]), accepted_by_depth=np.array([0, 0, 0]))
    np.testing.assert_array_equal(mixed.verified_by_depth, [2, 0, 0])
    assert mixed.acceptance_rate == 0.5 and np.isnan(mixed.acceptance_by_depth[1:]).all()
    plain = LangevinMD(start_atoms(), TARGET, PARAMS).run(5).stats
    assert np.isnan((plain + plain).acceptance_rate) and (plain + plain).n_steps == 10


def test_reporter_time_is_reporting_and_an_error_finishes_every_reporter(tmp_path):
    slow = Calls()
    slow.report = lambda update: time.sleep(0.002)
    stats = sampler().run(20, reporters=[slow]).stats
    assert stats.time_reporting_s >= 0.002 * stats.rounds and stats.time_overhead_s >= stats.time_reporting_s

    class Boom(Exception):
        pass

    def fail(update):
        if update.step >= 25:
            raise Boom("reporter failed")

    calls, failing = Calls(), Calls()
    failing.report = fail
    sim = sampler()
    with pytest.raises(Boom):
        sim.run(60, checkpoint_every=10, trajectory=tmp_path / "t.traj", checkpoint=tmp_path / "c.npz",
                reporters=[failing, calls])
    assert calls.calls[-1][0] == "finish" and isinstance(calls.calls[-1][2], Boom)
    frames = read(tmp_path / "t.traj", index=":")
    resumed = sampler()
    resumed.load_checkpoint(tmp_path / "c.npz")
    assert resumed.step == sim.step and len(frames) == sim.step + 1  # files end at the checkpoint's step
