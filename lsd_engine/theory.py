"""Acceptance and speedup theory of Langevin speculative sampling (docs/theory.md §3, §10-11).

Units are ASE (Å, eV, amu) inside; public parameters carry their unit in the name.
The pieces, from the bottom up:

- ``delta_norm`` / ``acceptance_from_force_difference``: the per-step acceptance
  a = erfc(|δ|/√8) of the reflection coupling, from a draft-target force difference.
- ``acceptance_without_correction`` / ``acceptance_by_reference_age``: estimators of
  the acceptance along a sequence of states, without and with error correction (EC).
- ``expected_steps_per_round``, ``synchronous_speedup``, ``optimal_lookahead``,
  ``asynchronous_speedup``: steps per round and wall-clock speedup from costs.
- ``small_friction_delta_norm``, ``empirical_rejection_rate``, ``scaling_law_epsilon``:
  the closed-form scaling with system size, temperature, timestep and friction.
- ``predict``: all of the above from a short draft-only calibration run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
from ase import Atoms, units
from numpy.typing import ArrayLike
from scipy.special import erf

from .coupling import acceptance_probability
from .kernel import half_step_position
from .langevin_md import LangevinMD
from .models.base import ForceModel, evaluate_checked
from .params import DEFAULT_LOOKAHEAD, IntegratorConstants, LangevinParams
from .timing import measure_costs
from .validation import jsonable

TargetCost = Callable[[int], float] | Mapping[int, float]
"""Target wall time per call as a function of batch size: a callable B -> s, or a table {B: s}."""

_BURN_IN_FRACTION = 0.2  # default share of calibration steps skipped before sampling target states


# --------------------------------------------------------------------------------------
# Per-step acceptance from a force difference (docs/theory.md §3, §10.4)
# --------------------------------------------------------------------------------------

def whitened_force_difference(force_difference: ArrayLike, masses_amu: ArrayLike,
                              params: LangevinParams) -> np.ndarray:
    """δ = (1+c)(dt/2) ΔF / s per component, s = sqrt((1-c²) m kT); shape as the input (…, N, 3).

    force_difference: F_target - F_draft in eV/Å, shape (…, N, 3); masses_amu: (N,).
    """
    k = IntegratorConstants.build(params, masses_amu)
    diff = np.asarray(force_difference, dtype=float)
    if diff.ndim < 2 or diff.shape[-2:] != (k.masses.size, 3):
        raise ValueError(f"force_difference must have shape (..., {k.masses.size}, 3), got {diff.shape}")
    return (k.force_factor / k.noise_scale) * diff


def delta_norm(force_difference: ArrayLike, masses_amu: ArrayLike, params: LangevinParams) -> np.ndarray:
    """|δ| of the coupling for a force difference ΔF = F_target - F_draft (eV/Å, shape (…, N, 3)).

    |δ|² = (1+c)/(1-c) · (dt²/4)/kT · Σ_i |ΔF_i|²/m_i  (c = exp(-γ dt)). Returns shape (…).
    """
    w = whitened_force_difference(force_difference, masses_amu, params)
    return np.sqrt(np.sum(w * w, axis=(-2, -1)))


def acceptance_from_force_difference(force_difference: ArrayLike, masses_amu: ArrayLike,
                                     params: LangevinParams) -> np.ndarray:
    """Per-step acceptance a = erfc(|δ|/√8) for ΔF = F_target - F_draft (eV/Å, (…, N, 3))."""
    return acceptance_probability(delta_norm(force_difference, masses_amu, params))


# --------------------------------------------------------------------------------------
# Acceptance along a sequence of states, without and with error correction
# --------------------------------------------------------------------------------------

class AcceptanceEstimate(NamedTuple):
    """A mean acceptance with its standard error and the number of (state or pair) samples.

    stderr is the spread of per-block means / √blocks when the input has independent
    blocks (leading axes), else the naive per-sample estimate (a lower bound: successive
    MD states are correlated).
    """

    mean: np.ndarray
    stderr: np.ndarray
    n_samples: np.ndarray


def force_residuals(draft: ForceModel, target: ForceModel, positions: ArrayLike) -> np.ndarray:
    """r = F_target - F_draft (eV/Å) at positions (T, N, 3) Å, one batched call per model."""
    x = np.asarray(positions, dtype=float)
    _, f_target = evaluate_checked(target, x, role="target", first_step=0)
    _, f_draft = evaluate_checked(draft, x, role="draft", first_step=0)
    return f_target - f_draft


def _as_blocks(residuals: ArrayLike, masses_amu: ArrayLike, params: LangevinParams) -> np.ndarray:
    """Whitened residuals reshaped to (blocks, T, N, 3)."""
    w = whitened_force_difference(residuals, masses_amu, params)
    if w.ndim < 3:
        raise ValueError("residuals must have shape (..., T, N, 3): a sequence of states")
    return w.reshape((-1,) + w.shape[-3:])


def _estimate(per_sample: np.ndarray) -> tuple[float, float, int]:
    """Mean, stderr and count of acceptances shaped (blocks, samples)."""
    n_blocks, n_per_block = per_sample.shape
    mean = float(per_sample.mean())
    if n_blocks >= 2:
        stderr = float(per_sample.mean(axis=1).std(ddof=1) / math.sqrt(n_blocks))
    elif n_per_block >= 2:
        stderr = float(per_sample.std(ddof=1) / math.sqrt(n_per_block))
    else:
        stderr = math.nan
    return mean, stderr, per_sample.size


def _acceptance_of_whitened(w: np.ndarray) -> np.ndarray:
    return acceptance_probability(np.sqrt(np.sum(w * w, axis=(-2, -1))))


def acceptance_without_correction(residuals: ArrayLike, masses_amu: ArrayLike,
                                  params: LangevinParams) -> AcceptanceEstimate:
    """a0 = mean_t erfc(|δ(r_t)|/√8): acceptance of a constant draft (no EC).

    residuals: F_target - F_draft in eV/Å at the states, shape (…, T, N, 3)
    (leading axes: independent blocks).
    """
    blocks = _as_blocks(residuals, masses_amu, params)
    mean, stderr, n = _estimate(_acceptance_of_whitened(blocks))
    return AcceptanceEstimate(np.float64(mean), np.float64(stderr), np.int64(n))


def acceptance_by_reference_age(residuals: ArrayLike, masses_amu: ArrayLike, params: LangevinParams,
                                max_age: int) -> AcceptanceEstimate:
    """a_k = mean_t erfc(|δ(r_{t+k} - r_t)|/√8) for k = 1..max_age: acceptance with EC whose
    reference state is k steps older than the drafted one (the estimator of docs/theory.md §11).

    residuals: F_target - F_draft in eV/Å along consecutive states (the half-step positions
    of an MD run), shape (…, T, N, 3); pairs are taken within each block of T states.
    Returns arrays of length max_age.
    """
    blocks = _as_blocks(residuals, masses_amu, params)
    max_age = int(max_age)
    if not 1 <= max_age < blocks.shape[1]:
        raise ValueError(f"max_age must be in 1..{blocks.shape[1] - 1} for sequences of "
                         f"{blocks.shape[1]} states, got {max_age}")
    stats = [_estimate(_acceptance_of_whitened(blocks[:, k:] - blocks[:, :-k])) for k in range(1, max_age + 1)]
    mean, stderr, n = (np.array(column) for column in zip(*stats, strict=True))
    return AcceptanceEstimate(mean, stderr, n)


# --------------------------------------------------------------------------------------
# Steps per round and speedup (docs/theory.md §10.1-10.2)
# --------------------------------------------------------------------------------------

def _acceptance_array(acceptance_by_depth: ArrayLike, lookahead: int | None) -> np.ndarray:
    """Acceptances a_1..a_K as an array (…, K); a scalar is repeated ``lookahead`` times."""
    a = np.asarray(acceptance_by_depth, dtype=float)
    if np.any(~np.isfinite(a)) or np.any((a < 0) | (a > 1)):
        raise ValueError("acceptance probabilities must lie in [0, 1]")
    if a.ndim == 0:
        if lookahead is None:
            raise ValueError("a scalar acceptance needs the lookahead K")
        return np.full(int(lookahead), float(a))
    if lookahead is None:
        return a
    if lookahead > a.shape[-1]:
        raise ValueError(f"lookahead {lookahead} exceeds the {a.shape[-1]} acceptances given by depth")
    return a[..., :lookahead]


def _expected_steps_curve(a: np.ndarray) -> np.ndarray:
    """E_0..E_K for acceptances (…, K): E_K = 1 + Σ_{j≤K} Π_{i≤j} a_i. Shape (…, K+1)."""
    partial = np.cumsum(np.cumprod(a, axis=-1), axis=-1)
    zero = np.zeros(a.shape[:-1] + (1,))
    return 1.0 + np.concatenate([zero, partial], axis=-1)


def expected_steps_per_round(acceptance_by_depth: ArrayLike, lookahead: int | None = None) -> np.ndarray:
    """E_K = Σ_{j=1..K} Π_{i<j} a_i + Π_{i≤K} a_i: trajectory steps gained per synchronous round.

    acceptance_by_depth: a_1..a_K, shape (…, K) (vectorised over leading axes), or one
    scalar used at every depth. lookahead: K (default: all depths given). Every round
    yields at least one step (a repaired rejection), K+1 when all pass (the bonus step);
    for constant a it is (1 - a^{K+1})/(1 - a).
    """
    a = _acceptance_array(acceptance_by_depth, lookahead)
    return _expected_steps_curve(a)[..., -1]


def affine_target_cost(overhead_s: float, per_state_s: float) -> Callable[[int], float]:
    """T_t(B) = overhead_s + per_state_s · B, a simple cost model of a batched target call."""
    return lambda batch: overhead_s + per_state_s * batch


def target_cost_from_table(table: Mapping[int, float]) -> Callable[[int], float]:
    """T_t(B) by linear interpolation of measured {batch size: seconds}, linear extrapolation outside.

    Needs at least two batch sizes.
    """
    sizes = np.array(sorted(table), dtype=float)
    if sizes.size < 2:
        raise ValueError("a cost table needs at least two batch sizes (or use affine_target_cost)")
    seconds = np.array([float(table[b]) for b in sorted(table)])
    if np.any(seconds <= 0) or np.any(sizes < 1):
        raise ValueError("cost table needs batch sizes >= 1 and positive times")

    def cost(batch: int) -> float:
        i = int(np.clip(np.searchsorted(sizes, batch) - 1, 0, sizes.size - 2))
        slope = (seconds[i + 1] - seconds[i]) / (sizes[i + 1] - sizes[i])
        return float(seconds[i] + slope * (batch - sizes[i]))

    return cost


def as_target_cost(target_batch_s: TargetCost) -> Callable[[int], float]:
    """A callable T_t(B) from a callable or a {batch size: seconds} table."""
    if callable(target_batch_s):
        return target_batch_s
    if isinstance(target_batch_s, Mapping):
        return target_cost_from_table(target_batch_s)
    raise TypeError(f"target cost must be a callable or a {{batch: seconds}} mapping, got "
                    f"{type(target_batch_s).__name__}")


def synchronous_speedup(acceptance_by_depth: ArrayLike, lookahead: int | ArrayLike, draft_step_s: float,
                        target_batch_s: TargetCost, overhead_s: float = 0.0) -> np.ndarray:
    """S(K) = E_K · T_t(1) / (K·T_d + T_t(K+1) + T_overhead) over plain target MD.

    acceptance_by_depth: a_1..a_Kmax (or a scalar); lookahead: K or an array of K values
    (0 = plain target MD); draft_step_s: T_d per draft call; target_batch_s: T_t(B)
    (callable or table); overhead_s: per-round overhead (verification, bookkeeping).
    """
    ks = np.asarray(lookahead, dtype=int)
    if np.any(ks < 0):
        raise ValueError("lookahead must be >= 0")
    k_max = int(ks.max()) if ks.size else 0
    a = _acceptance_array(acceptance_by_depth, k_max if np.ndim(acceptance_by_depth) == 0 else None)
    if a.ndim != 1:
        raise ValueError("synchronous_speedup takes one acceptance profile (shape (K,))")
    if k_max > a.size:
        raise ValueError(f"lookahead {k_max} exceeds the {a.size} acceptances given by depth")
    steps = _expected_steps_curve(a)[ks]
    cost = as_target_cost(target_batch_s)
    round_s = ks * float(draft_step_s) + np.vectorize(lambda b: float(cost(int(b))))(ks + 1) + float(overhead_s)
    return steps * float(cost(1)) / round_s


def mixed_lookahead(acceptance_by_depth: ArrayLike, rounds_by_lookahead: Mapping[int, float],
                    draft_step_s: float, target_batch_s: TargetCost, overhead_s: float = 0.0) -> tuple[float, float]:
    """(steps per round, speedup) of rounds with varying K (adaptive lookahead).

    rounds_by_lookahead: {K: number of rounds}. Steps per round: Σ n_K E_K / Σ n_K; speedup:
    Σ n_K E_K · T_t(1) / Σ n_K (K·T_d + T_t(K+1) + overhead), i.e. total steps over total time.
    With one K both are E_K and ``synchronous_speedup``.
    """
    ks = np.array(sorted(rounds_by_lookahead), dtype=int)
    weights = np.array([float(rounds_by_lookahead[k]) for k in ks])
    if ks.size == 0 or weights.sum() <= 0:
        raise ValueError("rounds_by_lookahead needs at least one round")
    a = _acceptance_array(acceptance_by_depth, int(ks.max()) if np.ndim(acceptance_by_depth) == 0 else None)
    steps = _expected_steps_curve(a)[ks]
    speedups = synchronous_speedup(a, ks, draft_step_s, target_batch_s, overhead_s)
    return float(weights @ steps / weights.sum()), float(weights @ steps / (weights @ (steps / speedups)))


class LookaheadChoice(NamedTuple):
    """The best synchronous lookahead and its predicted speedup."""

    lookahead: int
    speedup: float


def optimal_lookahead(acceptance_by_depth: ArrayLike, draft_step_s: float, target_batch_s: TargetCost,
                      overhead_s: float = 0.0, min_lookahead: int = 1,
                      max_lookahead: int | None = None) -> LookaheadChoice:
    """argmax_K S(K) for K in [min_lookahead, max_lookahead] (default max: the depths given, or 64
    for a scalar acceptance). min_lookahead=0 includes plain target MD (S = 1 without overhead)."""
    n_depths = 64 if np.ndim(acceptance_by_depth) == 0 else np.shape(acceptance_by_depth)[-1]
    k_max = n_depths if max_lookahead is None else int(max_lookahead)
    if not 0 <= min_lookahead <= k_max:
        raise ValueError(f"need 0 <= min_lookahead <= max_lookahead, got {min_lookahead}, {k_max}")
    ks = np.arange(min_lookahead, k_max + 1)
    speedups = synchronous_speedup(acceptance_by_depth, ks, draft_step_s, target_batch_s, overhead_s)
    best = int(np.argmax(speedups))
    return LookaheadChoice(int(ks[best]), float(speedups[best]))


def asynchronous_speedup(rejection_rate: ArrayLike, draft_step_s: float, target_step_s: float,
                         n_target_workers: int | None = None) -> np.ndarray:
    """Speedup of asynchronous streaming (docs/theory.md §10.3) for a mean per-step rejection rate β̄.

    Model: the draft emits one step every T_d and sends its half-step position to a free
    target worker (N_T workers, T_t per single-state call); results are verified in order
    at no cost; a rejection cancels everything newer (freeing the workers) and drafting
    restarts from the repaired state. Rejections are independent with probability β̄.

    Derivation: after a restart, step k of the segment starts at s_k = max(k T_d, s_{k-N} + T_t).
    With N T_d >= T_t (N_T >= ⌈1/c⌉, c = T_d/T_t) this gives s_k = k T_d; otherwise, writing
    k = qN + r (1 <= r <= N), s_k = r T_d + q T_t. A segment ends with its first rejection at
    step j (geometric, mean 1/β̄), at time s_j + T_t. With m = j - 1 accepted steps,
    E[⌊m/N⌋] = a^N/(1 - a^N) (a = 1 - β̄), so the mean wall time per step is
        T_d + β̄ T_t + β̄ · max(0, T_t - N T_d) · a^N/(1 - a^N)
    and, dividing into T_t (plain target MD),
        S = 1 / (c + β̄ + β̄ · max(0, 1 - N c) · a^N/(1 - a^N)).
    With enough workers this is the bound 1/(c + β̄); it never exceeds min(1/c, N_T)
    (the limits β̄ -> 0), and β̄ = 1 gives 1/(1 + c). n_target_workers=None: unlimited.
    """
    beta = np.asarray(rejection_rate, dtype=float)
    if np.any(~np.isfinite(beta)) or np.any((beta < 0) | (beta > 1)):
        raise ValueError("rejection_rate must lie in [0, 1]")
    if draft_step_s < 0 or target_step_s <= 0:
        raise ValueError("need draft_step_s >= 0 and target_step_s > 0")
    c = draft_step_s / target_step_s
    if n_target_workers is None or n_target_workers * c >= 1.0:
        with np.errstate(divide="ignore"):  # a free, perfect draft with unlimited workers: inf
            return 1.0 / (c + beta)
    n = int(n_target_workers)
    if n < 1:
        raise ValueError("n_target_workers must be >= 1")
    a = 1.0 - beta
    # (1 - a^N)/β̄ = Σ_{i<N} a^i, evaluated stably (-> N as β̄ -> 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = np.where(beta > 0, -np.expm1(n * np.log1p(-beta)) / beta, n)
    return 1.0 / (c + beta + (1.0 - n * c) * a ** n / geometric)


# --------------------------------------------------------------------------------------
# Scaling laws (docs/theory.md §10.4)
# --------------------------------------------------------------------------------------

def small_friction_delta_norm(n_atoms: ArrayLike, temperature_K: ArrayLike, timestep_fs: ArrayLike,
                              friction_per_ps: ArrayLike, force_error_eV_per_A: ArrayLike,
                              mean_mass_amu: ArrayLike) -> np.ndarray:
    """|δ| ≈ sqrt(3 N σ² dt / (2 γ kT m̄)), the γdt ≪ 1 limit of ``delta_norm``.

    force_error_eV_per_A: σ, the RMS force error per Cartesian component. mean_mass_amu:
    m̄; exact for i.i.d. errors when it is the harmonic mean of the masses.
    Relative error of |δ|² against the exact formula: (γdt)²/12 + O((γdt)⁴).
    """
    dt = np.asarray(timestep_fs, dtype=float) * units.fs
    gamma = np.asarray(friction_per_ps, dtype=float) / (1000.0 * units.fs)
    kT = units.kB * np.asarray(temperature_K, dtype=float)
    sigma = np.asarray(force_error_eV_per_A, dtype=float)
    return np.sqrt(3.0 * np.asarray(n_atoms) * sigma ** 2 * dt / (2.0 * gamma * kT * np.asarray(mean_mass_amu)))


def empirical_rejection_rate(epsilon: ArrayLike, n_atoms: ArrayLike, temperature_K: ArrayLike,
                             timestep_fs: ArrayLike, friction_per_ps: ArrayLike) -> np.ndarray:
    """The paper's law β̄ ≈ erf(ε · sqrt(N τ dt / T)), τ = 1/γ.

    Units: τ in ps, dt in fs, T in K, so ε is in sqrt(K/(ps·fs)); ``scaling_law_epsilon``
    gives the ε that the theory predicts for a force error σ.
    """
    tau_ps = 1.0 / np.asarray(friction_per_ps, dtype=float)
    x = np.asarray(n_atoms) * tau_ps * np.asarray(timestep_fs, dtype=float) / np.asarray(temperature_K, dtype=float)
    return erf(np.asarray(epsilon, dtype=float) * np.sqrt(x))


def scaling_law_epsilon(force_error_eV_per_A: ArrayLike, mean_mass_amu: ArrayLike) -> np.ndarray:
    """ε of ``empirical_rejection_rate`` implied by the small-γdt theory for a force error σ.

    Rejection = erf(|δ|/√8) with |δ|²/8 = 3Nσ² dt τ / (16 k_B T m̄), so
    ε² = 3σ² / (16 k_B m̄) converted to the law's units (τ ps, dt fs, T K).
    """
    fs_times_ps = 1000.0 * units.fs ** 2  # 1 fs · 1 ps in ASE time units squared
    sigma = np.asarray(force_error_eV_per_A, dtype=float)
    return np.sqrt(3.0 * sigma ** 2 * fs_times_ps / (16.0 * units.kB * np.asarray(mean_mass_amu, dtype=float)))


# --------------------------------------------------------------------------------------
# Prediction from a calibration run
# --------------------------------------------------------------------------------------

@dataclass
class Prediction:
    """Predicted acceptance and speedup of LSD for one draft/target pair (see ``predict``).

    acceptance_by_depth: with EC, depths 1..max_lookahead (reference age = depth).
    acceptance_no_ec: a0, the per-step acceptance of the uncorrected draft.
    expected_steps_per_round, predicted_speedup: at ``lookahead``, for the chosen EC mode.
    speedup_by_lookahead: S(K) for K = 1..max_lookahead; best_lookahead / best_speedup: its argmax.
    asynchronous_speedup: streaming with ``n_target_workers`` (None: enough workers) —
    with EC it uses the acceptance at the reference age ⌈T_t/T_d⌉ (steps in flight),
    NaN when that age is beyond the calibrated depths.
    rms_force_error_eV_per_A: RMS per component of F_target - F_draft at the sampled states.
    costs: draft_step_s, target_batch_s {B: s}, overhead_s and their source.
    notes: warnings about the estimate (one block only, no speedup possible).
    """

    lookahead: int
    error_correction: bool
    acceptance_by_depth: np.ndarray
    acceptance_by_depth_stderr: np.ndarray
    acceptance_no_ec: float
    acceptance_no_ec_stderr: float
    expected_steps_per_round: float
    predicted_speedup: float
    speedup_by_lookahead: np.ndarray
    best_lookahead: int
    best_speedup: float
    asynchronous_speedup: float
    rms_force_error_eV_per_A: float
    costs: dict[str, Any]
    n_calibration_steps: int
    n_target_evaluations: int
    n_target_workers: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def acceptance_used(self) -> np.ndarray:
        """Acceptance by depth of the chosen mode (constant a0 without EC)."""
        if self.error_correction:
            return self.acceptance_by_depth
        return np.full(self.acceptance_by_depth.shape, self.acceptance_no_ec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays become lists, NaN becomes None)."""
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _block_starts(n_half_steps: int, first: int, block_length: int, n_blocks_wanted: int) -> np.ndarray:
    """Evenly spread starts of non-overlapping blocks in half-steps first..n_half_steps-1."""
    room = n_half_steps - first
    if room < block_length:
        raise ValueError(f"calibration too short: need n_calibration_steps >= burn-in ({first}) + "
                         f"{block_length} consecutive states (max_lookahead + 1)")
    n_blocks = max(1, min(n_blocks_wanted, room // block_length))
    return np.linspace(first, n_half_steps - block_length, n_blocks).round().astype(int)


def _given_costs(costs: Mapping[str, Any], batch_sizes: list[int]) -> dict[str, Any]:
    missing = {"draft_step_s", "target_batch_s"} - set(costs)
    if missing:
        raise ValueError(f"costs needs the keys draft_step_s and target_batch_s; missing {sorted(missing)}")
    cost = as_target_cost(costs["target_batch_s"])
    table = {b: float(cost(b)) for b in sorted(set(batch_sizes))}
    return {"draft_step_s": float(costs["draft_step_s"]), "target_batch_s": table,
            "overhead_s": float(costs.get("overhead_s", 0.0)), "source": "given"}


def _calibration_half_steps(atoms: Atoms, draft: ForceModel, params: LangevinParams, n_steps: int,
                            seed: int) -> np.ndarray:
    """Half-step positions x'_t (t = 0..n-1) where a draft-only ABOBA run evaluated its forces."""
    run = LangevinMD(atoms, draft, params, seed=seed).run(n_steps)
    k = IntegratorConstants.build(params, atoms.get_masses())
    return half_step_position(run.positions[:-1], run.momenta[:-1], k)


def predict(atoms: Atoms, draft: ForceModel, target: ForceModel, params: LangevinParams,
            lookahead: int = DEFAULT_LOOKAHEAD, n_calibration_steps: int = 300, n_target_samples: int = 32,
            seed: int = 0, error_correction: bool = True, costs: Mapping[str, Any] | None = None,
            max_lookahead: int | None = None, n_burn_in_steps: int | None = None,
            n_target_workers: int | None = None, timing_repeats: int = 3) -> Prediction:
    """Predict acceptance and speedup of ``SpeculativeSampler`` from a short calibration.

    Runs ``n_calibration_steps`` of plain Langevin MD with the draft, takes blocks of
    max_lookahead+1 consecutive half-step positions (≈ n_target_samples states, spread
    after ``n_burn_in_steps``, default 20% of the run), evaluates target and draft there,
    and estimates a0 (no EC) and a_k with an EC reference k steps old: in the sampler the
    reference is the last target-verified half-step, so draft depth k has reference age k.
    S(K) and the best K are searched over 1..max_lookahead (default: lookahead).
    costs: None to time the models here (``timing.measure_costs``: cache-safe medians of
    ``timing_repeats`` calls after a warm-up call, T_d for one state, T_t for batches 1, K+1 and
    max_lookahead+1; no per-round overhead), or
    {"draft_step_s": s, "target_batch_s": callable or {B: s}, "overhead_s": s}.
    Caveats: states come from draft dynamics, not target dynamics (a draft with a
    different equilibrium biases a0); a start far from equilibrium (a minimised
    structure) needs a burn-in of a few 1/γ; rounds in the sampler start right after a
    rejection, which shifts measured EC acceptances slightly (≤ 0.02 in the tests).
    """
    lookahead = _check_count(lookahead, "lookahead", 1)
    max_lookahead = lookahead if max_lookahead is None else _check_count(max_lookahead, "max_lookahead", lookahead)
    n_calibration_steps = _check_count(n_calibration_steps, "n_calibration_steps", 2)
    n_target_samples = _check_count(n_target_samples, "n_target_samples", 1)
    block = max_lookahead + 1
    half = _calibration_half_steps(atoms, draft, params, n_calibration_steps, seed)
    burn_in = (int(_BURN_IN_FRACTION * n_calibration_steps) if n_burn_in_steps is None
               else _check_count(n_burn_in_steps, "n_burn_in_steps", 0))
    starts = _block_starts(len(half), burn_in, block, n_target_samples // block)
    states = half[starts[:, None] + np.arange(block)]  # (blocks, block, N, 3)
    notes = [] if len(starts) > 1 else [f"one block of {block} states: the stderr is a naive lower bound"]
    residuals = np.stack([force_residuals(draft, target, s) for s in states])
    masses = atoms.get_masses()
    a0 = acceptance_without_correction(residuals, masses, params)
    a_ec = acceptance_by_reference_age(residuals, masses, params, max_lookahead)

    sizes = [1, lookahead + 1, max_lookahead + 1]
    cost_info = (measure_costs(draft, target, states[0], sizes, _check_count(timing_repeats, "timing_repeats", 1))
                 if costs is None else _given_costs(costs, sizes))
    profile = a_ec.mean if error_correction else np.full(max_lookahead, float(a0.mean))
    draft_s, target_table, overhead_s = (cost_info[key] for key in ("draft_step_s", "target_batch_s", "overhead_s"))
    speedups = synchronous_speedup(profile, np.arange(1, max_lookahead + 1), draft_s, target_table, overhead_s)
    best = int(np.argmax(speedups))
    if speedups[best] < 1.0:
        notes.append("no lookahead beats plain target MD with these costs (best S < 1)")
    async_s = _asynchronous_prediction(a0.mean, a_ec.mean, error_correction, draft_s, target_table[1],
                                       n_target_workers)
    return Prediction(
        lookahead=lookahead, error_correction=bool(error_correction),
        acceptance_by_depth=a_ec.mean, acceptance_by_depth_stderr=a_ec.stderr,
        acceptance_no_ec=float(a0.mean), acceptance_no_ec_stderr=float(a0.stderr),
        expected_steps_per_round=float(expected_steps_per_round(profile, lookahead)),
        predicted_speedup=float(speedups[lookahead - 1]), speedup_by_lookahead=speedups,
        best_lookahead=best + 1, best_speedup=float(speedups[best]), asynchronous_speedup=async_s,
        rms_force_error_eV_per_A=float(np.sqrt(np.mean(residuals ** 2))), costs=cost_info,
        n_calibration_steps=n_calibration_steps, n_target_evaluations=int(states.shape[0] * block),
        n_target_workers=n_target_workers, notes=notes)


def _asynchronous_prediction(a0: float, a_ec: np.ndarray, error_correction: bool, draft_step_s: float,
                             target_step_s: float, n_target_workers: int | None) -> float:
    """Streaming speedup; with EC, the acceptance at reference age ⌈T_t/T_d⌉ (NaN beyond the data)."""
    if not error_correction:
        return float(asynchronous_speedup(1.0 - a0, draft_step_s, target_step_s, n_target_workers))
    age = max(1, math.ceil(target_step_s / draft_step_s)) if draft_step_s > 0 else math.inf
    if n_target_workers is not None:
        age = min(age, int(n_target_workers))
    if age > a_ec.size:
        return math.nan
    return float(asynchronous_speedup(1.0 - a_ec[age - 1], draft_step_s, target_step_s, n_target_workers))
