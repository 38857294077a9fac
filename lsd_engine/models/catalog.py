"""The built-in model specs (metadata measured on 2 CPU cores; see docs/models.md).

Adapters are imported only when a model is created, so listing the registry
needs none of the heavy backend packages.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from ase.data import chemical_symbols

from .registry import ModelSpec, register


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def factory(atoms, **options):
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)(atoms, **options)

    factory.__name__ = attr
    return factory


def _make_distilled(atoms, **options):
    from ..learning.distill import make_distilled  # learning is loaded only when a distilled draft is made

    return make_distilled(atoms, **options)


def _lazy_dxtb(method: str) -> Callable[..., Any]:
    def factory(atoms, **options):
        from .xtb import DXTBModel

        return DXTBModel(atoms, method=method, **options)

    factory.__name__ = f"make_{method}_xtb_batched"
    return factory


def _emt_elements() -> tuple[str, ...]:
    from .ase_models import emt_elements

    return emt_elements()


#: Models with a ``device`` option (torch): "auto" (CUDA when available), "cpu", "cuda", "cuda:N".
_TORCH_DEVICES = ("cpu", "cuda")
_XTB_ELEMENTS = tuple(chemical_symbols[1:87])  # H-Rn
_CHGNET_ELEMENTS = tuple(chemical_symbols[1:95])  # H-Pu


def _sevennet_elements() -> tuple[str, ...]:
    from .materials import SEVENNET0_ELEMENTS

    return SEVENNET0_ELEMENTS


register(ModelSpec(
    name="amber14", role="draft", cost="cheap", elements=None, periodic=True, nonperiodic=True, batched=False,
    package="openmm", install="openmm",
    description="AMBER ff14SB through OpenMM: vacuum, GBn2 implicit solvent (solvent='implicit'), "
                "flexible TIP3P + PME (solvent='explicit'). Needs a topology PDB (systems set it); "
                "elements are those of the amber14 residue templates.",
    cost_note="alanine dipeptide: 0.03 ms vacuum (Reference platform), 0.45-0.6 ms GBn2 (CPU platform)",
    factory=_lazy("openmm_models", "make_amber14")))

register(ModelSpec(
    name="emt", role="draft", cost="cheap", elements=_emt_elements(), periodic=True, nonperiodic=True,
    batched=False, package="ase", install="ase",
    description="ASE's effective medium theory, the classical draft for fcc metals (fitted for Al, Cu, Ag, Au, "
                "Ni, Pd, Pt; its H, C, N, O parameters are rough).",
    cost_note="Cu 32 atoms, 1 thread: 3-7 ms (pure Python)",
    factory=_lazy("ase_models", "make_emt")))

register(ModelSpec(
    name="gfn-ff", role="draft", cost="cheap", elements=tuple(chemical_symbols[1:104]), periodic=True,
    nonperiodic=True, batched=False, package="gfnff", install="gfnff",
    description="GFN-FF (Spicher & Grimme) through the gfnff package (LGPL): a general force field for H-Lr, "
                "molecules and 3-D periodic cells, topology from the starting geometry; ALPB implicit solvent "
                "(solvent='water', ...; water when the system is tagged implicit).",
    cost_note="alanine dipeptide, 1 thread: 0.1-0.16 ms per configuration",
    factory=_lazy("gfnff", "make_gfnff")))

register(ModelSpec(
    name="ase", role="draft or target", cost="depends", elements=None, periodic=True, nonperiodic=True,
    batched=False, package="ase", install="ase",
    description="Any ASE calculator: 'ase:<Name>' (ASE's registered names, or a dotted path "
                "'package.module.Class') with options passed to its constructor, or "
                "models.from_ase_calculator(calc, atoms). Evaluated one configuration at a time.",
    factory=_lazy("ase_models", "make_ase")))

register(ModelSpec(
    name="lj", role="draft or target", cost="cheap", elements=None, periodic=False, nonperiodic=True,
    batched=True, package="numpy", install="numpy",
    description="Lennard-Jones pairs in numpy (sigma_A, epsilon_eV, cutoff_A; default argon), a whole batch "
                "per call: the dashboard's teaching preset uses it as target and, with another sigma, as a "
                "deliberately wrong draft.",
    cost_note="13 atoms: ~0.05 ms per call, a batch of 9 about the same",
    factory=_lazy("analytic", "make_lj")))

register(ModelSpec(
    name="ani-1x", role="target", cost="moderate", elements=("H", "C", "N", "O"), periodic=True,
    nonperiodic=True, batched=True, package="torchani", install="'torchani==2.2.4' 'setuptools<81'",
    description="ANI-1x 8-network ensemble (wB97X/6-31G(d)) through torchani, loaded from the files in the "
                "torchani 2.2.4 wheel (no download); a whole batch in one torch call, forces by autograd. "
                "model_index=i gives one network (a cheaper draft).",
    cost_note="alanine dipeptide fp32, 1 thread: 12-30 ms per call, 27-54 ms for a batch of 9",
    devices=_TORCH_DEVICES,
    factory=_lazy("ani", "make_ani1x")))

register(ModelSpec(
    name="gfn2-xtb", role="target", cost="moderate", elements=_XTB_ELEMENTS, periodic=True, nonperiodic=True,
    batched=False, package="tblite", install="tblite",
    description="GFN2-xTB through tblite (ALPB water when the system is tagged implicit); one SCF per "
                "configuration from a fixed guess.",
    cost_note="alanine dipeptide, 1 thread: 8-19 ms per configuration (9 cost 9x)",
    factory=_lazy("xtb", "make_gfn2_xtb")))

register(ModelSpec(
    name="gfn1-xtb-batched", role="target", cost="moderate", elements=_XTB_ELEMENTS, periodic=False,
    nonperiodic=True, batched=True, package="dxtb", install="'dxtb[libcint]'",
    description="GFN1-xTB in PyTorch (dxtb), conformer batches in one SCF (batch_mode=2), forces by autograd.",
    cost_note="alanine dipeptide, 1 thread: 64-180 ms single, 0.56-0.87 s for a batch of 9",
    devices=_TORCH_DEVICES,
    factory=_lazy_dxtb("gfn1")))

register(ModelSpec(
    name="gfn2-xtb-batched", role="target", cost="expensive", elements=_XTB_ELEMENTS, periodic=False,
    nonperiodic=True, batched=True, package="dxtb", install="'dxtb[libcint]'",
    description="GFN2-xTB in PyTorch (dxtb + tad-libcint), conformer batches in one SCF, forces by autograd.",
    cost_note="alanine dipeptide, 1 thread: 0.2-0.6 s single, 0.95-1.3 s for a batch of 9",
    devices=_TORCH_DEVICES,
    factory=_lazy_dxtb("gfn2")))

register(ModelSpec(
    name="sevennet-0", role="target", cost="expensive", elements=_sevennet_elements(), periodic=True,
    nonperiodic=True, batched=True, package="sevenn", install="sevenn",
    description="SevenNet-0 universal potential (weights bundled in the sevenn wheel; PBE/MPtrj); a batch is "
                "one torch_geometric Batch through the model.",
    cost_note="Cu 32 atoms, 1 CPU thread: 0.37-0.83 s per configuration; batching gains nothing on CPU",
    devices=_TORCH_DEVICES,
    factory=_lazy("materials", "make_sevennet")))

register(ModelSpec(
    name="chgnet", role="target", cost="expensive", elements=_CHGNET_ELEMENTS, periodic=True,
    nonperiodic=False, batched=True, package="chgnet", install="chgnet",
    description="CHGNet 0.3.0 universal potential (weights bundled in the chgnet wheel; PBE/MPtrj); periodic "
                "systems, a batch in one predict_graph call.",
    cost_note="Cu 32 atoms, 1 CPU thread: 0.2-0.3 s per configuration; batching gains nothing on CPU",
    devices=_TORCH_DEVICES,
    factory=_lazy("materials", "make_chgnet")))

register(ModelSpec(
    name="uma", role="target", cost="expensive", elements=None, periodic=True, nonperiodic=True, batched=True,
    package="fairchem-core", install="fairchem-core",
    description="fairchem UMA / eSEN: 'uma:<name>' (e.g. uma:uma-s-1p1, needs Hugging Face access) or "
                "'uma:/path/checkpoint.pt'; options task, charge, spin; batches through AtomicData; "
                "compile=False on CPU, torch.compile on a GPU (time it after a warm-up).",
    cost_note="depends on the checkpoint",
    devices=_TORCH_DEVICES,
    factory=_lazy("uma", "make_uma")))

register(ModelSpec(
    name="distilled", role="draft", cost="cheap", elements=None, periodic=True, nonperiodic=True,
    batched=False, package="lsd-engine", install="(built in)",
    description="A draft distilled on target labels by `lsd distill`: its base draft plus a learned "
                "correction; 'distilled:/path/model.npz'.",
    cost_note="base draft + 0.03-0.3 ms (bonded/radial), ~3 ms (neural)",
    factory=_make_distilled))
