"""A run configuration from command-line flags or a TOML/YAML file, and what it builds.

The CLI and the dashboard both turn a ``RunConfig`` into atoms, models, Langevin
parameters and an executor, so names and errors are the same everywhere.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ase import Atoms

from .errors import LSDError
from .models.devices import DEFAULT_DEVICE
from .params import DEFAULT_LOOKAHEAD, LangevinParams


class ConfigError(LSDError, ValueError):
    """A run configuration that cannot be used (unknown key or system, bad value)."""


#: Built-in systems by name; ``copper-N`` / ``water-box-N`` take a supercell size.
BUILTIN_SYSTEMS = {
    "alanine-dipeptide-vacuum": "22-atom ACE-ALA-NME in vacuum",
    "alanine-dipeptide-implicit": "ACE-ALA-NME tagged for implicit solvent (GBn2 / ALPB)",
    "alanine-dipeptide-explicit": "ACE-ALA-NME in a periodic TIP3P water box",
    "copper-32": "FCC copper 2x2x2 conventional cells (32 atoms, periodic)",
    "copper-108": "FCC copper 3x3x3 conventional cells (108 atoms, periodic)",
    "water-box": "periodic box of water molecules",
    "argon-13": "icosahedral argon cluster (13 atoms, non-periodic; the dashboard's teaching preset)",
}


@dataclass
class RunConfig:
    """Everything a run needs. Units are in the names."""

    system: str = "alanine-dipeptide-vacuum"
    draft: str = "auto"  # "auto": the draft advisor picks the fastest installed draft (draft_choice)
    target: str = "ani-1x"
    timestep_fs: float = 0.5
    temperature_K: float = 300.0
    friction_per_ps: float = 10.0
    lookahead: int = DEFAULT_LOOKAHEAD  # K; with adaptive_lookahead, the largest K a round may use
    error_correction: bool = True
    # Learned draft correction: online (the measured best per system) | none (constant EC) | constant | bonded |
    # radial | first-order | ... (see learning). Needs EC: with error_correction off, "online" means none.
    draft_learning: str = "online"
    adaptive_lookahead: bool = True  # choose K per round in [min_lookahead, lookahead] (docs/theory.md §7)
    min_lookahead: int = 1
    # Costs adaptive K decides with (ADAPTIVE_COST_KEYS; None: measured once at the start). A run's config.json
    # records the costs it used, so the same config and seed give the same trajectory.
    adaptive_costs: dict[str, Any] | None = None
    hydrogen_mass_amu: float | None = None  # None: natural masses; e.g. 3.0 for HMR
    executor: str = "local"  # local | dask
    device: str = DEFAULT_DEVICE  # where a torch target computes: auto (CUDA when available) | cpu | cuda | cuda:N
    workers: int = 2
    scheduler_address: str | None = None
    mode: str = "sync"  # sync | async
    steps: int = 1000
    stride: int = 1
    seed: int = 0
    output: str = "lsd-run"
    draft_options: dict[str, Any] = field(default_factory=dict)
    target_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, checked_type(f.name, getattr(self, f.name), hints[f.name]))
        if self.lookahead < 1:
            raise ConfigError(f"lookahead must be at least 1, got {self.lookahead}")
        if self.min_lookahead < 1 or (self.adaptive_lookahead and self.min_lookahead > self.lookahead):
            raise ConfigError(f"min_lookahead must lie in 1..lookahead ({self.lookahead}) with adaptive lookahead, "
                              f"got {self.min_lookahead}")
        from .learning import CORRECTIONS, NOT_LEARNED

        self.draft_learning = str(self.draft_learning).lower()
        if self.draft_learning == "online" and not self.error_correction:
            self.draft_learning = "none"  # the default learns EC's correction: nothing to learn without EC
        if self.adaptive_costs is not None:
            self.adaptive_costs = checked_adaptive_costs(self.adaptive_costs)
        if self.draft_learning not in CORRECTIONS:
            raise ConfigError(f"unknown draft_learning {self.draft_learning!r}; choose one of {', '.join(CORRECTIONS)}")
        if self.draft_learning not in NOT_LEARNED and not self.error_correction:
            raise ConfigError(f"draft_learning={self.draft_learning!r} needs error correction on (a learned "
                              "correction replaces the constant one)")
        if self.steps < 0:
            raise ConfigError(f"steps must be non-negative, got {self.steps}")
        if self.stride < 1:
            raise ConfigError(f"stride must be at least 1, got {self.stride}")
        if self.seed < 0:
            raise ConfigError(f"seed must be non-negative, got {self.seed}")
        from .models.devices import DeviceError, check_device_name

        try:
            self.device = check_device_name(self.device)
        except DeviceError as exc:
            raise ConfigError(str(exc)) from None
        if self.executor not in ("local", "dask"):
            raise ConfigError(f"executor must be 'local' or 'dask', got {self.executor!r}")
        if self.mode not in ("sync", "async"):
            raise ConfigError(f"mode must be 'sync' or 'async', got {self.mode!r}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        self.params()  # validates timestep, temperature and friction

    def params(self) -> LangevinParams:
        try:
            return LangevinParams(self.timestep_fs, self.temperature_K, self.friction_per_ps)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        normalised = {key.replace("-", "_"): value for key, value in values.items()}
        unknown = sorted(set(normalised) - known)
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**normalised)


#: Keys of ``RunConfig.adaptive_costs`` (seconds): per draft step (with the learned correction's cost),
#: per target call on B states ({"1": s, "2": s, ...}; other B interpolated), per round.
ADAPTIVE_COST_KEYS = ("draft_step_s", "target_batch_s", "overhead_s")


def checked_adaptive_costs(costs: dict[str, Any]) -> dict[str, Any]:
    """``costs`` as adaptive K uses them (``ADAPTIVE_COST_KEYS``), or a ConfigError naming the bad entry."""
    def seconds(name: str, value: Any, positive: bool) -> float:
        number = checked_type(f"adaptive_costs {name}", value, float)  # a finite real number
        if number < 0 or (positive and number == 0):
            raise ConfigError(f"adaptive_costs {name} must be a {'positive' if positive else 'non-negative'} "
                              f"number of seconds, got {value!r}")
        return number

    unknown = sorted(set(costs) - set(ADAPTIVE_COST_KEYS))
    if unknown or "draft_step_s" not in costs or "target_batch_s" not in costs:
        raise ConfigError(f"adaptive_costs needs draft_step_s and target_batch_s (optional overhead_s), got keys "
                          f"{', '.join(sorted(map(str, costs))) or 'none'}")
    table = costs["target_batch_s"]
    if not isinstance(table, dict) or not table:
        raise ConfigError("adaptive_costs target_batch_s must be a table {batch size: seconds}, e.g. "
                          "{\"1\": 0.05, \"9\": 0.12}")
    batches: dict[str, float] = {}
    for size, value in table.items():
        if not str(size).isdigit() or int(size) < 1:
            raise ConfigError(f"adaptive_costs target_batch_s: batch sizes must be positive integers, got {size!r}")
        batches[str(int(size))] = seconds(f"target_batch_s[{size}]", value, positive=True)
    return {"draft_step_s": seconds("draft_step_s", costs["draft_step_s"], positive=False),
            "target_batch_s": dict(sorted(batches.items(), key=lambda item: int(item[0]))),
            "overhead_s": seconds("overhead_s", costs.get("overhead_s", 0.0), positive=False)}


def checked_type(key: str, value: Any, annotation: Any) -> Any:
    """``value`` as the type ``annotation`` names (int, float, bool, str, dict, or one of them | None).

    Booleans must be real booleans (``"no"`` is refused, not taken as True), integers real
    integers (``"8"`` and ``8.0`` are refused), floats any finite real number; the error
    names the key: ``config key 'lookahead' must be an integer, got '8'``.
    """
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    if value is None and type(None) in options:
        return None
    kind = next(t for t in options if t is not type(None))
    kind = typing.get_origin(kind) or kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        need = "true or false (a boolean)"
    elif kind is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        need = "an integer"
    elif kind is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        need = "a finite number"
    elif kind is str:
        if isinstance(value, str):
            return value
        need = "a string"
    elif kind is dict:
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
        need = "a table of named options"
    else:  # pragma: no cover - a new field type needs a rule here
        raise TypeError(f"config key {key!r}: no type rule for {annotation!r}")
    if type(None) in options:
        need += " or none"
    raise ConfigError(f"config key {key!r} must be {need}, got {value!r}")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML (.toml), YAML (.yaml/.yml) or JSON (.json, e.g. a run's config.json) configuration."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file as UTF-8 text: {exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":  # what `lsd run` writes as OUTPUT/config.json
            import json

            data = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError("YAML configuration needs PyYAML: pip install pyyaml") from None
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: configuration files must be .toml, .yaml, .yml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # parser errors carry line numbers
        raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings at the top level")
    return checked_mapping(data, source=str(path))


def checked_mapping(values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` with '-' in keys turned into '_', every key known to ``RunConfig`` and of its type;
    a ConfigError names ``source`` (a file) and the key otherwise."""
    hints = typing.get_type_hints(RunConfig)
    normalised = {str(key).replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(normalised) - set(hints))
    if unknown:
        raise ConfigError(f"{source}: unknown configuration key(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(hints))}")
    try:
        return {key: checked_type(key, value, hints[key]) for key, value in normalised.items()}
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def build_system(name: str, hydrogen_mass_amu: float | None = None) -> Atoms:
    """Atoms for a built-in system name or a structure file path, with optional HMR."""
    from . import systems

    builders = {
        "alanine-dipeptide-vacuum": lambda: systems.alanine_dipeptide("vacuum"),
        "alanine-dipeptide-implicit": lambda: systems.alanine_dipeptide("implicit"),
        "alanine-dipeptide-explicit": lambda: systems.alanine_dipeptide("explicit"),
        "copper-32": lambda: systems.copper_fcc(2),
        "copper-108": lambda: systems.copper_fcc(3),
        "water-box": lambda: systems.water_box(1),
        "argon-13": lambda: systems.argon_cluster(2),
    }
    if name in builders:
        atoms = builders[name]()
    elif Path(name).suffix and Path(name).exists():
        atoms = systems.load_structure(name)
    elif Path(name).suffix:
        raise ConfigError(f"structure file not found: {name}")
    else:
        raise ConfigError(f"unknown system {name!r}; built-in systems: {', '.join(BUILTIN_SYSTEMS)}, "
                          "or give a path to a PDB/XYZ/ASE-readable file")
    if hydrogen_mass_amu is not None:
        from .hmr import repartition_hydrogen_mass

        info = dict(atoms.info)
        atoms = repartition_hydrogen_mass(atoms, hydrogen_mass_amu)
        atoms.info.update(info)
    return atoms


def build_models(config: RunConfig, atoms: Atoms):
    """(draft, target) bound to ``atoms``; registry errors name the model and the problem.
    Draft ``auto``: the draft advisor ranks the installed drafts and sets ``config.draft`` to the winner."""
    from . import models
    from .draft_choice import AUTO_DRAFT, build_auto_models

    if config.draft == AUTO_DRAFT:
        draft, target, _ = build_auto_models(config, atoms)
        return draft, target
    draft = models.create(config.draft, atoms, **config.draft_options)
    options = target_options(config)
    # On dask workers the target is built there from its recipe: the client keeps only the recipe (no GPU copy).
    target = (models.deferred(config.target, atoms, **options) if config.executor == "dask"
              else models.create(config.target, atoms, **options))
    return draft, target


def target_options(config: RunConfig) -> dict[str, Any]:
    """``config.target_options`` with ``config.device`` applied (a torch target's ``device`` option,
    unless the options set one); a GPU asked of a CPU-only target is a ConfigError."""
    from . import models

    options = dict(config.target_options)
    if config.device == "auto" or "device" in options:
        return options
    if "cuda" in models.get_spec(config.target).devices:
        options["device"] = config.device
    elif config.device != "cpu":
        torch_targets = ", ".join(s.name for s in models.available() if "cuda" in s.devices)
        raise ConfigError(f"target {config.target!r} computes on the CPU only; device={config.device!r} applies to "
                          f"the torch targets ({torch_targets})")
    return options


def build_executor(config: RunConfig):
    """The executor the configuration asks for (None means in-process)."""
    if config.executor == "local":
        return None
    try:
        from .executors import DaskExecutor
    except ImportError as exc:
        raise ConfigError(f"the dask executor is not available: {exc}") from None
    if config.scheduler_address:
        return DaskExecutor(address=config.scheduler_address)
    return DaskExecutor(n_workers=config.workers)


def build_draft_correction(config: RunConfig, atoms: Atoms):
    """The draft correction ``config.draft_learning`` names (None: constant EC, or none without EC)."""
    from .learning import make_correction

    try:
        return make_correction(config.draft_learning, atoms) if config.error_correction else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_lookahead_policy(config: RunConfig, atoms: Atoms, draft, target, correction=None):
    """An ``AdaptiveLookahead`` for K in [min_lookahead, lookahead], or None when the lookahead is fixed.

    Its costs are ``config.adaptive_costs`` when given, else measured once now (draft call + the
    correction's call per drafted step, target batches 1, 2, K_max+1). Fixed costs make K a function
    of the accept/reject history, so the trajectory is one of the seed and these costs
    (``policy.costs()`` gives them back in the ``adaptive_costs`` form)."""
    if not config.adaptive_lookahead:
        return None
    from .adaptive import AdaptiveLookahead
    from .timing import correction_seconds_per_call

    if config.adaptive_costs is not None:
        costs = config.adaptive_costs
        return AdaptiveLookahead(config.min_lookahead, config.lookahead, {
            "draft_step_s": costs["draft_step_s"], "overhead_s": costs["overhead_s"],
            "target_batch_s": {int(size): s for size, s in costs["target_batch_s"].items()}})
    extra = 0.0
    if correction is not None:  # timed on a copy that has seen one label, as it is during a run
        import copy

        probe = copy.deepcopy(correction)
        x = atoms.get_positions()[None]
        probe.observe(x, target.evaluate(x)[1], draft.evaluate(x)[1])
        extra = correction_seconds_per_call(probe, x[0])
    return AdaptiveLookahead.from_models(draft, target, atoms.get_positions(), k_min=config.min_lookahead,
                                         k_max=config.lookahead, extra_draft_s=extra)


def build_sampler(config: RunConfig, atoms: Atoms, draft, target, executor=None):
    """The ``SpeculativeSampler`` a configuration describes (learned draft, adaptive K included)."""
    from .speculative import SpeculativeSampler

    from .executors import ExecutorModel

    correction = build_draft_correction(config, atoms)
    timed = target if executor is None else ExecutorModel(executor, target)  # costs where the target runs
    policy = build_lookahead_policy(config, atoms, draft, timed, correction)
    return SpeculativeSampler(atoms, draft, target, config.params(), lookahead=config.lookahead,
                              error_correction=config.error_correction, seed=config.seed, executor=executor,
                              mode=config.mode, draft_correction=correction, lookahead_policy=policy)
