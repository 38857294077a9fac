"""A registry model carried as its recipe and built only where it is evaluated.

When dask workers evaluate the target, the client needs its recipe (to ship) but
not its weights: building it there would load a second copy, on a GPU machine onto
GPU 0 next to a worker's. ``deferred(name, atoms, **options)`` checks the system and
the device name now (cheap, no backend import) and builds the model on the first
local ``evaluate`` only. It pickles exactly as the built model does, so dask
workers build it from the same recipe (and share their cache with it).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from .base import ForceModel
from .devices import DEFAULT_DEVICE, check_device_name, model_device
from .registry import check_system, create, get_spec

__all__ = ["DeferredModel", "deferred"]

log = logging.getLogger(__name__)


class DeferredModel(ForceModel):
    """``models.create(name, atoms, **options)``, postponed until this process evaluates it."""

    def __init__(self, name: str, atoms: Atoms, **options: Any):
        self.spec = get_spec(name)
        if ":" in name and not name.split(":", 1)[1]:
            raise LSDError(f"model name {name!r} has an empty argument after ':'")
        check_system(self.spec, atoms, name)
        if "device" in options:
            options["device"] = check_device_name(options["device"], name)
        self.name = name
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self.n_atoms = len(atoms)
        self.batched = self.spec.batched
        self.options = dict(options)
        self._built: ForceModel | None = None
        self._lock = threading.Lock()

    @property
    def requested_device(self) -> str:
        """The ``device`` option as given ("auto" when not given)."""
        return self.options.get("device", DEFAULT_DEVICE)

    @property
    def built(self) -> ForceModel | None:
        """The model, once this process has built it (None before the first local evaluate)."""
        return self._built

    def build(self) -> ForceModel:
        """Build the model here now (once); later calls return the same model."""
        with self._lock:
            if self._built is None:
                log.info("building %s in this process (device %s)", self.name, self.requested_device)
                self._built = create(self.name, self.atoms, **self.options)
            return self._built

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.build().evaluate(positions)

    def describe_device(self) -> dict[str, Any]:
        """Where the model computes in this process, or ``{"device": "not built here", ...}``."""
        if self._built is None:
            return {"device": "not built here", "requested_device": self.requested_device}
        return model_device(self._built)

    @property
    def recipe(self) -> tuple[str, Atoms, dict[str, Any]]:
        """``(name, atoms, options)``: what ``create`` builds, as ``BoundModel.recipe``."""
        return self.name, self.atoms.copy(), dict(self.options)

    def __reduce__(self):
        from .registry import rebuild  # the same reconstructor as a built model's recipe

        return rebuild, self.recipe


def deferred(name: str, atoms: Atoms, **options: Any) -> DeferredModel:
    """A :class:`DeferredModel`: ``name`` checked against ``atoms`` now, built on first local use."""
    return DeferredModel(name, atoms, **options)
