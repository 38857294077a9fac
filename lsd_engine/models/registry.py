"""The registry of real force models: ``available()``, ``create(name, atoms, **options)``.

Each entry has a :class:`ModelSpec` with honest metadata (role hint, cost class,
elements, periodicity, batching, package). ``create`` checks the system against
the spec before importing anything heavy, so an unsupported system fails at
creation with a clear message rather than mid-run.

Names:
  ``amber14``, ``emt``, ``ani-1x``, ``gfn2-xtb``, ``gfn1-xtb-batched``,
  ``gfn2-xtb-batched``, ``sevennet-0``, ``chgnet``, ``uma`` (``uma:<model name>``
  or ``uma:/path/to/checkpoint.pt``), and ``ase:<calculator>`` for any ASE
  calculator (``ase:EMT``, ``ase:lj``, ``ase:mypackage.module.Calculator``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ..errors import LSDError
from ._bound import BoundModel, MissingBackendError

__all__ = ["ModelSpec", "MissingBackendError", "UnsupportedSystemError", "available", "create",
           "from_ase_calculator", "get_spec", "format_table", "rebuild", "register"]


class UnsupportedSystemError(LSDError, ValueError):
    """The system has elements, periodicity or size the model does not support."""


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model is and what it supports.

    role: "draft", "target" or "draft or target" (a hint, not a restriction).
    cost: "cheap" (< 5 ms per call for ~20-30 atoms on one CPU core), "moderate"
      (5-100 ms) or "expensive" (> 100 ms); ``cost_note`` gives the measurement.
    elements: chemical symbols supported, or None when any element the backend
      knows (the backend checks at creation).
    periodic / nonperiodic: which boundary conditions work.
    batched: whether a batch of B configurations is evaluated in one backend call.
    package / install: the pip package and the install line.
    devices: where it can compute: ("cpu",), or ("cpu", "cuda") for a model with a ``device``
      option ("auto" by default: CUDA when available; see :mod:`lsd_engine.models.devices`).
    """

    name: str
    role: str
    cost: str
    elements: tuple[str, ...] | None
    periodic: bool
    nonperiodic: bool
    batched: bool
    package: str
    install: str
    description: str
    cost_note: str = ""
    devices: tuple[str, ...] = ("cpu",)
    factory: Callable[..., BoundModel] | None = field(default=None, repr=False, compare=False)

    def supports_elements(self, symbols: set[str]) -> set[str]:
        """The symbols of ``symbols`` this model does not support (empty if all are)."""
        if self.elements is None:
            return set()
        return set(symbols) - set(self.elements)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("factory")
        out["elements"] = list(self.elements) if self.elements is not None else "any"
        out["devices"] = list(self.devices)
        return out


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add a model to the registry (used by the built-in adapters and by plugins)."""
    key = spec.name.lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    if spec.factory is None:
        raise ValueError(f"model spec {spec.name!r} needs a factory")
    _REGISTRY[key] = spec
    return spec


def available() -> list[ModelSpec]:
    """Every registered model's spec (built-ins first, in registry order)."""
    _ensure_builtins()
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    _ensure_builtins()
    base = name.split(":", 1)[0].lower() if ":" in name else name.lower()
    if base not in _REGISTRY:
        names = ", ".join(sorted(_REGISTRY))
        raise LSDError(f"unknown model {name!r}. Available: {names} "
                       "(plus 'ase:<ASE calculator>' and 'uma:<name or checkpoint path>')")
    return _REGISTRY[base]


def format_table(specs: list[ModelSpec] | None = None) -> str:
    """A plain-text table of the registry (name, role, cost, periodic, batched, devices, elements)."""
    specs = available() if specs is None else specs
    rows = [("name", "role", "cost", "periodic", "batched", "devices", "elements", "package")]
    for s in specs:
        pbc = "yes" if s.periodic and s.nonperiodic else ("only" if s.periodic else "no")
        elements = "any" if s.elements is None else (
            ",".join(s.elements) if len(s.elements) <= 12 else f"{len(s.elements)} elements")
        rows.append((s.name, s.role, s.cost, pbc, "yes" if s.batched else "no", ",".join(s.devices), elements,
                     s.package))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def check_system(spec: ModelSpec, atoms: Atoms, label: str | None = None) -> None:
    """Raise :class:`UnsupportedSystemError` if ``atoms`` is outside what ``spec`` supports."""
    label = label or spec.name
    if not isinstance(atoms, Atoms):
        raise TypeError(f"model {label!r} must be bound to an ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise UnsupportedSystemError(f"model {label!r}: the system has no atoms")
    numbers = set(int(z) for z in atoms.numbers)
    if 0 in numbers or any(z >= len(chemical_symbols) for z in numbers):
        raise UnsupportedSystemError(f"model {label!r}: the system contains unknown elements (atomic number 0)")
    symbols = {chemical_symbols[z] for z in numbers}
    missing = spec.supports_elements(symbols)
    if missing:
        supported = ", ".join(spec.elements or ())
        raise UnsupportedSystemError(
            f"model {label!r} does not support element(s) {', '.join(sorted(missing))}; "
            f"it supports {supported}")
    periodic = bool(np.any(atoms.pbc))
    if periodic and not spec.periodic:
        raise UnsupportedSystemError(
            f"model {label!r} does not support periodic systems (atoms.pbc={atoms.pbc.tolist()}); "
            "use a non-periodic system or a model with periodic support")
    if not periodic and not spec.nonperiodic:
        raise UnsupportedSystemError(
            f"model {label!r} needs a periodic system with a cell (atoms.pbc is all False)")
    if periodic and atoms.cell.rank < 3:
        raise UnsupportedSystemError(f"model {label!r}: atoms.pbc is set but the cell is not 3-D")


def create(name: str, atoms: Atoms, **options: Any) -> BoundModel:
    """Build the model ``name`` bound to ``atoms``.

    ``options`` are model specific (see each adapter's docstring); system options
    such as the solvent come from ``atoms.info["lsd_system"]`` (see
    :mod:`lsd_engine.systems`). Raises :class:`LSDError` for an unknown name,
    :class:`UnsupportedSystemError` for elements / periodicity the model does not
    support, and :class:`MissingBackendError` (saying what to pip install) when the
    backend package is missing.
    """
    spec = get_spec(name)
    argument = name.split(":", 1)[1] if ":" in name else None
    if argument is not None and not argument:
        raise LSDError(f"model name {name!r} has an empty argument after ':'")
    check_system(spec, atoms, name)
    if argument is not None:
        options = {**options, "_argument": argument}
    model = spec.factory(atoms, **options)
    model.recipe = (name, atoms.copy(), {k: v for k, v in options.items() if k != "_argument"})
    model.spec = spec
    return model


def rebuild(name: str, atoms: Atoms, options: dict[str, Any]) -> BoundModel:
    """``create(name, atoms, **options)``: how a model's recipe is rebuilt after pickling (dask workers)."""
    return create(name, atoms, **options)


def from_ase_calculator(calc: Any, atoms: Atoms, name: str | None = None) -> BoundModel:
    """Wrap an ASE calculator instance as a force model bound to ``atoms`` (one call per configuration)."""
    from .ase_models import ASECalculatorModel

    model = ASECalculatorModel(atoms, calc, name=name or f"ase:{type(calc).__name__}")
    model.spec = get_spec("ase")
    return model


_BUILTINS_LOADED = False


def _ensure_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from . import catalog  # noqa: F401  (registers the built-in specs, each with a lazy factory)
