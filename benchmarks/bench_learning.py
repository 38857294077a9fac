"""Learned drafts vs constant EC, measured offline by replaying the round protocol (issue 7).

For each system: plain target MD labels (half-step positions with target and draft
forces; cached, since the target is slow), then every correction is replayed over them
with ``lsd_engine.learning.replay_rounds``: a round starting after label t drafts with
the correction fitted on labels <= t only, depth k is accepted with probability
erfc(|δ_k|/√8), the round ends at the first (sampled) rejection or after K = 16 steps
plus the bonus step, and ``observe`` gets that round's labels. Reported per variant:
acceptance by depth 1..16, E16 (docs/theory.md §11 convention: E_K of the mean profile), µs per
correction(x) call and per observe() call, and the predicted synchronous speedup at the
best K (``theory.optimal_lookahead``) with the correction's costs included (per-call cost
added to the draft step, observe cost as per-round overhead), for the costs measured here
(medians), for alanine dipeptide also the 1-thread reference costs of docs/theory.md §11, and for a
hypothetical target whose batch costs one call (GPU-like; SevenNet on this CPU batches
worse than sequential calls, so synchronous LSD cannot gain there). Distilled drafts are trained on an independent target run (another seed)
and replayed with constant EC and with online learning on top.

Usage:
    python benchmarks/bench_learning.py [--only alanine cu32 cu108] [--neural] [--cache DIR]
Writes benchmarks/results/learning_<system>.json. Label runs are cached in
$LSD_LEARNING_CACHE (default ~/.cache/lsd-learning); a missing cache file is recorded
(alanine: ~3 min for 10k ANI steps on one free core; Cu with SevenNet: ~0.1-2 s per step).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from lsd_engine import LangevinParams, models, theory, timing
from lsd_engine.corrections import ConstantCorrection
from lsd_engine.distill import DistilledModel, distill
from lsd_engine.learning import make_correction
from lsd_engine.learning.labels import LabelSet, load_labels, record_target_md, save_labels
from lsd_engine.learning.replay import replay_rounds
from lsd_engine.runconfig import build_system

RESULTS = Path(__file__).resolve().parent / "results"
LOOKAHEAD = 16

#: docs/theory.md §11, one thread: OpenMM ff14SB Reference 0.023 ms, ANI-1x ens8 fp32 11.7 ms single / 35.9 ms for 16
REFERENCE_COSTS = {"alanine": {"draft_step_s": 2.3e-5, "target_batch_s": {1: 11.7e-3, 16: 35.9e-3},
                               "source": "docs/theory.md §11 (1 thread)"}}

SYSTEMS: dict[str, dict[str, Any]] = {
    "alanine": dict(system="alanine-dipeptide-vacuum", draft="amber14", target="ani-1x",
                    params=(0.5, 300.0, 10.0), eval_steps=10000, train_steps=6000, burn_in=1000,
                    online=("first-order", "bonded"), distilled=("bonded",), neural_segment=(1500, 3000),
                    neural_distill_labels=2000,
                    cost_batches=(1, 2, 4, 8, 12, 17)),
    # The default draft since issue 13 (gfn-ff): what limits the learned draft's acceptance at depth. Each
    # online entry is a correction name or (label, correction name, options); other_drafts replace the draft.
    "alanine-gfnff": dict(system="alanine-dipeptide-vacuum", draft="gfn-ff", target="ani-1x",
                          params=(0.5, 300.0, 10.0), eval_steps=6000, train_steps=3000, burn_in=500,
                          online=("first-order",
                                  ("bonded fit on every label", "bonded", {"fit_stride": 1, "solve_every": 1}),
                                  ("bonded, longer memory (forgetting .9998)", "bonded", {"forgetting": 0.9998}),
                                  ("bonded, shorter memory (forgetting .99)", "bonded", {"forgetting": 0.99}),
                                  ("bonded, not anchored (global fit)", "bonded", {"anchor": False}),
                                  ("bonded, 1-5 pairs", "bonded", {"separation": 4}),
                                  ("bonded, cross terms to 1-3", "bonded", {"cross_separation": 3}),
                                  ("bonded, degree 6", "bonded", {"degree": 6}),
                                  ("bonded, degree 4 (the default until 2026-12-03)", "bonded", {"degree": 4}),
                                  "bonded"),
                          distilled=("bonded",), other_drafts=(("ani-1x member 0", "ani-1x", {"model_index": 0}),),
                          cost_batches=(1, 2, 4, 6, 9)),
    "cu32": dict(system="copper-32", draft="emt", target="sevennet-0", params=(1.0, 1500.0, 1.0),
                 eval_steps=1000, train_steps=400, burn_in=200,
                 online=("first-order", "radial", "radial+first-order"), distilled=("radial",),
                 neural_segment=(200, 500), cost_batches=(1, 2)),
    "cu108": dict(system="copper-108", draft="emt", target="sevennet-0", params=(1.0, 1500.0, 1.0),
                  eval_steps=400, train_steps=0, distill_from="cu32", burn_in=100,
                  online=("first-order", "radial", "radial+first-order"), distilled=("radial",),
                  neural_segment=None, cost_batches=(1, 2)),
}


def variant_parts(entry) -> tuple[str, str, dict[str, Any]]:
    """(label, correction name, options) of an ``online`` entry: a name, or (label, name, options)."""
    return (entry, entry, {}) if isinstance(entry, str) else entry


def cache_dir() -> Path:
    return Path(os.environ.get("LSD_LEARNING_CACHE", Path.home() / ".cache" / "lsd-learning"))


def labels_for(name: str, seed: int, steps: int, atoms, draft, target, params) -> LabelSet:
    path = cache_dir() / f"{name}_seed{seed}_{steps}.npz"
    if path.exists():
        labels = load_labels(path)
    else:
        print(f"  recording {steps} steps of target MD (seed {seed}) -> {path}", flush=True)
        t0 = time.perf_counter()
        labels = record_target_md(atoms, target, params, steps, seed=seed, draft=draft,
                                  log_every=max(1, steps // 10))
        labels.meta["wall_s"] = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        save_labels(path, labels)
    if labels.draft_forces is None:
        labels = labels.with_draft(draft)
    return labels


def speedup(result, costs: dict[str, Any], extra_draft_s: float = 0.0) -> dict[str, Any]:
    """Best synchronous K and its predicted speedup with the correction's costs included."""
    draft_s = costs["draft_step_s"] + extra_draft_s + 1e-6 * result.correction_us
    overhead_s = 1e-6 * result.observe_us_mean
    choice = theory.optimal_lookahead(result.acceptance_by_depth, draft_s, costs["target_batch_s"], overhead_s,
                                      min_lookahead=1, max_lookahead=LOOKAHEAD)
    at16 = float(theory.synchronous_speedup(result.acceptance_by_depth, LOOKAHEAD, draft_s,
                                            costs["target_batch_s"], overhead_s))
    return {"best_lookahead": choice.lookahead, "speedup": choice.speedup, "speedup_at_16": at16,
            "draft_step_ms": 1e3 * draft_s, "overhead_per_round_ms": 1e3 * overhead_s}


def with_draft_forces(labels: LabelSet, draft_forces: np.ndarray) -> LabelSet:
    return LabelSet(labels.positions, labels.target_forces, labels.target_energies, labels.numbers, labels.masses,
                    labels.cell, labels.pbc, draft_forces, dict(labels.meta))


def row(name: str, result, costs: dict[str, dict[str, Any]], extra_draft_s: float = 0.0,
        note: str = "") -> dict[str, Any]:
    out = result.to_dict()
    out["variant"] = name
    out["note"] = note
    out["predicted"] = {key: speedup(result, c, extra_draft_s) for key, c in costs.items()}
    return out


def show(entry: dict[str, Any]) -> None:
    a = entry["acceptance_by_depth"]
    pred = entry["predicted"]["measured"]
    ideal = entry["predicted"]["ideal-batching"]
    print(f"  {entry['variant']:34s} a1 {a[0]:.2f} a2 {a[1]:.2f} a4 {a[3]:.2f} a8 {a[7]:.2f} a16 {a[15]:.2f} "
          f"E16 {entry['expected_steps_per_round']:.2f}  corr {entry['correction_us']:7.1f} us  "
          f"observe {entry['observe_us_mean']:8.1f} us  S* {pred['speedup']:.2f} (K={pred['best_lookahead']}), "
          f"ideal batching {ideal['speedup']:.2f} (K={ideal['best_lookahead']})", flush=True)


def run_system(name: str, spec: dict[str, Any], neural: bool, timing_repeats: int) -> dict[str, Any]:
    print(f"== {name}: {spec['draft']} -> {spec['target']}, dt {spec['params'][0]} fs, {spec['params'][1]} K, "
          f"gamma {spec['params'][2]}/ps", flush=True)
    params = LangevinParams(*spec["params"])
    atoms = build_system(spec["system"])
    draft = models.create(spec["draft"], atoms)
    target = models.create(spec["target"], atoms, threads=1) if spec["target"] in ("ani-1x", "sevennet-0") \
        else models.create(spec["target"], atoms)
    labels = labels_for(name, 0, spec["eval_steps"], atoms, draft, target, params)
    stop = len(labels)
    burn_in = spec["burn_in"]
    print(f"  {len(labels)} labels, rounds start after label {burn_in}; measuring costs ...", flush=True)
    costs = {"measured": timing.measure_costs(draft, target, labels.positions[burn_in:burn_in + 17],
                                              spec["cost_batches"], timing_repeats, draft_repeats=31)}
    if name in REFERENCE_COSTS:
        costs["reference"] = REFERENCE_COSTS[name]
    one = costs["measured"]["target_batch_s"][1]
    costs["ideal-batching"] = {"draft_step_s": costs["measured"]["draft_step_s"], "target_batch_s": {1: one, 2: one},
                               "source": "hypothetical: a batch of K+1 costs one call (GPU-like); E_K-limited bound"}
    out: dict[str, Any] = {"system": spec["system"], "draft": spec["draft"], "target": spec["target"],
                           "params": params.to_dict(), "n_atoms": len(atoms), "n_labels": len(labels),
                           "burn_in": burn_in, "lookahead": LOOKAHEAD,
                           "costs": {k: {**v, "target_batch_s": {str(b): s for b, s in v["target_batch_s"].items()}}
                                     for k, v in costs.items()},
                           "rms_residual_eV_per_A": float(np.sqrt(np.mean(labels.residuals[burn_in:] ** 2))),
                           "variants": []}
    replay = dict(params=params, lookahead=LOOKAHEAD, burn_in=burn_in, stop=stop)
    rows = out["variants"]
    rows.append(row("constant EC", replay_rounds(labels, ConstantCorrection(), **replay), costs))
    show(rows[-1])
    for variant in spec["online"]:
        label, correction_name, options = variant_parts(variant)
        t0 = time.perf_counter()
        rows.append(row(f"online {label}", replay_rounds(labels, make_correction(correction_name, atoms, **options),
                                                         **replay), costs))
        rows[-1]["options"] = options
        rows[-1]["replay_wall_s"] = time.perf_counter() - t0
        show(rows[-1])
    for other, other_name, other_options in spec.get("other_drafts", ()):  # same labels, another draft
        other_draft = models.create(other_name, atoms, **other_options)
        other_labels = labels.with_draft(other_draft)
        extra = timing.model_seconds_per_call(other_draft, labels.positions[burn_in:burn_in + 1], 31) \
            - costs["measured"]["draft_step_s"]
        note = f"draft {other} instead of {spec['draft']}"
        rows.append(row(f"draft {other} + constant EC", replay_rounds(other_labels, ConstantCorrection(), **replay),
                        costs, extra, note))
        show(rows[-1])
        rows.append(row(f"draft {other} + online bonded", replay_rounds(other_labels, make_correction("online", atoms),
                                                                        **replay), costs, extra, note))
        show(rows[-1])

    # distilled drafts: trained on an independent target run, replayed with constant EC and online learning
    train_source = spec.get("distill_from", name)
    kinds = tuple(spec["distilled"]) + (("neural",) if neural and spec.get("neural_distill_labels") else ())
    for kind in kinds:
        train_spec = SYSTEMS[train_source]
        train_atoms = build_system(train_spec["system"])
        if train_source == name:
            train_draft, train_target = draft, target
        else:
            train_draft = models.create(train_spec["draft"], train_atoms)
            train_target = None
        path = RESULTS / "models" / f"distilled_{train_source}_{kind}.npz"
        train_labels = labels_for(train_source, 1, train_spec["train_steps"], train_atoms, train_draft,
                                  train_target, LangevinParams(*train_spec["params"]))
        first = train_spec["burn_in"]
        last = first + train_spec["neural_distill_labels"] if kind == "neural" else None  # the network trains slowly
        if train_source == name or not path.exists():
            report = distill(train_labels.slice(first, last), path, base=train_spec["draft"], kind=kind,
                             atoms=train_atoms, params=LangevinParams(*train_spec["params"]), epochs=8,
                             log=lambda *_: None)
            report_dict = report.to_dict()
        else:
            report_dict = {"path": str(path), "note": f"trained for {train_source}"}
        model = DistilledModel(atoms, path)
        learned = model.correction_energy_forces(labels.positions)[1]
        distilled_labels = with_draft_forces(labels, labels.draft_forces + learned)
        extra = timing.seconds_per_call(model.correction_energy_forces, labels.positions[:1], 31)
        note = (f"distilled '{kind}' on {report_dict.get('n_train', '?')} labels of {train_source} (seed 1, "
                f"{report_dict.get('n_validation', '?')} held out) in {report_dict.get('training_time_s', float('nan')):.1f} s")
        rows.append(row(f"distilled {kind} + constant EC", replay_rounds(distilled_labels, ConstantCorrection(),
                                                                          **replay), costs, extra, note))
        rows[-1]["distill"] = report_dict
        show(rows[-1])
        online = variant_parts(spec["online"][-1])[1]
        rows.append(row(f"distilled {kind} + online {online}",
                        replay_rounds(distilled_labels, make_correction(online, atoms), **replay), costs, extra, note))
        show(rows[-1])

    if neural and spec.get("neural_segment"):
        start, end = spec["neural_segment"]
        seg = dict(replay, burn_in=start, stop=end)
        note = f"segment {start}-{end} only (online training is slow); constant EC on the same segment for scale"
        rows.append(row("constant EC (neural segment)", replay_rounds(labels, ConstantCorrection(), **seg), costs,
                        note=note))
        show(rows[-1])
        for variant in ("online " + spec["online"][-1],):
            rows.append(row(f"{variant} (neural segment)",
                            replay_rounds(labels, make_correction(spec["online"][-1], atoms), **seg), costs, note=note))
            show(rows[-1])
        t0 = time.perf_counter()
        rows.append(row("online neural", replay_rounds(labels, make_correction("neural", atoms), **seg), costs,
                        note=note))
        rows[-1]["replay_wall_s"] = time.perf_counter() - t0
        show(rows[-1])
    return out


def sampler_check(name: str, spec: dict[str, Any], steps: int, lookahead: int, variants) -> dict[str, Any]:
    """Real ``SpeculativeSampler`` runs with each correction: measured acceptance by depth and steps
    per round after a warm-up of ``steps // 3`` steps, next to the replay's E_K at the same K."""
    from lsd_engine import SpeculativeSampler

    params = LangevinParams(*spec["params"])
    atoms = build_system(spec["system"])
    draft = models.create(spec["draft"], atoms)
    target = models.create(spec["target"], atoms, threads=1)
    out = {"lookahead": lookahead, "steps": steps, "warm_up": steps // 3, "runs": []}
    for variant in variants:
        correction = None if variant == "constant" else make_correction(variant, atoms)
        sampler = SpeculativeSampler(atoms, draft, target, params, lookahead=lookahead, seed=0,
                                     draft_correction=correction)
        sampler.run(steps // 3)
        t0 = time.perf_counter()
        stats = sampler.run(steps - steps // 3).stats
        by_depth = np.nan_to_num(np.asarray(stats.acceptance_by_depth, dtype=float))
        run = {"variant": variant, "acceptance_by_depth": by_depth.tolist(),
               "verified_by_depth": np.asarray(stats.verified_by_depth).tolist(),
               "steps_per_round": stats.steps_per_round,
               "expected_steps_per_round": float(theory.expected_steps_per_round(by_depth)),
               "acceptance_rate": stats.acceptance_rate, "wall_s": time.perf_counter() - t0,
               "time_draft_s": stats.time_draft_s, "time_target_s": stats.time_target_s}
        out["runs"].append(run)
        print(f"  sampler {variant:20s} K={lookahead}: steps/round {run['steps_per_round']:.2f}, acceptance by depth "
              + " ".join(f"{a:.2f}" for a in by_depth), flush=True)
    return out


def wallclock_check(name: str, spec: dict[str, Any], block: int, repeats: int, warm_up: int,
                    variants: dict[str, tuple[str | None, str | None, int]]) -> dict[str, Any]:
    """Measured steps per second of plain target MD and of LSD with each (draft, correction, K), in
    interleaved blocks (A B C A B C ...) so that machine drift hits all alike; learning cost included.
    ``variants``: label -> (draft model name or None for the system's draft, correction name or None
    for constant EC, lookahead)."""
    from lsd_engine import LangevinMD, SpeculativeSampler

    params = LangevinParams(*spec["params"])
    atoms = build_system(spec["system"])
    draft = models.create(spec["draft"], atoms)
    target = models.create(spec["target"], atoms, threads=1)
    runners = {"plain target MD": LangevinMD(atoms, target, params, seed=0)}
    for label, (draft_name, correction, k) in variants.items():
        this_draft = draft if draft_name is None else models.create(draft_name, atoms)
        runners[label] = SpeculativeSampler(atoms, this_draft, target, params, lookahead=k, seed=0,
                                            draft_correction=None if correction is None
                                            else make_correction(correction, atoms))
    for runner in runners.values():
        runner.run(warm_up)  # equilibration and, for learning drafts, the first ~thousand labels
    rates: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(repeats):
        for label, runner in runners.items():
            rates[label].append(runner.run(block).stats.steps_per_s)
    plain = np.array(rates["plain target MD"])
    out = {"block_steps": block, "repeats": repeats, "warm_up_steps": warm_up, "runs": {}}
    for label, r in rates.items():
        ratio = np.array(r) / plain
        out["runs"][label] = {"steps_per_s": r, "median_steps_per_s": float(np.median(r)),
                              "speedup_median": float(np.median(ratio)),
                              "speedup_range": [float(ratio.min()), float(ratio.max())]}
        print(f"  wall-clock {label:28s} {np.median(r):7.1f} steps/s, speedup {np.median(ratio):.2f}x "
              f"({ratio.min():.2f}-{ratio.max():.2f})", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SYSTEMS), help="systems (default: all)")
    parser.add_argument("--neural", action="store_true",
                        help="also replay the online neural correction and distil a neural draft (slow)")
    parser.add_argument("--timing-repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--sampler-check", type=int, default=0, metavar="STEPS",
                        help="also run the real sampler for STEPS steps per correction (K = 8) and compare")
    parser.add_argument("--wallclock", type=int, default=0, metavar="REPEATS",
                        help="alanine: interleaved wall-clock blocks of plain MD and LSD variants (real sampler)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # one thread per call: faster than contending threads on a small, shared machine
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(SYSTEMS):
        result = run_system(name, SYSTEMS[name], args.neural, args.timing_repeats)
        if args.wallclock and name == "alanine":
            distilled = f"distilled:{RESULTS / 'models' / 'distilled_alanine_bonded.npz'}"
            result["wallclock"] = wallclock_check(name, SYSTEMS[name], block=300, repeats=args.wallclock,
                                                  warm_up=1500, variants={
                                                      "LSD constant EC K=2": (None, None, 2),
                                                      "LSD online bonded K=5": (None, "bonded", 5),
                                                      "LSD distilled bonded K=4": (distilled, None, 4),
                                                      "LSD distilled + online bonded K=5": (distilled, "bonded", 5)})
        if args.sampler_check:
            result["sampler_check"] = sampler_check(name, SYSTEMS[name], args.sampler_check, 8,
                                                    ["constant", SYSTEMS[name]["online"][-1]])
            for run in result["sampler_check"]["runs"]:  # the replay's E_8 for the same correction
                label = "constant EC" if run["variant"] == "constant" else f"online {run['variant']}"
                replayed = next(v for v in result["variants"] if v["variant"] == label)
                run["replay_expected_steps_per_round_K8"] = float(
                    theory.expected_steps_per_round(replayed["acceptance_by_depth"], 8))
        path = out_dir / f"learning_{name}.json"
        path.write_text(json.dumps(result, indent=2))
        print(f"  wrote {path}", flush=True)


if __name__ == "__main__":
    main()
