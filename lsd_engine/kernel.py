"""The ABOBA Langevin kernel (docs/theory.md §2), split at the model call.

Given (x_n, p_n):  x' = x_n + dt/2 p_n/m;  p_{n+1} = c p_n + (1+c) dt/2 F(x') + s xi_n;
x_{n+1} = x' + dt/2 p_{n+1}/m.  Plain MD and the speculative sampler both call
these functions, so draft = target reproduces plain MD bit for bit.
"""

from __future__ import annotations

import numpy as np

from .params import IntegratorConstants


def half_step_position(positions: np.ndarray, momenta: np.ndarray, k: IntegratorConstants) -> np.ndarray:
    """x' = x + (dt/2) p/m; works on (N,3) or (B,N,3)."""
    return positions + k.half_dt * momenta * k.inverse_mass


def momentum_mean(momenta: np.ndarray, forces: np.ndarray, k: IntegratorConstants) -> np.ndarray:
    """mu(F) = c p + (1+c)(dt/2) F, the mean of the next momenta."""
    return k.c * momenta + k.force_factor * forces


def next_momenta(mean: np.ndarray, noise: np.ndarray, k: IntegratorConstants) -> np.ndarray:
    """p_{n+1} = mu + s xi."""
    return mean + k.noise_scale * noise


def end_position(half_position: np.ndarray, new_momenta: np.ndarray, k: IntegratorConstants) -> np.ndarray:
    """x_{n+1} = x' + (dt/2) p_{n+1}/m."""
    return half_position + k.half_dt * new_momenta * k.inverse_mass


def maxwell_boltzmann_momenta(noise: np.ndarray, k: IntegratorConstants) -> np.ndarray:
    """Momenta sqrt(m kT) xi from standard normals xi of shape (N, 3)."""
    return np.sqrt(k.masses * k.kT)[:, None] * noise
