"""Universal materials potentials whose weights ship inside their wheels: SevenNet-0 and CHGNet.

Both predict in eV and eV/Å already (CHGNet's energy is per atom and is
multiplied by the atom count). Each evaluates a whole batch in one model call.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ._bound import BoundModel, require
from .devices import DEFAULT_DEVICE, resolve_device

SEVENN_INSTALL = "sevenn"
CHGNET_INSTALL = "chgnet"

#: The 89 elements of SevenNet-0's ``chemical_species`` (MPtrj).
SEVENNET0_ELEMENTS = tuple(sorted((
    "Ac Ag Al Ar As Au B Ba Be Bi Br C Ca Cd Ce Cl Co Cr Cs Cu Dy Er Eu F Fe Ga Gd Ge H He Hf Hg Ho I In Ir "
    "K Kr La Li Lu Mg Mn Mo N Na Nb Nd Ne Ni Np O Os P Pa Pb Pd Pm Pr Pt Pu Rb Re Rh Ru S Sb Sc Se Si Sm Sn "
    "Sr Ta Tb Tc Te Th Ti Tl Tm U V W Xe Y Yb Zn Zr").split()))


class SevenNetModel(BoundModel):
    """SevenNet (bundled ``7net-0`` by default): graphs of the batch go through the model as one
    torch_geometric ``Batch``; energies and autograd forces come back per graph."""

    batched = True

    def __init__(self, atoms: Atoms, model: str = "7net-0", modal: str | None = None, threads: int | None = None,
                 device: str = DEFAULT_DEVICE):
        name = "sevennet-0" if model == "7net-0" else f"sevennet:{model}"
        super().__init__(atoms, name)
        self.device = resolve_device(device, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calculator_mod = require("sevenn.calculator", name, SEVENN_INSTALL)
            from sevenn.atom_graph_data import AtomGraphData
            from sevenn.train.dataload import unlabeled_atoms_to_graph
            import sevenn._keys as keys
            from torch_geometric.data import Batch
        self.threads = threads
        try:
            calc = calculator_mod.SevenNetCalculator(model, device=self.device, modal=modal)
        except Exception as exc:  # unknown name / a checkpoint that is not bundled (would download)
            raise LSDError(f"{name}: cannot load SevenNet model {model!r}: {exc}. The bundled, offline models are "
                           "'7net-0' and '7net-l3i5'; other names download weights at first use.") from exc
        species = (calc.sevennet_config or {}).get("chemical_species")
        if species:
            missing = sorted(set(atoms.get_chemical_symbols()) - set(species))
            if missing:
                raise LSDError(f"{name} does not support element(s) {', '.join(missing)}")
        self.model = calc.model
        self.model.set_is_batch_data(True)
        self.cutoff = float(calc.cutoff)
        self.modal = calc.modal
        self._to_graph = unlabeled_atoms_to_graph
        self._graph_cls = AtomGraphData
        self._batch = Batch
        self._keys = keys
        self._work = self.atoms.copy()

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = self._keys
        graphs = []
        work = self._work
        for b in range(positions.shape[0]):
            work.positions = positions[b]
            data = self._graph_cls.from_numpy_dict(self._to_graph(work, self.cutoff, with_shift=False))
            if self.modal:
                data[keys.DATA_MODALITY] = self.modal
            graphs.append(data)
        out = self.model(self._batch.from_data_list(graphs).to(self.device))
        energies = out[keys.PRED_TOTAL_ENERGY].detach().double().cpu().numpy()
        forces = out[keys.PRED_FORCE].detach().double().cpu().numpy()
        return energies, forces.reshape(positions.shape)


class CHGNetModel(BoundModel):
    """CHGNet (bundled weights, default version 0.3.0): the whole batch in one forward pass on ``device``."""

    batched = True

    def __init__(self, atoms: Atoms, version: str = "0.3.0", threads: int | None = None,
                 device: str = DEFAULT_DEVICE):
        name = "chgnet"
        super().__init__(atoms, name)
        self.device = resolve_device(device, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chgnet_model = require("chgnet.model", name, CHGNET_INSTALL)
            from pymatgen.io.ase import AseAtomsAdaptor
        self.threads = threads
        try:
            self.model = chgnet_model.CHGNet.load(model_name=version, use_device=str(self.device), verbose=False)
        except Exception as exc:
            raise LSDError(f"chgnet: cannot load bundled weights {version!r}: {exc}") from exc
        self.model.eval()
        self._adaptor = AseAtomsAdaptor
        self._torch = require("torch", name, "torch")
        self._work = self.atoms.copy()
        self._extensive = len(atoms) if self.model.is_intensive else 1

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        graphs = []
        work = self._work
        for b in range(positions.shape[0]):
            work.positions = positions[b]
            graphs.append(self.model.graph_converter(self._adaptor.get_structure(work)))
        self.model.eval()
        pred = self.model([g.to(self.device) for g in graphs], task="ef")  # what predict_graph does, one copy back
        energies = pred["e"].detach().double().cpu().numpy().reshape(len(graphs)) * self._extensive
        forces = self._torch.cat(list(pred["f"])).detach().double().cpu().numpy()
        return energies, forces.reshape(positions.shape)


def make_sevennet(atoms: Atoms, **options: Any) -> SevenNetModel:
    """Options: ``model`` (bundled '7net-0' default, or '7net-l3i5'), ``modal``, ``threads``,
    ``device`` ("auto" default: CUDA when available, else CPU; "cpu", "cuda", "cuda:N")."""
    return SevenNetModel(atoms, **options)


def make_chgnet(atoms: Atoms, **options: Any) -> CHGNetModel:
    """Options: ``version`` (bundled '0.3.0' default), ``threads``, ``device`` ("auto", "cpu", "cuda", "cuda:N")."""
    return CHGNetModel(atoms, **options)
