"""What a dashboard run has produced so far: per-step traces, saved frames, running statistics,
and per block the lookahead K and the state of a learned draft correction.

The run thread appends whole ``RunResult`` blocks (``add``); the UI thread reads
copies (``rows_since``, ``frames``, ``summary``). One lock per ``RunData`` guards both.
Nothing here imports Panel, so it is usable (and tested) without a browser.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from lsd_engine import RunResult, RunStats, StepKind, observables, theory
from lsd_engine.validation import jsonable

from .comparison import Comparison

RAMA_BINS = 36
HISTORY_MIN_STEPS = 20  # speedup history starts once both runs have this many steps

#: StepKind -> (label, colour) used by every view, so the 3D view and the strips agree.
KIND_STYLE = {
    int(StepKind.INITIAL): ("initial", "#7f7f7f"),
    int(StepKind.TARGET): ("target / bonus", "#1f77b4"),
    int(StepKind.ACCEPTED): ("accepted", "#2ca02c"),
    int(StepKind.REPAIRED): ("repaired", "#d62728"),
}


class _Column:
    """An append-only 1-D numpy array that doubles its capacity."""

    def __init__(self, dtype: Any = float):
        self._data = np.empty(256, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=self._data.dtype).ravel()
        need = self.size + values.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), dtype=self._data.dtype)
            grown[:self.size] = self._data[:self.size]
            self._data = grown
        self._data[self.size:need] = values
        self.size = need

    def view(self, start: int = 0) -> np.ndarray:
        return self._data[start:self.size]


def mean_lookahead(rounds_by_lookahead: np.ndarray) -> float:
    """Mean K of the rounds counted in ``rounds_by_lookahead`` (entry K: rounds with lookahead K); NaN if none."""
    counts = np.asarray(rounds_by_lookahead, dtype=float)
    total = counts.sum()
    return float(np.arange(counts.size) @ counts / total) if total > 0 else math.nan


def draft_learning_state(requested: str, correction: Any) -> dict[str, Any]:
    """JSON-ready state of a sampler's draft correction: ``requested`` is the dashboard's choice
    (``online`` resolves to a concrete correction), ``uses_model`` / ``n_labels`` are None for
    constant EC (nothing learned) and for no correction."""
    learned = correction is not None and hasattr(correction, "uses_model")
    return {"requested": requested, "name": getattr(correction, "name", None) if correction is not None else None,
            "learned": learned,
            "uses_model": bool(correction.uses_model) if learned else None,
            "n_labels": int(getattr(correction, "n_labels", 0)) if learned else None}


def learning_text(learning: dict[str, Any]) -> str:
    """``bonded (model in use, 812 labels)``, ``off (constant error correction)`` …"""
    if not learning:
        return "–"
    if learning.get("name") is None:
        return "off (no error correction)"
    if not learning.get("learned"):
        return "constant error correction" if learning.get("requested") == "constant" else \
            "off (constant error correction)"
    name, requested = learning["name"], learning.get("requested")
    label = name if requested in (None, name) else f"{requested} → {name}"
    state = "model in use" if learning.get("uses_model") else "constant EC for now"
    return f"{label} ({state}, {learning.get('n_labels', 0)} labels)"


def execution_text(execution: dict[str, Any]) -> str:
    """``in this process on cpu (AMD EPYC)``, ``dask (cuda cluster), 2 workers on cuda:0 (NVIDIA H200)`` …"""
    if not execution:
        return "–"
    where = "in this process" if execution.get("executor") == "local" else (
        f"{execution.get('executor')}" + (f" ({execution['cluster']} cluster)" if execution.get("cluster") else "")
        + f", {execution.get('workers', '?')} workers")
    device = execution.get("device") or "cpu"
    name = execution.get("device_name")
    text = f"{where} on {device}" + (f" ({name})" if name else "")
    return text + (f"; {execution['note']}" if execution.get("note") else "")


def speculation_text(lookahead: int, learning: dict[str, Any], config: dict[str, Any]) -> str:
    """One line for the status: the K of the next round and what the draft correction is doing."""
    k = f"K {int(lookahead)}"
    if config.get("adaptive_lookahead"):
        k += f" (adaptive {config.get('min_lookahead', 1)}–{config.get('lookahead')})"
    return f"{k}; draft learning: {learning_text(learning)}"


@dataclass
class StatsTotals(RunStats):
    """The engine's ``RunStats`` of a dashboard run, added up exactly (counts, not rates)."""

    def add(self, stats: RunStats) -> None:
        """Add a block's statistics (``RunStats`` addition: counts and times summed, rates recomputed)."""
        total = self + stats
        for f in fields(RunStats):
            setattr(self, f.name, getattr(total, f.name))

    @classmethod
    def own_time(cls, stats: RunStats) -> StatsTotals:
        """``stats`` without the time its reporters took (the page's own work between rounds: the
        plain-MD references, the comparison), so LSD's rate is that of LSD alone."""
        out = cls(**{f.name: getattr(stats, f.name) for f in fields(RunStats)})
        out.wall_time_s = max(0.0, stats.wall_time_s - stats.time_reporting_s)
        out.time_overhead_s = max(0.0, stats.time_overhead_s - stats.time_reporting_s)
        out.time_reporting_s = 0.0
        return out

    def per_step_ms(self) -> dict[str, float]:
        """Wall time per trajectory step split into draft / target / verification / overhead (ms)."""
        scale = 1000.0 / self.n_steps if self.n_steps else 0.0
        return {"draft": self.time_draft_s * scale, "target": self.time_target_s * scale,
                "verification": self.time_verification_s * scale, "overhead": self.time_overhead_s * scale}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ms_per_step": self.per_step_ms()}


class TrajectoryLog:
    """Per-step traces of one trajectory (LSD or the reference), frames every ``save_stride`` steps."""

    COLUMNS = ("step", "energy", "temperature", "kind", "phi", "psi")

    def __init__(self, label: str, masses: np.ndarray, save_stride: int = 10,
                 dihedrals: tuple[list[int], list[int]] | None = None):
        self.label = label
        self.masses = np.asarray(masses, dtype=float)
        self.save_stride = max(1, int(save_stride))
        self.dihedrals = dihedrals
        self.columns = {name: _Column(np.int8 if name == "kind" else (np.int64 if name == "step" else float))
                        for name in self.COLUMNS}
        self.frames: dict[str, list[np.ndarray]] = {"positions": [], "momenta": [], "steps": [], "kinds": [],
                                                     "energies": []}
        self.stats = StatsTotals()
        self.rama_counts = np.zeros((RAMA_BINS, RAMA_BINS))
        self.last_positions: np.ndarray | None = None
        self.last_kind = int(StepKind.INITIAL)
        self.last_step = 0
        self.started = False

    @property
    def n_steps(self) -> int:
        """Trajectory steps recorded after the initial state."""
        return self.stats.n_steps

    @property
    def n_rows(self) -> int:
        return self.columns["step"].size

    def add(self, result: RunResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Append a ``run(n, stride=1)`` result; its first frame repeats the previous block's last state.
        Returns the new (positions, momenta, energies)."""
        start = 0 if not self.started else 1
        self.stats.add(result.stats)
        return self.add_states(result.steps[start:], result.positions[start:], result.momenta[start:],
                               result.energies[start:], result.kinds[start:])

    def add_states(self, steps: np.ndarray, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray,
                   kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Append new states (the first call's first state is the initial one). Returns them."""
        self.started = True
        if len(positions) == 0:
            return positions, momenta, energies
        cols = self.columns
        cols["step"].extend(steps)
        cols["energy"].extend(energies)
        cols["temperature"].extend(observables.kinetic_temperature(momenta, self.masses))
        cols["kind"].extend(kinds)
        if self.dihedrals is not None:
            phi, psi = observables.phi_psi(positions, *self.dihedrals)
            cols["phi"].extend(phi)
            cols["psi"].extend(psi)
            self.rama_counts += observables.ramachandran_histogram(phi, psi, bins=RAMA_BINS, density=False)[0]
        keep = np.asarray(steps) % self.save_stride == 0
        if keep.any():
            for key, values in (("positions", positions), ("momenta", momenta), ("steps", steps),
                                ("kinds", kinds), ("energies", energies)):
                self.frames[key].append(np.array(values[keep]))
        self.last_positions = np.array(positions[-1])
        self.last_kind = int(kinds[-1])
        self.last_step = int(steps[-1])
        return positions, momenta, energies

    def rows_since(self, cursor: int) -> dict[str, np.ndarray]:
        """Copies of the per-step columns from row ``cursor`` on (phi/psi empty without dihedrals)."""
        return {name: col.view(cursor).copy() for name, col in self.columns.items()}

    def saved_frames(self) -> dict[str, np.ndarray]:
        """Frames kept every ``save_stride`` steps (positions (F, N, 3), momenta, steps, kinds, energies)."""
        if not self.frames["steps"]:
            n = len(self.masses)
            return {"positions": np.zeros((0, n, 3)), "momenta": np.zeros((0, n, 3)),
                    "steps": np.zeros(0, dtype=np.int64), "kinds": np.zeros(0, dtype=np.int8),
                    "energies": np.zeros(0)}
        return {key: np.concatenate(chunks) for key, chunks in self.frames.items()}

    def as_result(self, atoms: Any) -> RunResult:
        """The saved frames as an engine ``RunResult`` (``.write(path)``, ``.to_atoms_list()``)."""
        frames = self.saved_frames()
        return RunResult(positions=frames["positions"], momenta=frames["momenta"], energies=frames["energies"],
                         steps=frames["steps"], kinds=frames["kinds"], stats=RunStats(n_steps=self.n_steps),
                         numbers=atoms.get_atomic_numbers(), masses=atoms.get_masses(),
                         cell=np.array(atoms.get_cell()), pbc=atoms.get_pbc())

    def ramachandran(self) -> np.ndarray | None:
        """Normalised Ramachandran histogram (rows φ, columns ψ), None before any sample."""
        total = self.rama_counts.sum()
        return self.rama_counts / total if total > 0 else None

    def basin_populations(self) -> dict[str, float] | None:
        if self.dihedrals is None or self.columns["phi"].size == 0:
            return None
        return observables.basin_populations(self.columns["phi"].view(), self.columns["psi"].view())


class RunData:
    """Everything one dashboard run has produced: the LSD log, the reference log, and history."""

    def __init__(self, atoms: Any = None, config: dict[str, Any] | None = None, save_stride: int = 10,
                 dihedrals: tuple[list[int], list[int]] | None = None):
        self.lock = threading.RLock()
        self.config = dict(config or {})
        self.atoms = atoms
        masses = atoms.get_masses() if atoms is not None else np.ones(1)
        self.lsd = TrajectoryLog("LSD", masses, save_stride, dihedrals)
        self.reference = TrajectoryLog("target MD", masses, save_stride, dihedrals)
        self.draft = TrajectoryLog("draft MD", masses, save_stride, dihedrals)
        self.comparison = (Comparison(atoms, float(self.config.get("temperature_K", 300.0)), dihedrals)
                           if atoms is not None else None)
        self.history = {"step": _Column(np.int64), "measured": _Column(), "predicted": _Column(),
                        "acceptance": _Column()}
        # per LSD block: the K of the next round, and the mean K of the rounds that ended in the block
        self.blocks = {"step": _Column(np.int64), "lookahead": _Column(np.int64), "mean_lookahead": _Column()}
        self.lookahead_now: int | None = None
        self.learning: dict[str, Any] = {}  # draft_learning_state of the sampler's correction
        self.execution: dict[str, Any] = {}  # where the target runs (lsd_engine.executors.describe_execution)
        self.auto_draft: dict[str, Any] | None = None  # the ranking behind a draft 'auto' (DraftRanking.to_dict)
        self.version = 0

    @property
    def has_dihedrals(self) -> bool:
        return self.lsd.dihedrals is not None

    def set_execution(self, execution: dict[str, Any]) -> None:
        with self.lock:
            self.execution = dict(execution)
            self.version += 1

    def add_lsd(self, result: RunResult) -> None:
        self._add(self.lsd, result)

    def add_lsd_update(self, update: Any) -> None:
        """A live update of the LSD run (``lsd_engine.reporters.LiveUpdate``): its new states and the
        run's exact statistics so far, less the time the page's own work took in between."""
        with self.lock:
            block = self.lsd.add_states(update.steps, update.positions, update.momenta, update.energies,
                                        update.kinds)
            self.lsd.stats = StatsTotals.own_time(update.stats)
            if self.comparison is not None and len(block[0]):
                self.comparison.add(self.lsd.label, *block)
            self.version += 1

    def add_reference(self, result: RunResult) -> None:
        self._add(self.reference, result)

    def add_draft(self, result: RunResult) -> None:
        self._add(self.draft, result)

    def _add(self, log: TrajectoryLog, result: RunResult) -> None:
        with self.lock:
            block = log.add(result)
            if self.comparison is not None:
                self.comparison.add(log.label, *block)
            self.version += 1

    def mark_block(self) -> None:
        """Record the speedup history point after a block of LSD (+ reference) steps."""
        with self.lock:
            self.version += 1
            if min(self.lsd.n_steps, self.reference.n_steps) < HISTORY_MIN_STEPS:
                return  # the first blocks' timings are start-up noise
            h = self.history
            h["step"].extend([self.lsd.n_steps])
            h["measured"].extend([self.measured_speedup()])
            h["predicted"].extend([self.predicted_speedup()])
            h["acceptance"].extend([self.lsd.stats.acceptance_rate])

    def history_since(self, cursor: int) -> dict[str, np.ndarray]:
        with self.lock:
            return {k: v.view(cursor).copy() for k, v in self.history.items()}

    def record_speculation(self, lookahead: int, learning: dict[str, Any],
                           rounds_by_lookahead: np.ndarray | None = None) -> None:
        """After an LSD update (``rounds_by_lookahead``: rounds by K that ended since the previous one;
        None before the first): the sampler's current K and its draft correction's state."""
        with self.lock:
            self.lookahead_now = int(lookahead)
            self.learning = dict(learning)
            if rounds_by_lookahead is not None:
                b = self.blocks
                b["step"].extend([self.lsd.n_steps])
                b["lookahead"].extend([self.lookahead_now])
                b["mean_lookahead"].extend([mean_lookahead(rounds_by_lookahead)])
            self.version += 1

    def blocks_since(self, cursor: int) -> dict[str, np.ndarray]:
        with self.lock:
            return {k: v.view(cursor).copy() for k, v in self.blocks.items()}

    def lookahead_shares(self) -> np.ndarray:
        """Share of the rounds so far that used lookahead K (entry K - 1 for K = 1..K_max)."""
        counts = np.asarray(self.lsd.stats.rounds_by_lookahead, dtype=float)[1:]
        total = counts.sum()
        return counts / total if total > 0 else np.zeros(counts.size)

    # -- derived numbers ------------------------------------------------------
    def measured_speedup(self) -> float:
        """LSD steps/s over plain target-MD steps/s, both timed in the same run thread."""
        lsd, ref = self.lsd.stats.steps_per_s, self.reference.stats.steps_per_s
        if not (math.isfinite(lsd) and math.isfinite(ref)) or ref <= 0:
            return math.nan
        return lsd / ref

    def costs(self) -> dict[str, float]:
        """Measured per-call costs: draft step, target call of the reference (B=1) and of LSD rounds."""
        s, r = self.lsd.stats, self.reference.stats
        return {
            "draft_step_s": s.time_draft_s / s.draft_calls if s.draft_calls else math.nan,
            "target_single_s": r.time_target_s / r.target_calls if r.target_calls else math.nan,
            "target_round_s": s.time_target_s / s.target_calls if s.target_calls else math.nan,
            "mean_batch": s.target_evaluations / s.target_calls if s.target_calls else math.nan,
            "overhead_per_round_s": ((s.time_verification_s + s.time_overhead_s) / s.rounds
                                     if s.rounds else math.nan),
        }

    def _lookahead_mix(self, k_max: int) -> tuple[np.ndarray, np.ndarray]:
        """(K values, rounds with each) of the run so far; just K_max before any round ended."""
        counts = np.asarray(self.lsd.stats.rounds_by_lookahead, dtype=float)[:k_max + 1]
        ks = np.flatnonzero(counts[1:]) + 1
        if ks.size == 0:
            return np.array([k_max]), np.ones(1)
        return ks, counts[ks]

    def predicted_steps_per_round(self) -> float:
        """E_K from the measured acceptance by depth, averaged over the K the rounds used."""
        a = self.lsd.stats.acceptance_by_depth
        if a.size == 0 or np.all(np.isnan(a)):
            return math.nan
        ks, weights = self._lookahead_mix(a.size)
        return float(np.average([theory.expected_steps_per_round(np.nan_to_num(a), int(k)) for k in ks],
                                weights=weights))

    def predicted_speedup(self) -> float:
        """docs/theory.md §10.2: S = E_K T_t(1) / (K T_d + T_t(K+1) + overhead) with the measured acceptance
        by depth and measured costs (T_t(1) from the reference run, T_t(round) from LSD's rounds).
        With adaptive K: steps over time summed over the K the rounds used, Σ n_K E_K / Σ n_K E_K / S_K."""
        a = self.lsd.stats.acceptance_by_depth
        c = self.costs()
        if a.size == 0 or np.all(np.isnan(a)) or not all(math.isfinite(v) for v in c.values()):
            return math.nan
        # T_t(B) through the two measured points: B = 1 (reference) and the mean LSD batch
        batch = max(2, round(c["mean_batch"]))
        # a batch never costs less than one state (timing noise can say otherwise early in a run)
        cost = theory.target_cost_from_table({1: c["target_single_s"],
                                              batch: max(c["target_round_s"], c["target_single_s"])})
        ks, weights = self._lookahead_mix(a.size)
        return theory.mixed_lookahead(np.nan_to_num(a), dict(zip(ks.tolist(), weights)), c["draft_step_s"], cost,
                                      c["overhead_per_round_s"])[1]

    def ns_per_day(self) -> dict[str, float]:
        """Simulated time per wall-clock day of each run (ns/day, as MD users quote it)."""
        dt_fs = float(self.config.get("timestep_fs", math.nan))
        rate = {"LSD": self.lsd.stats.steps_per_s, "target MD": self.reference.stats.steps_per_s,
                "draft MD": self.draft.stats.steps_per_s}
        return {run: (r * dt_fs * 86400.0 * 1e-6 if math.isfinite(r) and r > 0 else math.nan)
                for run, r in rate.items()}

    def js_divergence(self) -> float:
        p, q = self.lsd.ramachandran(), self.reference.ramachandran()
        if p is None or q is None:
            return math.nan
        return observables.jensen_shannon(p, q)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary of the run: configuration, both runs' statistics, speedups, observables."""
        with self.lock:
            return jsonable({
                "config": self.config,
                "lsd": self.lsd.stats.to_dict(),
                "reference_md": self.reference.stats.to_dict(),
                "measured_speedup": self.measured_speedup(),
                "predicted_speedup": self.predicted_speedup(),
                "predicted_steps_per_round": self.predicted_steps_per_round(),
                "measured_costs": self.costs(),
                "speculation": {"lookahead_now": self.lookahead_now, "draft_learning": self.learning,
                                "draft_learning_text": learning_text(self.learning),
                                "mean_lookahead": mean_lookahead(self.lsd.stats.rounds_by_lookahead)},
                "ramachandran_js_divergence_bits": self.js_divergence(),
                "draft_md": self.draft.stats.to_dict() if self.draft.n_steps else None,
                "execution": self.execution,
                "auto_draft": self.auto_draft,
                "throughput_ns_per_day": self.ns_per_day(),
                "comparison": self.comparison.reports() if self.comparison is not None else [],
                "converged": self.comparison.converged() if self.comparison is not None else None,
                "basin_populations": {"lsd": self.lsd.basin_populations(),
                                      "reference_md": self.reference.basin_populations()},
            })
