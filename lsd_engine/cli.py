"""The `lsd` command line: `lsd run`, `lsd bench`, `lsd distill`, `lsd theory`, `lsd models`.

Bad input gives one line on stderr and exit status 2 (never a traceback; add
--debug to see one). Ctrl-C during `lsd run` leaves a checkpoint to --resume from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import LSDError
from .learning import CORRECTIONS
from .runconfig import BUILTIN_SYSTEMS, ConfigError, RunConfig, checked_mapping, read_config_file

#: The defaults every flag falls back to (flags are None when not given, so a --config file can set them).
DEFAULTS = RunConfig()


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `run` and `bench`; None means "not given" so a config file can fill it."""
    add = parser.add_argument
    add("--config", help="TOML or YAML file with any of the settings below (flags override it)")
    add("--system", help=f"built-in system ({', '.join(BUILTIN_SYSTEMS)}) or a structure file path "
                         f"(default {DEFAULTS.system})")
    add("--draft", help="draft model name (see `lsd models`), or 'auto' (the default): rank the installed drafts "
                        "that fit the system for the target by a short calibration (printed as a table), use the best")
    add("--target", help=f"target model name (default {DEFAULTS.target})")
    add("--timestep-fs", type=float, help=f"default {DEFAULTS.timestep_fs}")
    add("--temperature-K", type=float, dest="temperature_K", help=f"default {DEFAULTS.temperature_K}")
    add("--friction-per-ps", type=float, help=f"default {DEFAULTS.friction_per_ps}")
    add("--lookahead", type=int, help=f"drafted steps per round K, the largest K with adaptive lookahead "
                                      f"(default {DEFAULTS.lookahead})")
    add("--error-correction", dest="error_correction", action="store_const", const=True,
        help="speculative error correction (default on)")
    add("--no-error-correction", dest="error_correction", action="store_const", const=False,
        help="plain speculation without EC (also turns the default draft learning off)")
    add("--draft-learning", choices=CORRECTIONS,
        help="learn the draft's error from the target labels of each round (needs error correction; default "
             f"{DEFAULTS.draft_learning}): 'online' picks the measured best for the system (bonded force-field "
             "refit for molecules, radial+first-order for periodic solids); 'none' is the seed paper's constant "
             "correction; learning falls back to it until the model beats it")
    add("--adaptive-lookahead", dest="adaptive_lookahead", action="store_const", const=True,
        help="choose K each round in [--min-lookahead, --lookahead] from the acceptance by depth and model "
             f"costs measured once at the start and recorded in config.json (default "
             f"{'on' if DEFAULTS.adaptive_lookahead else 'off'})")
    add("--no-adaptive-lookahead", dest="adaptive_lookahead", action="store_const", const=False,
        help="use K = --lookahead in every round")
    add("--min-lookahead", type=int, help=f"smallest K with adaptive lookahead (default {DEFAULTS.min_lookahead})")
    add("--hydrogen-mass-amu", type=float,
        help="hydrogen mass repartitioning: H mass in amu taken from bonded heavy atoms (e.g. 3); "
             "changes dynamics, not the configurational distribution")
    add("--executor", choices=["local", "dask"])
    add("--device", help="where a torch target computes: auto (default: CUDA when available, else CPU), cpu, cuda "
                         "or cuda:N; a GPU that cannot be used is an error (check with `lsd models --devices`)")
    add("--workers", type=int, help=f"local dask workers (with --executor dask; default {DEFAULTS.workers})")
    add("--scheduler-address", help="connect to a running dask scheduler, e.g. tcp://host:8786")
    add("--mode", choices=["sync", "async"])
    add("--steps", type=int, help=f"default {DEFAULTS.steps}")
    add("--seed", type=int, help=f"default {DEFAULTS.seed}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsd", description="Langevin Speculative Dynamics")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run LSD and write trajectory, checkpoint and summary")
    _add_run_options(run)
    run.add_argument("--output", help=f"output folder (default {DEFAULTS.output})")
    run.add_argument("--stride", type=int, help="keep every n-th step in the trajectory")
    run.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    run.add_argument("--format", choices=TRAJECTORY_FORMATS, default=None,
                     help="trajectory format: OUTPUT/trajectory.FORMAT (default traj; dcd/xtc through MDTraj with "
                          "trajectory.pdb beside it; --resume keeps the run's); OUTPUT/state.csv logs the state")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in OUTPUT from its checkpoint.npz with the settings saved there "
                            "(other flags may be left out; --steps may extend the run; a setting that differs "
                            "from the checkpoint's is refused)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run files (trajectory, checkpoint, summary, config, labels) in a "
                            "non-empty OUTPUT; without --resume or --overwrite a non-empty OUTPUT is refused")
    run.add_argument("--save-labels", action="store_true",
                     help="also write OUTPUT/labels.npz: every target force label of the run's rounds, "
                          "for `lsd distill --labels`")

    bench = sub.add_parser("bench", help="plain target MD vs LSD, interleaved, with predicted speedup")
    _add_run_options(bench)
    bench.add_argument("--repeats", type=int, default=3, help="interleaved A/B blocks (steps are split among them)")
    bench.add_argument("--ase-steps", type=int, help="steps of ASE's Langevin reference (0 to skip)")
    bench.add_argument("--warm-up-steps", type=int,
                       help="untimed steps of each sampler first (default 3(K+1)); with --draft-learning, a "
                            "longer warm-up times the learned steady state instead of the learning from scratch")
    bench.add_argument("--json", help="write the results to this JSON file")

    th = sub.add_parser("theory", help="acceptance and speedup curves from physical parameters")
    th.add_argument("--n-atoms", type=int, default=22)
    th.add_argument("--temperature-K", type=float, default=DEFAULTS.temperature_K, dest="temperature_K")
    th.add_argument("--timestep-fs", type=float, default=DEFAULTS.timestep_fs)
    th.add_argument("--friction-per-ps", type=float, default=DEFAULTS.friction_per_ps)
    th.add_argument("--force-error-eV-per-A", type=float, default=0.1, dest="force_error",
                    help="RMS per-component draft force error")
    th.add_argument("--mean-mass-amu", type=float, default=6.9, help="harmonic-mean atomic mass")
    th.add_argument("--max-lookahead", type=int, default=16)
    th.add_argument("--draft-ms", type=float, default=0.05, help="draft cost per step (ms)")
    th.add_argument("--target-ms", type=float, default=12.0, help="target cost for one state (ms)")
    th.add_argument("--target-ms-per-extra-state", type=float, default=1.5,
                    help="added target cost per extra state in a batch (ms)")
    th.add_argument("--workers", type=int, default=2, help="target workers for the asynchronous bound")
    th.add_argument("--plot", help="save acceptance and speedup curves to this PNG")
    th.add_argument("--json", help="write the numbers to this JSON file")

    from .distill import add_distill_arguments

    distill = sub.add_parser("distill", help="train a draft on target-labelled configurations and save it")
    add_distill_arguments(distill)

    models = sub.add_parser("models", help="list the force models and what they support")
    models.add_argument("--devices", action="store_true",
                        help="also say what this machine offers: torch build, CUDA GPUs, NVML, dask-cuda")
    return parser


#: Settings a flag (or config file) may set: RunConfig fields, in the order `lsd run --help` shows them.
_SETTING_KEYS = ("system", "draft", "target", "timestep_fs", "temperature_K", "friction_per_ps", "lookahead",
                 "error_correction", "draft_learning", "adaptive_lookahead", "min_lookahead", "hydrogen_mass_amu",
                 "executor", "workers", "scheduler_address", "mode", "steps", "seed", "output", "stride", "device")
#: Files `lsd run` writes into its output folder (what --overwrite replaces).
TRAJECTORY_FORMATS = ("traj", "xyz", "dcd", "xtc")
RUN_FILES = ("trajectory.traj", "trajectory.xyz", "trajectory.dcd", "trajectory.xtc", "trajectory.pdb", "state.csv",
             "checkpoint.npz", "checkpoint.npz.tmp.npz", "summary.json", "config.json",
             "labels.npz")
#: Settings a --resume may change: how the rest of the run is computed or how long it is, not what it computes.
RESUMABLE_SETTINGS = frozenset({"steps", "output", "executor", "workers", "scheduler_address"})


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user gave: the config file's (checked), then the flags' (which win)."""
    values: dict[str, Any] = read_config_file(args.config) if args.config else {}
    for key in _SETTING_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    return values


def _config_from(args: argparse.Namespace) -> RunConfig:
    return RunConfig.from_mapping(_given_settings(args))


def _writable_folder(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".lsd-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return path


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_new_output(output: Path, overwrite: bool) -> list[Path]:
    """Refuse a non-empty output folder unless ``overwrite``; returns the run files --overwrite replaces."""
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file, not a folder")
    contents = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if contents and not overwrite:
        raise ConfigError(f"output folder {output} is not empty (it holds {_listing(contents)}); use --resume to "
                          "continue the run there, --overwrite to replace its run files, or another --output")
    return [output / name for name in RUN_FILES if name in contents]


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _resume_config(output: Path, given: dict[str, Any]) -> RunConfig:
    """The settings of the run in ``output`` (from its checkpoint), with the given --steps etc. applied.

    A given setting that would change the trajectory (anything outside RESUMABLE_SETTINGS)
    must equal the checkpoint's; otherwise a ConfigError lists every difference.
    """
    from .checkpoint import load_checkpoint

    checkpoint = output / "checkpoint.npz"
    if not checkpoint.is_file():
        raise ConfigError(f"--resume: there is no checkpoint to resume in {output} (no {checkpoint.name}); "
                          "start the run without --resume")
    state = load_checkpoint(checkpoint)
    saved, source = state.run_config, f"{checkpoint}"
    if saved is None and (output / "config.json").is_file():  # a checkpoint written before settings were kept
        source = str(output / "config.json")
        try:
            saved = json.loads((output / "config.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{source} is not readable JSON: {exc}") from None
        if not isinstance(saved, dict):
            raise ConfigError(f"{source}: expected a JSON object of settings")
    if saved is None:  # nothing recorded: the flags must describe the run, and the seed is the checkpoint's
        saved = {key: value for key, value in given.items() if key != "seed"}
    saved = {**checked_mapping(saved, source), "seed": state.seed, "output": str(output)}
    try:
        recorded = RunConfig.from_mapping(saved)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    config = RunConfig.from_mapping({**saved, **given, "output": str(output)})
    differ = [f"{key} {_show(getattr(config, key))} != {_show(getattr(recorded, key))}"
              for key in (*_SETTING_KEYS, "draft_options", "target_options") if key in given
              and key not in RESUMABLE_SETTINGS and getattr(config, key) != getattr(recorded, key)]
    if differ:
        raise ConfigError(f"--resume: settings differ from the checkpoint's: {', '.join(differ)} (leave them out "
                          "to continue the run as it was, or start a new run in another --output)")
    for role in ("draft", "target"):
        _check_saved_model(role, config, given, source)
    return config


def _check_saved_model(role: str, config: RunConfig, given: dict[str, Any], source: str) -> None:
    """A model named only by a file (checkpoint, config.json) must be one untrusted input may choose.

    ``ase:<class>`` (ASE calculators may run a ``command=``), ``uma:<path>`` (torch
    checkpoints unpickle) and options off the allowlist are used only when the user
    gives them again (flag or --config): a run folder from elsewhere cannot run code.
    """
    from .models.options import UnsafeOptionError, check_safe_options

    name, options = getattr(config, role), getattr(config, f"{role}_options")
    if role in given and (not options or f"{role}_options" in given):
        return  # typed by the user
    try:
        if name.startswith("distilled:") and not options:
            return  # the distilled file itself is checked as data when it is loaded
        check_safe_options(name, options)
    except UnsafeOptionError:
        again = f"--{role} {name!r}" + (f" and {role}_options in --config" if options else "")
        raise ConfigError(f"--resume: {source} names {role} {name!r}" + (f" with options {options}" if options else "")
                          + f", which is not a plain registry model; give {again} again to confirm you trust it"
                          ) from None


def command_run(args: argparse.Namespace) -> int:
    from .runconfig import build_executor, build_models, build_sampler, build_system

    given = _given_settings(args)
    output = Path(given.get("output", RunConfig.output))
    if args.resume:
        config = _resume_config(output, given)
        stale: list[Path] = []
    else:
        config = RunConfig.from_mapping(given)
        stale = _check_new_output(output, args.overwrite)
    atoms = build_system(config.system, config.hydrogen_mass_amu)
    draft, target = build_models(config, atoms)
    executor = build_executor(config)
    try:
        sampler = build_sampler(config, atoms, draft, target, executor)
        recorder = None
        if args.save_labels:
            if sampler.draft_correction is None:
                raise ConfigError("--save-labels records the labels the draft correction sees: it needs "
                                  "error correction on")
            from .learning import RecordingCorrection

            recorder = sampler.draft_correction = RecordingCorrection(sampler.draft_correction)
        checkpoint = output / "checkpoint.npz"
        if args.resume:
            sampler.load_checkpoint(checkpoint)
            print(f"resuming at step {sampler.step} from {checkpoint}")
        config.seed = sampler.seed  # the seed actually used (a checkpoint restores its own)
        policy = sampler.lookahead_policy
        if policy is not None and config.adaptive_costs is None:  # config.json then repeats the run exactly
            config.adaptive_costs = policy.costs()
            table = config.adaptive_costs["target_batch_s"]
            batches = ", ".join(f"B={b}: {1e3 * table[str(b)]:.2f} ms" for b in sorted({1, 2, len(table)}))
            print(f"adaptive K costs: draft {1e3 * config.adaptive_costs['draft_step_s']:.3f} ms/step, target "
                  f"{batches} (recorded in config.json: the same config and seed give the same trajectory)")
        remaining = config.steps - sampler.step
        if remaining <= 0:
            print(f"nothing to do: the run is already at step {sampler.step} of {config.steps}")
            return 0
        _writable_folder(output)
        for path in stale:  # --overwrite: only now that everything is validated
            path.unlink()
        if stale:
            print(f"--overwrite: replaced {', '.join(p.name for p in stale)} in {output}")
        sampler.run_config = config.to_dict()  # saved in every checkpoint: --resume needs no other flags
        (output / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        existing = [f for f in TRAJECTORY_FORMATS if args.resume and (output / f"trajectory.{f}").exists()]
        fmt = args.format or (existing[0] if existing else "traj")
        try:
            result = sampler.run(remaining, stride=config.stride, trajectory=output / f"trajectory.{fmt}",
                                 append=args.resume, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
                                 summary=output / "summary.json", progress=True, state_log=output / "state.csv")
        except KeyboardInterrupt:
            print(f"\ninterrupted at step {sampler.step}; trajectory and checkpoint are in {output}. "
                  f"Continue with: lsd run --resume --output {output}", file=sys.stderr)
            return 130
        finally:
            if recorder is not None and recorder.n_labels:
                _save_labels(recorder, atoms, output / "labels.npz", args.resume)
    finally:
        if executor is not None:
            executor.close()
    s = result.stats
    where = json.loads((output / "summary.json").read_text()).get("execution", {})
    if where:
        dask = where.get("executor") == "dask"
        workers = f", {where['workers']} {where.get('cluster', '')} dask worker(s)" if dask else ""
        print(f"target {target.name} ran on {where.get('device')} ({where.get('device_name')}){workers}"
              + (f"; note: {where['note']}" if where.get("note") else ""))
    print(f"done: {sampler.step} steps, acceptance {s.acceptance_rate:.3f}, {s.steps_per_round:.2f} steps per "
          f"target call, {s.steps_per_s:.1f} steps/s; wrote {output}/trajectory.{fmt}, state.csv, summary.json, "
          "checkpoint.npz")
    if sampler.lookahead_policy is not None:
        print("lookahead K used: " + ", ".join(f"K={k}: {n} rounds" for k, n in enumerate(s.rounds_by_lookahead) if n))
    correction = sampler.draft_correction
    if correction is not None and hasattr(correction, "uses_model"):
        print(f"draft learning ({correction.name}): {correction.n_labels} labels, "
              f"{'model in use' if correction.uses_model else 'constant EC (the model has not beaten it yet)'}")
    return 0


def _save_labels(recorder, atoms, path: Path, append: bool) -> None:
    """Write (or, on --resume, extend) the run's verification labels."""
    from .learning import load_labels, save_labels

    labels = recorder.labels(atoms)
    if append and path.exists():
        labels = load_labels(path).concatenate(labels)
    save_labels(path, labels)
    print(f"wrote {len(labels)} target labels to {path}")


def command_bench(args: argparse.Namespace) -> int:
    from .bench import format_benchmark, run_benchmark

    config = _config_from(args)
    if args.json:
        _writable_folder(Path(args.json).resolve().parent)
    result = run_benchmark(config, repeats=args.repeats, ase_steps=args.ase_steps,
                           warm_up_steps=args.warm_up_steps)
    print(format_benchmark(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


def command_theory(args: argparse.Namespace) -> int:
    from .theory_report import theory_report

    report = theory_report(args)
    print(report["text"])
    if args.json:
        Path(args.json).write_text(json.dumps(report["numbers"], indent=2))
    return 0


def command_models(args: argparse.Namespace) -> int:
    from . import models

    print(models.format_table())
    if getattr(args, "devices", False):
        from .models.devices import main as devices_main

        print()
        devices_main([])
    return 0


def command_distill(args: argparse.Namespace) -> int:
    from .distill import distill_command

    return distill_command(args)


COMMANDS = {"run": command_run, "bench": command_bench, "distill": command_distill, "theory": command_theory,
            "models": command_models}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (LSDError, ValueError, TypeError, OSError, ImportError, MemoryError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, MemoryError):
            message = f"out of memory ({message}); the system is too large for this machine"
        print(f"lsd {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
