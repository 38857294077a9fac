"""Semi-empirical tight binding: GFN2-xTB through tblite, GFN1/GFN2-xTB batched through dxtb.

Both backends work in atomic units: positions Å -> Bohr in; energies Hartree ->
eV and gradients Hartree/Bohr -> forces eV/Å out.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from ase import Atoms, units

from ..errors import LSDError
from ..systems import system_info
from ._bound import BOHR_IN_A, HARTREE_IN_EV, HARTREE_PER_BOHR_IN_EV_PER_A, BoundModel, require
from .devices import DEFAULT_DEVICE, resolve_device

TBLITE_INSTALL = "tblite"
DXTB_INSTALL = "'dxtb[libcint]'"
XTB_ELEMENTS_MAX_Z = 86  # GFN1/GFN2 parametrise H-Rn


def _charge_spin(atoms: Atoms, charge: int | None, spin: int | None) -> tuple[int, int]:
    info = system_info(atoms)
    charge = int(info.get("charge", 0) if charge is None else charge)
    spin = int(info.get("spin", 1) if spin is None else spin)
    if spin < 1:
        raise LSDError(f"spin multiplicity must be >= 1, got {spin}")
    return charge, spin


def _implicit(atoms: Atoms, solvent: str | None) -> str | None:
    """The ALPB solvent name: explicit option, else 'water' when the system says implicit."""
    if solvent is not None:
        return None if solvent in ("", "none", "vacuum") else solvent
    return "water" if system_info(atoms).get("solvent") == "implicit" else None


def _libgomp():
    """The system OpenMP runtime that tblite's wheel links against."""
    import ctypes
    import ctypes.util

    path = ctypes.util.find_library("gomp")
    if path is None:
        raise LSDError("threads= needs the OpenMP runtime libgomp; set OMP_NUM_THREADS instead")
    return ctypes.CDLL(path)


class TBLiteModel(BoundModel):
    """GFN2-xTB / GFN1-xTB through tblite's library interface, one SCF per configuration.

    Every SCF starts from the same guess (no wavefunction reuse), so forces are a
    deterministic function of the positions: batching or order cannot change them.
    """

    batched = False

    def __init__(self, atoms: Atoms, method: str = "GFN2-xTB", charge: int | None = None, spin: int | None = None,
                 solvent: str | None = None, accuracy: float = 1.0, electronic_temperature: float = 300.0,
                 max_iterations: int = 250, threads: int | None = None, name: str = "gfn2-xtb"):
        super().__init__(atoms, name)
        self.threads = threads
        self._gomp = _libgomp() if threads is not None else None
        interface = require("tblite.interface", name, TBLITE_INSTALL)
        self.charge, self.spin = _charge_spin(atoms, charge, spin)
        self.solvent = _implicit(atoms, solvent)
        self.method = method
        lattice = np.asarray(atoms.cell.array) / BOHR_IN_A if self.periodic else None
        periodic = np.asarray(atoms.pbc, dtype=bool) if self.periodic else None
        try:
            calc = interface.Calculator(method, self.numbers, atoms.positions / BOHR_IN_A, self.charge,
                                        self.spin - 1, lattice, periodic)
            calc.set("verbosity", 0)
            calc.set("accuracy", float(accuracy))
            calc.set("max-iter", int(max_iterations))
            calc.set("temperature", electronic_temperature * units.kB / units.Hartree)
            if self.solvent:
                calc.add("alpb-solvation", self.solvent)
        except RuntimeError as exc:
            raise LSDError(f"{name}: tblite rejected the system: {exc}") from exc
        self.calc = calc

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = positions.shape[0]
        energies = np.empty(batch)
        forces = np.empty_like(positions)
        calc = self.calc
        bohr = positions / BOHR_IN_A
        for b in range(batch):
            calc.update(positions=bohr[b])
            try:
                result = calc.singlepoint()
            except RuntimeError as exc:
                raise LSDError(f"{self.name}: SCF failed: {exc}") from exc
            energies[b] = result.get("energy")
            forces[b] = result.get("gradient")
        return energies * HARTREE_IN_EV, -forces * HARTREE_PER_BOHR_IN_EV_PER_A

    @contextmanager
    def _thread_limit(self) -> Iterator[None]:
        """OpenMP threads of the calling thread set to ``self.threads`` for this call only."""
        previous = self._gomp.omp_get_max_threads()
        self._gomp.omp_set_num_threads(int(self.threads))
        try:
            yield
        finally:
            self._gomp.omp_set_num_threads(previous)


def make_gfn2_xtb(atoms: Atoms, **options: Any) -> TBLiteModel:
    """Options: ``charge``, ``spin`` (multiplicity), ``solvent`` (ALPB solvent name; default
    'water' when the system is tagged implicit), ``accuracy``, ``electronic_temperature`` (K),
    ``method`` ("GFN2-xTB" or "GFN1-xTB"), ``threads`` (OpenMP threads; default OMP_NUM_THREADS)."""
    options.setdefault("method", "GFN2-xTB")
    return TBLiteModel(atoms, **options)


class DXTBModel(BoundModel):
    """GFN1-/GFN2-xTB in PyTorch (dxtb): a batch of conformers in one SCF call on ``device``, forces by
    autograd (positions go to the device once per batch, results come back once)."""

    batched = True

    def __init__(self, atoms: Atoms, method: str = "gfn1", charge: int | None = None, spin: int | None = None,
                 precision: str = "float64", threads: int | None = None, name: str | None = None,
                 device: str = DEFAULT_DEVICE):
        name = name or f"{method}-xtb-batched"
        super().__init__(atoms, name)
        torch = require("torch", name, "torch")
        self.device = resolve_device(device, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._dxtb = require("dxtb", name, DXTB_INSTALL)
        if method not in ("gfn1", "gfn2"):
            raise LSDError(f"{name}: method must be 'gfn1' or 'gfn2', got {method!r}")
        if method == "gfn2":
            require("tad_libcint", name, DXTB_INSTALL)
        self.threads = threads
        self.method = method
        self.charge, self.spin = _charge_spin(atoms, charge, spin)
        self.dtype = getattr(torch, precision)
        self._torch = torch
        self._calculators: dict[int, Any] = {}
        self._calculator(1)  # fail now, not mid-run, if dxtb cannot handle the system

    def _calculator(self, batch: int):
        calc = self._calculators.get(batch)
        if calc is None:
            torch = self._torch
            numbers = torch.as_tensor(self.numbers, dtype=torch.long, device=self.device)
            if batch > 1:
                numbers = numbers[None].expand(batch, -1).contiguous()
            cls = (self._dxtb.calculators.GFN2Calculator if self.method == "gfn2"
                   else self._dxtb.calculators.GFN1Calculator)
            opts = {"verbosity": 0, "batch_mode": 2 if batch > 1 else 0, "cache_enabled": False}
            calc = cls(numbers, opts=opts, dtype=self.dtype, device=self.device)
            self._calculators[batch] = calc
        return calc

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        batch = positions.shape[0]
        calc = self._calculator(batch)
        calc.reset()  # dxtb keeps results keyed on the inputs; stale autograd graphs give wrong forces
        on = {"dtype": self.dtype, "device": self.device}
        pos = torch.tensor(positions / BOHR_IN_A, **on)
        if batch == 1:
            pos = pos[0]
            chrg = torch.tensor(float(self.charge), **on)
            spin = self.spin - 1 if self.spin != 1 else None
        else:
            chrg = torch.full((batch,), float(self.charge), **on)
            spin = torch.full((batch,), float(self.spin - 1), **on) if self.spin != 1 else None
        pos.requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            energy = calc.get_energy(pos, chrg=chrg, spin=spin)
            (grad,) = torch.autograd.grad(energy.sum(), pos)
        e = energy.detach().to(torch.float64).cpu().numpy().reshape(batch)
        g = grad.to(torch.float64).cpu().numpy().reshape(batch, self.n_atoms, 3)
        return e * HARTREE_IN_EV, -g * HARTREE_PER_BOHR_IN_EV_PER_A
