"""The draft advisor (``--draft auto``): calibrate every installed draft that fits the system, rank them.

For each candidate draft the registry can build for the system, ``theory.predict`` runs a
short draft-only Langevin calibration and evaluates draft and target on a few blocks of
consecutive states: acceptance by depth with speculative error correction (EC) and an
EC reference as old as the depth, as in the sampler. Costs come from the cache-safe timer
(``lsd_engine.timing``): the target's batch costs once for all candidates, each draft's own
call. Candidates are ranked by the predicted speedup of the cost model
(``theory.synchronous_speedup``) at the run's lookahead, or at the best K <= lookahead when
K is adaptive. A candidate that cannot be built (missing package, unsupported elements, no
topology) or fails during calibration is listed with the reason and never chosen.

``build_auto_models`` then warns when even the winner cannot beat plain target MD in synchronous
rounds (``DraftRanking.no_gain_note``: a target that does not batch) and, through
``decide_learning``, turns draft learning off when even a perfect learned draft could not pay for
its own cost (``lsd_engine.learning.payoff``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
from ase import Atoms

from . import models, theory, timing
from .errors import LSDError
from .models.base import ForceModel
from .params import DEFAULT_LOOKAHEAD, LangevinParams

if TYPE_CHECKING:
    from .runconfig import RunConfig

__all__ = ["AUTO_DRAFT", "DraftCandidate", "DraftRanking", "build_auto_models", "candidate_drafts", "decide_learning",
           "suggest_draft"]

#: The draft name that asks for this advice (``--draft auto``).
AUTO_DRAFT = "auto"

#: Calibration size: draft-only steps, target-evaluated states (in blocks of lookahead + 1), cost repeats,
#: and the target seconds the calibrations may spend in all (fewer states for a slow target, >= 1 block each).
CALIBRATION_STEPS = 300
TARGET_STATES = 36
TIMING_REPEATS = 3
TARGET_BUDGET_S = 10.0


@dataclass
class DraftCandidate:
    """One calibrated (or skipped) draft: acceptance by depth with EC, its cost, the predicted speedup."""

    name: str
    predicted_speedup: float = math.nan  # at the ranking's K (the run's lookahead, or the best K if adaptive)
    lookahead: int = 0  # that K
    expected_steps_per_round: float = math.nan
    acceptance_by_depth: list[float] = field(default_factory=list)
    rms_force_error_eV_per_A: float = math.nan
    draft_step_ms: float = math.nan
    calibration_s: float = 0.0
    skipped: str | None = None  # why it was not calibrated (None: it was)


@dataclass
class DraftRanking:
    """Calibrated candidates best first, then the skipped ones; ``winner`` is the best name."""

    target: str
    lookahead: int
    adaptive_lookahead: bool
    candidates: list[DraftCandidate]
    target_batch_ms: dict[int, float]
    seconds: float  # wall time of the whole advice (target timing + every calibration)
    learning_payoff: Any = None  # a LearningPayoff when decide_learning checked the run's draft learning

    @property
    def winner(self) -> str:
        ranked = [c for c in self.candidates if c.skipped is None]
        if not ranked:
            raise LSDError(f"no draft could be calibrated for target {self.target!r}: "
                           + "; ".join(f"{c.name}: {c.skipped}" for c in self.candidates))
        return ranked[0].name

    def no_gain_note(self) -> str:
        """A warning when even the winner is predicted slower than plain target MD (synchronous rounds);
        '' otherwise."""
        best = next(c for c in self.candidates if c.name == self.winner)
        if not best.predicted_speedup < 1.0:
            return ""
        batch = max(self.target_batch_ms)
        ratio = self.target_batch_ms[batch] / self.target_batch_ms[1]
        return (f"no installed draft is predicted to beat plain {self.target} MD in synchronous rounds "
                f"(best: {best.name} {best.predicted_speedup:.2f}x): a batch of {batch} states costs "
                f"{ratio:.1f}x one target call here, so checking K drafted steps costs about as much as taking them.")

    def table(self) -> str:
        """The ranking as a text table (one line per candidate), with the advice's own cost."""
        k_label = "best K" if self.adaptive_lookahead else "K"
        lines = [f"draft advice for target {self.target} ({self.seconds:.1f} s): ranked by predicted speedup",
                 f"  {'draft':<12} {'speedup':>8} {k_label:>6} {'E_K':>6} {'ms/call':>8} {'RMS dF':>7}  "
                 "acceptance by depth (EC)"]
        for c in self.candidates:
            if c.skipped is not None:
                lines.append(f"  {c.name:<12} skipped: {c.skipped}")
                continue
            depth = " ".join(f"{a:.2f}" for a in c.acceptance_by_depth[:8])
            lines.append(f"  {c.name:<12} {c.predicted_speedup:7.2f}x {c.lookahead:>6d} "
                         f"{c.expected_steps_per_round:6.2f} {c.draft_step_ms:8.3f} "
                         f"{c.rms_force_error_eV_per_A:7.3f}  {depth}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None)."""
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {"target": self.target, "lookahead": self.lookahead, "adaptive_lookahead": self.adaptive_lookahead,
                "winner": self.winner, "seconds": self.seconds, "no_gain_note": self.no_gain_note(),
                "learning_payoff": None if self.learning_payoff is None else self.learning_payoff.to_dict(),
                "target_batch_ms": {str(b): ms for b, ms in self.target_batch_ms.items()},
                "candidates": [{k: clean(v) for k, v in asdict(c).items()} for c in self.candidates]}


#: Drafts that need an argument (a file) and so are never tried by name alone.
NEEDS_AN_ARGUMENT = ("distilled",)


def candidate_drafts(target: str) -> list[str]:
    """Registry models meant as drafts (role 'draft', usable by name alone), other than ``target``."""
    return [spec.name for spec in models.available()
            if spec.role == "draft" and spec.name not in NEEDS_AN_ARGUMENT and spec.name != target.split(":")[0]]


def _build(name: str, atoms: Atoms, options: dict[str, Any]) -> tuple[ForceModel | None, str | None]:
    try:
        return models.create(name, atoms, **options), None
    except (LSDError, ImportError, ValueError, RuntimeError) as exc:
        return None, " ".join(str(exc).split())[:160]


def suggest_draft(atoms: Atoms, target: ForceModel, params: LangevinParams, *,
                  lookahead: int = DEFAULT_LOOKAHEAD,
                  adaptive_lookahead: bool = False, candidates: Iterable[str] | None = None,
                  draft_options: dict[str, dict[str, Any]] | None = None, seed: int = 0,
                  n_calibration_steps: int = CALIBRATION_STEPS, n_target_states: int = TARGET_STATES,
                  target_budget_s: float = TARGET_BUDGET_S,
                  log: Callable[[str], None] | None = print) -> DraftRanking:
    """Calibrate each candidate draft briefly for ``target`` on ``atoms`` and rank them.

    candidates: registry names (default :func:`candidate_drafts` of the target's name);
    draft_options: {name: options for ``models.create``}. ``log`` gets the table (None: silent).
    A draft whose call costs as much as the target's is skipped after one timed call (its speedup
    cannot exceed 1). Cost: one target timing, then per candidate a ``n_calibration_steps`` draft-only run and
    about ``n_target_states`` target evaluations in batches of lookahead + 1, fewer when all candidates
    together would spend more than ``target_budget_s`` in the target (at least one batch each).
    """
    start = time.perf_counter()
    target_name = getattr(target, "name", "target")
    names = list(candidate_drafts(target_name) if candidates is None else candidates)
    options = draft_options or {}
    block = lookahead + 1
    x0 = atoms.get_positions()[None]
    probe_s = timing.model_seconds_per_call(target, x0, repeats=1)  # first calls excluded; sizes the work
    repeats = TIMING_REPEATS if probe_s < 0.1 else 1
    target_costs = timing.measure_costs(target, target, x0, [1, 2, block], repeats)["target_batch_s"]
    affordable = int(target_budget_s / max(len(names), 1) / target_costs[block])
    n_states = block * max(1, min(n_target_states // block, affordable))
    results = []
    for name in names:
        t0 = time.perf_counter()
        draft, why = _build(name, atoms, options.get(name, {}))
        if draft is None:
            results.append(DraftCandidate(name, skipped=why))
            continue
        try:
            first_s = timing.model_seconds_per_call(draft, x0, repeats=1)
            if first_s >= target_costs[1]:  # K T_d + T_t(K+1) >= (K+1) T_t(1) >= E_K T_t(1): no speedup possible
                results.append(DraftCandidate(
                    name, draft_step_ms=1e3 * first_s, calibration_s=time.perf_counter() - t0,
                    skipped=f"a call costs {1e3 * first_s:.3g} ms, no less than the target's "
                            f"{1e3 * target_costs[1]:.3g} ms: it cannot speed the target up"))
                continue
            draft_s = timing.model_seconds_per_call(draft, x0, repeats=7 * TIMING_REPEATS)
            prediction = theory.predict(atoms, draft, target, params, lookahead=lookahead,
                                        n_calibration_steps=n_calibration_steps, n_target_samples=n_states,
                                        seed=seed, costs={"draft_step_s": draft_s, "target_batch_s": target_costs})
        except (LSDError, ValueError, RuntimeError, FloatingPointError) as exc:
            results.append(DraftCandidate(name, skipped="calibration failed: " + " ".join(str(exc).split())[:140],
                                          calibration_s=time.perf_counter() - t0))
            continue
        k = prediction.best_lookahead if adaptive_lookahead else lookahead
        profile = prediction.acceptance_by_depth
        results.append(DraftCandidate(
            name, predicted_speedup=float(prediction.speedup_by_lookahead[k - 1]), lookahead=int(k),
            expected_steps_per_round=float(theory.expected_steps_per_round(profile, k)),
            acceptance_by_depth=[float(a) for a in profile],
            rms_force_error_eV_per_A=prediction.rms_force_error_eV_per_A, draft_step_ms=1e3 * draft_s,
            calibration_s=time.perf_counter() - t0))
    results.sort(key=lambda c: (c.skipped is not None, -np.nan_to_num(c.predicted_speedup, nan=-1.0)))
    ranking = DraftRanking(target_name, lookahead, adaptive_lookahead, results,
                           {b: 1e3 * s for b, s in target_costs.items()}, time.perf_counter() - start)
    if log is not None:
        log(ranking.table())
    return ranking


def build_auto_models(config: "RunConfig", atoms: Atoms,
                      log: Callable[[str], None] | None = print) -> tuple[ForceModel, ForceModel, DraftRanking]:
    """(draft, target, ranking) for a configuration whose draft is ``auto``: the target is built, the
    installed drafts ranked for it with the run's physics and lookahead, and ``config.draft`` set to the
    winner (so summaries, checkpoints and ``--resume`` record the draft actually used, and a resumed run
    does not choose again). ``config.draft_options`` go to the winner only."""
    target = models.create(config.target, atoms, **config.target_options)
    ranking = suggest_draft(atoms, target, config.params(), lookahead=config.lookahead,
                            adaptive_lookahead=config.adaptive_lookahead, seed=config.seed, log=log)
    config.draft = ranking.winner
    if log is not None:
        log(f"draft: {config.draft} (chosen automatically in {ranking.seconds:.1f} s)")
        if config.mode == "sync" and ranking.no_gain_note():
            log(f"warning: {ranking.no_gain_note()} Verify on several workers (--executor dask --workers N "
                "--mode async, with a core or GPU per worker besides the drafting process) or use a target "
                "that batches (a GPU model).")
    decide_learning(config, atoms, ranking, log)
    return models.create(config.draft, atoms, **config.draft_options), target, ranking


def decide_learning(config: "RunConfig", atoms: Atoms, ranking: DraftRanking,
                    log: Callable[[str], None] | None = print) -> Any:
    """With the automatic draft: keep the run's draft learning only if it can pay for itself.

    Synchronous rounds with a learned correction only (else None, nothing changed): the bound of
    :func:`lsd_engine.learning.payoff.learning_payoff` with the winner's measured acceptance by depth
    (constant EC), the advice's target costs and the correction's own measured costs. When even a
    perfect learned draft is predicted slower than constant EC, ``config.draft_learning`` becomes
    ``none`` (constant EC), so summaries, checkpoints and a resumed run record what was used. The
    verdict is kept in ``ranking.learning_payoff`` and returned."""
    from .learning import NOT_LEARNED
    from .learning.payoff import learning_payoff
    from .runconfig import build_draft_correction

    if config.mode != "sync" or not config.error_correction or config.draft_learning in NOT_LEARNED:
        return None
    correction = build_draft_correction(config, atoms)
    best = next(c for c in ranking.candidates if c.name == ranking.winner)
    if correction is None or len(best.acceptance_by_depth) < config.lookahead:
        return None
    ks = range(config.min_lookahead, config.lookahead + 1) if config.adaptive_lookahead else [config.lookahead]
    verdict = learning_payoff(best.acceptance_by_depth, 1e-3 * best.draft_step_ms,
                              {b: 1e-3 * ms for b, ms in ranking.target_batch_ms.items()}, correction,
                              atoms.get_positions(), ks)
    ranking.learning_payoff = verdict
    if not verdict.pays:
        requested = config.draft_learning
        config.draft_learning = "none"
        if log is not None:
            log(f"{verdict.text()}: draft learning {requested} is off for this run (constant EC)")
    elif log is not None:
        log(verdict.text())
    return verdict
