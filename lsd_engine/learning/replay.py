"""Offline evaluation of a draft correction by replaying the round protocol on recorded labels.

LSD's output is distributed as plain target MD, so a recorded target trajectory (its
half-step positions x'_t with target and draft forces) stands in for an LSD run. The
replay walks it in rounds: a round starting after label t drafts steps t+1..t+K with
the correction fitted on labels 0..t only; depth k is accepted with probability
    a_k(t) = erfc(|δ_k| / √8),   δ_k = whitened(r(x'_{t+k}) - g_t(x'_{t+k}))
(docs/theory.md §3; r = F_target - F_draft, g_t the frozen correction). The round ends at the
first rejection (drawn from a seeded generator) or after K steps plus the bonus step,
and ``observe`` then gets exactly the labels an LSD round would pass on: steps t+1 up
to the one that ended the round. For ``ConstantCorrection`` at every start t this is
``theory.acceptance_by_reference_age``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import theory
from ..coupling import acceptance_probability
from ..params import IntegratorConstants, LangevinParams
from .labels import LabelSet

__all__ = ["ReplayResult", "replay_rounds"]


@dataclass
class ReplayResult:
    """Acceptance by depth of a correction replayed over recorded labels."""

    name: str
    lookahead: int
    acceptance_by_depth: np.ndarray  # mean a_k over evaluated round starts (k = 1..K)
    acceptance_by_depth_stderr: np.ndarray
    expected_steps_per_round: float  # E_K from the mean profile (docs/theory.md §11 convention)
    expected_steps_per_round_by_round: float  # mean over rounds of E_K(a(t)) (no Jensen gap)
    simulated_steps_per_round: float  # steps per round of the replayed (simulated) rounds
    rounds: int
    evaluated_rounds: int
    correction_us: float  # median µs per correction(x) call
    observe_us: float  # median µs per observe() call
    observe_us_mean: float
    labels_per_observe: float
    rms_error_by_depth: np.ndarray  # RMS of r - g per component at depth k (eV/Å)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for key, value in self.__dict__.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


def replay_rounds(labels: LabelSet, correction, params: LangevinParams, lookahead: int = 16,
                  seed: int = 0, burn_in: int = 0, stop: int | None = None, name: str | None = None,
                  time_calls: bool = True, on_round: Callable[[int, np.ndarray], None] | None = None) -> ReplayResult:
    """Replay the synchronous round protocol with ``correction`` over ``labels`` (see module doc).

    burn_in: rounds starting before this label index are played (the correction learns)
    but not counted. stop: last label index used (default: all). Acceptances at depths
    beyond the recorded labels are not counted (the profile uses the rounds that have them).
    """
    x = labels.positions
    r = labels.residuals
    ft = labels.target_forces
    fd = labels.draft_forces
    n = len(labels) if stop is None else min(int(stop), len(labels))
    k = IntegratorConstants.build(params, labels.masses)
    scale = k.force_factor / k.noise_scale  # (N, 1)
    rng = np.random.default_rng(seed)
    t = 0
    correction.observe(x[0:1], ft[0:1], fd[0:1])  # the sampler's start: the residual at the start positions
    profiles, errors, round_lengths = [], [], []
    t_corr, t_obs, obs_sizes = [], [], []
    rounds = 0
    while t + 1 < n:
        depth = min(lookahead, n - 1 - t)
        g = np.empty((depth,) + x.shape[1:])
        for j in range(depth):
            t0 = time.perf_counter()
            g[j] = correction.correction(x[t + 1 + j])
            if time_calls:
                t_corr.append(time.perf_counter() - t0)
        diff = r[t + 1:t + 1 + depth] - g
        a = acceptance_probability(np.sqrt(np.sum((scale * diff) ** 2, axis=(1, 2))))
        if t >= burn_in and depth == lookahead:
            profiles.append(a)
            errors.append(np.mean(diff ** 2, axis=(1, 2)))
        if on_round is not None:
            on_round(t, a)
        rejected = np.flatnonzero(rng.random(depth) >= a)
        if rejected.size:
            end = rejected[0] + 1
        else:
            end = min(depth + 1, n - 1 - t)  # the bonus step, when recorded
        rounds += 1
        round_lengths.append(end)
        t0 = time.perf_counter()
        correction.observe(x[t + 1:t + 1 + end], ft[t + 1:t + 1 + end], fd[t + 1:t + 1 + end])
        t_obs.append(time.perf_counter() - t0)
        obs_sizes.append(end)
        t += end
    if not profiles:
        raise ValueError(f"no complete round of {lookahead} steps after burn-in {burn_in} in {n} labels")
    p = np.array(profiles)
    evaluated = len(profiles)
    # block standard error (10 blocks) — successive rounds are correlated
    blocks = np.array_split(p, min(10, evaluated))
    stderr = np.std([b.mean(axis=0) for b in blocks], axis=0, ddof=1) / np.sqrt(len(blocks)) if len(blocks) > 1 \
        else np.full(lookahead, np.nan)
    mean = p.mean(axis=0)
    return ReplayResult(
        name=name or getattr(correction, "name", type(correction).__name__), lookahead=lookahead,
        acceptance_by_depth=mean, acceptance_by_depth_stderr=stderr,
        expected_steps_per_round=float(theory.expected_steps_per_round(mean)),
        expected_steps_per_round_by_round=float(np.mean(theory.expected_steps_per_round(p))),
        simulated_steps_per_round=float(np.mean(round_lengths)), rounds=rounds, evaluated_rounds=evaluated,
        correction_us=float(1e6 * np.median(t_corr)) if t_corr else float("nan"),
        observe_us=float(1e6 * np.median(t_obs)), observe_us_mean=float(1e6 * np.mean(t_obs)),
        labels_per_observe=float(np.mean(obs_sizes)),
        rms_error_by_depth=np.sqrt(np.array(errors).mean(axis=0)))
