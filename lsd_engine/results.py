"""Run results: saved frames, per-step kinds, and run statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from typing import Any, Iterable

import numpy as np

from .validation import jsonable


class StepKind(IntEnum):
    """How a step of the trajectory was produced (distinguishable in the app)."""

    INITIAL = 0  # the state the run started from
    TARGET = 1  # sampled from the target kernel directly (plain MD, or the bonus step)
    ACCEPTED = 2  # a drafted step accepted by the coupling
    REPAIRED = 3  # a rejected drafted step, repaired by the reflection transport map


#: RunStats fields that are per-depth / per-K count arrays (summed entry by entry, zero-padded).
_COUNT_ARRAYS = ("verified_by_depth", "accepted_by_depth", "rounds_by_lookahead")
#: RunStats fields derived from the counts (recomputed, never summed).
_RATES = ("acceptance_rate", "acceptance_by_depth")


@dataclass
class RunStats:
    """Statistics of one ``run`` call. Also readable as ``stats['name']``.

    acceptance_rate: accepted / verified drafted steps (NaN for plain MD).
    acceptance_by_depth: acceptance at draft depth 1..K, conditional on reaching it
    (accepted_by_depth / verified_by_depth).
    verified_by_depth, accepted_by_depth: rounds that verified / accepted depth 1..K.
    rounds_by_lookahead: entry K counts the rounds that ended in this call with lookahead K
    (index 0 unused; one K unless the lookahead is adaptive).
    Times are wall-clock seconds; overhead = wall - draft - target - verification;
    time_learning_s (refitting a learned draft correction) is part of those, shown apart;
    time_reporting_s (reporters: files, progress bar, live data) is part of the overhead.
    Pauses (``RunControl.pause``) are not in any time.

    ``a + b`` (or ``RunStats.combine(list)``) is the statistics of the two runs together,
    exactly: counts and times are summed, the rates recomputed from the summed counts.
    """

    n_steps: int = 0
    acceptance_rate: float = math.nan
    acceptance_by_depth: np.ndarray = field(default_factory=lambda: np.zeros(0))
    verified_by_depth: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    accepted_by_depth: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
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
    time_reporting_s: float = 0.0  # reporters (files, progress, live data), already inside the overhead
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

    def __add__(self, other: RunStats) -> RunStats:
        """The statistics of this run and ``other`` together (exact: counts and times summed)."""
        if not isinstance(other, RunStats):
            return NotImplemented
        summed: dict[str, Any] = {}
        for f in fields(RunStats):
            if f.name in _COUNT_ARRAYS:
                summed[f.name] = padded_sum(getattr(self, f.name), getattr(other, f.name))
            elif f.name not in _RATES:
                summed[f.name] = getattr(self, f.name) + getattr(other, f.name)
        summed.update(_rates(summed["verified_by_depth"], summed["accepted_by_depth"]))
        return replace(self, **summed)

    def __radd__(self, other: Any) -> RunStats:
        if isinstance(other, int) and other == 0:  # sum(stats_list) starts from 0
            return self + RunStats()
        return NotImplemented

    @staticmethod
    def combine(stats: Iterable[RunStats]) -> RunStats:
        """The statistics of several runs together (an empty ``RunStats`` for none)."""
        total = RunStats()
        for s in stats:
            total = total + s
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None, arrays become lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            out[f.name] = jsonable(getattr(self, f.name))
        out["steps_per_s"] = jsonable(self.steps_per_s)
        out["steps_per_round"] = jsonable(self.steps_per_round)
        return out


def padded_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b for integer count arrays of possibly different lengths (the shorter one zero-padded)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    n = max(a.size, b.size)
    return np.pad(a, (0, n - a.size)) + np.pad(b, (0, n - b.size))


def _rates(verified_by_depth: np.ndarray, accepted_by_depth: np.ndarray) -> dict[str, Any]:
    """acceptance_by_depth (NaN where a depth was never verified) and acceptance_rate from the counts."""
    if not verified_by_depth.size:
        return {"acceptance_by_depth": np.zeros(0), "acceptance_rate": math.nan}
    with np.errstate(invalid="ignore", divide="ignore"):
        by_depth = np.where(verified_by_depth > 0, accepted_by_depth / np.maximum(verified_by_depth, 1), np.nan)
    verified = int(verified_by_depth.sum())
    return {"acceptance_by_depth": by_depth,
            "acceptance_rate": float(accepted_by_depth.sum()) / verified if verified else math.nan}


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

    def snapshot(self, n_steps: int, wall_time_s: float) -> RunStats:
        """The statistics so far, as a new ``RunStats`` (the counters keep running)."""
        return self._fill(replace(self.stats), n_steps, wall_time_s)

    def finish(self, n_steps: int, wall_time_s: float) -> RunStats:
        """The final statistics (``self.stats``, completed)."""
        return self._fill(self.stats, n_steps, wall_time_s)

    def _fill(self, s: RunStats, n_steps: int, wall_time_s: float) -> RunStats:
        s.n_steps = n_steps
        s.wall_time_s = wall_time_s
        s.time_overhead_s = max(0.0, wall_time_s - s.time_draft_s - s.time_target_s - s.time_verification_s)
        if self.depth_verified.size:
            s.verified_by_depth = self.depth_verified.copy()
            s.accepted_by_depth = self.depth_accepted.copy()
            s.rounds_by_lookahead = self.lookahead_rounds.copy()
            for name, value in _rates(self.depth_verified, self.depth_accepted).items():
                setattr(s, name, value)
        return s


@dataclass
class StepBlock:
    """States produced by one advance (a plain step or a speculative round), in order."""

    positions: np.ndarray  # (m, N, 3) Å
    momenta: np.ndarray  # (m, N, 3) amu Å / ASE time
    energies: np.ndarray  # (m,) eV, target energy at each step's force-evaluation point
    kinds: np.ndarray  # (m,) StepKind codes


def strided(block: StepBlock, first_step: int, stride: int) -> tuple[np.ndarray, StepBlock] | None:
    """The states of ``block`` (steps first_step, first_step + 1, ...) at multiples of ``stride``:
    (their steps, those states), or None if there are none."""
    steps = np.arange(first_step, first_step + len(block.energies))
    keep = (steps % stride) == 0 if stride > 1 else slice(None)
    steps = steps[keep]
    if len(steps) == 0:
        return None
    return steps, StepBlock(block.positions[keep], block.momenta[keep], block.energies[keep], block.kinds[keep])


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
    stopped: bool = False  # ended early by RunControl.stop()

    def __len__(self) -> int:
        return len(self.steps)

    def to_atoms_list(self) -> list:
        """One ase.Atoms per frame, with momenta and the energy attached."""
        from .frames import frame_atoms

        return [frame_atoms(self.numbers, self.masses, self.cell, self.pbc, x, p, e)
                for x, p, e in zip(self.positions, self.momenta, self.energies)]

    def write(self, path: str) -> None:
        """Write the frames to an ASE-readable file (.traj, .xyz/.extxyz)."""
        from .formats import write_frames

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
        kept = strided(block, first_step, self.stride)
        if kept is None:
            return None
        steps, states = kept
        self.positions.append(states.positions)
        self.momenta.append(states.momenta)
        self.energies.append(states.energies)
        self.steps.append(steps)
        self.kinds.append(states.kinds.astype(np.int8))
        return kept

    def result(self, stats: RunStats, numbers, masses, cell, pbc) -> RunResult:
        return RunResult(
            positions=np.concatenate(self.positions), momenta=np.concatenate(self.momenta),
            energies=np.concatenate(self.energies), steps=np.concatenate(self.steps),
            kinds=np.concatenate(self.kinds), stats=stats, numbers=numbers, masses=masses,
            cell=cell, pbc=pbc)
