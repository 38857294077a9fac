"""The run controller: a ``param.Parameterized`` that owns one LSD run and its references.

Configuration lives in parameters (what the widgets edit). ``start()`` launches a
worker thread that builds the system and models, then makes one ``sampler.run`` call
for the whole trajectory with a live reporter (``lsd_engine.reporters.LiveReporter``):
about every ``block_seconds`` it hands the new states and exact running statistics to
``self.data`` (a :class:`~lsd_dashboard.rundata.RunData`) and, in between, runs plain
target MD for its share of the time and plain draft MD, so no round is ever cut. The
sampler, with its learned draft correction and adaptive lookahead policy, comes from
``lsd_engine.runconfig.build_sampler`` as in the CLI. Views poll ``data`` on the UI thread.
Pause/resume/stop act between rounds (``RunControl``). Errors become ``status="error"``
with a readable ``error`` message, and the data so far is kept. Every setting is checked
against the page's choices and the server's limits before a run starts
(:mod:`lsd_dashboard.validation`).
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import param
from ase import Atoms

from lsd_engine import LangevinMD, ModelError, SpeculativeSampler, models
from lsd_engine.executors import describe_execution
from lsd_engine.draft_choice import AUTO_DRAFT, decide_learning, suggest_draft
from lsd_engine.models.devices import DEVICE_CHOICES, DeviceError, resolve_device
from lsd_engine.learning import CORRECTIONS, NOT_LEARNED
from lsd_engine.reporters import LiveReporter, LiveUpdate, RunControl
from lsd_engine.results import padded_sum
from lsd_engine.runconfig import RunConfig, build_draft_correction, build_sampler
from lsd_engine.systems import system_info

from . import choices
from .policy import ServerPolicy
from .rundata import RunData, draft_learning_state, speculation_text
from .runs import RUNS, RunLimitError
from .validation import settings_problems

#: The reference run uses an independent seed, so the Ramachandran comparison is between
#: two independent trajectories (the same seed would couple their noise).
REFERENCE_SEED_OFFSET = 1_000_003
DRAFT_SEED_OFFSET = 2_000_003
#: Draft MD gets at most this share of the LSD run's wall time (it follows LSD's step count when it can).
DRAFT_TIME_SHARE = 0.25

CONFIG_PARAMETERS = (
    "system", "structure_path", "draft", "target", "draft_options", "target_options", "temperature_K",
    "timestep_fs", "friction_per_ps", "hydrogen_mass_amu", "lookahead", "error_correction", "draft_learning",
    "adaptive_lookahead", "min_lookahead", "mode", "device",
    "executor", "n_workers", "scheduler_address", "n_steps", "seed", "reference", "draft_reference",
    "reference_share",
    "block_seconds", "save_stride", "keep_running", "output_dir",
)

#: Physics and speculation defaults: the engine's (``RunConfig``), the same as `lsd run`'s.
_RUN = choices.RUN_DEFAULTS

MAX_BLOCK_STEPS = 100_000
ACTIVE = ("starting", "running", "paused", "stopping")


class RunController(param.Parameterized):
    """Configuration, lifecycle and data of one dashboard run."""

    # -- configuration ---------------------------------------------------------
    system = param.Selector(default=choices.DEFAULT_SYSTEM, objects=choices.SYSTEM_CHOICES, check_on_set=False,
                            doc="Built-in system, 'uploaded file' (structure_path) or 'custom (Python)'.")
    structure_path = param.String(default="", doc="PDB / XYZ / ASE-readable file used for 'uploaded file'.")
    draft = param.Selector(default=choices.DEFAULT_DRAFT, objects=choices.role_choices("draft"),
                           check_on_set=False, doc="Draft model (registry name), or 'auto': the fastest offered "
                                                   "draft for this system and target, chosen when the run starts.")
    target = param.Selector(default=choices.DEFAULT_TARGET, objects=choices.model_choices(), check_on_set=False,
                            doc="Target model (registry name).")
    draft_options = param.String(default="", doc="Draft model options, key=value, comma separated.")
    target_options = param.String(default="", doc="Target model options, e.g. solvent='implicit'.")
    temperature_K = param.Number(default=_RUN.temperature_K, bounds=(1.0, 5000.0), softbounds=(50.0, 2000.0))
    timestep_fs = param.Number(default=_RUN.timestep_fs, bounds=(0.01, 10.0), softbounds=(0.1, 4.0))
    friction_per_ps = param.Number(default=_RUN.friction_per_ps, bounds=(0.01, 1000.0), softbounds=(0.1, 100.0))
    hydrogen_mass_amu = param.Number(default=_RUN.hydrogen_mass_amu, allow_None=True, bounds=(1.0, 5.0),
                                     doc="Hydrogen mass repartitioning (None: natural masses).")
    lookahead = param.Integer(default=_RUN.lookahead, bounds=(1, 64),
                              doc="Drafted steps per round K (the largest K with adaptive_lookahead).")
    error_correction = param.Boolean(default=_RUN.error_correction, doc="Speculative error correction.")
    draft_learning = param.Selector(default=_RUN.draft_learning, objects=list(CORRECTIONS),
                                    doc="Learned draft correction refitted on the target forces each round verifies "
                                        "(lsd_engine.learning; 'online' picks bonded for molecules, "
                                        "radial+first-order for periodic systems). Needs error correction.")
    adaptive_lookahead = param.Boolean(default=_RUN.adaptive_lookahead,
                                       doc="Choose K per round in [min_lookahead, lookahead] from the measured "
                                           "acceptance by depth and model costs.")
    min_lookahead = param.Integer(default=_RUN.min_lookahead, bounds=(1, 64), doc="Smallest K with adaptive_lookahead.")
    mode = param.Selector(default=_RUN.mode, objects=["sync", "async"])
    device = param.Selector(default=_RUN.device, objects=list(DEVICE_CHOICES),
                            doc="Where torch-backed models compute ('auto': CUDA when torch sees a GPU, else the "
                                "CPU); a GPU that cannot be used is an error, never a silent CPU run.")
    executor = param.Selector(default=choices.IN_PROCESS, objects=choices.EXECUTOR_CHOICES)
    n_workers = param.Integer(default=_RUN.workers, bounds=(1, 1024),
                              doc="Workers of a local dask cluster (at most the server's max_workers).")
    scheduler_address = param.String(default="", doc="Address of a running dask scheduler (one of the server's "
                                                     "scheduler_addresses).")
    n_steps = param.Integer(default=5000, bounds=(1, None), doc="LSD trajectory steps to run (at most the "
                                                                "server's max_steps).")
    seed = param.Integer(default=_RUN.seed, bounds=(0, 2**53 - 1))  # a widget value JavaScript holds exactly
    reference = param.Boolean(default=True, doc="Run plain target MD alongside (measured speedup, "
                                                "reference Ramachandran plot).")
    draft_reference = param.Boolean(default=True, doc="Run plain draft MD alongside too: what the draft alone "
                                                      "would sample, beside target MD and LSD.")
    reference_share = param.Number(default=0.5, bounds=(0.05, 0.95),
                                   doc="Share of the run thread's time given to the reference MD.")
    block_seconds = param.Number(default=1.0, bounds=(0.001, 600.0),
                                 doc="Seconds between the live updates of the page (taken at round ends; the "
                                     "plain-MD references run between updates). Rounds are never cut.")
    save_stride = param.Integer(default=10, bounds=(1, None), doc="Keep every n-th frame for download.")
    keep_running = param.Boolean(default=False, doc="Keep running when the browser tab is closed; the results "
                                                     "are then written to output_dir when the run ends.")
    output_dir = param.String(default="", doc="Folder for the results of a run that outlives its tab (Python only; "
                                              "default and in a served page: <output_root>/<start time>-<id>).")

    # -- state (set by the controller) ----------------------------------------
    status = param.Selector(default="idle", objects=["idle", "starting", "running", "paused", "stopping",
                                                     "finished", "stopped", "error"])
    message = param.String(default="Ready.")
    error = param.String(default="")
    problems = param.String(default="", doc="Why the current choices cannot run (empty when they can).")
    notes = param.String(default="", doc="Advice about the current choices.")
    speculation = param.String(default="", doc="Current K and what the draft correction is doing (per block).")
    chosen_draft = param.String(default="", doc="Which draft 'auto' chose for the current run, and why.")
    steps_done = param.Integer(default=0)
    reference_steps_done = param.Integer(default=0)

    def __init__(self, policy: ServerPolicy | None = None, **params: Any):
        self.policy = policy or ServerPolicy()
        super().__init__(**params)
        self.data = RunData()
        self.detached = False
        self.started_at = ""
        self._thread: threading.Thread | None = None
        self._control = RunControl(on_pause=self._paused)
        self._custom: dict[str, Any] = {}
        self.check_choices()

    # -- custom objects (Jupyter / Python) ---------------------------------------
    def use(self, atoms: Atoms | None = None, draft: Any = None, target: Any = None) -> RunController:
        """Run with your own ``ase.Atoms`` and/or force-model objects instead of names."""
        if atoms is not None:
            self._custom["atoms"] = atoms
            self.system = choices.CUSTOM
        for role, model in (("draft", draft), ("target", target)):
            if model is not None:
                self._custom[role] = model
                setattr(self, role, choices.CUSTOM)
        self.check_choices()
        return self

    # -- choices ----------------------------------------------------------------
    def build_atoms(self) -> Atoms:
        if self.system == choices.CUSTOM:
            if "atoms" not in self._custom:
                raise ValueError("system 'custom (Python)' needs controller.use(atoms=...)")
            return self._custom["atoms"].copy()
        if self.system == choices.UPLOADED:
            if not self.structure_path:
                raise ValueError("upload a structure file (PDB, XYZ, extended XYZ) first")
            return choices.load_system(self.structure_path, self.hydrogen_mass_amu)
        return choices.load_system(self.system, self.hydrogen_mass_amu)

    def _model_options(self, role: str) -> dict[str, Any]:
        return choices.parse_options(getattr(self, f"{role}_options"))

    def run_config(self, cfg: dict[str, Any] | None = None) -> RunConfig:
        """The engine's ``RunConfig`` for these settings (what ``build_sampler`` reads); raises
        ``ConfigError`` for a combination the engine refuses (e.g. draft learning without EC)."""
        cfg = self.config() if cfg is None else cfg
        return RunConfig(
            system=str(cfg["system"]), draft=str(cfg["draft"]), target=str(cfg["target"]),
            timestep_fs=cfg["timestep_fs"], temperature_K=cfg["temperature_K"],
            friction_per_ps=cfg["friction_per_ps"], lookahead=cfg["lookahead"],
            error_correction=cfg["error_correction"], draft_learning=cfg["draft_learning"],
            adaptive_lookahead=bool(cfg["adaptive_lookahead"]),
            min_lookahead=cfg["min_lookahead"],  # only checked when K is adaptive
            hydrogen_mass_amu=cfg["hydrogen_mass_amu"], mode=cfg["mode"], seed=cfg["seed"], device=cfg["device"])

    def _speculation_problems(self, atoms: Atoms | None) -> list[str]:
        """Draft learning and adaptive K: what the engine's RunConfig and make_correction refuse."""
        learned = self.draft_learning not in NOT_LEARNED
        if learned and not self.error_correction:
            return [(f"Draft learning {self.draft_learning}: needs speculative error correction on (a learned "
                     "correction replaces the constant one); turn error correction on or choose 'none'.")]
        if self.adaptive_lookahead and self.min_lookahead > self.lookahead:
            return [(f"Adaptive lookahead: the smallest K ({self.min_lookahead}) exceeds the lookahead K "
                     f"({self.lookahead}), the largest K a round may use.")]
        try:
            config = self.run_config()
        except ValueError as exc:  # ConfigError: anything else the engine refuses
            return [f"Settings: {exc}"]
        if atoms is None or not learned:
            return []
        try:
            build_draft_correction(config, atoms)
        except (ValueError, ImportError) as exc:  # wrong kind of system, or a missing package (neural: torch)
            return [f"Draft learning {self.draft_learning}: {exc}"]
        return []

    @param.depends("system", "structure_path", "draft", "target", "draft_options", "target_options",
                   "hydrogen_mass_amu", "executor", "mode", "lookahead", "error_correction", "draft_learning",
                   "adaptive_lookahead", "min_lookahead", "device", "n_steps", "n_workers", "save_stride", "seed",
                   "scheduler_address", watch=True)
    def check_choices(self) -> list[str]:
        """Explain (in ``problems`` / ``notes``) why the current choices cannot run; returns the problems."""
        problems: list[str] = []
        notes: list[str] = []
        atoms = None
        if self._system_offered():  # never read a file a visitor named
            try:
                atoms = self.build_atoms()
            except Exception as exc:  # noqa: BLE001 - readers raise many types; each is explained, not fatal
                problems.append(f"System: {exc}")
        problems.extend(settings_problems(self.config(), self.policy, custom=set(self._custom),
                                          n_atoms=None if atoms is None else len(atoms),
                                          uploaded=bool(self.structure_path)))
        offered = choices.model_choices()
        for role in ("draft", "target"):
            name = getattr(self, role)
            if atoms is None or name not in offered:  # auto and custom have nothing to check here
                continue  # custom objects need no check; names not offered are refused above
            try:
                options = self._model_options(role)
            except ValueError:
                continue  # reported above
            problem = choices.model_problem(name, atoms, options)
            if problem:
                problems.append(f"{role.capitalize()} {name}: {problem}")
        if self.draft == AUTO_DRAFT:
            notes.append("Draft auto: the offered drafts are calibrated briefly for this system and target when "
                         "the run starts (a few seconds) and the fastest is used; 'Compare drafts' shows the ranking.")
        elif atoms is not None and choices.CUSTOM not in (self.draft, self.target):
            identical = (self.draft, self.draft_options.strip()) == (self.target, self.target_options.strip())
            notes.extend(choices.pair_notes(self.draft, self.target, identical))
        if atoms is not None and not system_info(atoms).get("phi_indices"):
            notes.append("This system has no backbone dihedrals: no Ramachandran plots (the comparison below uses "
                         "pair distances, kinetic temperature and potential energy).")
        if self.device.startswith("cuda") and self.executor == choices.IN_PROCESS:
            try:
                resolve_device(self.device, "the torch models")
            except DeviceError as exc:
                problems.append(f"Device: {exc}")
        reason = choices.executor_support().get(self.executor)
        if reason:
            problems.append(f"Executor {self.executor}: {reason}")
        if self.mode == "async" and not choices.sampler_supports_mode():
            problems.append("Mode async: the installed engine's SpeculativeSampler has no asynchronous mode yet")
        problems.extend(self._speculation_problems(atoms))
        self.param.update(problems="\n".join(problems), notes="\n".join(notes))
        return problems

    def _system_offered(self) -> bool:
        """Whether ``system`` is a built-in, the session's upload or a Python object (not any other name)."""
        if self.system == choices.UPLOADED:
            return bool(self.structure_path)
        if self.system == choices.CUSTOM:
            return "atoms" in self._custom
        return self.system in choices.SYSTEM_CHOICES

    # -- lifecycle ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONFIG_PARAMETERS}

    def start(self) -> bool:
        """Start a new run in a background thread (False, with the reason in ``error``, if it cannot)."""
        if self.running:
            self.param.update(message="A run is already going; stop it first.")
            return False
        problems = self.check_choices()
        if problems:
            self.param.update(status="error", error="Cannot start:\n" + "\n".join(problems),
                              message="Fix the choices marked below.")
            return False
        try:
            RUNS.admit(self, self.policy.max_active_runs)
        except RunLimitError as exc:
            self.param.update(status="error", error=f"Cannot start: {exc}", message="Server busy.")
            return False
        self._control = RunControl(on_pause=self._paused)  # a stopped control stays stopped: one per run
        self.detached = False
        self.started_at = time.strftime("%Y%m%d-%H%M%S")
        self.data = RunData(config=self.config())
        self.param.update(status="starting", error="", steps_done=0, reference_steps_done=0, speculation="",
                          chosen_draft="",
                          message="Building the system and models…")
        self._thread = threading.Thread(target=self._work, args=(self.config(),), name="lsd-dashboard-run",
                                        daemon=True)
        try:
            self._thread.start()
        except RuntimeError:
            RUNS.release(self)
            raise
        return True

    def pause(self) -> None:
        if self.status in ("starting", "running"):
            self._control.pause()
            self.param.update(message="Pausing after the current round…")

    def _paused(self) -> None:
        """The run loop has paused (its save point delivered every state to the page)."""
        self.param.update(status="paused", steps_done=self.data.lsd.n_steps,
                          message=f"Paused at step {self.data.lsd.n_steps}.")

    def resume(self) -> None:
        if self.running:
            self._control.resume()
            if self.status == "paused":
                self.param.update(status="running", message="Running.")

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        """Stop after the current round (the data so far is kept)."""
        if self.running:
            self._control.stop()
            self.param.update(status="stopping", message="Stopping after the current round…")
            if wait:
                self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run thread ends; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def run_blocking(self, timeout: float | None = None) -> RunController:
        """Start and wait (scripts, notebooks, tests)."""
        if self.start():
            self.wait(timeout)
        return self

    def session_closed(self) -> None:
        """The browser tab went away: stop, unless the user asked to keep running and the server's
        ``max_background_runs`` allows one more; then the run goes on in the background and writes its
        results to ``output_dir`` (default: a new folder under the server's ``output_root``) when it ends."""
        if not self.running or self.detached:
            return
        if not self.keep_running or not RUNS.detach(self, self.policy.max_background_runs):
            self.stop()
            return
        self.detached = True
        if not self.output_dir:
            folder = self.policy.output_root / f"{self.started_at}-{secrets.token_hex(3)}"
            self.output_dir = str(folder.resolve())

    def save(self, folder: str | Path) -> Path:
        """Write the trajectory (extended XYZ), statistics (JSON) and plots (PNG) of the run to ``folder``."""
        from . import downloads

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "lsd-stats.json").write_text(downloads.stats_json(self.data))
        (folder / "lsd-plots.png").write_bytes(downloads.plots_png(self.data))
        if self.data.lsd.frames["steps"]:
            (folder / "lsd-trajectory.extxyz").write_bytes(downloads.trajectory_bytes(self.data))
        return folder

    # -- the run thread -------------------------------------------------------------
    def build_model(self, role: str, atoms: Atoms, cfg: dict[str, Any] | None = None) -> Any:
        """The ``role`` ('draft' or 'target') model for ``atoms``: the Python object given to :meth:`use`,
        or the registry model named by the settings (``cfg``: a snapshot of them, default the current ones)."""
        cfg = self.config() if cfg is None else cfg
        if cfg[role] == choices.CUSTOM:
            return self._custom[role]
        options = choices.parse_options(cfg[f"{role}_options"])
        if "cuda" in models.get_spec(cfg[role]).devices:
            options.setdefault("device", cfg["device"])
        if role == "target" and cfg["executor"] != choices.IN_PROCESS and not cfg["reference"]:
            return models.deferred(cfg[role], atoms, **options)  # built by the dask workers only
        return models.create(cfg[role], atoms, **options)

    def _models(self, atoms: Atoms, cfg: dict[str, Any], config: RunConfig) -> tuple[Any, Any]:
        """(draft, target); a draft ``auto`` is chosen here, after the target is built (and ``config``'s
        draft learning turned off when it cannot pay, see ``draft_choice.decide_learning``)."""
        built = {}
        for role in ("target", "draft"):
            if cfg[role] == AUTO_DRAFT:
                built[role] = self._auto_draft(atoms, built["target"], cfg, config)
                continue
            if cfg[role] != choices.CUSTOM:
                self.param.update(message=f"Loading the {role} model {cfg[role]}…")
            built[role] = self.build_model(role, atoms, cfg)
        return built["draft"], built["target"]

    def _auto_draft(self, atoms: Atoms, target: Any, cfg: dict[str, Any], config: RunConfig) -> Any:
        """The offered draft the advisor predicts fastest for ``target`` (recorded in ``data.auto_draft``)."""
        self.param.update(message="Draft auto: calibrating the offered drafts for this target…")
        timed = target
        if isinstance(target, models.DeferredModel):  # the dask workers build theirs; calibrate on a local copy
            timed = self.build_model("target", atoms, {**cfg, "executor": choices.IN_PROCESS})
        ranking = suggest_draft(atoms, timed, config.params(), lookahead=cfg["lookahead"],
                                adaptive_lookahead=cfg["adaptive_lookahead"],
                                candidates=choices.offered_candidates(cfg["target"]), seed=cfg["seed"], log=None)
        config.draft = ranking.winner
        payoff = decide_learning(config, atoms, ranking, log=None)
        self.data.auto_draft = ranking.to_dict()
        best = next(c for c in ranking.candidates if c.name == ranking.winner)
        self.chosen_draft = (f"Draft auto chose **{ranking.winner}** (predicted {best.predicted_speedup:.2f}× in "
                             f"{ranking.seconds:.1f} s of calibration; "
                             + ", ".join(f"{c.name} {c.predicted_speedup:.2f}×" for c in ranking.candidates
                                         if c.skipped is None and c.name != ranking.winner) + ").")
        if payoff is not None and not payoff.pays:
            self.chosen_draft += (f" Draft learning is off for this run (constant EC): {payoff.text()}.")
        if cfg["mode"] == "sync" and ranking.no_gain_note():
            self.chosen_draft += (f" **Warning:** {ranking.no_gain_note()} Verify on several workers (Executor: "
                                  f"{choices.LOCAL_DASK}, Mode: async) or pick a target that batches.")
        return self.build_model("draft", atoms, {**cfg, "draft": ranking.winner})

    def _work(self, cfg: dict[str, Any]) -> None:
        close_executor = None
        try:
            atoms = self.build_atoms()
            info = system_info(atoms)
            dihedrals = ((list(info["phi_indices"]), list(info["psi_indices"]))
                         if info.get("phi_indices") and info.get("psi_indices") else None)
            self.data = RunData(atoms, cfg, cfg["save_stride"], dihedrals)
            config = self.run_config(cfg)
            draft, target = self._models(atoms, cfg, config)
            params = config.params()
            self.param.update(message=f"Starting the executor ({cfg['executor']})…")
            executor, close_executor = choices.build_executor(cfg["executor"], cfg["n_workers"],
                                                              cfg["scheduler_address"])
            self.data.set_execution(describe_execution(target, executor))
            # warm up first: the adaptive-K policy times the models once when it is built
            self.param.update(message="Warming up the models (first calls are not timed)…")
            warm_up(atoms, draft, None if isinstance(target, models.DeferredModel) else target,
                    cfg["lookahead"] + 1)
            if cfg["adaptive_lookahead"]:
                self.param.update(message="Measuring the model costs for adaptive K…")
            sampler = build_sampler(config, atoms, draft, target, executor)
            reference = (LangevinMD(atoms, target, params, seed=cfg["seed"] + REFERENCE_SEED_OFFSET)
                         if cfg["reference"] else None)
            draft_md = (LangevinMD(atoms, draft, params, seed=cfg["seed"] + DRAFT_SEED_OFFSET)
                        if cfg["draft_reference"] else None)
            self._note_speculation(sampler, cfg)
            self.param.update(status="running", message="Running.")
            self._loop(sampler, reference, draft_md, cfg)
            stopped = self._control.stop_requested and self.data.lsd.n_steps < cfg["n_steps"]
            self.param.update(status="stopped" if stopped else "finished",
                              message=f"{'Stopped' if stopped else 'Finished'} after {self.data.lsd.n_steps} "
                                      f"LSD steps and {self.data.reference.n_steps} reference MD steps.")
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message in the page
            self.param.update(status="error", error=describe_error(exc),
                              message=f"Stopped by an error after {self.data.lsd.n_steps} LSD steps; "
                                      "the data so far is kept.")
        finally:
            if close_executor is not None:
                try:
                    close_executor()
                except Exception:  # noqa: BLE001, S110 - closing a cluster must not hide the run's outcome
                    pass
            if self.detached:
                self._save_detached()
            RUNS.release(self)

    def _save_detached(self) -> None:
        try:
            folder = self.save(self.output_dir)
            self.message += f" Results written to {folder}."
        except Exception as exc:  # noqa: BLE001 - report, the run itself is over
            self.message += f" Writing the results to {self.output_dir} failed: {exc}"

    def _loop(self, sampler: SpeculativeSampler, reference: LangevinMD | None, draft_md: LangevinMD | None,
              cfg: dict[str, Any]) -> None:
        """One ``sampler.run`` for the whole trajectory; a live reporter streams its rounds into ``data``
        every ``block_seconds`` and runs the plain-MD references in between (rounds are never cut)."""
        state = {"reference_rate": math.nan, "rounds_by_lookahead": np.zeros(0, dtype=np.int64)}

        def on_update(update: LiveUpdate) -> None:
            self.data.add_lsd_update(update)
            if update.final:
                return
            blocks_rounds = padded_sum(update.stats.rounds_by_lookahead, -state["rounds_by_lookahead"])
            state["rounds_by_lookahead"] = np.asarray(update.stats.rounds_by_lookahead, dtype=np.int64)
            self._note_speculation(sampler, cfg, blocks_rounds)
            if not self._control.paused:
                self._references(reference, draft_md, cfg, state)

        live = LiveReporter(on_update, every_s=cfg["block_seconds"])
        try:
            sampler.run(cfg["n_steps"] - sampler.step, stride=cfg["n_steps"] + 1, reporters=[live],
                        control=self._control)
        except ModelError as exc:  # the live reporter has delivered every state up to the failure
            raise RunBlockError("LSD", exc) from exc

    def _references(self, reference: LangevinMD | None, draft_md: LangevinMD | None, cfg: dict[str, Any],
                    state: dict[str, Any]) -> None:
        """Between LSD updates: target MD for its share of the time, draft MD, the history point."""
        data = self.data
        if reference is not None:
            share = cfg["reference_share"]
            budget = data.lsd.stats.wall_time_s * share / (1.0 - share) - data.reference.stats.wall_time_s
            state["reference_rate"] = self._reference_block(reference, budget, state["reference_rate"])
        if draft_md is not None:
            self._draft_block(draft_md)
        data.mark_block()
        self.param.update(steps_done=data.lsd.n_steps, reference_steps_done=data.reference.n_steps)

    def _note_speculation(self, sampler: SpeculativeSampler, cfg: dict[str, Any],
                          rounds_by_lookahead: np.ndarray | None = None) -> None:
        """Record the K the next round uses and the draft correction's state (after each LSD update;
        ``rounds_by_lookahead``: the rounds by K that ended since the previous update)."""
        learning = draft_learning_state(cfg["draft_learning"], sampler.draft_correction)
        self.data.record_speculation(sampler.lookahead, learning, rounds_by_lookahead)
        self.speculation = speculation_text(sampler.lookahead, learning, cfg)

    def _draft_block(self, draft_md: LangevinMD) -> None:
        """Plain draft MD up to LSD's step count, within :data:`DRAFT_TIME_SHARE` of LSD's wall time."""
        data = self.data
        lag = data.lsd.n_steps - data.draft.n_steps
        budget = DRAFT_TIME_SHARE * data.lsd.stats.wall_time_s - data.draft.stats.wall_time_s
        if lag <= 0 or budget <= 0:
            return
        rate = data.draft.stats.steps_per_s
        n = lag if not math.isfinite(rate) or rate <= 0 else int(min(lag, max(1, rate * budget)))
        data.add_draft(_run_block(draft_md, min(n, MAX_BLOCK_STEPS), "draft MD", data.add_draft))

    def _reference_block(self, reference: LangevinMD, budget_s: float, rate: float) -> float:
        """Plain target MD for about ``budget_s`` seconds (none if the reference is ahead); returns the step rate."""
        deadline = time.perf_counter() + budget_s
        while budget_s > 0:
            n = 1 if not math.isfinite(rate) else int(min(max(1, rate * (deadline - time.perf_counter())), 500))
            result = _run_block(reference, n, "reference MD", self.data.add_reference)
            self.data.add_reference(result)
            if result.stats.wall_time_s > 0:
                rate = result.stats.n_steps / result.stats.wall_time_s
            if time.perf_counter() >= deadline - 0.5 / max(rate, 1e-9) or self._control.stop_requested:
                break
        return rate


def warm_up(atoms: Atoms, draft: Any, target: Any | None, batch: int) -> None:
    """Call each model once (the target also with a round's batch) so one-off start-up costs
    (torch graph building, OpenMM context creation) do not count against either timed run."""
    positions = atoms.get_positions()[None]
    models.evaluate_checked(draft, positions, role="draft", first_step=0)
    if target is None:  # built and warmed by dask workers, never in this process
        return
    models.evaluate_checked(target, positions, role="target", first_step=0)
    models.evaluate_checked(target, np.repeat(positions, batch, axis=0), role="target", first_step=0)


def _run_block(simulation: Any, n_steps: int, label: str, keep_partial: Any) -> Any:
    """``simulation.run(n_steps)``; on a model error the partial block is kept before re-raising."""
    try:
        return simulation.run(n_steps, stride=1)
    except ModelError as exc:
        if exc.partial_result is not None:
            keep_partial(exc.partial_result)
        raise RunBlockError(label, exc) from exc


class RunBlockError(RuntimeError):
    """A block of the LSD or reference run failed; names which run it was."""

    def __init__(self, label: str, cause: BaseException):
        super().__init__(f"{label}: {cause}")
        self.label = label
        self.cause = cause


def describe_error(exc: BaseException) -> str:
    """One readable paragraph for the page; the traceback only for unexpected error types."""
    from lsd_engine import LSDError

    cause = exc.cause if isinstance(exc, RunBlockError) else exc
    text = f"{type(cause).__name__}: {exc}"
    if not isinstance(cause, (LSDError, ValueError, ImportError, OSError)):
        text += "\n\n```\n" + "".join(traceback.format_exception(cause)[-4:]).rstrip() + "\n```"
    return text
