"""The force-model protocol: a model is bound to one system and evaluates a batch.

``evaluate(positions (B, N, 3) Å) -> (energies (B,) eV, forces (B, N, 3) eV/Å)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np

from ..errors import ModelError

EvaluateFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class ForceModel(ABC):
    """Base class of every force model (draft or target).

    Subclasses set ``name`` and implement ``evaluate``. ``n_atoms`` may be None
    for a model that accepts any size (a plain function).
    """

    name: str = "model"
    n_atoms: int | None = None

    @abstractmethod
    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies (B,) in eV and forces (B, N, 3) in eV/Å at positions (B, N, 3) in Å."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class FunctionModel(ForceModel):
    """Wrap a plain function ``fn(positions (B,N,3)) -> (energies (B,), forces (B,N,3))``.

    Used by tests, the teaching demos, and anyone with a custom potential. It is
    picklable when ``fn`` is (a module-level function), so it also works on dask workers.
    """

    def __init__(self, fn: EvaluateFn, name: str | None = None, n_atoms: int | None = None):
        if not callable(fn):
            raise TypeError(f"FunctionModel needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")
        self.n_atoms = n_atoms

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.fn(positions)


def evaluate_checked(model: ForceModel, positions: np.ndarray, *, role: str,
                     first_step: int) -> tuple[np.ndarray, np.ndarray]:
    """Call ``model.evaluate`` and check shapes and finiteness.

    ``first_step`` is the trajectory step whose force the first row belongs to;
    errors name the model, its role and that step.
    """
    batch, n_atoms = positions.shape[0], positions.shape[1]
    where = f"{role} model {model.name!r}"
    try:
        energies, forces = model.evaluate(positions)
    except ModelError:
        raise
    except Exception as exc:  # surface any backend failure with context
        raise ModelError(f"{where} failed at step {first_step}: {type(exc).__name__}: {exc}",
                         model_name=model.name, step=first_step) from exc
    energies = np.asarray(energies, dtype=float).reshape(-1) if np.ndim(energies) <= 1 else np.asarray(energies)
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (batch, n_atoms, 3) or energies.shape != (batch,):
        raise ModelError(
            f"{where} returned energies of shape {energies.shape} and forces of shape {forces.shape} "
            f"at step {first_step}; expected ({batch},) and ({batch}, {n_atoms}, 3)",
            model_name=model.name, step=first_step)
    finite_rows = np.isfinite(forces).all(axis=(1, 2)) & np.isfinite(energies)
    if not finite_rows.all():
        bad = int(np.argmin(finite_rows))
        raise ModelError(
            f"{where} returned non-finite energy or forces (NaN/inf) at step {first_step + bad}",
            model_name=model.name, step=first_step + bad)
    return energies, forces
