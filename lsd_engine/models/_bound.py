"""Shared plumbing of the registry's adapters: a model bound to one system."""

from __future__ import annotations

import importlib
from typing import Any, ContextManager

import numpy as np
from ase import Atoms, units

from ..errors import LSDError
from ..systems import system_info
from .base import ForceModel
from .threads import torch_threads

#: OpenMM kJ/mol -> eV, and kJ/mol/nm -> eV/Å (ASE's CODATA constants).
KJ_PER_MOL_IN_EV = units.kJ / units.mol
KJ_PER_MOL_NM_IN_EV_PER_A = KJ_PER_MOL_IN_EV / 10.0
HARTREE_IN_EV = units.Hartree
BOHR_IN_A = units.Bohr
HARTREE_PER_BOHR_IN_EV_PER_A = units.Hartree / units.Bohr


class MissingBackendError(LSDError, ImportError):
    """A model's optional package is not installed; the message says what to pip install."""


def require(module: str, model: str, install: str) -> Any:
    """Import ``module`` or raise :class:`MissingBackendError` naming the pip install line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingBackendError(
            f"model {model!r} needs the Python package {module.split('.')[0]!r}, which is not importable "
            f"({exc}). Install it with:  pip install {install}") from exc


class BoundModel(ForceModel):
    """A force model bound to one system (species, cell, charge) at construction.

    Subclasses implement ``_evaluate(positions (B, N, 3) float64) -> (E (B,), F (B, N, 3))``.
    ``evaluate`` accepts a single (N, 3) configuration too. Models made by
    :func:`lsd_engine.models.create` pickle by recipe (name, atoms, options) and are
    rebuilt on unpickling, so they can be shipped to dask workers.
    """

    batched: bool = False
    #: The registry entry this model was created from (set by ``create``).
    spec: Any = None
    #: ``(name, atoms, options)`` that ``create`` rebuilds this model from (set by ``create``; None for
    #: a model built otherwise, which then cannot be pickled).
    recipe: tuple[str, Atoms, dict[str, Any]] | None = None
    #: Threads the backend may use during ``evaluate`` (None: leave the process setting alone).
    #: On a shared or small machine 1 thread is often much faster than oversubscribed cores.
    threads: int | None = None
    #: The ``torch.device`` a torch-backed model computes on (None: not a torch model, the CPU).
    device: Any = None

    def __init__(self, atoms: Atoms, name: str):
        self.name = name
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self.n_atoms = len(atoms)
        self.numbers = np.asarray(atoms.numbers, dtype=np.int64).copy()
        self.periodic = bool(np.any(atoms.pbc))
        self.system_info = system_info(atoms)  # atoms.info["lsd_system"] at binding time

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim == 2:
            pos = pos[None]
        if pos.ndim != 3 or pos.shape[1:] != (self.n_atoms, 3):
            raise ValueError(f"model {self.name!r} is bound to {self.n_atoms} atoms; got positions of shape "
                             f"{np.shape(positions)}, expected (B, {self.n_atoms}, 3)")
        pos = np.ascontiguousarray(pos)
        if self.threads is None:
            energies, forces = self._evaluate(pos)
        else:
            with self._thread_limit():
                energies, forces = self._evaluate(pos)
        energies = np.asarray(energies, dtype=np.float64).reshape(pos.shape[0])
        forces = np.asarray(forces, dtype=np.float64).reshape(pos.shape)
        return energies, forces

    def _thread_limit(self) -> ContextManager[None]:
        """Torch's intra-op threads at ``self.threads`` during this call, shared without races with
        other threads evaluating models (see :mod:`lsd_engine.models.threads`)."""
        return torch_threads(int(self.threads))

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def __reduce__(self):
        if self.recipe is None:
            raise TypeError(f"{type(self).__name__} {self.name!r} was not made by lsd_engine.models.create "
                            "and cannot be pickled")
        from .registry import rebuild

        return rebuild, self.recipe
