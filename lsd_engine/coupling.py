"""Reflection maximal coupling of two Gaussians with equal covariance (docs/theory.md §3).

Whitened coordinates: the draft proposal is mu_d + s z with z ~ N(0, I); the
target is N(mu_t, s^2).  With delta = (mu_t - mu_d)/s, accept with probability
min(1, exp(z.delta - |delta|^2/2)); on rejection return mu_t + s (z - 2 (z.e) e),
e = delta/|delta|.  The output is exactly N(mu_t, s^2) and P(accept) = 2 Phi(-|delta|/2).
"""

from __future__ import annotations

import math

import numpy as np


def log_acceptance_ratio(noise: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """log q(y)/p(y) at the drafted point, per leading index: z.delta - |delta|^2/2.

    noise, delta: (..., N, 3) whitened draft noise and mean shift. Returns shape (...).
    """
    axes = (-2, -1)
    return np.sum(noise * delta, axis=axes) - 0.5 * np.sum(delta * delta, axis=axes)


def reflect(noise: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """z' = z - 2 (z.e) e with e = delta/|delta| (the transport of a rejected draw)."""
    norm_sq = float(np.sum(delta * delta))
    if norm_sq == 0.0:  # draft == target: a rejection cannot happen, keep the draw
        return noise.copy()
    return noise - (2.0 * float(np.sum(noise * delta)) / norm_sq) * delta


def acceptance_probability(delta_norm: float | np.ndarray) -> float | np.ndarray:
    """P(accept) = 2 Phi(-|delta|/2) = erfc(|delta| / sqrt(8))."""
    from scipy.special import erfc

    return erfc(np.asarray(delta_norm) / math.sqrt(8.0))


def couple(mean_draft: np.ndarray, mean_target: np.ndarray, scale: np.ndarray,
           noise: np.ndarray, log_u: float) -> tuple[np.ndarray, bool]:
    """One coupled draw: returns (sample from N(mean_target, scale^2), accepted?).

    The draft sample is mean_draft + scale * noise; ``log_u`` is log of a uniform on (0, 1].
    """
    delta = (mean_target - mean_draft) / scale
    if log_u <= float(log_acceptance_ratio(noise, delta)):
        return mean_draft + scale * noise, True
    return mean_target + scale * reflect(noise, delta), False
