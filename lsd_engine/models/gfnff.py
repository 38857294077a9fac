"""GFN-FF (Spicher & Grimme) through the ``gfnff`` package: a general force field for any element.

GFN-FF derives its topology (bonds, rings, charges' constraints) from the geometry it is
set up with, so the set-up happens once at construction (a few ms) and every call only
passes new positions to the library's singlepoint. Units: positions Å -> Bohr in,
Hartree -> eV and Hartree/Bohr -> eV/Å out. The ``gfnff`` package is LGPL-3.0-or-later and
used as an unmodified shared library.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ..systems import system_info
from ._bound import BOHR_IN_A, HARTREE_IN_EV, HARTREE_PER_BOHR_IN_EV_PER_A, BoundModel, require

GFNFF_INSTALL = "gfnff"
#: The implicit solvents GFN-FF's ALPB model is parametrised for (the library stops the
#: whole process on an unknown name, so names are checked here first).
GFNFF_SOLVENTS = ("acetone", "acetonitrile", "aniline", "benzaldehyde", "benzene", "ch2cl2", "chcl3", "cs2",
                  "dioxane", "dmf", "dmso", "ethanol", "ether", "ethylacetate", "furane", "hexadecane", "hexane",
                  "methanol", "nitromethane", "octanol", "phenol", "thf", "toluene", "water", "woctanol")
_SOLVENT_ALIASES = {"h2o": "water"}


def gfnff_solvent(atoms: Atoms, solvent: str | None) -> str:
    """The ALPB solvent name for ``atoms`` ('' for none): the explicit option, else 'water'
    when the system is tagged implicit."""
    info_solvent = system_info(atoms).get("solvent")
    if solvent is None:
        return "water" if info_solvent == "implicit" else ""
    name = str(solvent).strip().lower()
    if name in ("", "none", "vacuum"):
        return ""
    name = _SOLVENT_ALIASES.get(name, name)
    if name not in GFNFF_SOLVENTS:
        raise LSDError(f"gfn-ff: unknown implicit solvent {solvent!r}; GFN-FF's ALPB knows "
                       f"{', '.join(GFNFF_SOLVENTS)}")
    return name


def _openmp_runtimes() -> list[ctypes.CDLL]:
    """The OpenMP runtimes loaded in the process (the gfnff wheel bundles its own libgomp), found once:
    threadpoolctl's scan costs ~1 ms, a direct omp_set_num_threads call a microsecond."""
    from threadpoolctl import threadpool_info

    return [ctypes.CDLL(info["filepath"]) for info in threadpool_info() if info["user_api"] == "openmp"]


class GFNFFModel(BoundModel):
    """GFN-FF, one singlepoint per configuration on a calculator set up once.

    The topology is perceived from the positions given at construction and kept; forces
    are the exact negative gradient of the energy, a deterministic function of the
    positions (no iterative state carries over between calls). ``threads=1`` (the default)
    keeps them bit-for-bit reproducible: with several OpenMP threads the library's reductions
    differ between calls at the 1e-15 level. ``threads=None`` leaves the OpenMP setting alone.
    """

    batched = False

    def __init__(self, atoms: Atoms, charge: int | None = None, solvent: str | None = None,
                 accuracy: float | None = None, version: str | None = None, threads: int | None = 1,
                 name: str = "gfn-ff"):
        super().__init__(atoms, name)
        lib = require("gfnff", name, GFNFF_INSTALL)
        self.threads = threads
        self._openmp = _openmp_runtimes() if threads is not None else []
        self.charge = int(self.system_info.get("charge", 0) if charge is None else charge)
        self.solvent = gfnff_solvent(atoms, solvent)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise LSDError(f"{name}: periodic in some directions only (pbc={pbc.tolist()}); GFN-FF here takes "
                           "a molecule (no pbc) or a 3-D periodic cell")
        self._lattice = np.ascontiguousarray(atoms.cell.array / BOHR_IN_A) if self.periodic else None
        if self.periodic and self.solvent:
            raise LSDError(f"{name}: implicit solvent is for molecules, not periodic cells")
        self._numbers = np.ascontiguousarray(self.numbers, dtype=np.int32)
        try:
            self.calc = lib.GFNFFCalculator(
                self._numbers, np.ascontiguousarray(atoms.positions / BOHR_IN_A), charge=self.charge,
                solvent=self.solvent, lattice=self._lattice, npbc=3 if self.periodic else 0,
                accuracy=accuracy, version=version)
        except (RuntimeError, ValueError) as exc:
            raise LSDError(f"{name}: the gfnff library rejected the system: {exc}") from exc

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = positions.shape[0]
        energies = np.empty(batch)
        gradients = np.empty_like(positions)
        bohr = positions / BOHR_IN_A
        for b in range(batch):
            try:
                energies[b], gradients[b], _ = self.calc.singlepoint(self._numbers, bohr[b], lattice=self._lattice)
            except RuntimeError as exc:
                raise LSDError(f"{self.name}: singlepoint failed: {exc}") from exc
        return energies * HARTREE_IN_EV, -gradients * HARTREE_PER_BOHR_IN_EV_PER_A

    @contextmanager
    def _thread_limit(self) -> Iterator[None]:
        """OpenMP threads (the gfnff wheel's own runtime included) limited for this call only."""
        previous = [lib.omp_get_max_threads() for lib in self._openmp]
        for lib in self._openmp:
            lib.omp_set_num_threads(int(self.threads))
        try:
            yield
        finally:
            for lib, count in zip(self._openmp, previous):
                lib.omp_set_num_threads(count)


def make_gfnff(atoms: Atoms, **options: Any) -> GFNFFModel:
    """Options: ``charge``, ``solvent`` (an ALPB name from :data:`GFNFF_SOLVENTS`; default 'water' when
    the system is tagged implicit, none otherwise), ``accuracy`` (library cutoff factor, default 0.1),
    ``version`` (parametrisation name, e.g. 'mcgfnff2023' for molecular crystals), ``threads`` (OpenMP
    threads per call, default 1; None: the process setting)."""
    return GFNFFModel(atoms, **options)
