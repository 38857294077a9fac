"""Run results: saved frames, per-step kinds, and run statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

import numpy as np


class StepKind(IntEnum):
    """How a step of the trajectory was produced (distinguishable in the app)."""

    INITIAL = 0  # the state the run started from
    TARGET = 1  # sampled from the target kernel directly (plain MD, or the bonus step)
    ACCEPTED = 2  # a drafted step accepted by the coupling
    REPAIRED = 3  # a rejected drafted step, repaired by the reflection transport map


@dataclass
class RunStats:
    """Statistics of one ``run`` call. Also readable as ``stats['name']``.

    acceptance_rate: accepted / verified drafted steps (NaN for plain MD).
    acceptance_by_depth: acceptance at draft depth 1..K, conditional on reaching it.
    rounds_by_lookahead: entry K counts the rounds that ended in this call with lookahead K
    (index 0 unused; one K unless the lookahead is adaptive).
    Times are wall-clock seconds; overhead = wall - draft - target - verification;
    time_learning_s (refitting a learned draft correction) is part of those, shown apart.
    """

    n_steps: int = 0
    acceptance_rate: float = math.nan
    acceptance_by_depth: np.ndarray = field(default_factory=lambda: np.zeros(0))
    verified_by_depth: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rounds_by_lookahead: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    accepted_steps: int = 0
    repaired_steps: int = 0
    target_steps: int = 0
    rounds: int = 0
    target_calls: int = 0
    target_evaluations: int = 0
    draft_calls: int = 0
    retries: int = 0
    time_draft_s: float = 0.0
    time_target_s: float = 0.0
    time_verification_s: float = 0.0
    time_overhead_s: float = 0.0
    time_learning_s: float = 0.0  # draft-correction refits (observe), already inside the times above
    wall_time_s: float = 0.0

    @property
    def steps_per_s(self) -> float:
        return self.n_steps / self.wall_time_s if self.wall_time_s > 0 else math.nan

    @property
    def steps_per_round(self) -> float:
        return self.n_steps / self.rounds if self.rounds else math.nan

    def __getitem__(self, key: str) -> Any:
        if key in self.to_dict():
            return getattr(self, key)
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None, arrays become lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        out["steps_per_s"] = _jsonable(self.steps_per_s)
        out["steps_per_round"] = _jsonable(self.steps_per_round)
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class StatsCounter:
    """Mutable counters filled during a run, frozen into ``RunStats`` at the end."""

    def __init__(self, lookahead: int = 0):
        self.depth_verified = np.zeros(lookahead, dtype=np.int64)
        self.depth_accepted = np.zeros(lookahead, dtype=np.int64)
        self.lookahead_rounds = np.zeros(lookahead + 1 if lookahead else 0, dtype=np.int64)
        self.stats = RunStats()

    def record_round(self, n_verified: int, n_accepted: int) -> None:
        """A round verified depths 1..n_verified and accepted depths 1..n_accepted."""
        self.depth_verified[:n_verified] += 1
        self.depth_accepted[:n_accepted] += 1
        self.stats.rounds += 1

    def record_lookahead(self, lookahead: int) -> None:
        """A round with lookahead K ended."""
        self.lookahead_rounds[lookahead] += 1

    def finish(self, n_steps: int, wall_time_s: float) -> RunStats:
        s = self.stats
        s.n_steps = n_steps
        s.wall_time_s = wall_time_s
        s.time_overhead_s = max(0.0, wall_time_s - s.time_draft_s - s.time_target_s - s.time_verification_s)
        verified = int(self.depth_verified.sum())
        if self.depth_verified.size:
            s.verified_by_depth = self.depth_verified.copy()
            s.rounds_by_lookahead = self.lookahead_rounds.copy()
            with np.errstate(invalid="ignore", divide="ignore"):
                s.acceptance_by_depth = np.where(self.depth_verified > 0,
                                                 self.depth_accepted / np.maximum(self.depth_verified, 1), np.nan)
            s.acceptance_rate = float(self.depth_accepted.sum()) / verified if verified else math.nan
        return s


@dataclass
class StepBlock:
    """States produced by one advance (a plain step or a speculative round), in order."""

    positions: np.ndarray  # (m, N, 3) Å
    momenta: np.ndarray  # (m, N, 3) amu Å / ASE time
    energies: np.ndarray  # (m,) eV, target energy at each step's force-evaluation point
    kinds: np.ndarray  # (m,) StepKind codes


@dataclass
class RunResult:
    """Frames saved by a run: initial state first, then every ``stride``-th step.

    positions, momenta: (F, N, 3) in Å and amu·Å/ASE-time (as ase.Atoms.get_momenta()).
    energies: (F,) eV — target potential energy at the initial positions for the
    first frame, and at the force-evaluation (half-step) position of each later step.
    steps: (F,) step indices; kinds: (F,) StepKind codes.
    """

    positions: np.ndarray
    momenta: np.ndarray
    energies: np.ndarray
    steps: np.ndarray
    kinds: np.ndarray
    stats: RunStats
    numbers: np.ndarray
    masses: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    def to_atoms_list(self) -> list:
        """One ase.Atoms per frame, with momenta and the energy attached."""
        from .reporters import frame_atoms

        return [frame_atoms(self.numbers, self.masses, self.cell, self.pbc, x, p, e)
                for x, p, e in zip(self.positions, self.momenta, self.energies)]

    def write(self, path: str) -> None:
        """Write the frames to an ASE-readable file (.traj, .xyz/.extxyz)."""
        from .reporters import write_frames

        write_frames(path, self.to_atoms_list(), append=False)


class FrameRecorder:
    """Keeps the initial state and every ``stride``-th later step."""

    def __init__(self, stride: int, start_step: int, positions: np.ndarray, momenta: np.ndarray,
                 energy: float):
        self.stride = stride
        self.positions = [positions[None].copy()]
        self.momenta = [momenta[None].copy()]
        self.energies = [np.array([energy])]
        self.steps = [np.array([start_step])]
        self.kinds = [np.array([StepKind.INITIAL], dtype=np.int8)]

    def add(self, block: StepBlock, first_step: int) -> tuple[np.ndarray, StepBlock] | None:
        """Record the kept states of a block; returns (steps, kept block) or None."""
        steps = np.arange(first_step, first_step + len(block.energies))
        keep = (steps % self.stride) == 0 if self.stride > 1 else slice(None)
        kept = StepBlock(block.positions[keep], block.momenta[keep], block.energies[keep], block.kinds[keep])
        if len(kept.energies) == 0:
            return None
        self.positions.append(kept.positions)
        self.momenta.append(kept.momenta)
        self.energies.append(kept.energies)
        self.steps.append(steps[keep])
        self.kinds.append(kept.kinds.astype(np.int8))
        return steps[keep], kept

    def result(self, stats: RunStats, numbers, masses, cell, pbc) -> RunResult:
        return RunResult(
            positions=np.concatenate(self.positions), momenta=np.concatenate(self.momenta),
            energies=np.concatenate(self.energies), steps=np.concatenate(self.steps),
            kinds=np.concatenate(self.kinds), stats=stats, numbers=numbers, masses=masses,
            cell=cell, pbc=pbc)
