"""Whether draft learning can pay for itself, decided before a run from a bound.

A learned correction can at best raise the acceptance to 1 at every depth, and it costs time:
its correction call per drafted step and its ``observe`` per round (scoring the gate, adding
labels to the fit, the occasional solve). If even a perfect learned draft, with those costs, is
predicted slower than the same draft with constant error correction (its measured acceptance
by depth), learning cannot pay, and a run is better off with constant EC. This happens when
rounds are short and the target is cheap, e.g. a target that does not batch (K = 1 rounds) at a
few ms per call. The bound uses the synchronous cost model (``theory.synchronous_speedup``), so
it applies to synchronous rounds only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np

from .. import theory
from ..timing import correction_seconds_per_call

__all__ = ["LearningPayoff", "learning_payoff", "time_observe"]

#: labels fed to a probe copy of the correction per timed round size (amortises fits and solves)
PROBE_LABELS = 48
PROBE_SEED = 20261203


@dataclass
class LearningPayoff:
    """The bound's verdict and what it was computed from (seconds)."""

    pays: bool
    constant_ec_speedup: float  # best over K of the cost model with the constant-EC acceptance
    constant_ec_lookahead: int
    perfect_learning_speedup: float  # best over K with acceptance 1 and the correction's costs
    perfect_learning_lookahead: int
    correction_call_s: float
    observe_s_by_round_size: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of this check (the correction's timings)

    def text(self) -> str:
        verdict = "can pay" if self.pays else "cannot pay"
        return (f"draft learning {verdict}: a perfect learned draft is predicted at "
                f"{self.perfect_learning_speedup:.2f}x (K {self.perfect_learning_lookahead}, with its "
                f"{1e3 * self.correction_call_s:.2f} ms per drafted step and "
                f"{1e3 * self.observe_s_by_round_size.get(self.perfect_learning_lookahead + 1, 0.0):.2f} ms per "
                f"round of learning), constant EC at "
                f"{self.constant_ec_speedup:.2f}x (K {self.constant_ec_lookahead}); checked in {self.seconds:.1f} s")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["observe_s_by_round_size"] = {str(k): v for k, v in self.observe_s_by_round_size.items()}
        return out


def time_observe(correction: Any, positions: np.ndarray, round_sizes: Iterable[int],
                 n_labels: int = PROBE_LABELS) -> dict[int, float]:
    """Mean seconds of one ``observe`` of a round of each size (labels per round), on a copy of
    ``correction`` fed ``n_labels`` synthetic labels near ``positions`` (N, 3) per size after a first
    round (the set-up). The labels' values do not change the cost, only their count does."""
    rng = np.random.default_rng(PROBE_SEED)
    out = {}
    for size in sorted({max(1, int(s)) for s in round_sizes}):
        probe = copy.deepcopy(correction)
        probe.observe(*_synthetic_round(rng, positions, size))
        rounds = [_synthetic_round(rng, positions, size) for _ in range(max(2, int(np.ceil(n_labels / size))))]
        start = time.perf_counter()
        for labels in rounds:
            probe.observe(*labels)
        out[size] = (time.perf_counter() - start) / len(rounds)
    return out


def learning_payoff(acceptance_by_depth_ec: Iterable[float], draft_step_s: float,
                    target_batch_s: dict[int, float], correction: Any, positions: np.ndarray,
                    lookaheads: Iterable[int]) -> LearningPayoff:
    """Compare the best constant-EC speedup with the best a perfect learned draft could reach.

    acceptance_by_depth_ec: the draft's measured acceptance by depth with constant EC (at least
    max(lookaheads) depths); target_batch_s: T_t(B) by batch size (interpolated between sizes);
    correction: the learned correction the run would use (timed on copies, never changed);
    positions: (N, 3) Å, the system's start; lookaheads: the Ks a run may use."""
    start = time.perf_counter()
    ks = np.array(sorted({int(k) for k in lookaheads}))
    profile = np.asarray(list(acceptance_by_depth_ec), dtype=float)[:ks.max()]
    constant = theory.synchronous_speedup(profile, ks, draft_step_s, target_batch_s)
    call_s = correction_seconds_per_call(_primed(correction, positions), positions)
    observe_s = time_observe(correction, positions, ks + 1)
    perfect = np.array([float(theory.synchronous_speedup(np.ones(k), k, draft_step_s + call_s, target_batch_s,
                                                         observe_s[k + 1])) for k in ks])
    best_c, best_p = int(np.argmax(constant)), int(np.argmax(perfect))
    return LearningPayoff(pays=bool(perfect[best_p] > constant[best_c]),
                          constant_ec_speedup=float(constant[best_c]), constant_ec_lookahead=int(ks[best_c]),
                          perfect_learning_speedup=float(perfect[best_p]),
                          perfect_learning_lookahead=int(ks[best_p]), correction_call_s=float(call_s),
                          observe_s_by_round_size=observe_s, seconds=time.perf_counter() - start)


def _primed(correction: Any, positions: np.ndarray) -> Any:
    """A copy that has seen a few labels, with its gate held open, so that its correction call costs
    what the model's costs in a run (synthetic labels might leave the gate closed)."""
    probe = copy.deepcopy(correction)
    if hasattr(probe, "gate"):
        probe.gate = False
    rng = np.random.default_rng(PROBE_SEED)
    for _ in range(3):
        probe.observe(*_synthetic_round(rng, positions, 4))
    return probe


def _synthetic_round(rng: np.random.Generator, positions: np.ndarray,
                     size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions, target forces, draft forces) of ``size`` labels near ``positions``: values only matter
    as far as they are finite; the cost of learning from them depends on their count."""
    x = np.asarray(positions, dtype=float)[None] + 0.01 * rng.standard_normal((size,) + np.shape(positions))
    return x, 0.1 * rng.standard_normal(x.shape), np.zeros_like(x)
