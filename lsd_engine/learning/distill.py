"""Offline distillation: train a draft on target-labelled configurations (`lsd distill`).

A distilled draft is a base draft (``amber14``, ``emt``, ... or none) plus a learned
correction of its force towards the target, fitted once on labels from a short target
MD run (``learning.record_target_md``) or from an LSD run's verification data
(``learning.RecordingCorrection``), and saved to one ``.npz`` file. It is then a model
like any other:

    models.create("distilled:/path/model.npz", atoms)

(registered in the model catalog with a lazy factory, ``make_distilled``), usable as the draft of ``SpeculativeSampler``,
with constant EC or an online correction on top. Kinds:

- ``bonded``: the force-field-like terms of ``learning.BondedCorrection`` (molecules; per
  pair, so only for the same molecule and atom order); one exact least-squares solve.
- ``radial``: ``learning.RadialCorrection`` (species-pair terms; transferable to any cell
  of the same elements, e.g. trained on Cu32 and used on Cu108); one solve.
- ``neural``: the network of ``learning.neural`` (species-based, transferable), Adam epochs.

The file holds only arrays and a JSON header (no pickle). A model file is data, never
code: on loading, the header's base draft must be a plain registry name that untrusted
input may choose (``models.options.SAFE_OPTIONS``: no ``ase:<path>``, ``uma:<path>`` or
``distilled:<path>``), its options must be on that model's allowlist, and the format,
version, kind, element numbers, options and every array's shape and dtype are checked;
anything else is refused with an :class:`LSDError` naming the file and the field.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ..models import BoundModel
from .labels import LabelSet, load_labels

__all__ = ["DistillReport", "DistilledModel", "add_distill_arguments", "check_base", "distill", "distill_command",
           "load_distilled", "make_distilled", "read_distilled_file"]

FORMAT = "lsd-distilled"
VERSION = 1
KINDS = ("auto", "bonded", "radial", "neural")
#: Largest integer a learned part's option may take in a file header (degree, n_radial, layer width...).
MAX_OPTION_INT = 1024


@dataclass
class DistillReport:
    """What ``distill`` did: where the model is, how long training took, how good it is."""

    path: str
    kind: str
    base: str
    n_train: int
    n_validation: int
    training_time_s: float
    rms_residual_before: float  # RMS per component of F_target - F_base on validation labels (eV/Å)
    rms_residual_after: float  # ... of F_target - F_distilled
    validation: dict[str, Any] = field(default_factory=dict)  # replayed acceptance, when params are known

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------

def _learned_part(kind: str, numbers: np.ndarray, masses: np.ndarray, cell, pbc, options: dict[str, Any]):
    from .linear import BondedCorrection, RadialCorrection

    if kind == "bonded":
        return BondedCorrection(numbers, masses, **options)
    if kind == "radial":
        return RadialCorrection(numbers, masses, cell, pbc, **options)
    raise ValueError(f"unknown distilled kind {kind!r}")


class DistilledModel(BoundModel):
    """Base draft + a learned, fixed correction (energy and forces), bound to ``atoms``."""

    def __init__(self, atoms: Atoms, path: str | os.PathLike, base_options: dict[str, Any] | None = None):
        path = Path(path)
        super().__init__(atoms, f"distilled:{path}")
        header, arrays = read_distilled_file(path)
        self.header = header
        self.kind = header["kind"]
        numbers = np.asarray(atoms.numbers)
        trained = np.asarray(header["numbers"])
        if self.kind == "bonded" and not np.array_equal(numbers, trained):
            raise LSDError(f"{path}: a 'bonded' distilled draft only fits the molecule it was trained on "
                           f"({len(trained)} atoms, same order); this system differs")
        missing = set(numbers.tolist()) - set(trained.tolist())
        if missing:
            raise LSDError(f"{path}: trained without element(s) {sorted(missing)}")
        self.base_name = header["base"]
        if self.base_name and self.base_name != "none":
            from .. import models

            self.base = models.create(self.base_name, atoms, **{**header.get("base_options", {}),
                                                                **(base_options or {})})
        else:
            self.base = None
        masses = atoms.get_masses()
        if self.kind == "neural":
            from .neural import AtomicEnergyModel, DescriptorSpec

            spec = DescriptorSpec.from_dict(header["options"]["spec"])
            self.net = AtomicEnergyModel(spec, numbers, np.array(atoms.cell[:]), np.array(atoms.pbc),
                                         dtype=header["options"].get("dtype", "float64"))
            try:
                self.net.load_state_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("net.")})
            except (RuntimeError, ValueError, TypeError) as exc:
                raise LSDError(f"{path}: the network arrays 'net.*' do not fit the header's descriptor spec: "
                               f"{str(exc).splitlines()[0]}") from None
        else:
            self.part = _learned_part(self.kind, numbers, masses, np.array(atoms.cell[:]), np.array(atoms.pbc),
                                      header["options"])
            x0 = arrays["x0"] if self.kind == "bonded" else np.asarray(atoms.positions, dtype=float)
            self.part.x0 = x0
            self.part.setup(x0)
            if self.kind == "radial":
                self.part.r_nn = float(header["r_nn"])
            self.coef = np.asarray(arrays["coef"], dtype=float)
            if self.coef.shape != (self.part.n_params,):
                raise LSDError(f"{path}: array 'coef' has shape {self.coef.shape}; the header's options give "
                               f"({self.part.n_params},)")

    def correction_energy_forces(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The learned part alone: energies (B,) and forces (B, N, 3) at positions (B, N, 3)."""
        if self.kind == "neural":
            return self.net.energy_and_forces(x)
        energies = np.array([self.part.model_energy(p, self.coef) for p in x])
        forces = np.array([self.part.model_forces(p, self.coef) for p in x])
        return energies, forces

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, f = self.correction_energy_forces(positions)
        if self.base is not None:
            eb, fb = self.base.evaluate(positions)
            e, f = e + eb, f + fb
        return e, f


def read_distilled_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked (header, arrays) of a distilled draft file; LSDError naming the file and field otherwise."""
    from ..checkpoint import read_npz

    path = Path(path)
    header, arrays = read_npz(path, LSDError, not_found="distilled model file not found", kind="distilled draft",
                              header="header",
                              no_header="{path} is not a distilled draft (no header); make one with `lsd distill`")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise LSDError(f"{path} is not a distilled draft (format {found!r})")
    _check_header(path, header)
    _check_arrays(path, header, arrays)
    return header, arrays


def check_base(base: Any, base_options: Any, source: str) -> dict[str, Any]:
    """The checked options of a distilled draft's base model ``base`` ('none' or a plain registry name).

    Only names and options that untrusted input may choose pass (``models.options``); in
    particular no ``ase:``/``uma:``/``distilled:`` arguments, which name classes or files.
    """
    from ..models.options import UnsafeOptionError, check_safe_options, safe_model_names

    if base_options is None:
        base_options = {}
    if not isinstance(base, str):
        raise LSDError(f"{source}: field 'base' must be a model name, got {base!r}")
    if not isinstance(base_options, dict):
        raise LSDError(f"{source}: field 'base_options' must be a JSON object, got {base_options!r}")
    plain = [name for name in safe_model_names() if ":" not in name]
    if base in ("", "none"):
        if base_options:
            raise LSDError(f"{source}: field 'base_options' must be empty when the base is 'none'")
        return {}
    if base not in plain:
        raise LSDError(f"{source}: field 'base' is {base!r}; a distilled draft's base must be 'none' or one of "
                       f"{', '.join(plain)} (no ':' arguments: they name classes or files)")
    for key, value in base_options.items():
        if not key.isidentifier() or not (value is None or isinstance(value, (bool, int, float, str))):
            raise LSDError(f"{source}: field 'base_options' entry {key!r}={value!r} is not a plain option")
    try:
        return check_safe_options(base, base_options)
    except UnsafeOptionError as exc:
        raise LSDError(f"{source}: field 'base_options': {exc}") from None


def _kind_option_names(kind: str) -> set[str]:
    """The keyword options the learned part of ``kind`` accepts (from its constructors' signatures)."""
    from .linear import BondedCorrection, LinearEnergyCorrection, RadialCorrection

    cls = BondedCorrection if kind == "bonded" else RadialCorrection
    names = set()
    for function in (cls.__init__, LinearEnergyCorrection.__init__):
        names |= {p.name for p in inspect.signature(function).parameters.values()
                  if p.kind is p.POSITIONAL_OR_KEYWORD}
    return names - {"self", "numbers", "masses", "n_atoms", "cell", "pbc"}


def _plain_number(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_OPTION_INT
    return isinstance(value, float) and math.isfinite(value)


def _check_header(path: Path, header: dict[str, Any]) -> None:
    def bad(field_name: str, why: str) -> LSDError:
        return LSDError(f"{path}: header field {field_name!r} {why}")

    if header.get("version") != VERSION:
        raise bad("version", f"is {header.get('version')!r}; this LSD reads version {VERSION}")
    kind = header.get("kind")
    if kind not in KINDS[1:]:
        raise bad("kind", f"is {kind!r}; expected one of {', '.join(KINDS[1:])}")
    numbers, masses = header.get("numbers"), header.get("masses")
    if (not isinstance(numbers, list) or not numbers
            or not all(isinstance(z, int) and not isinstance(z, bool) and 1 <= z <= 118 for z in numbers)):
        raise bad("numbers", "must be a non-empty list of atomic numbers 1-118")
    if masses is not None and (not isinstance(masses, list) or len(masses) != len(numbers) or not all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m) and m > 0 for m in masses)):
        raise bad("masses", f"must be {len(numbers)} positive numbers (one per atom)")
    header["base_options"] = check_base(header.get("base", "none"), header.get("base_options"), str(path))
    options = header.get("options")
    if not isinstance(options, dict):
        raise bad("options", "must be a JSON object")
    if kind == "neural":
        _check_neural_options(path, options)
    else:
        allowed = _kind_option_names(kind)
        for key, value in options.items():
            if key not in allowed:
                raise bad("options", f"has {key!r}, which a {kind!r} part does not take (it takes "
                                     f"{', '.join(sorted(allowed))})")
            values = value if isinstance(value, list) else [value]
            if len(values) > MAX_OPTION_INT or not all(_plain_number(v) for v in values):
                raise bad("options", f"entry {key!r}={value!r} must be a number (or a list of numbers)")
        if kind == "radial":
            r_nn = header.get("r_nn")
            if isinstance(r_nn, bool) or not isinstance(r_nn, (int, float)) or not math.isfinite(r_nn) or r_nn <= 0:
                raise bad("r_nn", f"must be a positive distance in Å, got {r_nn!r}")


def _check_neural_options(path: Path, options: dict[str, Any]) -> None:
    from dataclasses import fields as dataclass_fields

    from .neural import DescriptorSpec

    if options.get("dtype", "float64") not in ("float32", "float64") or set(options) - {"spec", "dtype"}:
        raise LSDError(f"{path}: header field 'options' of a neural draft takes only 'spec' and 'dtype' "
                       "('float32' or 'float64')")
    spec = options.get("spec")
    known = {f.name for f in dataclass_fields(DescriptorSpec)}
    if not isinstance(spec, dict) or set(spec) - known or "species" not in spec:
        raise LSDError(f"{path}: header field 'options.spec' must be a descriptor spec with keys from "
                       f"{', '.join(sorted(known))}")
    for key, value in spec.items():
        values = value if isinstance(value, list) else [value]
        if (key in ("species", "hidden")) != isinstance(value, list) or len(values) > 16 or not all(
                _plain_number(v) and not isinstance(v, bool) and (key not in ("species", "hidden") or
                                                                  (isinstance(v, int) and v >= 1)) for v in values):
            raise LSDError(f"{path}: header field 'options.spec' entry {key!r}={value!r} is out of range")


def _check_arrays(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    n_atoms = len(header["numbers"])
    expected: dict[str, tuple[int, ...] | None] = {}
    if header["kind"] != "neural":
        expected["coef"] = None  # 1-D; its length is checked against the part built from the options
        expected["x0"] = (n_atoms, 3) if header["kind"] == "bonded" else None
    for name, value in arrays.items():
        if value.dtype.kind not in "fiu":
            raise LSDError(f"{path}: array {name!r} has dtype {value.dtype}; expected numbers")
        if not name.startswith("net.") and name not in ("coef", "x0"):
            raise LSDError(f"{path}: unexpected array {name!r} in a {header['kind']!r} distilled draft")
        if not np.all(np.isfinite(value)):
            raise LSDError(f"{path}: array {name!r} has non-finite values")
    for name, shape in expected.items():
        if name == "x0" and shape is None:
            continue
        if name not in arrays:
            raise LSDError(f"{path}: array {name!r} is missing")
        value = arrays[name]
        if (shape is None and value.ndim != 1) or (shape is not None and value.shape != shape):
            raise LSDError(f"{path}: array {name!r} has shape {value.shape}; expected "
                           f"{shape if shape is not None else '(n_params,)'}")


def _write(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # np.savez would append .npz to other suffixes
        np.savez(handle, header=np.array(json.dumps(header)), **arrays)


def load_distilled(path: str | os.PathLike, atoms: Atoms, **base_options: Any) -> DistilledModel:
    """The distilled draft in ``path`` bound to ``atoms`` (same as models.create("distilled:<path>", atoms))."""
    return DistilledModel(atoms, path, base_options)


def make_distilled(atoms: Atoms, _argument: str | None = None, **options: Any) -> DistilledModel:
    """The registry factory of 'distilled:<path>' (``_argument``: the path after the colon)."""
    if not _argument:
        raise LSDError("a distilled model needs its file: 'distilled:/path/model.npz'")
    return DistilledModel(atoms, _argument, options)


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------

def _auto_kind(atoms: Atoms) -> str:
    return "radial" if np.any(atoms.pbc) else "bonded"


def _defaults(kind: str) -> dict[str, Any]:
    if kind == "bonded":
        return {"separation": 3, "degree": 4, "cross_separation": 2, "width": 0.1, "ridge": 1e-6, "fit_stride": 1}
    if kind == "radial":
        return {"cutoff": 4.5, "n_radial": 12, "r_min": 1.8, "embedding": [0.5, 2.0], "skin": 0.5, "ridge": 1e-6}
    return {}


def train_neural(numbers, masses, cell, pbc, positions, residuals, epochs: int = 30, batch_size: int = 32,
                 learning_rate: float = 3e-3, seed: int = 0, spec=None, log=None):
    """An ``AtomicEnergyModel`` fitted to residual forces (whitened loss), Adam + cosine decay."""
    import torch

    from .neural import AtomicEnergyModel, DescriptorSpec, torch_single_thread

    spec = spec or DescriptorSpec(species=tuple(sorted(set(np.asarray(numbers).tolist()))))
    net = AtomicEnergyModel(spec, numbers, cell, pbc, seed=seed)
    net.fit_feature_scaling(positions[:: max(1, len(positions) // 200)])
    weights = torch.as_tensor(1.0 / np.asarray(masses, dtype=float))[:, None]
    rng = np.random.default_rng(seed)
    with torch_single_thread():
        optimizer = torch.optim.Adam(net.module.nets.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs))
        for epoch in range(epochs):
            order = rng.permutation(len(positions))
            total = 0.0
            for s in range(0, len(order), batch_size):
                idx = np.sort(order[s:s + batch_size])
                xt = torch.tensor(positions[idx], requires_grad=True)
                energy = net.module.energy(xt, net.graph(positions[idx]))
                (grad,) = torch.autograd.grad(energy.sum(), xt, create_graph=True)
                loss = (((torch.as_tensor(residuals[idx]) + grad) ** 2) * weights).sum() / len(idx)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            schedule.step()
            if log is not None:
                log(f"  epoch {epoch + 1}/{epochs}: whitened loss {total / len(positions):.4g}")
    return net


def distill(labels: LabelSet | str | os.PathLike, output: str | os.PathLike, base: str = "amber14",
            kind: str = "auto", atoms: Atoms | None = None, validation_fraction: float = 0.2, seed: int = 0,
            params=None, epochs: int = 30, options: dict[str, Any] | None = None, base_options=None,
            log=print) -> DistillReport:
    """Train a draft on target labels and save it to ``output`` (see module doc).

    labels: a ``LabelSet`` or an .npz path (``learning.save_labels``). base: the base
    draft's registry name ('none' for the learned part alone). atoms: the system (needed
    by base drafts that read a topology, e.g. amber14; default: from the labels).
    The last ``validation_fraction`` of the labels (in time order) is held out; with
    Langevin ``params`` (default: from the label file's metadata) the report includes the
    acceptance by depth of the distilled draft with constant EC on the held-out part.
    """
    from .. import models
    from .linear import BondedCorrection, RadialCorrection

    labels = load_labels(labels) if not isinstance(labels, LabelSet) else labels
    atoms = labels.atoms() if atoms is None else atoms.copy()
    if len(atoms) != labels.positions.shape[1] or not np.array_equal(atoms.numbers, labels.numbers):
        raise LSDError("the system does not match the labels (atom count or elements differ)")
    atoms.set_masses(labels.masses)
    kind = _auto_kind(atoms) if kind == "auto" else kind
    if kind not in KINDS[1:]:
        raise LSDError(f"unknown distilled kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "bonded" and np.any(atoms.pbc):
        raise LSDError("kind 'bonded' is for molecules (non-periodic); use 'radial' or 'neural'")
    check_base(base or "none", dict(base_options or {}), "the base draft of a distilled model")
    base_options = dict(base_options or {})
    base_model = None if base in (None, "", "none") else models.create(base, atoms, **base_options)
    if base_model is not None:
        labels = labels.with_draft(base_model)
        base_forces = labels.draft_forces
    else:
        base_forces = np.zeros_like(labels.target_forces)
    residuals = labels.target_forces - base_forces
    n = len(labels)
    n_val = int(round(validation_fraction * n)) if n > 1 else 0
    n_train = n - n_val
    if n_train < 2:
        raise LSDError(f"too few labels to train on ({n})")
    x_train, r_train = labels.positions[:n_train], residuals[:n_train]
    numbers, masses = np.asarray(atoms.numbers), atoms.get_masses()
    cell, pbc = np.array(atoms.cell[:]), np.array(atoms.pbc)
    opts = {**_defaults(kind), **(options or {})}
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": kind, "base": base or "none",
                              "base_options": base_options, "numbers": numbers.tolist(),
                              "masses": masses.tolist(), "source": dict(labels.meta)}
    arrays: dict[str, np.ndarray] = {}
    log(f"distilling a '{kind}' correction on {n_train} labels ({n_val} held out), base draft {base}")
    t0 = time.perf_counter()
    if kind == "neural":
        net = train_neural(numbers, masses, cell, pbc, x_train, r_train, epochs=epochs, seed=seed, log=log, **opts)
        header["options"] = {"spec": net.spec.to_dict(), "dtype": net.dtype_name}
        arrays.update({f"net.{k}": v for k, v in net.state_arrays().items()})
    else:
        cls_opts = {k: (tuple(v) if isinstance(v, list) else v) for k, v in opts.items()}
        part = (BondedCorrection(numbers, masses, **cls_opts) if kind == "bonded"
                else RadialCorrection(numbers, masses, cell, pbc, **cls_opts))
        coef = part.fit(x_train, r_train)
        header["options"] = opts
        arrays["coef"] = coef
        arrays["x0"] = part.x0
        if kind == "radial":
            header["r_nn"] = part.r_nn
    training_time = time.perf_counter() - t0
    header["training_time_s"] = training_time
    output = Path(output)
    _write(output, header, arrays)
    model = DistilledModel(atoms, output, base_options)
    report = DistillReport(path=str(output), kind=kind, base=base or "none", n_train=n_train, n_validation=n_val,
                           training_time_s=training_time, rms_residual_before=float("nan"),
                           rms_residual_after=float("nan"))
    if n_val:
        x_val = labels.positions[n_train:]
        _, learned = model.correction_energy_forces(x_val)
        report.rms_residual_before = float(np.sqrt(np.mean(residuals[n_train:] ** 2)))
        report.rms_residual_after = float(np.sqrt(np.mean((residuals[n_train:] - learned) ** 2)))
        params = params or _params_from_meta(labels.meta)
        if params is not None and n_val > 17:
            report.validation = _replay_validation(labels.slice(n_train), base_forces[n_train:] + learned, params)
    log(f"trained in {training_time:.1f} s; held-out RMS force error {report.rms_residual_before:.3f} -> "
        f"{report.rms_residual_after:.3f} eV/Å; wrote {output}")
    if report.validation:
        a = report.validation["acceptance_by_depth"]
        log(f"held-out acceptance with constant EC: a1 {a[0]:.2f}, a4 {a[3]:.2f}, a16 {a[15]:.2f}, "
            f"E16 {report.validation['expected_steps_per_round']:.2f}")
    return report


def _params_from_meta(meta: dict[str, Any]):
    from ..params import LangevinParams

    try:
        return LangevinParams(float(meta["timestep_fs"]), float(meta["temperature_K"]), float(meta["friction_per_ps"]))
    except (KeyError, ValueError, TypeError):
        return None


def _replay_validation(labels: LabelSet, draft_forces: np.ndarray, params) -> dict[str, Any]:
    from ..corrections import ConstantCorrection
    from .replay import replay_rounds

    held = LabelSet(labels.positions, labels.target_forces, labels.target_energies, labels.numbers, labels.masses,
                    labels.cell, labels.pbc, draft_forces, labels.meta)
    result = replay_rounds(held, ConstantCorrection(), params, lookahead=16, time_calls=False)
    return {"acceptance_by_depth": result.acceptance_by_depth.tolist(),
            "expected_steps_per_round": result.expected_steps_per_round, "rounds": result.evaluated_rounds}


# ------------------------------------------------------------------------------------------
# Command line (`lsd distill`; cli.py adds the sub-command with these two functions)
# ------------------------------------------------------------------------------------------

def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lsd distill`."""
    add = parser.add_argument
    add("--labels", help="target labels .npz (from a previous run); without it a short target MD run makes them")
    add("--system", default="alanine-dipeptide-vacuum", help="built-in system name or structure file")
    add("--draft", default="amber14", help="base draft model name ('none': the learned part alone)")
    add("--target", default="ani-1x", help="target model for the labelling run (without --labels)")
    add("--kind", choices=KINDS, default="auto", help="learned part: bonded (molecules), radial (materials), neural")
    add("--steps", type=int, default=2000, help="target MD steps of the labelling run")
    add("--timestep-fs", type=float, default=0.5)
    add("--temperature-K", type=float, default=300.0, dest="temperature_K")
    add("--friction-per-ps", type=float, default=10.0)
    add("--hydrogen-mass-amu", type=float, help="HMR for the labelling run and the saved masses")
    add("--seed", type=int, default=0)
    add("--epochs", type=int, default=30, help="training epochs (neural)")
    add("--validation-fraction", type=float, default=0.2)
    add("--save-labels", help="also write the labels of the labelling run to this .npz")
    add("--output", required=True, help="the distilled model file (.npz); use it as --draft distilled:<path>")
    add("--json", help="write the training report to this JSON file")


def distill_command(args: argparse.Namespace) -> int:
    """`lsd distill`: label (or load labels), train, save, report."""
    from .labels import record_target_md, save_labels
    from ..params import LangevinParams
    from ..runconfig import build_system

    atoms = build_system(args.system, args.hydrogen_mass_amu)
    params = LangevinParams(args.timestep_fs, args.temperature_K, args.friction_per_ps)
    if args.labels:
        labels = load_labels(args.labels)
    else:
        from .. import models

        target = models.create(args.target, atoms)
        print(f"labelling: {args.steps} steps of plain {args.target} MD")
        t0 = time.perf_counter()
        labels = record_target_md(atoms, target, params, args.steps, seed=args.seed,
                                  log_every=max(1, args.steps // 10))
        print(f"labelled in {time.perf_counter() - t0:.1f} s")
        if args.save_labels:
            save_labels(args.save_labels, labels)
    report = distill(labels, args.output, base=args.draft, kind=args.kind, atoms=atoms,
                     validation_fraction=args.validation_fraction, seed=args.seed,
                     params=params, epochs=args.epochs)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2))
    print(f"use it with: --draft distilled:{report.path}")
    return 0
