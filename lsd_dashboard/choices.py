"""What the user can choose in the dashboard, and why a choice does not work.

Systems and models come from the engine (``lsd_engine.runconfig`` and the model
registry); this module only adds the checks that explain an incompatible choice
*before* a run starts (elements, periodicity, a missing topology or backend) and
the executor options the installed engine supports.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ase import Atoms

from lsd_engine import LSDError, SpeculativeSampler, models
from lsd_engine.draft_choice import AUTO_DRAFT, candidate_drafts
from lsd_engine.models.options import safe_model_names
from lsd_engine.models.registry import check_system
from lsd_engine.runconfig import BUILTIN_SYSTEMS, RunConfig, build_system
from lsd_engine.systems import system_info

UPLOADED = "uploaded file"
CUSTOM = "custom (Python)"
#: The engine's defaults (``RunConfig``): the page starts from the same measured-best settings as `lsd run`.
RUN_DEFAULTS = RunConfig()
DEFAULT_SYSTEM = RUN_DEFAULTS.system
DEFAULT_DRAFT = RUN_DEFAULTS.draft  # "auto": the draft advisor picks the draft when the run starts
DEFAULT_TARGET = RUN_DEFAULTS.target

SYSTEM_CHOICES = [*BUILTIN_SYSTEMS, UPLOADED]

# Executor labels shown in the page; the engine decides which ones exist (``executor_support``).
IN_PROCESS = "in-process"
LOCAL_DASK = "local dask cluster"
DASK_CUDA = "dask-cuda cluster (GPUs)"
SCHEDULER = "dask scheduler address"
EXECUTOR_CHOICES = [IN_PROCESS, LOCAL_DASK, DASK_CUDA, SCHEDULER]

# Registry entries that need an argument after ':' are offered with a working example.
_ARGUMENT_EXAMPLES = {"ase": "ase:lj"}  # ASE's registered name of LennardJones


#: Page presets: run settings applied together (``/app?preset=teaching``), with what they show.
PRESETS: dict[str, dict[str, Any]] = {
    "teaching": {
        "label": "Teaching: a wrong draft, an exact result (argon-13, Lennard-Jones)",
        "settings": {
            "system": "argon-13", "target": "lj", "target_options": "", "draft": "lj",
            "draft_options": "sigma_A=3.0", "temperature_K": 15.0, "timestep_fs": 10.0, "friction_per_ps": 1.0,
            "hydrogen_mass_amu": None, "lookahead": 4, "error_correction": True, "draft_learning": "none",
            "adaptive_lookahead": False, "mode": "sync", "executor": IN_PROCESS, "reference": True,
            "draft_reference": True, "reference_share": 0.5, "n_steps": 400_000, "save_stride": 100,
            "block_seconds": 1.0,
        },
        "explanation": (
            "**Teaching preset.** The target is a 13-atom argon cluster with the Lennard-Jones potential of argon "
            "(σ = 3.4 Å, ε = 10.4 meV) at 15 K, well below its melting range. The draft is the same potential "
            "with σ = 3.0 Å: a deliberately "
            "wrong model whose cluster is 12 % too small. Three runs share the machine: plain MD with the draft "
            "alone (orange), plain MD with the target (blue) and LSD, which proposes steps with the wrong draft "
            "and accepts or repairs them against the target (green). Watch the distance distributions: draft "
            "MD sits at shorter distances, while LSD lands on target MD. Within about three minutes the page "
            "says *Converged*: LSD agrees with target MD within the sampling noise, and the draft alone "
            "differs by many times that noise. The kinetic temperature agrees for all three: Langevin dynamics "
            "gives the exact Maxwell–Boltzmann momenta whatever the potential, so only configurational "
            "observables tell a wrong model. Both models are cheap numpy functions, so this preset is about "
            "exactness, not speed."),
    },
}


def role_choices(role: str) -> list[str]:
    """Names a page offers for ``role``: the draft also offers ``auto`` (chosen when the run starts)."""
    return [AUTO_DRAFT, *model_choices()] if role == "draft" else model_choices()


def offered_candidates(target: str) -> list[str]:
    """Drafts the advisor and ``auto`` try: registry drafts the page offers (never one that names a file)."""
    offered = set(model_choices())
    return [name for name in candidate_drafts(target) if name in offered]


def model_choices() -> list[str]:
    """Registry model names a page offers: those with an allowlist of page-settable options
    (``lsd_engine.models.options``); ``uma`` and ``distilled`` name files, so they are not offered."""
    offered = set(safe_model_names())
    names = (_ARGUMENT_EXAMPLES.get(spec.name, spec.name) for spec in models.available())
    return [name for name in names if name in offered]


def parse_options(text: str) -> dict[str, Any]:
    """``"solvent=implicit, precision='float64', model_index=0"`` -> a dict (Python literals, else strings)."""
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"model options must look like key=value, separated by commas; got {item!r}")
        value = value.strip()
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


@lru_cache(maxsize=16)
def _cached_system(name: str, hydrogen_mass_amu: float | None) -> Atoms:
    return build_system(name, hydrogen_mass_amu)


def load_system(name: str, hydrogen_mass_amu: float | None = None) -> Atoms:
    """A fresh copy of a built-in system or structure file (built-ins are cached)."""
    atoms = _cached_system(name, hydrogen_mass_amu)
    copy = atoms.copy()
    copy.info = {key: (dict(value) if isinstance(value, dict) else value) for key, value in atoms.info.items()}
    return copy


def backend_installed(package: str) -> bool:
    module = {"fairchem-core": "fairchem.core"}.get(package, package.replace("-", "_"))
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def model_problem(name: str, atoms: Atoms, options: dict[str, Any] | None = None) -> str | None:
    """Why ``name`` cannot be built for ``atoms`` (None when it looks fine), without building it."""
    try:
        spec = models.get_spec(name)
    except LSDError as exc:  # unknown name
        return str(exc)
    if spec.name == "uma" and ":" not in name:
        return "uma needs a model name or checkpoint: uma:<name> or uma:/path/to/checkpoint.pt"
    try:
        check_system(spec, atoms, name)
    except (LSDError, TypeError) as exc:
        return str(exc)
    if not backend_installed(spec.package):
        return f"{name} needs the package {spec.package!r}: pip install {spec.install}"
    if spec.name == "amber14" and not system_info(atoms).get("topology_file") and not (options or {}).get("pdb"):
        return ("amber14 needs residues and bonds: use a built-in biomolecular system or upload a PDB "
                "(an XYZ file has no topology)")
    return None


def pair_notes(draft: str, target: str, identical: bool = False) -> list[str]:
    """Advice (not errors) on a draft/target pair: roles, costs, batching. ``identical``: same name and options."""
    notes = []
    if identical:
        notes.append("draft = target: every step is accepted and LSD reproduces target MD exactly "
                     "(a correctness check, not a speedup).")
    try:
        d_spec, t_spec = models.get_spec(draft), models.get_spec(target)
    except LSDError:
        return notes
    if d_spec.role == "target":
        notes.append(f"{draft} is usually a target model; as a draft it costs {d_spec.cost_note or d_spec.cost}.")
    if t_spec.role == "draft" and not identical:
        notes.append(f"{target} is a cheap model: LSD cannot be faster than plain MD with it.")
    if not t_spec.batched and not identical:
        notes.append(f"{target} is not batched: a round of K+1 target evaluations costs K+1 calls, "
                     "so in-process speedup needs parallel workers (dask executor).")
    return notes


@lru_cache(maxsize=1)
def executor_support() -> dict[str, str | None]:
    """Executor label -> None when the installed engine/packages support it, else the reason."""
    try:
        from lsd_engine.executors import DaskExecutor  # noqa: F401  (imports dask.distributed)

        no_dask = None
    except ImportError as exc:
        no_dask = f"needs the engine's DaskExecutor and dask.distributed (pip install 'lsd-engine[dask]'): {exc}"
    cuda = no_dask
    if cuda is None and not backend_installed("dask_cuda"):
        cuda = "needs dask-cuda and a CUDA GPU: pip install 'lsd-engine[gpu]'"
    return {IN_PROCESS: None, LOCAL_DASK: no_dask, DASK_CUDA: cuda, SCHEDULER: no_dask}


def sampler_supports_mode() -> bool:
    """Whether ``SpeculativeSampler`` takes ``mode="sync"|"async"`` in this install."""
    return "mode" in inspect.signature(SpeculativeSampler).parameters


def build_executor(kind: str, n_workers: int = 2, address: str = "") -> tuple[Any, Callable[[], None]]:
    """(executor or None for in-process, close function) for an executor label."""
    reason = executor_support().get(kind, f"unknown executor {kind!r}")
    if reason:
        raise ValueError(f"{kind}: {reason}")
    if kind == IN_PROCESS:
        return None, lambda: None
    from lsd_engine.executors import DaskExecutor

    if kind == LOCAL_DASK:
        executor = DaskExecutor(n_workers=int(n_workers), gpu=False)
    elif kind == DASK_CUDA:
        executor = DaskExecutor(gpu=True)  # one worker per visible GPU
    else:
        if not address.strip():
            raise ValueError("give the dask scheduler address, e.g. tcp://head-node:8786")
        executor = DaskExecutor(address=address.strip())
    return executor, executor.close
