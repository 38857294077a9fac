"""Checks of user input shared by the engine's modules, and the one JSON conversion of results.

Each check returns the value in its canonical type or raises an error that names the parameter.
This module imports nothing from the rest of the package, so every layer may use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["check_model", "jsonable", "positive_int"]


def positive_int(value: Any, name: str, allow_zero: bool = False) -> int:
    """``value`` as an int if it is a positive (or, with ``allow_zero``, non-negative) integer.

    Booleans are refused (TypeError, as for a non-integer); a negative or zero value is a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")
    return int(value)


def check_model(model: Any, role: str, n_atoms: int) -> Any:
    """``model`` if it can serve as the ``role`` ("draft" / "target") force model of an ``n_atoms`` system:
    it has ``evaluate(positions)`` and, if it is bound to a system (``n_atoms`` attribute), to one that size."""
    if not callable(getattr(model, "evaluate", None)):
        raise TypeError(f"{role} model must have an evaluate(positions) method "
                        f"(wrap a function with FunctionModel), got {type(model).__name__}")
    expected = getattr(model, "n_atoms", None)
    if expected is not None and expected != n_atoms:
        raise ValueError(f"{role} model {getattr(model, 'name', model)!r} is bound to {expected} atoms, "
                         f"but the system has {n_atoms}")
    return model


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as Python lists and numbers, NaN / infinity as None,
    recursively into dicts (keys become strings), lists and tuples (which become lists)."""
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
