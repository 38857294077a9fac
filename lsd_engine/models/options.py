"""Model options that untrusted input may set: one allowlist per registry model.

``models.create(name, atoms, **options)`` passes options straight to a model's
constructor, which is right for Python and CLI users but not for values that come
from a web page, a URL or a file header: some options name files (``amber14``'s
``pdb=``, a SevenNet checkpoint) and ``ase:<Name>`` builds any class it is given.
:func:`check_safe_options` admits only the options listed here, each with its type
and allowed values, and refuses everything else with a message naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LSDError
from .gfnff import GFNFF_SOLVENTS

__all__ = ["Choice", "Number", "SAFE_OPTIONS", "UnsafeOptionError", "check_safe_options", "safe_model_names"]


class UnsafeOptionError(LSDError, ValueError):
    """A model name or option that untrusted input may not set."""


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def check(self, key: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in self.values:
            raise UnsafeOptionError(f"option {key}={value!r} is not allowed; choose one of "
                                    f"{', '.join(repr(v) for v in self.values)}")
        return value


@dataclass(frozen=True)
class Number:
    """An int (``integer=True``) or float in [low, high]."""

    low: float
    high: float
    integer: bool = False

    def check(self, key: str, value: Any) -> Any:
        kinds = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            kind = "an integer" if self.integer else "a number"
            raise UnsafeOptionError(f"option {key}={value!r} must be {kind}")
        if not self.low <= value <= self.high:
            raise UnsafeOptionError(f"option {key}={value!r} must be between {self.low:g} and {self.high:g}")
        return int(value) if self.integer else float(value)


_CHARGE = Number(-10, 10, integer=True)
_SPIN = Number(0, 10, integer=True)
_THREADS = Number(1, 64, integer=True)
_DEVICE = Choice(("auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(16))))

#: Registry name (as offered in pages, ``ase:lj`` included) -> option -> rule.
#: A model absent from this table cannot be chosen by untrusted input at all.
SAFE_OPTIONS: dict[str, dict[str, Choice | Number]] = {
    "amber14": {"solvent": Choice(("vacuum", "implicit", "explicit")),
                "platform": Choice(("Reference", "CPU", "CUDA", "OpenCL")), "threads": _THREADS},
    "emt": {},
    "lj": {"sigma_A": Number(0.5, 10.0), "epsilon_eV": Number(1e-4, 10.0), "cutoff_A": Number(1.0, 30.0)},
    "ase:lj": {"sigma": Number(0.1, 10.0), "epsilon": Number(1e-4, 10.0), "rc": Number(0.5, 30.0)},
    "ani-1x": {"model_index": Number(0, 7, integer=True), "precision": Choice(("float32", "float64")),
               "threads": _THREADS, "device": _DEVICE},
    "gfn-ff": {"charge": _CHARGE, "solvent": Choice(GFNFF_SOLVENTS), "accuracy": Number(0.01, 10.0),
               "threads": _THREADS},
    "gfn2-xtb": {"charge": _CHARGE, "spin": _SPIN, "accuracy": Number(1e-4, 1e3), "threads": _THREADS},
    "gfn1-xtb-batched": {"charge": _CHARGE, "spin": _SPIN, "precision": Choice(("float32", "float64")),
                         "threads": _THREADS, "device": _DEVICE},
    "gfn2-xtb-batched": {"charge": _CHARGE, "spin": _SPIN, "precision": Choice(("float32", "float64")),
                         "threads": _THREADS, "device": _DEVICE},
    "sevennet-0": {"threads": _THREADS, "device": _DEVICE},
    "chgnet": {"threads": _THREADS, "device": _DEVICE},
}


def safe_model_names() -> list[str]:
    """The model names untrusted input may choose (a page offers those that are installed)."""
    return list(SAFE_OPTIONS)


def check_safe_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against the allowlist of ``name``; raises :class:`UnsafeOptionError`."""
    if name not in SAFE_OPTIONS:
        raise UnsafeOptionError(f"model {name!r} cannot be chosen here; choose one of "
                                f"{', '.join(SAFE_OPTIONS)}")
    rules = SAFE_OPTIONS[name]
    checked = {}
    for key, value in options.items():
        if key not in rules:
            allowed = ", ".join(rules) or "none"
            raise UnsafeOptionError(f"model {name!r}: option {key!r} cannot be set here (allowed: {allowed})")
        checked[key] = rules[key].check(f"{name}:{key}", value)
    return checked
