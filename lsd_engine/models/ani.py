"""ANI-1x (8-network ensemble) through torchani, from files shipped inside the torchani wheel.

torchani 2.2.4's wheel contains ``resources/ani-1x_8x`` but its ``.info`` file is
empty, so ``torchani.models.ANI1x()`` tries to download. We build the same
``BuiltinEnsemble`` from the shipped files with ``torchani.neurochem``: no
network access, ever.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ._bound import HARTREE_IN_EV, BoundModel, require
from .devices import DEFAULT_DEVICE, resolve_device

INSTALL = "'torchani==2.2.4' 'setuptools<81'"
ANI1X_ELEMENTS = ("H", "C", "N", "O")


def _import_torchani(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "cuaev not installed", pkg_resources deprecation
        return require("torchani", name, INSTALL)


def load_ani1x_ensemble(model_index: int | None = None):
    """The ANI-1x ``BuiltinEnsemble`` (or one member when ``model_index`` is given),
    periodic-table indexed, built from the wheel's ``resources/ani-1x_8x`` files."""
    torchani = _import_torchani("ani-1x")
    from torchani import neurochem
    from torchani.models import BuiltinEnsemble, BuiltinModel
    from torchani.nn import SpeciesConverter

    root = os.path.join(os.path.dirname(torchani.__file__), "resources", "ani-1x_8x")
    const_file = os.path.join(root, "rHCNO-5.2R_16-3.5A_a4-8.params")
    sae_file = os.path.join(root, "sae_linfit.dat")
    if not (os.path.isfile(const_file) and os.path.isdir(os.path.join(root, "train0"))):
        raise LSDError(f"ani-1x: the torchani package at {os.path.dirname(torchani.__file__)} does not ship the "
                       f"ANI-1x files (expected {root}); install the wheel that does: pip install {INSTALL}")
    consts = neurochem.Constants(const_file)
    aev_computer = torchani.AEVComputer(**consts)
    energy_shifter, sae_dict = neurochem.load_sae(sae_file, return_dict=True)
    converter = SpeciesConverter(consts.species)
    if model_index is None:
        networks = neurochem.load_model_ensemble(consts.species, os.path.join(root, "train"), 8)
        cls = BuiltinEnsemble
    else:
        networks = neurochem.load_model(consts.species, os.path.join(root, f"train{int(model_index)}", "networks"))
        cls = BuiltinModel
    return cls(converter, aev_computer, networks, energy_shifter, consts.species_to_tensor, consts, sae_dict,
               periodic_table_index=True)


class ANIModel(BoundModel):
    """ANI-1x: energies in Hartree -> eV; forces by autograd in one batched torch call on ``device``
    (the batch goes to the device once and comes back once)."""

    batched = True

    def __init__(self, atoms: Atoms, model_index: int | None = None, precision: str = "float32",
                 threads: int | None = None, device: str = DEFAULT_DEVICE):
        name = "ani-1x" if model_index is None else f"ani-1x[{int(model_index)}]"
        super().__init__(atoms, name)
        torch = require("torch", name, "torch")
        self.threads = threads
        self.device = resolve_device(device, name)
        if precision not in ("float32", "float64"):
            raise LSDError(f"{name}: precision must be 'float32' or 'float64', got {precision!r}")
        self.dtype = getattr(torch, precision)
        self.model = load_ani1x_ensemble(model_index).to(device=self.device, dtype=self.dtype).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._torch = torch
        from torchani.utils import map2central

        self._map2central = map2central
        self._species = torch.as_tensor(self.numbers, dtype=torch.long, device=self.device)[None]
        if self.periodic:
            self._cell = torch.as_tensor(np.asarray(atoms.cell.array), dtype=self.dtype, device=self.device)
            self._pbc = torch.as_tensor(np.asarray(atoms.pbc, dtype=bool), device=self.device)
        else:
            self._cell = self._pbc = None

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        batch = positions.shape[0]
        coords = torch.tensor(positions, dtype=self.dtype, device=self.device, requires_grad=True)
        species = self._species.expand(batch, -1)
        with torch.enable_grad():
            if self._cell is None:
                energies = self.model((species, coords)).energies
            else:  # torchani wants coordinates inside the cell; wrapping leaves E and F unchanged
                wrapped = self._map2central(self._cell, coords, self._pbc)
                energies = self.model((species, wrapped), cell=self._cell, pbc=self._pbc).energies
            (grad,) = torch.autograd.grad(energies.sum(), coords)
        e = energies.detach().to(torch.float64).cpu().numpy() * HARTREE_IN_EV
        f = -grad.to(torch.float64).cpu().numpy() * HARTREE_IN_EV
        return e, f


def make_ani1x(atoms: Atoms, **options: Any) -> ANIModel:
    """Options: ``precision`` ("float32" default, ~1.5x faster, or "float64"),
    ``model_index`` (one network of the ensemble, e.g. a cheaper draft), ``threads``,
    ``device`` ("auto" default: CUDA when available, else CPU; "cpu", "cuda", "cuda:N")."""
    return ANIModel(atoms, **options)
