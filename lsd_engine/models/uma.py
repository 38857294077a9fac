"""fairchem UMA / eSEN models: ``uma:<model name>`` or ``uma:/path/to/checkpoint.pt``.

Loads a ``MLIPPredictUnit`` with ``fairchem.core.calculate.pretrained_mlip.get_predict_unit``
(a registered name such as ``uma-s-1p1`` needs Hugging Face access to the gated
``facebook/UMA`` repository; a checkpoint path never touches the network) and
evaluates a batch of configurations in one ``predict`` call through fairchem's
``AtomicData`` batching, exactly as ``FAIRChemCalculator`` builds its input. On CPU
the model is never compiled (``compile=False``: compiling costs ~100 s and
recompiles whenever the edge count changes). Energies and forces are eV and eV/Å.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ._bound import BoundModel, require, torch_threads

INSTALL = "fairchem-core"
DEFAULT_MODEL = "uma-s-1p1"

HOW_TO_PROVIDE_WEIGHTS = (
    "UMA weights are gated on Hugging Face and are never bundled. Either\n"
    "  (1) request access at https://huggingface.co/facebook/UMA, then log in on this machine "
    "(`hf auth login` or set HF_TOKEN); the first use of 'uma:{name}' downloads the checkpoint into "
    "the fairchem cache (~/.cache/fairchem); or\n"
    "  (2) copy a checkpoint file here (e.g. uma-s-1p1.pt from a machine with access) and use "
    "'uma:/absolute/path/to/uma-s-1p1.pt'."
)


def _weights_error(name: str, reason: str) -> LSDError:
    return LSDError(f"uma: the weights for {name!r} are not available here: {reason}\n"
                    + HOW_TO_PROVIDE_WEIGHTS.format(name=name))


def _resolve(name: str, pretrained_mlip: Any) -> str:
    """The local path of ``name``; a registered name is resolved only when it can be fetched."""
    if os.path.isfile(name):
        return name
    if os.sep in name or name.endswith((".pt", ".ckpt")):
        raise _weights_error(name, "no checkpoint file at that path")
    if name not in pretrained_mlip.available_models:
        raise LSDError(f"uma: {name!r} is neither a checkpoint file nor a fairchem model name; names: "
                       f"{', '.join(pretrained_mlip.available_models)}")
    from huggingface_hub import get_token, try_to_load_from_cache
    from fairchem.core._config import CACHE_DIR

    ckpt = pretrained_mlip._MODEL_CKPTS.checkpoints[name]
    filename = f"{ckpt.subfolder}/{ckpt.filename}" if ckpt.subfolder else ckpt.filename
    cached = try_to_load_from_cache(ckpt.repo_id, filename, cache_dir=CACHE_DIR, revision=ckpt.revision)
    if isinstance(cached, str) and os.path.isfile(cached):
        return name  # fairchem resolves it from the cache (with its reference energies)
    if get_token() is None:
        raise _weights_error(name, "it is not in the fairchem cache and no Hugging Face token is configured")
    return name


class UMAModel(BoundModel):
    """A fairchem predict unit bound to one system, task, charge and spin."""

    batched = True

    def __init__(self, atoms: Atoms, checkpoint: str = DEFAULT_MODEL, task: str | None = None,
                 charge: int | None = None, spin: int | None = None, device: str = "cpu",
                 inference_settings: Any = None, threads: int | None = None, precision: str = "float32"):
        super().__init__(atoms, f"uma:{checkpoint}")
        torch = require("torch", self.name, "torch")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            require("fairchem.core", self.name, INSTALL)
            from fairchem.core.calculate import pretrained_mlip
            from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch
            from fairchem.core.units.mlip_unit.api.inference import InferenceSettings
        torch_threads(threads)
        target = _resolve(checkpoint, pretrained_mlip)
        if inference_settings is None:
            inference_settings = InferenceSettings(
                tf32=False, activation_checkpointing=False, merge_mole=False, compile=(device != "cpu"),
                external_graph_gen=False, internal_graph_gen_version=2, base_precision_dtype=getattr(torch, precision))
        elif device == "cpu" and getattr(inference_settings, "compile", False):
            raise LSDError("uma: compile=True on CPU costs ~100 s per new edge count; pass compile=False settings")
        try:
            self.predict_unit = pretrained_mlip.get_predict_unit(target, inference_settings=inference_settings,
                                                                 device=device)
        except LSDError:
            raise
        except Exception as exc:  # gated repo, no network, corrupt file...
            if os.path.isfile(target):
                raise LSDError(f"uma: cannot load checkpoint {target!r}: {type(exc).__name__}: {exc}") from exc
            raise _weights_error(target, f"{type(exc).__name__}: {exc}") from exc
        tasks = sorted(self.predict_unit.dataset_to_tasks)
        if task is None:
            if len(tasks) == 1:
                task = tasks[0]
            else:
                task = "omat" if self.periodic else "omol"
        if task not in tasks:
            raise LSDError(f"uma: task {task!r} is not in this checkpoint; its tasks are {tasks} "
                           "(omol: molecules, omat: inorganic materials, oc20: catalysis, odac: MOFs, omc: molecular crystals)")
        self.task = task
        info = atoms.info.get("lsd_system", {})
        self.charge = int(info.get("charge", 0) if charge is None else charge)
        self.spin = int(info.get("spin", 1) if spin is None else spin)
        self._work = self.atoms.copy()
        self._work.info = {"charge": self.charge, "spin": self.spin}
        try:
            self.predict_unit.validate_atoms_data(self._work, task)
        except Exception as exc:
            raise LSDError(f"uma: the system is not valid for task {task!r}: {exc}") from exc
        self._from_ase = AtomicData.from_ase
        self._to_batch = atomicdata_list_to_batch
        self._dtype = inference_settings.base_precision_dtype
        if isinstance(self._dtype, str):
            self._dtype = getattr(torch, self._dtype)

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        work = self._work
        items = []
        for b in range(positions.shape[0]):
            work.positions = positions[b]
            items.append(self._from_ase(work, task_name=self.task, r_edges=False, radius=6.0,
                                        r_data_keys=["spin", "charge"], target_dtype=self._dtype))
        pred = self.predict_unit.predict(self._to_batch(items))
        energies = pred["energy"].detach().double().cpu().numpy()
        forces = pred["forces"].detach().double().cpu().numpy()
        return energies, forces.reshape(positions.shape)


def make_uma(atoms: Atoms, _argument: str | None = None, checkpoint: str | None = None, **options: Any) -> UMAModel:
    """``uma:<name or path>``. Options: ``task`` (default omol for molecules, omat when periodic),
    ``charge`` and ``spin`` (default from the system, 0 and 1), ``device`` ("cpu"),
    ``inference_settings`` (a fairchem ``InferenceSettings``), ``precision``, ``threads``."""
    return UMAModel(atoms, checkpoint=checkpoint or _argument or DEFAULT_MODEL, **options)
