"""The run loop shared by plain Langevin MD and the speculative sampler.

A subclass implements ``_advance`` (one MD step, or one speculative round); this
class owns the state, recording, files, checkpoints, progress and interrupts.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ase import Atoms

from .checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from .errors import CheckpointError, ModelError
from .kernel import maxwell_boltzmann_momenta
from .models.base import ForceModel
from .params import IntegratorConstants, LangevinParams
from .formats import StateLog, open_trajectory
from .reporters import FrameWriter, write_summary
from .results import FrameRecorder, RunResult, RunStats, StatsCounter, StepBlock
from .rng import CounterRNG, Purpose

DEFAULT_CHECKPOINT_EVERY = 1000


def _check_model(model: Any, role: str, n_atoms: int) -> ForceModel:
    if not callable(getattr(model, "evaluate", None)):
        raise TypeError(f"{role} model must have an evaluate(positions) method "
                        f"(wrap a function with FunctionModel), got {type(model).__name__}")
    expected = getattr(model, "n_atoms", None)
    if expected is not None and expected != n_atoms:
        raise ValueError(f"{role} model {getattr(model, 'name', model)!r} is bound to {expected} atoms, "
                         f"but the system has {n_atoms}")
    return model


@dataclass
class Observer:
    """A function attached to a simulation: called at the end of the first round reaching each
    multiple of ``interval`` steps."""

    function: Callable[..., Any]
    interval: int
    args: tuple
    kwargs: dict
    next_step: int

    def notify(self, step: int) -> None:
        if step >= self.next_step:
            self.next_step = (step // self.interval + 1) * self.interval
            self.function(*self.args, **self.kwargs)


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
        self.observers: list[Observer] = []
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
        """
        if not callable(function):
            raise TypeError(f"attach needs a callable, got {type(function).__name__}")
        interval = _positive_int(interval, "interval")
        observer = Observer(function, interval, args, kwargs, (self.step // interval + 1) * interval)
        self.observers.append(observer)
        return observer

    def run(self, n_steps: int, *, stride: int = 1, trajectory: str | os.PathLike | None = None,
            append: bool = False, checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, summary: str | os.PathLike | None = None,
            progress: bool = False, state_log: str | os.PathLike | None = None) -> RunResult:
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
        """
        n_steps = _positive_int(n_steps, "n_steps", allow_zero=True)
        stride = _positive_int(stride, "stride")
        checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every")
        for path in (trajectory, checkpoint, summary, state_log):
            if path is not None and not Path(path).resolve().parent.is_dir():
                raise FileNotFoundError(f"output folder does not exist: {Path(path).resolve().parent}")
        counter = StatsCounter(self._lookahead())
        self.live_stats = counter.stats
        start_time = time.perf_counter()
        start_step = self.step
        end_step = start_step + n_steps
        timestep_fs = self.params.timestep_fs
        writer = open_trajectory(trajectory, self.atoms, append, timestep_fs) if trajectory is not None else None
        log = StateLog(state_log, self.atoms.get_masses(), timestep_fs, append) if state_log is not None else None
        bar = _progress_bar(n_steps, progress)
        recorder: FrameRecorder | None = None
        last_saved = start_step
        try:
            if n_steps > 0 or self.energy is None:
                self._prepare(counter)
            recorder = FrameRecorder(stride, start_step, self.positions, self.momenta, self.energy)
            first = (np.array([start_step]), self.positions[None], self.momenta[None], np.array([self.energy]))
            if writer is not None and writer.starts_new_file:
                writer.add(first[1], first[2], first[3], steps=first[0])
            if log is not None and log.starts_new_file:
                log.add(first[0], first[2], first[3])
            next_bar_update = 0.0
            while self.step < end_step:
                block = self._advance(end_step - self.step, counter)
                kept = recorder.add(block, self.step + 1)
                self.positions = block.positions[-1]
                self.momenta = block.momenta[-1]
                self.energy = float(block.energies[-1])
                self.step += len(block.energies)
                self.live_block = block
                for observer in self.observers:
                    observer.notify(self.step)
                if writer is not None and kept is not None:
                    writer.add(kept[1].positions, kept[1].momenta, kept[1].energies, steps=kept[0])
                if log is not None and kept is not None:
                    elapsed_days = (time.perf_counter() - start_time) / 86400.0
                    log.add(kept[0], kept[1].momenta, kept[1].energies,
                            (self.step - start_step) * timestep_fs * 1e-6 / elapsed_days)
                if self.step - last_saved >= checkpoint_every:
                    self._save_outputs(writer, checkpoint, log)
                    last_saved = self.step
                if bar is not None:
                    bar.update(len(block.energies))
                    now = time.perf_counter()
                    if now >= next_bar_update:
                        bar.set_postfix_str(_progress_text(counter), refresh=False)
                        next_bar_update = now + 0.5
        except BaseException as exc:
            self._save_outputs(writer, checkpoint, log)
            if isinstance(exc, ModelError) and recorder is not None:
                stats = counter.finish(self.step - start_step, time.perf_counter() - start_time)
                exc.partial_result = self._result(recorder, stats)
                if summary is not None:
                    write_summary(summary, self._summary(stats, error=str(exc)))
            raise
        finally:
            if bar is not None:
                bar.close()
        self._save_outputs(writer, checkpoint, log)
        stats = counter.finish(n_steps, time.perf_counter() - start_time)
        if summary is not None:
            write_summary(summary, self._summary(stats))
        return self._result(recorder, stats)

    def _result(self, recorder: FrameRecorder, stats) -> RunResult:
        return recorder.result(stats, self.atoms.get_atomic_numbers(), self.atoms.get_masses(),
                               np.array(self.atoms.get_cell()), self.atoms.get_pbc())

    def _save_outputs(self, writer: FrameWriter | None, checkpoint: str | os.PathLike | None,
                      log: StateLog | None = None) -> None:
        if writer is not None:
            writer.flush()
        if log is not None:
            log.flush()
        if checkpoint is not None and self.energy is not None:
            self.save_checkpoint(checkpoint)

    def _summary(self, stats, error: str | None = None) -> dict[str, Any]:
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


def _positive_int(value: Any, name: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")
    return int(value)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, mininterval=0.5)


def _progress_text(counter: StatsCounter) -> str:
    verified = int(counter.depth_verified.sum())
    if verified:
        return f"acc={counter.depth_accepted.sum() / verified:.2f}"
    return ""
