"""The one cost timer: wall seconds per force-model call, safe against result caches.

ASE calculators (and some backends) return cached results when called again at the same
positions, so timing repeated calls at one configuration can measure the cache (EMT on
Cu 32: 0.47 ms cached against 10.6 ms of work). Every call timed here gets its own tiny
displacement (``PERTURBATION_A`` Å times a fixed random pattern, different per call), and
``warm_up_calls`` untimed calls run first, so first-call costs (lazy set-up, compilation,
allocation for a new batch size) are excluded. Used by ``lsd bench``, ``theory.predict``,
adaptive K, the draft advisor and the benchmark scripts.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import numpy as np

from .models.base import ForceModel

#: Size (Å) of the per-call displacement: far above float64 rounding at any coordinate, far below
#: anything that changes a force model's cost.
PERTURBATION_A = 1e-6
#: Untimed calls before the timed ones.
DEFAULT_WARM_UP_CALLS = 1

__all__ = ["PERTURBATION_A", "DEFAULT_WARM_UP_CALLS", "seconds_per_call", "model_seconds_per_call",
           "measure_costs", "correction_seconds_per_call"]


def _count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def seconds_per_call(evaluate: Callable[[np.ndarray], Any], positions: np.ndarray, repeats: int = 5,
                     warm_up_calls: int = DEFAULT_WARM_UP_CALLS) -> float:
    """Median wall seconds of ``evaluate(x)`` over ``repeats`` calls, x = ``positions`` (any shape, Å)
    displaced by a different tiny amount for every call (warm-up calls included)."""
    repeats = _count(repeats, "repeats", 1)
    warm_up_calls = _count(warm_up_calls, "warm_up_calls", 0)
    base = np.asarray(positions, dtype=float)
    pattern = np.random.default_rng(0).standard_normal(base.shape)
    times = []
    for call in range(warm_up_calls + repeats):
        x = base + (PERTURBATION_A * (call + 1)) * pattern
        t0 = time.perf_counter()
        evaluate(x)
        elapsed = time.perf_counter() - t0
        if call >= warm_up_calls:
            times.append(elapsed)
    return float(np.median(times))


def model_seconds_per_call(model: ForceModel, positions: np.ndarray, repeats: int = 5,
                           warm_up_calls: int = DEFAULT_WARM_UP_CALLS) -> float:
    """Median wall seconds of ``model.evaluate(positions)`` for a batch ``positions`` (B, N, 3) Å."""
    return seconds_per_call(model.evaluate, positions, repeats, warm_up_calls)


def measure_costs(draft: ForceModel, target: ForceModel, states: np.ndarray, batch_sizes: Iterable[int],
                  repeats: int, warm_up_calls: int = DEFAULT_WARM_UP_CALLS,
                  draft_repeats: int | None = None) -> dict[str, Any]:
    """The cost model's inputs: seconds of one draft call (``states[:1]``) and of target calls on
    batches of each size (``states`` (S, N, 3) repeated cyclically to the size), cache-safe medians.
    ``draft_repeats`` defaults to ``repeats`` (a cheap draft is worth more repeats)."""
    states = np.asarray(states, dtype=float)
    states = states[None] if states.ndim == 2 else states
    draft_s = model_seconds_per_call(draft, states[:1], repeats if draft_repeats is None else draft_repeats,
                                     warm_up_calls)
    table = {int(b): model_seconds_per_call(target, states[np.arange(b) % len(states)], repeats, warm_up_calls)
             for b in sorted(set(int(b) for b in batch_sizes))}
    return {"draft_step_s": draft_s, "target_batch_s": table, "overhead_s": 0.0, "source": "measured"}


def correction_seconds_per_call(correction, positions: np.ndarray, repeats: int = 5,
                                warm_up_calls: int = DEFAULT_WARM_UP_CALLS) -> float:
    """Median seconds of one learned ``correction.correction(x)`` call at ``positions`` (N, 3) Å;
    0 for none / constant EC (it costs nothing per drafted step)."""
    if correction is None or getattr(correction, "name", "constant") == "constant":
        return 0.0
    return seconds_per_call(correction.correction, positions, repeats, warm_up_calls)
