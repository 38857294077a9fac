"""Adaptive lookahead: choose K each round to maximise expected steps per second (docs/theory.md §7).

``AdaptiveLookahead`` keeps a running estimate of the acceptance at each draft depth
from finished rounds (verified / accepted counts, exponentially forgotten so that it
follows a draft that is learning), and a cost model T_d, T_t(B), and before each round
returns

    K = argmax_{k_min <= K <= k_max}  E_K · T_t(1) / (K·T_d + T_t(K+1) + T_overhead)

with E_K from ``theory.expected_steps_per_round`` (via ``theory.optimal_lookahead``).

Acceptance estimate: a_k = (accepted_k + α â_{k-1}) / (verified_k + α), shrinking each
depth towards the estimate one depth above (â_0 = prior_acceptance), then made
non-increasing in k (pool-adjacent-violators weighted by counts; deeper steps drift
further from the EC reference). A depth never verified inherits the deepest estimate,
so a good draft is tried at larger K (exploration) instead of being held back by a prior.

Determinism: in ``cost_mode="fixed"`` (the default) the costs are numbers fixed at
construction (given by the user or measured once before the run, e.g. with
``timing.measure_costs``), so K depends only on the accept/reject history and the
trajectory is a function of the seed and inputs, as the rest of LSD. In
``cost_mode="measured"`` the policy also learns the costs from the rounds' wall times:
better when costs drift (a shared machine, GPU clocks), but then K, and so the
trajectory (with EC, K changes where rounds start), depends on timing and is no longer
reproducible from the seed. Both are exact samplers: K is fixed before a round is drafted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import theory, timing

__all__ = ["AdaptiveLookahead", "monotone_profile"]


def monotone_profile(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    v = np.asarray(values, dtype=float)
    w = np.maximum(np.asarray(weights, dtype=float), 1e-12)
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(v, w):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, _, c in blocks]) if blocks else v


class AdaptiveLookahead:
    """Chooses the lookahead K of each round from acceptance by depth and costs.

    k_min, k_max: bounds on K. costs: {"draft_step_s": s, "target_batch_s": {B: s} or a
    callable B -> s, "overhead_s": s (per round, optional)}. prior_acceptance: a_k
    before any data (scalar or per depth); prior_weight: its weight in pseudo-rounds.
    forgetting: weight kept per finished round for old counts (1: plain counts).
    cost_mode: "fixed" (reproducible) or "measured" (see module doc); cost_smoothing:
    weight of a new timing in the running cost estimate. initial: K of the first round
    (default k_max, which explores every depth at once).
    """

    def __init__(self, k_min: int = 1, k_max: int = 16, costs: Mapping[str, Any] | None = None,
                 prior_acceptance: float = 0.5, prior_weight: float = 2.0,
                 forgetting: float = 0.99, cost_mode: str = "fixed", cost_smoothing: float = 0.1,
                 initial: int | None = None):
        if isinstance(k_min, bool) or not isinstance(k_min, (int, np.integer)) or k_min < 1:
            raise ValueError(f"k_min must be an integer >= 1, got {k_min!r}")
        if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < k_min:
            raise ValueError(f"k_max must be an integer >= k_min ({k_min}), got {k_max!r}")
        if cost_mode not in ("fixed", "measured"):
            raise ValueError(f"cost_mode must be 'fixed' or 'measured', got {cost_mode!r}")
        if not 0.0 < forgetting <= 1.0:
            raise ValueError(f"forgetting must lie in (0, 1], got {forgetting}")
        if costs is None:
            raise ValueError("AdaptiveLookahead needs costs: {'draft_step_s': s, 'target_batch_s': {B: s} or "
                             "callable} (measure them once with timing.measure_costs)")
        self.k_min, self.k_max = int(k_min), int(k_max)
        self.cost_mode = cost_mode
        self.cost_smoothing = float(cost_smoothing)
        self.forgetting = float(forgetting)
        prior = np.atleast_1d(np.asarray(prior_acceptance, dtype=float))
        if prior.size != 1 or not 0.0 <= prior[0] <= 1.0:
            raise ValueError(f"prior_acceptance must be one number in [0, 1], got {prior_acceptance!r}")
        self.prior, self.prior_weight = prior, float(prior_weight)
        self.verified = np.zeros(self.k_max)
        self.accepted = np.zeros(self.k_max)
        self.draft_step_s = float(costs["draft_step_s"])
        self.overhead_s = float(costs.get("overhead_s", 0.0))
        base = theory.as_target_cost(costs["target_batch_s"])
        self._prior_target: Callable[[int], float] = base
        self.target_s = np.array([float(base(b)) for b in range(1, self.k_max + 2)])  # T_t(1..k_max+1)
        if np.any(~np.isfinite(self.target_s)) or np.any(self.target_s <= 0) or self.draft_step_s < 0:
            raise ValueError("costs must be positive and finite")
        self.initial = self.k_max if initial is None else int(np.clip(initial, self.k_min, self.k_max))
        self.rounds = 0
        self.last_choice = self.initial

    @classmethod
    def from_models(cls, draft, target, positions: np.ndarray, k_min: int = 1, k_max: int = 16,
                    extra_draft_s: float = 0.0, overhead_s: float = 0.0, repeats: int = 3,
                    warm_up_calls: int = timing.DEFAULT_WARM_UP_CALLS, **options: Any) -> "AdaptiveLookahead":
        """A policy whose fixed costs are measured once now (``timing.measure_costs``: cache-safe median
        of ``repeats`` calls after ``warm_up_calls``; target batches 1, 2, k_max+1 at ``positions``
        (N, 3) or (B, N, 3); the draft with 5x the repeats, it is cheap).

        extra_draft_s: added per draft step (e.g. a learned correction's cost per call);
        overhead_s: per round (e.g. the correction's observe). The trajectory stays reproducible
        from the seed only with the default cost_mode="fixed" (see the module doc).
        """
        x = np.asarray(positions, dtype=float)
        x = x[None] if x.ndim == 2 else x
        sizes = sorted({1, 2, int(k_max) + 1})
        measured = timing.measure_costs(draft, target, x, sizes, repeats, warm_up_calls, draft_repeats=5 * repeats)
        costs = {"draft_step_s": measured["draft_step_s"] + float(extra_draft_s),
                 "target_batch_s": measured["target_batch_s"], "overhead_s": float(overhead_s)}
        return cls(k_min, k_max, costs, **options)

    # -- estimates -------------------------------------------------------------------------
    def acceptance_by_depth(self) -> np.ndarray:
        """Current estimate of a_1..a_kmax: each depth shrunk towards the one above it, then
        made non-increasing; depths never verified inherit the deepest estimate."""
        est = np.empty(self.k_max)
        previous = self.prior[0]
        for k in range(self.k_max):
            prior = previous if k > 0 else self.prior[0]
            est[k] = (self.accepted[k] + self.prior_weight * prior) / (self.verified[k] + self.prior_weight)
            previous = est[k]
        return np.clip(monotone_profile(est, self.verified + self.prior_weight), 0.0, 1.0)

    def target_cost(self, batch: int) -> float:
        return float(self.target_s[min(int(batch), self.k_max + 1) - 1])

    def expected_speedup(self, lookahead: int) -> float:
        """Predicted speedup over plain target MD at this K with the current estimates."""
        return float(theory.synchronous_speedup(self.acceptance_by_depth(), int(lookahead), self.draft_step_s,
                                                self.target_cost, self.overhead_s))

    # -- the policy hook -------------------------------------------------------------------------
    def choose(self, **context: Any) -> int:
        """K for the next round (context is accepted and ignored, for forward compatibility)."""
        if self.rounds == 0:
            k = self.initial
        else:
            k = theory.optimal_lookahead(self.acceptance_by_depth(), self.draft_step_s, self.target_cost,
                                         self.overhead_s, min_lookahead=self.k_min,
                                         max_lookahead=self.k_max).lookahead
        self.last_choice = int(k)
        return self.last_choice

    def record_round(self, verified: int, accepted: int, draft_seconds: float | None = None,
                     drafted_steps: int | None = None, target_seconds: float | None = None,
                     batch_size: int | None = None) -> None:
        """A finished round: depths 1..verified were verified, the first ``accepted`` of them
        accepted (the next one, if verified, was rejected).

        With cost_mode="measured" the timings update the cost model: ``draft_seconds`` spent
        drafting ``drafted_steps`` steps (default: the last K chosen), ``target_seconds`` for
        one target call on ``batch_size`` states. In "fixed" mode they are ignored."""
        verified, accepted = int(verified), int(accepted)
        if not 0 <= accepted <= verified:
            raise ValueError(f"need 0 <= accepted <= verified, got accepted={accepted}, verified={verified}")
        self.verified *= self.forgetting
        self.accepted *= self.forgetting
        n = min(verified, self.k_max)
        self.verified[:n] += 1.0
        self.accepted[:min(accepted, n)] += 1.0
        self.rounds += 1
        if self.cost_mode == "measured":
            s = self.cost_smoothing
            steps = self.last_choice if drafted_steps is None else int(drafted_steps)
            if draft_seconds is not None and steps > 0 and math.isfinite(draft_seconds):
                self.draft_step_s = (1 - s) * self.draft_step_s + s * float(draft_seconds) / steps
            if target_seconds is not None and batch_size and math.isfinite(target_seconds):
                b = min(int(batch_size), self.k_max + 1)
                # rescale the whole table by the measured/predicted ratio at this batch size
                ratio = float(target_seconds) / self.target_s[b - 1]
                self.target_s *= (1 - s) + s * ratio

    def costs(self) -> dict[str, Any]:
        """The current costs as JSON-able numbers, in the form ``RunConfig.adaptive_costs`` takes:
        {"draft_step_s": s, "target_batch_s": {"1": s, ..., "k_max+1": s}, "overhead_s": s}."""
        return {"draft_step_s": float(self.draft_step_s),
                "target_batch_s": {str(b): float(s) for b, s in enumerate(self.target_s, start=1)},
                "overhead_s": float(self.overhead_s)}

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        return {"verified": self.verified.copy(), "accepted": self.accepted.copy(),
                "target_s": self.target_s.copy(), "draft_step_s": np.array(self.draft_step_s),
                "rounds": np.array(self.rounds), "last_choice": np.array(self.last_choice)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.verified = np.array(state["verified"], dtype=float)
        self.accepted = np.array(state["accepted"], dtype=float)
        self.target_s = np.array(state["target_s"], dtype=float)
        self.draft_step_s = float(state["draft_step_s"])
        self.rounds = int(state["rounds"])
        self.last_choice = int(state["last_choice"])
