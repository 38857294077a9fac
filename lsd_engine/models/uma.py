"""fairchem UMA / eSEN models: ``uma:<model name>`` or ``uma:/path/to/checkpoint.pt``.

Loads a ``MLIPPredictUnit`` with ``fairchem.core.calculate.pretrained_mlip.get_predict_unit``
(a registered name such as ``uma-s-1p1`` needs Hugging Face access to the gated
``facebook/UMA`` repository; a checkpoint path never touches the network) and
evaluates a batch of configurations in one ``predict`` call through fairchem's
``AtomicData`` batching, exactly as ``FAIRChemCalculator`` builds its input. On CPU
the model is never compiled (``compile=False``: compiling costs ~100 s and
recompiles whenever the edge count changes); on a GPU (``device`` "auto" when CUDA
is available, or "cuda") it is compiled, so the first calls of each batch size are
slow: time it after a warm-up. Energies and forces are eV and eV/Å.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ..systems import system_info
from ._bound import BoundModel, require
from .devices import DEFAULT_DEVICE, resolve_device

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


def _hub_file(name: str, pretrained_mlip: Any) -> tuple[str, str, str | None, str] | None:
    """Where fairchem fetches the registered model ``name`` from and caches it, as
    ``(repo_id, filename, revision, cache_dir)``; None when this fairchem release does not say.

    fairchem has no public way to ask without downloading: its public lookups
    (``pretrained_checkpoint_path_from_name``, ``resolve_checkpoint``) call ``hf_hub_download``.
    So this reads fairchem's private table ``pretrained_mlip._MODEL_CKPTS`` (fairchem-core 2.x),
    here only (allowlisted, with this reason, in tests/test_layering.py). If a release renames or
    reshapes it, None, and the caller lets fairchem resolve the name itself.
    """
    try:
        ckpt = pretrained_mlip._MODEL_CKPTS.checkpoints[name]
        filename = f"{ckpt.subfolder}/{ckpt.filename}" if ckpt.subfolder else ckpt.filename
        return ckpt.repo_id, filename, ckpt.revision, pretrained_mlip.CACHE_DIR
    except (AttributeError, KeyError, TypeError):
        return None


def _cached(name: str, pretrained_mlip: Any) -> bool:
    """Whether fairchem's Hugging Face cache already holds the checkpoint of a registered name
    (True too when that cannot be told: fairchem then tries, and says what went wrong)."""
    location = _hub_file(name, pretrained_mlip)
    if location is None:
        return True
    repo_id, filename, revision, cache_dir = location
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    except Exception:  # a cache layout we do not know: let fairchem try
        return True
    return isinstance(found, str) and os.path.isfile(found)


def _resolve(name: str, pretrained_mlip: Any) -> str:
    """The local path of ``name``; a registered name is resolved only when it can be fetched."""
    if os.path.isfile(name):
        return name
    if os.sep in name or name.endswith((".pt", ".ckpt")):
        raise _weights_error(name, "no checkpoint file at that path")
    if name not in pretrained_mlip.available_models:
        raise LSDError(f"uma: {name!r} is neither a checkpoint file nor a fairchem model name; names: "
                       f"{', '.join(pretrained_mlip.available_models)}")
    from huggingface_hub import get_token

    if _cached(name, pretrained_mlip):
        return name  # fairchem resolves it from its cache (with its reference energies)
    if get_token() is None:
        raise _weights_error(name, "it is not in the fairchem cache and no Hugging Face token is configured")
    return name


class UMAModel(BoundModel):
    """A fairchem predict unit bound to one system, task, charge and spin."""

    batched = True

    def __init__(self, atoms: Atoms, checkpoint: str = DEFAULT_MODEL, task: str | None = None,
                 charge: int | None = None, spin: int | None = None, device: str = DEFAULT_DEVICE,
                 inference_settings: Any = None, threads: int | None = None, precision: str = "float32"):
        super().__init__(atoms, f"uma:{checkpoint}")
        torch = require("torch", self.name, "torch")
        self.device = resolve_device(device, self.name)
        if self.device.type == "cuda" and self.device.index != torch.cuda.current_device():
            raise LSDError(f"{self.name}: fairchem places its model on the current GPU (cuda:"
                           f"{torch.cuda.current_device()}), not {self.device}; choose the GPU with "
                           "CUDA_VISIBLE_DEVICES and device='cuda'")
        device = self.device.type  # fairchem takes "cpu" or "cuda"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            require("fairchem.core", self.name, INSTALL)
            from fairchem.core.calculate import pretrained_mlip
            from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch
            from fairchem.core.units.mlip_unit.api.inference import InferenceSettings
        self.threads = threads
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
        info = system_info(atoms)
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
    ``charge`` and ``spin`` (default from the system, 0 and 1), ``device`` ("auto": CUDA when available),
    ``inference_settings`` (a fairchem ``InferenceSettings``), ``precision``, ``threads``."""
    return UMAModel(atoms, checkpoint=checkpoint or _argument or DEFAULT_MODEL, **options)


def write_random_checkpoint(path: str, *, datasets: tuple[str, ...] = ("omat", "omol"), num_experts: int = 2,
                            channels: int = 16, num_layers: int = 1, lmax: int = 2, cutoff: float = 5.0,
                            seed: int = 0) -> str:
    """Write a small UMA-like checkpoint with random weights (for tests and demos, offline).

    The same architecture family as UMA-S (fairchem ``HydraModel``: an ``eSCNMDMoeBackbone``
    with ``num_experts`` mixture-of-linear-experts and one ``MLP_EFS_Head`` per dataset,
    energies with autograd forces and stress), only tiny. It is saved as a real
    ``MLIPInferenceCheckpoint`` (with its EMA copy), so ``uma:<path>`` goes through
    fairchem's real loading, task and batching code. Its predictions are meaningless.
    """
    torch = require("torch", "uma", "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hydra_utils = require("hydra.utils", "uma", INSTALL)
        from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint
    datasets = list(datasets)
    model_config = {
        "_target_": "fairchem.core.models.base.HydraModel",
        "model_id": "UMA-LSD-random",
        "pass_through_head_outputs": True,
        "backbone": {
            "model": "fairchem.core.models.uma.escn_moe.eSCNMDMoeBackbone",
            "max_num_elements": 100, "sphere_channels": channels, "hidden_channels": channels,
            "edge_channels": channels, "num_distance_basis": channels, "lmax": lmax, "mmax": 2,
            "num_layers": num_layers, "cutoff": cutoff, "max_neighbors": 30, "otf_graph": True,
            "direct_forces": False, "regress_forces": True, "regress_stress": True,
            "norm_type": "rms_norm_sh", "act_type": "gate", "ff_type": "grid", "chg_spin_emb_type": "rand_emb",
            "dataset_list": datasets, "use_dataset_embedding": True,
            "num_experts": num_experts, "use_composition_embedding": True, "model_version": 1.2,
        },
        "heads": {"efs": {"module": "fairchem.core.models.uma.escn_moe.DatasetSpecificMoEWrapper",
                          "head_cls": "fairchem.core.models.uma.escn_md.MLP_EFS_Head",
                          "head_kwargs": {"wrap_property": False}, "dataset_names": datasets}},
    }

    def task(dataset: str, prop: str, level: str, dim: list[int]) -> dict[str, Any]:
        return {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.Task", "name": f"{dataset}_{prop}",
                "level": level, "property": prop, "datasets": [dataset],
                "out_spec": {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.OutputSpec",
                             "dim": dim, "dtype": "float32"},
                "normalizer": {"_target_": "fairchem.core.modules.normalization.normalizer.Normalizer",
                               "mean": 0.0, "rmsd": 1.0}}

    tasks = []
    for dataset in datasets:
        tasks += [task(dataset, "energy", "system", [1]), task(dataset, "forces", "atom", [3]),
                  task(dataset, "stress", "system", [1, 9])]
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = hydra_utils.instantiate(model_config)
    ema = torch.optim.swa_utils.AveragedModel(model)
    torch.save(MLIPInferenceCheckpoint(model_config=model_config, model_state_dict=model.state_dict(),
                                       ema_state_dict=ema.state_dict(), tasks_config=tasks), path)
    return str(path)
