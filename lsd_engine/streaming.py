"""Asynchronous streaming verification: the seed paper's scheme (docs/theory.md §4).

The draft produces steps continuously; each drafted half-step position goes to
the next free target worker (``executor.submit``); results are verified strictly
in step order as they arrive; a rejection repairs that step and cancels every
newer draft, and drafting restarts from the repaired state.

It reproduces the synchronous sampler bit for bit, because the synchronous
trajectory is a per-step state machine that batching only evaluates faster.
Step ``n`` sits at depth d = K - round_left + 1 of its round (d = K + 1 is the
bonus step); it is drafted with the round's correction (the bonus, with EC, with
the fresh residual at its own half-step position, so only after the target
force there is known), coupled with the acceptance draw of step ``n``; a
rejection or a bonus step starts a new round whose correction is the residual at
that step's half-step position. All randomness is keyed by step. So:

- without EC, round boundaries are invisible to the numbers: the draft streams
  straight across them and only a rejection restarts it;
- with EC, the draft stops at each round end after dispatching the bonus
  half-step position, and resumes once that step is verified.

With a lookahead policy, the next round's K is chosen when a round ends, so the
draft also waits at each round's bonus step (without EC it could otherwise run on).

At most K + 1 steps are drafted ahead of the verified frontier; statistics
(rounds, acceptance by depth, accepted / repaired / target steps) are counted
exactly as the synchronous sampler counts them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .executors.base import Job
from .kernel import half_step_position
from .results import StatsCounter, StepBlock, StepKind

if TYPE_CHECKING:  # pragma: no cover
    from .speculative import SpeculativeSampler


@dataclass
class _Entry:
    """One step drafted ahead of the verified frontier."""

    step: int  # trajectory index of the state this step produces
    slot: int  # sampler buffer slot (step mod K + 1)
    depth: int  # 1..K: drafted step of a round; K + 1: the round's bonus step
    drafted: bool  # False: an EC bonus step, drafted only once its target force is known
    start: tuple[np.ndarray, np.ndarray] | None = None  # (positions, momenta) it starts from (EC bonus)
    job: Job | None = field(default=None, repr=False)  # target evaluation at its half-step position


class StreamingScheduler:
    """Drives a :class:`SpeculativeSampler` in asynchronous mode (``sampler.mode == "async"``), through
    the same public round interface as the synchronous driver: the state ``sampler.round``
    (:class:`lsd_engine.rounds.RoundState`) and ``draft_step``, ``couple_slot``, ``draft_bonus``,
    ``end_round`` and ``max_lookahead``."""

    def __init__(self, sampler: "SpeculativeSampler"):
        self.sampler = sampler
        self.pending: deque[_Entry] = deque()
        self.window = sampler.max_lookahead() + 1  # steps drafted ahead of the verified frontier, at most
        self._frontier_step = -1
        self._seg_verified = self._seg_accepted = 0  # drafted steps verified / accepted in this round segment
        self._seg_open = False

    # -- lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all speculation (start of a run() call)."""
        self._cancel_from(0)
        s = self.sampler
        self._frontier_step = s.step
        self._seg_verified = self._seg_accepted = 0
        self._seg_open = False
        self.window = s.max_lookahead() + 1

    def advance(self, max_steps: int, counter: StatsCounter) -> StepBlock:
        """Verified steps from the sampler's current state (at least one, at most ``max_steps``)."""
        s = self.sampler
        if self._frontier_step != s.step:
            self.reset()
        end = s.step + max_steps
        self._positions, self._momenta = s.positions, s.momenta
        self._out: list[tuple[np.ndarray, np.ndarray, float, int]] = []
        stats = self._stats = counter.stats
        while True:
            self._dispatch(counter)
            entry = self._ready()
            if entry is not None:
                t0 = time.perf_counter()
                drafting_s = self._verify(entry, counter)
                stats.time_verification_s += time.perf_counter() - t0 - drafting_s
                if self._frontier_step == end:
                    if self._seg_open:
                        self._close_segment(counter)
                    break
                continue
            if self._out:
                break  # hand the verified steps to the run loop; speculation stays in flight
            if self._can_draft(end):
                t0 = time.perf_counter()
                self._draft_next()
                stats.time_draft_s += time.perf_counter() - t0
                continue
            t0 = time.perf_counter()
            running = [e.job for e in self.pending if e.job is not None and not e.job.done()]
            s.executor.wait_any(running)
            stats.time_target_s += time.perf_counter() - t0
        positions, momenta, energies, kinds = zip(*self._out)
        return StepBlock(np.array(positions), np.array(momenta), np.array(energies),
                         np.array(kinds, dtype=np.int8))

    # -- drafting -------------------------------------------------------------------------------
    def _can_draft(self, end: int) -> bool:
        if self._frontier_step + len(self.pending) >= end or len(self.pending) >= self.window:
            return False
        if not self.pending:
            return True
        last = self.pending[-1]
        if self.sampler.lookahead_policy is not None and last.depth == self.sampler.lookahead + 1:
            return False  # the next round's K is chosen once this round is verified
        return last.drafted  # an EC bonus step blocks until verified

    def _draft_next(self) -> None:
        s = self.sampler
        k = s.lookahead
        step = self._frontier_step + len(self.pending) + 1
        slot = step % self.window
        if self.pending:
            last = self.pending[-1]
            depth = 1 if last.depth == k + 1 else last.depth + 1
            positions, momenta = s.round.result(last.slot)
        else:
            depth = k - s.round.left + 1
            positions, momenta = self._positions, self._momenta
        if depth == k + 1 and s.draft_correction is not None:
            # The bonus step's draft needs the target force at its half-step position: send that alone.
            s.round.half[slot] = half_step_position(positions, momenta, s.constants)
            self.pending.append(_Entry(step, slot, depth, False, (positions, momenta)))
        else:
            s.draft_step(slot, positions, momenta, step)
            self._stats.draft_calls += 1
            self.pending.append(_Entry(step, slot, depth, True))

    def _dispatch(self, counter: StatsCounter) -> None:
        """Send undispatched half-step positions, oldest first, while workers are free."""
        s = self.sampler
        running = sum(1 for e in self.pending if e.job is not None and not e.job.done())
        for entry in self.pending:
            if running >= s.executor.capacity:
                break
            if entry.job is None:
                entry.job = s.executor.submit(s.target, s.round.half[entry.slot][None].copy(), role="target",
                                              first_step=entry.step)
                counter.stats.target_calls += 1
                counter.stats.target_evaluations += 1
                running += 1

    # -- verification ---------------------------------------------------------------------------
    def _ready(self) -> _Entry | None:
        """The entry to verify next: the oldest one, once its target result is in."""
        if self.pending and self.pending[0].job is not None and self.pending[0].job.done():
            return self.pending[0]
        return None

    def _verify(self, entry: _Entry, counter: StatsCounter) -> float:
        """Couple ``entry`` with its target result and emit its step; returns seconds spent drafting (EC bonus)."""
        s = self.sampler
        stats = counter.stats
        k = s.lookahead
        drafting_s = 0.0
        energies, forces = entry.job.result()
        force = forces[0]
        self.pending.remove(entry)
        if entry.depth <= k:
            accepted = s.couple_slot(entry.slot, entry.step, force)
            self._seg_verified += 1
            self._seg_open = True
            if accepted:
                self._seg_accepted += 1
                stats.accepted_steps += 1
                s.round.left -= 1
                kind = StepKind.ACCEPTED
            else:
                stats.repaired_steps += 1
                kind = StepKind.REPAIRED
                s.end_round()  # the correction learns from the round's labels, the rejected one last
        else:
            if not entry.drafted:  # with a correction: draft the bonus now that its target force is known
                t0 = time.perf_counter()
                s.draft_bonus(entry.slot, *entry.start, entry.step, force)  # ends the round
                drafting_s = time.perf_counter() - t0
                stats.time_draft_s += drafting_s
                stats.draft_calls += 1
            else:
                s.end_round()
            accepted = s.couple_slot(entry.slot, entry.step, force, record_label=False)
            stats.target_steps += 1
            kind = StepKind.TARGET
        if kind != StepKind.ACCEPTED:  # the round ends here: a new one starts from this step
            self._close_segment(counter)
        if not accepted:
            self._cancel_newer(entry)
        self._positions, self._momenta = s.round.result(entry.slot)
        self._out.append((self._positions, self._momenta, float(energies[0]), int(kind)))
        self._frontier_step += 1
        return drafting_s

    def _close_segment(self, counter: StatsCounter) -> None:
        counter.record_round(self._seg_verified, self._seg_accepted)
        self._seg_verified = self._seg_accepted = 0
        self._seg_open = False

    def _cancel_newer(self, entry: _Entry) -> None:
        """A rejection: every draft newer than ``entry`` started from a state that no longer exists."""
        while self.pending and self.pending[-1].step > entry.step:
            self._cancel_last()

    def _cancel_from(self, index: int) -> None:
        while len(self.pending) > index:
            self._cancel_last()

    def _cancel_last(self) -> None:
        stale = self.pending.pop()
        if stale.job is not None:
            stale.job.cancel()
