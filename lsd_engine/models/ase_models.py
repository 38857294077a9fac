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
    """``EMT``, ``emt``, ``lj`` (ASE's registered names) or a dotted path ``package.module.Class``.

    Whatever the name resolves to must be a class deriving from ASE's
    ``ase.calculators.calculator.BaseCalculator``; anything else (``os.system``, a module,
    a plain function) is refused before it can be called. A dotted path imports its module,
    so only paths a person typed belong here: files and URLs must not supply them (a
    distilled draft's header may name only a registry model, see ``lsd_engine.distill``).
    """
    if "." in spec or ":" in spec:
        module_name, _, attr = spec.replace(":", ".").rpartition(".")
        if not all(part.isidentifier() for part in (*module_name.split("."), attr)):
            raise LSDError(f"ASE calculator {spec!r} is not a dotted Python path such as "
                           "'mypackage.module.MyCalculator'")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise LSDError(f"cannot import ASE calculator {spec!r}: {exc}") from exc
        return _checked_calculator_class(found, spec)
    from ase.calculators.calculator import get_calculator_class

    for candidate in (spec, spec.lower()):
        try:
            return _checked_calculator_class(get_calculator_class(candidate), spec)
        except (KeyError, ValueError, ImportError, AttributeError):
            continue
    names = _ase_calculator_names()
    for known in names:
        if known.lower() == spec.lower():
            return _checked_calculator_class(get_calculator_class(known), spec)
    raise LSDError(f"unknown ASE calculator {spec!r}; ASE knows {', '.join(sorted(names))}, "
                   "or give a dotted path such as 'mypackage.module.MyCalculator'")


def _checked_calculator_class(found: Any, spec: str) -> type:
    """``found`` if it is an ASE calculator class, else an LSDError naming what it is."""
    from ase.calculators.calculator import BaseCalculator

    if isinstance(found, type) and issubclass(found, BaseCalculator):
        return found
    what = f"the class {found.__name__}" if isinstance(found, type) else f"a {type(found).__name__}"
    raise LSDError(f"ASE calculator {spec!r} is {what}, not an ASE calculator class "
                   "(a subclass of ase.calculators.calculator.BaseCalculator); nothing was called")


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
