"""An ASE molecular-dynamics driver: ``SpeculativeLangevin``, LSD behind ASE's ``Langevin`` interface.

    from ase import units
    from ase.io import Trajectory
    from lsd_engine.ase import SpeculativeLangevin

    atoms.calc = target_calculator                       # the target: any ASE calculator
    dyn = SpeculativeLangevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs,
                              draft="amber14", lookahead=8, seed=0, logfile="md.log")
    dyn.attach(Trajectory("md.traj", "w", atoms).write, interval=10)
    dyn.run(1000)

ASE's conventions: ``timestep`` in ASE time units, ``friction`` in inverse ASE time units,
``temperature_K`` in kelvin; ``attach``, ``run``, ``irun``, ``trajectory=``, ``logfile=``
(``MDLogger``) work as for any ``MolecularDynamics``. The dynamics is LSD's ABOBA kernel
(docs/theory.md §2), not ASE's ``Langevin`` splitting, and the trajectory is the one
``SpeculativeSampler`` produces for the same atoms, models, parameters and seed, bit for bit.

Cost. LSD advances in rounds of up to K + 1 steps, while ASE asks for one step at a time.
The driver therefore computes steps ahead with ``SpeculativeSampler.run(m)``, m = the steps
left in the current ``run``/``irun`` call, at most ``chunk_steps`` (default 64 (K + 1)),
and hands them to ASE one by one: observers see every step's state, in order, only later
in wall-clock time. A run split into calls gives the identical trajectory, but the last
round of each chunk may be cut short, which costs one extra target call (docs/theory.md §4).
So ``dyn.run(1000)`` costs at most ceil(1000 / chunk_steps) extra target calls, while a loop
of ``dyn.run(1)`` pays one target call per step, like plain MD. Changing ``atoms`` between
``run`` calls is allowed (the sampler continues from the new state); changing it from an
observer while computed-ahead steps are pending raises an error.

What observers see: ``atoms.positions`` and momenta of the current step, and during a run
``atoms.calc`` is a ``SinglePointCalculator`` with the target energy of the step and, where
the driver saw the target call, the target forces, both evaluated at the step's half-step
position (the convention of LSD's own trajectory files; frame 0: at the initial positions).
The atoms' own calculator is put back when the run ends.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.md import MolecularDynamics

from .kernel import half_step_position
from .models import ForceModel, create, from_ase_calculator
from .params import DEFAULT_LOOKAHEAD, LangevinParams
from .speculative import SpeculativeSampler

__all__ = ["SpeculativeLangevin", "as_force_model"]

#: Computed-ahead steps per chunk, in rounds of the largest lookahead.
CHUNK_ROUNDS = 64
#: RunStats counters that ``SpeculativeLangevin.counts`` sums over the sampler's runs.
COUNTERS = ("accepted_steps", "repaired_steps", "target_steps", "rounds", "target_calls", "target_evaluations",
            "draft_calls")


def as_force_model(model: Any, atoms: Atoms, role: str) -> ForceModel:
    """A force model from a registry name, a ForceModel, or an ASE calculator instance."""
    if isinstance(model, ForceModel):
        return model
    if isinstance(model, str):
        return create(model, atoms)
    if hasattr(model, "get_potential_energy") or hasattr(model, "calculate"):
        return from_ase_calculator(model, atoms)
    raise TypeError(f"{role} must be a model registry name (see `lsd models`), an ASE calculator or a "
                    f"lsd_engine ForceModel, got {type(model).__name__}")


def _converted(value: Any, scale: float) -> Any:
    """An ASE-unit number times ``scale``, rounded to 15 significant digits so that e.g. ``0.5 * units.fs``
    becomes exactly 0.5 fs (the kernel then matches ``LangevinParams(0.5, ...)``); other values pass
    through for ``LangevinParams`` to reject."""
    try:
        return float(f"{float(value) * scale:.15g}")
    except (TypeError, ValueError):
        return value


class _RecordingModel(ForceModel):
    """The target, remembering its results by positions so the driver can show the forces of a step."""

    def __init__(self, model: ForceModel):
        self.model = model
        self.name = model.name
        self.n_atoms = getattr(model, "n_atoms", None)
        self.seen: dict[bytes, tuple[float, np.ndarray]] = {}

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        energies, forces = self.model.evaluate(positions)
        e, f = np.asarray(energies, dtype=float).reshape(-1), np.asarray(forces, dtype=float)
        if f.shape == np.shape(positions) and e.shape == (len(positions),):
            for x, ei, fi in zip(np.asarray(positions, dtype=float), e, f):
                self.seen[x.tobytes()] = (float(ei), fi.copy())
        return energies, forces


class SpeculativeLangevin(MolecularDynamics):
    """LSD as an ASE ``MolecularDynamics``: Langevin MD with the target, drafted by a cheap model.

    atoms: the system; its momenta are used if any is non-zero, else Maxwell-Boltzmann from the seed.
    timestep: in ASE time units (``0.5 * units.fs``). temperature_K: kelvin. friction: in inverse ASE
    time units, as ASE's ``Langevin`` (``0.01 / units.fs`` is 10 per ps).
    draft: a registry name (``lsd models``), an ASE calculator, or a ForceModel.
    target: the same kinds; default ``atoms.calc``.
    lookahead, error_correction, seed, executor, mode, draft_correction, lookahead_policy: as for
    ``SpeculativeSampler``. chunk_steps: most steps computed ahead at once (see the module doc).
    trajectory, logfile, loginterval, append_trajectory: as for ASE's ``MolecularDynamics``.
    """

    def __init__(self, atoms: Atoms, timestep: float, *, temperature_K: float, friction: float,
                 draft: Any, target: Any = None, lookahead: int = DEFAULT_LOOKAHEAD, error_correction: bool = True,
                 seed: int = 0, executor: Any = None, mode: str = "sync", draft_correction: Any = None,
                 lookahead_policy: Any = None, chunk_steps: int | None = None,
                 trajectory: Any = None, logfile: Any = None, loginterval: int = 1,
                 append_trajectory: bool = False):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
        if atoms.constraints:
            raise ValueError("SpeculativeLangevin does not support ASE constraints "
                             f"({', '.join(type(c).__name__ for c in atoms.constraints)}); remove them first")
        if target is None:
            if atoms.calc is None:
                raise ValueError("the target is atoms.calc, but atoms has no calculator: attach an ASE "
                                 "calculator or pass target=<registry name, calculator or ForceModel>")
            target = atoms.calc
        try:
            self.params = LangevinParams(timestep_fs=_converted(timestep, 1.0 / units.fs), temperature_K=temperature_K,
                                         friction_per_ps=_converted(friction, 1000.0 * units.fs))
        except ValueError as exc:
            raise ValueError(f"{exc} (from timestep={timestep!r} in ASE time units, friction={friction!r} in "
                             "inverse ASE time units)") from None
        self.draft_model = as_force_model(draft, atoms, "draft")
        self._target = _RecordingModel(as_force_model(target, atoms, "target"))
        self.sampler = SpeculativeSampler(atoms, self.draft_model, self._target, self.params,
                                          lookahead=lookahead, error_correction=error_correction, seed=seed,
                                          executor=executor, mode=mode, draft_correction=draft_correction,
                                          lookahead_policy=lookahead_policy)
        k_max = int(lookahead_policy.k_max) if lookahead_policy is not None else self.sampler.lookahead
        if chunk_steps is None:
            chunk_steps = CHUNK_ROUNDS * (k_max + 1)
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, (int, np.integer)) or chunk_steps < 1:
            raise ValueError(f"chunk_steps must be a positive integer, got {chunk_steps!r}")
        self.chunk_steps = int(chunk_steps)
        self.temperature_K = self.params.temperature_K
        self.friction = float(friction)
        self._pending: deque[tuple[np.ndarray, np.ndarray, float, np.ndarray | None]] = deque()
        self._counts: dict[str, int] = {}
        self._verified = 0
        super().__init__(atoms, self.params.timestep_ase, trajectory=trajectory, logfile=logfile,
                         loginterval=loginterval, append_trajectory=append_trajectory)
        self._calc_outside_run = atoms.calc
        self._running = False
        self._shown: tuple[np.ndarray, np.ndarray] | None = None
        self._results: SinglePointCalculator | None = None
        self._show(self.sampler.positions, self.sampler.momenta, None, None)

    # -- ASE interface -------------------------------------------------------------------
    def todict(self) -> dict[str, Any]:
        return {**super().todict(), "temperature_K": self.params.temperature_K, "friction": self.friction,
                "lookahead": int(self.sampler.lookahead), "error_correction": self.sampler.error_correction,
                "draft": self.draft_model.name, "target": self._target.name, "seed": self.sampler.seed}

    def irun(self, steps: int = 50):
        """ASE's generator run; ``atoms.calc`` holds the step's target results while it runs."""
        self._calc_outside_run = self.atoms.calc
        try:
            self._resync_if_changed()
            if self.sampler.energy is None:  # the target energy (and forces) at the initial positions
                self._target.seen.clear()
                self._run(0)
                self._show(self.sampler.positions, self.sampler.momenta, self.sampler.energy,
                           self._forces_at(self.sampler.positions))
            self._running = True
            self.atoms.calc = self._results
            yield from super().irun(steps)
        finally:
            self._running = False
            self.atoms.calc = self._calc_outside_run

    def _refresh_properties(self) -> None:
        """The step's results are already attached; no target call here (ASE's default computes forces)."""

    def step(self) -> None:
        """Advance one step: the next computed-ahead state, computing a chunk when none is left."""
        self._resync_if_changed()
        if not self._pending:
            self._compute_ahead(max(1, self.max_steps - self.nsteps))
        positions, momenta, energy, forces = self._pending.popleft()
        self._show(positions, momenta, energy, forces)

    def save_checkpoint(self, path: Any) -> None:
        """The sampler's checkpoint (``SpeculativeSampler.save_checkpoint``) at the current step."""
        if self._pending:
            raise RuntimeError("computed-ahead steps are pending (inside a run); save between run() calls")
        self.sampler.save_checkpoint(path)

    def load_checkpoint(self, path: Any) -> None:
        """Continue from a sampler checkpoint of the same system and parameters; shows its state on atoms."""
        self.sampler.load_checkpoint(path)
        self._pending.clear()
        self.nsteps = self.sampler.step
        self._show(self.sampler.positions, self.sampler.momenta, self.sampler.energy, None)

    # -- statistics ----------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """Summed counters of the sampler's runs so far (accepted/repaired/target steps, rounds, calls)."""
        return dict(self._counts)

    @property
    def acceptance_rate(self) -> float:
        """Accepted / verified drafted steps over all steps computed so far (NaN before any)."""
        return self._counts.get("accepted_steps", 0) / self._verified if self._verified else math.nan

    # -- internals -----------------------------------------------------------------------
    def _compute_ahead(self, wanted: int) -> None:
        sampler = self.sampler
        start_x, start_p = sampler.positions, sampler.momenta
        self._target.seen.clear()
        result = self._run(min(wanted, self.chunk_steps))
        previous = (start_x, start_p)
        for x, p, e in zip(result.positions[1:], result.momenta[1:], result.energies[1:]):
            half = half_step_position(previous[0], previous[1], sampler.constants)
            self._pending.append((x, p, float(e), self._forces_at(half)))
            previous = (x, p)
        self._target.seen.clear()

    def _run(self, n_steps: int):
        """``sampler.run(n_steps)``, its counters added to ``counts``."""
        result = self.sampler.run(n_steps)
        stats = result.stats
        for key in COUNTERS:
            self._counts[key] = self._counts.get(key, 0) + int(stats[key])
        self._verified += int(np.sum(stats.verified_by_depth))
        return result

    def _forces_at(self, positions: np.ndarray) -> np.ndarray | None:
        seen = self._target.seen.get(np.ascontiguousarray(positions, dtype=float).tobytes())
        return None if seen is None else seen[1]

    def _show(self, positions: np.ndarray, momenta: np.ndarray, energy: float | None,
              forces: np.ndarray | None) -> None:
        """Put a state on ``self.atoms`` with its target results."""
        self.atoms.set_positions(positions, apply_constraint=False)
        self.atoms.set_momenta(momenta, apply_constraint=False)
        self._shown = (np.array(self.atoms.positions), np.array(self.atoms.get_momenta()))
        if energy is not None:
            results: dict[str, Any] = {"energy": energy}
            if forces is not None:
                results["forces"] = forces
            self._results = SinglePointCalculator(self.atoms, **results)
        if self._running:
            self.atoms.calc = self._results

    def _resync_if_changed(self) -> None:
        """If the atoms were moved by the user, continue the sampler from their state."""
        if self._shown is None:
            return
        x, p = np.asarray(self.atoms.positions), np.asarray(self.atoms.get_momenta())
        if np.array_equal(x, self._shown[0]) and np.array_equal(p, self._shown[1]):
            return
        if self._pending:
            raise RuntimeError(f"atoms were changed while {len(self._pending)} computed-ahead LSD steps were "
                               "pending (an observer moved them?); change atoms only between run() calls, "
                               "or pass chunk_steps=1")
        if x.shape != self.sampler.positions.shape:
            raise ValueError(f"atoms now has {len(x)} atoms; the dynamics was built for {self.sampler.n_atoms}")
        self.sampler.positions = np.array(x, dtype=float)
        self.sampler.momenta = np.array(p, dtype=float)
        self.sampler.energy = None
        self._results = None
        self._shown = (x.copy(), p.copy())
        self._target.seen.clear()
        self._run(0)  # the target energy at the new state
        self._show(self.sampler.positions, self.sampler.momenta, self.sampler.energy,
                   self._forces_at(self.sampler.positions))
