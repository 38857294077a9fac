"""ASE calculators as force models: ``emt`` and ``ase:<any calculator>``."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ._bound import BoundModel


class ASECalculatorModel(BoundModel):
    """Any ASE calculator, evaluated one configuration at a time on a private Atoms copy.

    Energies are ``get_potential_energy()`` (eV) and forces ``get_forces()`` (eV/Å),
    ASE's own units, so no conversion happens here.
    """

    batched = False

    def __init__(self, atoms: Atoms, calc: Any, name: str):
        super().__init__(atoms, name)
        if not hasattr(calc, "get_potential_energy") and not hasattr(calc, "calculate"):
            raise TypeError(f"{name}: {type(calc).__name__} is not an ASE calculator")
        self.calc = calc
        self._work = self.atoms.copy()
        self._work.calc = calc

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = positions.shape[0]
        energies = np.empty(batch)
        forces = np.empty_like(positions)
        work = self._work
        for b in range(batch):
            work.set_positions(positions[b], apply_constraint=False)
            energies[b] = work.get_potential_energy()
            forces[b] = work.get_forces(apply_constraint=False)
        return energies, forces


def emt_elements() -> tuple[str, ...]:
    from ase.calculators.emt import parameters

    return tuple(sorted(parameters))


def make_emt(atoms: Atoms, **options: Any) -> ASECalculatorModel:
    """ASE's EMT (effective medium theory): the classical draft for fcc metals. Options go to ``EMT(...)``."""
    from ase.calculators.emt import EMT

    return ASECalculatorModel(atoms, EMT(**options), name="emt")


def resolve_calculator_class(spec: str) -> type:
    """``EMT``, ``emt``, ``lj`` (ASE's registered names) or a dotted path ``package.module.Class``."""
    if "." in spec or ":" in spec:
        module_name, _, attr = spec.replace(":", ".").rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise LSDError(f"cannot import ASE calculator {spec!r}: {exc}") from exc
    from ase.calculators.calculator import get_calculator_class

    for candidate in (spec, spec.lower()):
        try:
            return get_calculator_class(candidate)
        except (KeyError, ValueError, ImportError, AttributeError):
            continue
    names = _ase_calculator_names()
    for known in names:
        if known.lower() == spec.lower():
            return get_calculator_class(known)
    raise LSDError(f"unknown ASE calculator {spec!r}; ASE knows {', '.join(sorted(names))}, "
                   "or give a dotted path such as 'mypackage.module.MyCalculator'")


def _ase_calculator_names() -> list[str]:
    from ase.calculators.calculator import names

    return list(names)


def make_ase(atoms: Atoms, _argument: str | None = None, calculator: Any = None, **options: Any) -> ASECalculatorModel:
    """``ase:<Name>`` builds ``<Name>(**options)``; ``calculator=`` passes an instance instead."""
    if calculator is not None:
        return ASECalculatorModel(atoms, calculator, name=f"ase:{type(calculator).__name__}")
    if not _argument:
        raise LSDError("model 'ase' needs a calculator: use 'ase:<Name>' (e.g. 'ase:EMT', 'ase:lj') "
                       "or pass calculator=<ASE calculator instance>")
    cls = resolve_calculator_class(_argument)
    return ASECalculatorModel(atoms, cls(**options), name=f"ase:{_argument}")
