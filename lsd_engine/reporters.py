"""Reporters: what the run loop tells about a run while it goes, at round ends (never cutting a round).

``Simulation.run`` drives every output through one protocol (docs/reporters.md). A reporter is any
object with some of these methods (:class:`Reporter` gives no-op defaults); the loop calls them in the
order the reporters are listed:

- ``start(run)``: once per ``run`` call, after the initial energy is known, with ``run.initial``
  (the state the call starts from, kind ``INITIAL``);
- ``report(update)``: at the end of every round (every step for plain MD) with the states the round
  produced (``update.block``) and the call's exact running statistics (``update.stats``);
- ``flush(run)``: at every save point: every ``checkpoint_every`` steps, when paused, at the end, and
  on an interrupt or error (before it propagates). Writers write what they buffered; the checkpoint
  reporter, listed last, writes the checkpoint, so after an interrupt every file ends at its step;
- ``finish(run, stats, error)``: once, after the last save point; ``error`` is the exception that
  ended the run, or None.

Trajectories, the state log, checkpoints, the JSON summary, the progress bar, ``attach``-ed
functions and live data (:class:`LiveReporter`) are reporters. A :class:`RunControl` asks a running
``run`` to pause or stop at the next round end, from any thread.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import ModelError
from .formats import StateLog, open_trajectory
from .frames import write_summary
from .results import RunStats, StatsCounter, StepBlock, strided

if TYPE_CHECKING:  # pragma: no cover
    from .simulation import Simulation

__all__ = ["CheckpointReporter", "LiveReporter", "LiveUpdate", "Observer", "ProgressReporter", "Reporter",
           "RoundUpdate", "RunControl", "RunInfo", "StateLogReporter", "SummaryReporter", "TrajectoryReporter"]


@dataclass
class RunInfo:
    """One ``run`` call, as reporters see it.

    start_step, end_step: the step the call starts from and the step it runs to (a stopped run ends
    earlier); initial: the starting state (one state, kind INITIAL, at start_step); started_at:
    ``time.perf_counter()`` when the call started.
    """

    simulation: Simulation
    start_step: int
    end_step: int
    initial: StepBlock
    started_at: float


@dataclass
class RoundUpdate:
    """The states one round produced, handed to ``report`` at its end.

    block: positions (m, N, 3) Å, momenta (m, N, 3), energies (m,) eV and kinds (m,) of steps
    ``first_step .. step``; elapsed_s: seconds since the call started (pauses excluded). The
    simulation's ``step``, ``positions``, ``momenta`` and ``energy`` already hold the round's end.
    """

    run: RunInfo
    block: StepBlock
    step: int
    elapsed_s: float
    counter: StatsCounter

    @property
    def simulation(self) -> Simulation:
        return self.run.simulation

    @property
    def first_step(self) -> int:
        return self.step - len(self.block.energies) + 1

    @property
    def steps(self) -> np.ndarray:
        """(m,) the step index of each state of the block."""
        return np.arange(self.first_step, self.step + 1)

    @cached_property
    def stats(self) -> RunStats:
        """The call's statistics up to this round end (exact counts, a copy)."""
        return self.counter.snapshot(self.step - self.run.start_step, self.elapsed_s)


class Reporter:
    """A reporter that does nothing; subclass and override what you need (see the module docstring)."""

    def start(self, run: RunInfo) -> None:
        """Called once per ``run`` call, before its first round."""

    def report(self, update: RoundUpdate) -> None:
        """Called at the end of every round."""

    def flush(self, run: RunInfo) -> None:
        """Called at every save point: make what was reported so far durable (or visible)."""

    def finish(self, run: RunInfo, stats: RunStats, error: BaseException | None) -> None:
        """Called once at the end of the ``run`` call (``error``: what ended it, or None)."""


class RunControl:
    """Pause or stop a running ``Simulation.run`` between rounds, from any thread.

    ``stop()``: the run returns after the round in progress, with the steps done so far
    (``RunResult.stopped``); every reporter is flushed and finished as at a normal end.
    ``pause()``: at the next round end the loop makes a save point and waits until ``resume()``
    or ``stop()``; paused time is not counted in the run's times. A stopped control stays stopped.
    ``on_pause``: called (in the run's thread) once the loop has paused, after its save point.
    """

    def __init__(self, on_pause: Callable[[], Any] | None = None) -> None:
        self.on_pause = on_pause
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, poll_s: float = 0.1) -> None:
        """Block until resumed or stopped (after calling ``on_pause``)."""
        if self.on_pause is not None and not self._running.is_set():
            self.on_pause()
        while not self._running.wait(poll_s):
            pass


class Observer(Reporter):
    """A function attached with ``Simulation.attach``: called with its arguments at the end of the
    first round reaching each multiple of ``interval`` steps (ASE's ``attach``)."""

    def __init__(self, function: Callable[..., Any], interval: int, args: tuple, kwargs: dict, next_step: int):
        self.function = function
        self.interval = interval
        self.args = args
        self.kwargs = kwargs
        self.next_step = next_step

    def notify(self, step: int) -> None:
        if step >= self.next_step:
            self.next_step = (step // self.interval + 1) * self.interval
            self.function(*self.args, **self.kwargs)

    def report(self, update: RoundUpdate) -> None:
        self.notify(update.step)


class TrajectoryReporter(Reporter):
    """Every ``stride``-th step (and the starting state of a new file) to a trajectory file, written
    at save points. Format by suffix: ASE .traj, .dcd / .xtc (MDTraj, with a PDB topology beside it),
    else extended XYZ; ``append`` continues an existing file (e.g. after ``load_checkpoint``)."""

    def __init__(self, path: str | os.PathLike, simulation: Simulation, stride: int = 1, append: bool = False):
        self.stride = stride
        self.writer = open_trajectory(path, simulation.atoms, append, simulation.params.timestep_fs)

    def start(self, run: RunInfo) -> None:
        if self.writer.starts_new_file:
            b = run.initial
            self.writer.add(b.positions, b.momenta, b.energies, steps=np.array([run.start_step]))

    def report(self, update: RoundUpdate) -> None:
        kept = strided(update.block, update.first_step, self.stride)
        if kept is not None:
            steps, block = kept
            self.writer.add(block.positions, block.momenta, block.energies, steps=steps)

    def flush(self, run: RunInfo) -> None:
        self.writer.flush()


class StateLogReporter(Reporter):
    """A CSV state log of every ``stride``-th step (``lsd_engine.formats.StateLog``: step, time,
    energies, temperature, ns/day since the call started), written at save points."""

    def __init__(self, path: str | os.PathLike, simulation: Simulation, stride: int = 1, append: bool = False):
        self.stride = stride
        self.timestep_fs = simulation.params.timestep_fs
        self.log = StateLog(path, simulation.atoms.get_masses(), self.timestep_fs, append)

    def start(self, run: RunInfo) -> None:
        if self.log.starts_new_file:
            self.log.add(np.array([run.start_step]), run.initial.momenta, run.initial.energies)

    def report(self, update: RoundUpdate) -> None:
        kept = strided(update.block, update.first_step, self.stride)
        if kept is not None:
            steps, block = kept
            elapsed_days = update.elapsed_s / 86400.0
            ns_per_day = (update.step - update.run.start_step) * self.timestep_fs * 1e-6 / elapsed_days
            self.log.add(steps, block.momenta, block.energies, ns_per_day)

    def flush(self, run: RunInfo) -> None:
        self.log.flush()


class CheckpointReporter(Reporter):
    """The simulation's full state to a .npz checkpoint at every save point (list it last)."""

    def __init__(self, path: str | os.PathLike):
        self.path = path

    def flush(self, run: RunInfo) -> None:
        if run.simulation.energy is not None:
            run.simulation.save_checkpoint(self.path)


class SummaryReporter(Reporter):
    """The run's JSON summary (``Simulation.summary``) when the call ends, or fails in a force model
    (then with the error message); not after an interrupt."""

    def __init__(self, path: str | os.PathLike):
        self.path = path

    def finish(self, run: RunInfo, stats: RunStats, error: BaseException | None) -> None:
        if error is None:
            write_summary(self.path, run.simulation.summary(stats))
        elif isinstance(error, ModelError):
            write_summary(self.path, run.simulation.summary(stats, error=str(error)))


class ProgressReporter(Reporter):
    """A tqdm progress bar with steps/s, the acceptance so far and the ETA."""

    def __init__(self, refresh_s: float = 0.5):
        self.refresh_s = refresh_s
        self.bar = None
        self._next_text = 0.0

    def start(self, run: RunInfo) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=run.end_step - run.start_step, unit="step", dynamic_ncols=True,
                        mininterval=self.refresh_s)
        self._next_text = 0.0

    def report(self, update: RoundUpdate) -> None:
        self.bar.update(len(update.block.energies))
        now = time.perf_counter()
        if now >= self._next_text:
            self.bar.set_postfix_str(progress_text(update.counter), refresh=False)
            self._next_text = now + self.refresh_s

    def finish(self, run: RunInfo, stats: RunStats, error: BaseException | None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_text(counter: StatsCounter) -> str:
    """``acc=0.83``: the acceptance so far (empty before any verified drafted step)."""
    verified = int(counter.depth_verified.sum())
    if verified:
        return f"acc={counter.depth_accepted.sum() / verified:.2f}"
    return ""


@dataclass
class LiveUpdate:
    """New states of a running simulation and its statistics so far (``LiveReporter``).

    steps (m,), positions (m, N, 3) Å, momenta (m, N, 3) amu·Å/ASE-time, energies (m,) eV, kinds (m,):
    every state since the previous update, in order; the first update of a ``run`` call starts with
    its initial state (kind INITIAL), so the updates of a call together are exactly its
    ``run(n, stride=1)`` frames. stats: the call's exact statistics up to ``step`` (a copy;
    sum calls with ``+``). final: the call's last update, with its final statistics and the states
    not delivered yet (often none: the end's save point delivered them); also after a stop or an
    error (``error``).
    """

    simulation: Simulation
    step: int  # the simulation's step when the update was made (steps[-1] unless it has no states)
    steps: np.ndarray
    positions: np.ndarray
    momenta: np.ndarray
    energies: np.ndarray
    kinds: np.ndarray
    stats: RunStats
    final: bool = False
    error: BaseException | None = None

    def __len__(self) -> int:
        return len(self.steps)


class LiveReporter(Reporter):
    """Hands ``callback(LiveUpdate)`` the new states and running statistics at round ends, at most
    every ``every_s`` seconds (and at least ``every_steps`` steps apart), at every save point (e.g.
    on pause) and at the end, so no state is lost. The callback runs in the run loop's thread; its
    time counts as reporting (``RunStats.time_reporting_s``)."""

    def __init__(self, callback: Callable[[LiveUpdate], Any], every_s: float = 0.0, every_steps: int = 1):
        if not callable(callback):
            raise TypeError(f"LiveReporter needs a callable, got {type(callback).__name__}")
        if not (isinstance(every_s, (int, float)) and math.isfinite(every_s) and every_s >= 0):
            raise ValueError(f"every_s must be a non-negative number of seconds, got {every_s!r}")
        if isinstance(every_steps, bool) or not isinstance(every_steps, int) or every_steps < 1:
            raise ValueError(f"every_steps must be a positive integer, got {every_steps!r}")
        self.callback = callback
        self.every_s = float(every_s)
        self.every_steps = every_steps
        self._pending: list[tuple[np.ndarray, StepBlock]] = []
        self._last: RoundUpdate | None = None
        self._next_time = 0.0
        self._next_step = 0

    def start(self, run: RunInfo) -> None:
        self._pending = [(np.array([run.start_step]), run.initial)]
        self._last = None
        self._next_time = time.perf_counter() + self.every_s
        self._next_step = run.start_step + self.every_steps

    def report(self, update: RoundUpdate) -> None:
        self._pending.append((update.steps, update.block))
        self._last = update
        now = time.perf_counter()
        if update.step >= self._next_step and now >= self._next_time:
            self._deliver(update.run, update.stats)
            self._next_time = now + self.every_s
            self._next_step = update.step + self.every_steps

    def flush(self, run: RunInfo) -> None:
        if self._pending and self._last is not None:
            self._deliver(run, self._last.stats)

    def finish(self, run: RunInfo, stats: RunStats, error: BaseException | None) -> None:
        self._deliver(run, stats, final=True, error=error)

    def _deliver(self, run: RunInfo, stats: RunStats, final: bool = False,
                 error: BaseException | None = None) -> None:
        pending, self._pending = self._pending, []
        n = run.simulation.n_atoms
        if pending:
            steps = np.concatenate([s for s, _ in pending])
            blocks = [b for _, b in pending]
            positions = np.concatenate([b.positions for b in blocks])
            momenta = np.concatenate([b.momenta for b in blocks])
            energies = np.concatenate([b.energies for b in blocks])
            kinds = np.concatenate([np.asarray(b.kinds, dtype=np.int8) for b in blocks])
        else:
            steps, kinds = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
            positions, momenta, energies = np.zeros((0, n, 3)), np.zeros((0, n, 3)), np.zeros(0)
        self.callback(LiveUpdate(run.simulation, run.simulation.step, steps, positions, momenta, energies, kinds,
                                 stats, final, error))
