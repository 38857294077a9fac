"""The run loop shared by plain Langevin MD and the speculative sampler.

A subclass implements ``_advance`` (one MD step, or one speculative round); this
class owns the state, the recorded frames and interrupts, and drives every output
(trajectory, state log, checkpoint, summary, progress bar, observers, live data)
through the reporter protocol of :mod:`lsd_engine.reporters`, at round ends.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from ase import Atoms

from .checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from .errors import CheckpointError, ModelError
from .kernel import maxwell_boltzmann_momenta
from .models.base import ForceModel
from .params import IntegratorConstants, LangevinParams
from .reporters import (CheckpointReporter, Observer, ProgressReporter, RoundUpdate, RunControl, RunInfo,
                        StateLogReporter, SummaryReporter, TrajectoryReporter)
from .results import FrameRecorder, RunResult, RunStats, StatsCounter, StepBlock, StepKind
from .rng import CounterRNG, Purpose
from .validation import positive_int

DEFAULT_CHECKPOINT_EVERY = 1000


class Simulation(ABC):
    """State and run loop of a Langevin trajectory (ASE units inside)."""

    def __init__(self, atoms: Atoms, params: LangevinParams, seed: int):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
        if len(atoms) == 0:
            raise ValueError("atoms is empty: a simulation needs at least one atom")
        if not isinstance(params, LangevinParams):
            raise TypeError(f"params must be LangevinParams, got {type(params).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self.params = params
        self.seed = int(seed)
        self.rng = CounterRNG(self.seed)
        self.constants = IntegratorConstants.build(params, atoms.get_masses())
        self.n_atoms = len(atoms)
        self.step = 0
        self.positions = np.array(atoms.get_positions(), dtype=float)
        if not np.all(np.isfinite(self.positions)):
            raise ValueError("atoms has non-finite positions")
        momenta = np.array(atoms.get_momenta(), dtype=float)
        if np.any(momenta != 0.0):
            self.momenta = momenta
        else:
            noise = self.rng.normal(0, (self.n_atoms, 3), Purpose.INITIAL_MOMENTA)
            self.momenta = maxwell_boltzmann_momenta(noise, self.constants)
        self.energy: float | None = None  # target energy at the last force-evaluation point
        self.reporters: list[Any] = []  # reporters of every run() call (attach adds to them), before run()'s own
        self.live_block: StepBlock | None = None  # the states the last round produced (during run())
        self.live_stats: RunStats | None = None  # the running counts of the current run() call
        self.run_config: dict[str, Any] | None = None  # settings saved with each checkpoint (the CLI's RunConfig)

    # -- to implement -------------------------------------------------------
    @property
    @abstractmethod
    def target(self) -> ForceModel: ...

    @abstractmethod
    def _advance(self, max_steps: int, counter: StatsCounter) -> StepBlock:
        """Produce 1..max_steps new states from the current one (does not modify self)."""

    @abstractmethod
    def _prepare(self, counter: StatsCounter) -> None:
        """Fill in what the first advance needs (initial energy, EC residual)."""

    def _options(self) -> dict[str, Any]:
        return {}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays a checkpoint must carry beyond positions and momenta."""
        return {}

    def _restore_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def _sampler_state(self) -> dict[str, Any]:
        """Extra JSON-able state a checkpoint must carry (e.g. the position inside a round)."""
        return {}

    def _restore_sampler_state(self, state: dict[str, Any]) -> None:
        pass

    def _lookahead(self) -> int:
        return 0

    # -- running ------------------------------------------------------------
    def attach(self, function: Callable[..., Any], interval: int = 1, *args: Any, **kwargs: Any) -> Observer:
        """Call ``function(*args, **kwargs)`` during ``run`` whenever a round (a plain MD step for
        ``LangevinMD``) ends at or past the next multiple of ``interval`` steps (ASE's ``attach``).

        Reporting never cuts a round, so it never costs a target call: the function sees the state
        at that round end, ``self.step`` (at or past the multiple), ``self.positions``,
        ``self.momenta``, ``self.energy``, ``self.live_block`` (every state the round produced, in
        order, with their kinds) and ``self.live_stats`` (the current run's counts so far).
        The observer is a reporter (``self.reporters``) and stays attached across ``run`` calls.
        """
        if not callable(function):
            raise TypeError(f"attach needs a callable, got {type(function).__name__}")
        interval = positive_int(interval, "interval")
        observer = Observer(function, interval, args, kwargs, (self.step // interval + 1) * interval)
        self.reporters.append(observer)
        return observer

    def run(self, n_steps: int, *, stride: int = 1, trajectory: str | os.PathLike | None = None,
            append: bool = False, checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, summary: str | os.PathLike | None = None,
            progress: bool = False, state_log: str | os.PathLike | None = None,
            reporters: Sequence[Any] = (), control: RunControl | None = None) -> RunResult:
        """Advance ``n_steps`` steps and return the saved frames and statistics.

        stride: keep every stride-th step (the initial state is always frame 0).
        trajectory: path written as the run goes, format by suffix: ASE .traj, .dcd / .xtc
        (MDTraj, with a PDB topology beside it), else extended XYZ (``append`` continues an
        existing file, e.g. after ``load_checkpoint``).
        state_log: CSV path for a state log of the saved frames (step, time, energies,
        temperature, ns/day; ``lsd_engine.formats.StateLog``), appended to like the trajectory.
        checkpoint: .npz path written every ``checkpoint_every`` steps, at the end, and
        on Ctrl-C or an error, so an interrupted run loses nothing.
        summary: JSON path for the run statistics.
        reporters: more reporters for this call (``lsd_engine.reporters``: ``start``, ``report``
        at every round end, ``flush`` at save points, ``finish``), after ``self.reporters``.
        control: a ``RunControl`` to pause or stop the run between rounds (from another thread).
        """
        n_steps = positive_int(n_steps, "n_steps", allow_zero=True)
        stride = positive_int(stride, "stride")
        checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
        for path in (trajectory, checkpoint, summary, state_log):
            if path is not None and not Path(path).resolve().parent.is_dir():
                raise FileNotFoundError(f"output folder does not exist: {Path(path).resolve().parent}")
        if control is not None and not isinstance(control, RunControl):
            raise TypeError(f"control must be a lsd_engine.reporters.RunControl, got {type(control).__name__}")
        built: list[Any] = []
        if trajectory is not None:
            built.append(TrajectoryReporter(trajectory, self, stride, append))
        if state_log is not None:
            built.append(StateLogReporter(state_log, self, stride, append))
        if progress:
            built.append(ProgressReporter())
        if summary is not None:
            built.append(SummaryReporter(summary))
        everyone = built + list(self.reporters) + list(reporters)
        if checkpoint is not None:
            everyone.append(CheckpointReporter(checkpoint))  # last: files are flushed before the checkpoint
        return self._run_loop(n_steps, stride, checkpoint_every, everyone, control)

    def _run_loop(self, n_steps: int, stride: int, save_every: int, reporters: list[Any],
                  control: RunControl | None) -> RunResult:
        counter = StatsCounter(self._lookahead())
        self.live_stats = counter.stats
        clock = _RunClock()
        start_step = self.step
        end_step = start_step + n_steps
        calls = _ReporterCalls(reporters, counter.stats)
        recorder: FrameRecorder | None = None
        last_saved = start_step
        stopped = False
        try:
            if n_steps > 0 or self.energy is None:
                self._prepare(counter)
            recorder = FrameRecorder(stride, start_step, self.positions, self.momenta, self.energy)
            initial = StepBlock(self.positions[None].copy(), self.momenta[None].copy(), np.array([self.energy]),
                                np.array([StepKind.INITIAL], dtype=np.int8))
            run = RunInfo(self, start_step, end_step, initial, clock.started_at)
            calls.start(run)
            while self.step < end_step:
                if control is not None and control.stop_requested:
                    stopped = True
                    break
                block = self._advance(end_step - self.step, counter)
                recorder.add(block, self.step + 1)
                self.positions = block.positions[-1]
                self.momenta = block.momenta[-1]
                self.energy = float(block.energies[-1])
                self.step += len(block.energies)
                self.live_block = block
                calls.report(RoundUpdate(run, block, self.step, clock.elapsed_s(), counter))
                if self.step - last_saved >= save_every:
                    calls.flush()
                    last_saved = self.step
                if control is not None and control.paused and not control.stop_requested:
                    calls.flush()
                    clock.pause()
                    control.wait_while_paused()
                    clock.resume()
        except BaseException as exc:
            calls.flush()
            if recorder is not None and calls.started_run is not None:
                stats = counter.finish(self.step - start_step, clock.elapsed_s())
                if isinstance(exc, ModelError):
                    exc.partial_result = self._result(recorder, stats)
                calls.finish(calls.started_run, stats, exc)
            raise
        calls.flush()
        stats = counter.finish(self.step - start_step, clock.elapsed_s())
        calls.finish(run, stats, None)
        result = self._result(recorder, stats)
        result.stopped = stopped
        return result

    def _result(self, recorder: FrameRecorder, stats) -> RunResult:
        return recorder.result(stats, self.atoms.get_atomic_numbers(), self.atoms.get_masses(),
                               np.array(self.atoms.get_cell()), self.atoms.get_pbc())

    def summary(self, stats: RunStats, error: str | None = None) -> dict[str, Any]:
        """The JSON-ready summary of a run: sampler, step, seed, parameters, options, ``stats``,
        where the target ran, and ``error`` if the run failed."""
        out = {"sampler": type(self).__name__, "step": self.step, "seed": self.seed,
               "n_atoms": self.n_atoms, "params": self.params.to_dict(), "options": self._options(),
               "stats": stats.to_dict()}
        target, executor = getattr(self, "_target", None), getattr(self, "executor", None)
        if target is not None:  # where the target ran: executor, workers, device (the CLI and dashboard show it)
            from .executors import describe_execution

            try:
                out["execution"] = describe_execution(target, executor)
            except Exception as exc:  # noqa: BLE001 - a lost cluster must not lose the summary
                out["execution"] = {"error": f"{type(exc).__name__}: {exc}"}
        if error is not None:
            out["error"] = error
        return out

    # -- checkpoints --------------------------------------------------------
    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write the full state (positions, momenta, step, EC residual, seed) to ``path``."""
        save_checkpoint(path, CheckpointState(
            sampler=type(self).__name__, step=self.step, seed=self.seed, positions=self.positions,
            momenta=self.momenta, energy=self.energy, arrays=self._state_arrays(),
            numbers=self.atoms.get_atomic_numbers(), masses=self.atoms.get_masses(),
            params=self.params.to_dict(), options=self._options(), sampler_state=self._sampler_state(),
            run_config=self.run_config))

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint of the same system and parameters (the seed is restored)."""
        state = load_checkpoint(path)
        if state.positions.shape != (self.n_atoms, 3) or not np.array_equal(
                state.numbers, self.atoms.get_atomic_numbers()):
            raise CheckpointError(f"{path} belongs to another system ({len(state.numbers)} atoms)")
        if not np.allclose(state.masses, self.atoms.get_masses(), rtol=1e-12, atol=0):
            raise CheckpointError(f"{path} was written with other atomic masses")
        if LangevinParams(**state.params) != self.params:
            raise CheckpointError(f"{path} was written with other Langevin parameters: {state.params}")
        self.seed = state.seed
        self.rng = CounterRNG(self.seed)
        self.step = state.step
        self.positions = np.array(state.positions, dtype=float)
        self.momenta = np.array(state.momenta, dtype=float)
        self.energy = state.energy
        self._restore_state_arrays(state.arrays)
        self._restore_sampler_state(state.sampler_state)


class _RunClock:
    """Seconds since a run started, pauses excluded."""

    def __init__(self) -> None:
        self.started_at = time.perf_counter()
        self._paused_s = 0.0
        self._paused_at: float | None = None

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started_at - self._paused_s

    def pause(self) -> None:
        self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_s += time.perf_counter() - self._paused_at
            self._paused_at = None


class _ReporterCalls:
    """Calls the reporters in order and counts their time in ``stats.time_reporting_s``.

    ``finish`` reaches every reporter that was started, even when one of them fails (the first
    failure is raised afterwards); a save point before the start (a failed initial energy) only flushes.
    """

    def __init__(self, reporters: list[Any], stats: RunStats):
        self.reporters = reporters
        self.stats = stats
        self.started: list[Any] = []
        self.started_run: RunInfo | None = None

    def _each(self, reporters: list[Any], method: str, *args: Any) -> None:
        t0 = time.perf_counter()
        try:
            for reporter in reporters:
                function = getattr(reporter, method, None)
                if function is not None:
                    function(*args)
        finally:
            self.stats.time_reporting_s += time.perf_counter() - t0

    def start(self, run: RunInfo) -> None:
        self.started_run = run
        t0 = time.perf_counter()
        try:
            for reporter in self.reporters:
                self.started.append(reporter)
                if hasattr(reporter, "start"):
                    reporter.start(run)
        finally:
            self.stats.time_reporting_s += time.perf_counter() - t0

    def report(self, update: RoundUpdate) -> None:
        self._each(self.started, "report", update)

    def flush(self) -> None:
        if self.started:
            self._each(self.started, "flush", self.started_run)

    def finish(self, run: RunInfo, stats: RunStats, error: BaseException | None) -> None:
        failure: BaseException | None = None
        for reporter in self.started:
            try:
                if hasattr(reporter, "finish"):
                    reporter.finish(run, stats, error)
            except Exception as exc:  # noqa: BLE001 - every reporter finishes; the first failure is raised
                failure = failure or exc
        if failure is not None and error is None:
            raise failure
