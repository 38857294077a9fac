"""Langevin parameters (user units) and the integrator constants derived from them (ASE units)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from ase import units

#: Drafted steps per round K when none is given (the largest K with adaptive lookahead). The one default of
#: K: the sampler, the ASE driver, the draft advisor, the theory's predictions and ``RunConfig`` use it.
DEFAULT_LOOKAHEAD = 8


@dataclass(frozen=True)
class LangevinParams:
    """Physical parameters of the Langevin dynamics.

    timestep_fs: integration timestep in femtoseconds.
    temperature_K: bath temperature in kelvin.
    friction_per_ps: friction coefficient gamma in 1/ps.
    """

    timestep_fs: float
    temperature_K: float
    friction_per_ps: float

    def __post_init__(self) -> None:
        for name in ("timestep_fs", "temperature_K", "friction_per_ps"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {value!r}") from None
            if not math.isfinite(number) or number <= 0.0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, number)

    @property
    def kT_eV(self) -> float:
        return units.kB * self.temperature_K

    @property
    def timestep_ase(self) -> float:
        return self.timestep_fs * units.fs

    @property
    def friction_per_ase_time(self) -> float:
        return self.friction_per_ps / (1000.0 * units.fs)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class IntegratorConstants:
    """Constants of the ABOBA kernel for one system (ASE units).

    half_dt: dt/2; c: exp(-gamma dt); force_factor: (1+c) dt/2;
    noise_scale: sqrt((1-c^2) m kT) per atom, shape (N, 1); inverse_mass: 1/m, shape (N, 1).
    """

    half_dt: float
    c: float
    force_factor: float
    noise_scale: np.ndarray
    inverse_mass: np.ndarray
    masses: np.ndarray
    kT: float

    @classmethod
    def build(cls, params: LangevinParams, masses_amu: np.ndarray) -> "IntegratorConstants":
        masses = np.asarray(masses_amu, dtype=float)
        if masses.ndim != 1 or masses.size == 0:
            raise ValueError("masses must be a non-empty 1-D array (amu)")
        if not np.all(np.isfinite(masses)) or np.any(masses <= 0):
            raise ValueError("every atomic mass must be positive and finite")
        dt = params.timestep_ase
        c = math.exp(-params.friction_per_ase_time * dt)
        kT = params.kT_eV
        return cls(
            half_dt=0.5 * dt,
            c=c,
            force_factor=0.5 * (1.0 + c) * dt,
            noise_scale=np.sqrt((1.0 - c * c) * masses * kT)[:, None],
            inverse_mass=(1.0 / masses)[:, None],
            masses=masses,
            kT=kT,
        )
