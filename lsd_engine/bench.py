"""`lsd bench`: plain target MD vs LSD on one system and pair, interleaved in one process.

Blocks of target MD and LSD alternate (A B A B ...) so machine drift hits both
equally; both samplers continue their trajectories across blocks. ASE's own
Langevin driver with the same target (as an ASE calculator) is timed too, as the
reference a user would otherwise reach for.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from . import theory, timing
from .draft_choice import AUTO_DRAFT, build_auto_models
from .kernel import half_step_position
from .langevin_md import LangevinMD
from .learning import NOT_LEARNED
from .models.base import ForceModel
from .results import RunStats
from .runconfig import RunConfig, build_executor, build_models, build_sampler, build_system


class ForceModelCalculator(Calculator):
    """An ASE calculator around a bound ForceModel (one configuration per call)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, model: ForceModel):
        super().__init__()
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energies, forces = self.model.evaluate(self.atoms.get_positions()[None])
        self.results = {"energy": float(energies[0]), "forces": np.asarray(forces[0], dtype=float)}


def time_ase_langevin(atoms: Atoms, target: ForceModel, config: RunConfig, n_steps: int) -> float:
    """Steps per second of ase.md.langevin.Langevin driven by ``target``."""
    from ase.md.langevin import Langevin

    system = atoms.copy()
    system.calc = ForceModelCalculator(target)
    dynamics = Langevin(system, timestep=config.timestep_fs * units.fs, temperature_K=config.temperature_K,
                        friction=config.friction_per_ps / (1000.0 * units.fs), fixcm=False,
                        rng=np.random.default_rng(config.seed))
    dynamics.run(1)  # first force call outside the timing
    t0 = time.perf_counter()
    dynamics.run(n_steps)
    return n_steps / (time.perf_counter() - t0)


def _pooled_acceptance(stats_list) -> tuple[np.ndarray, float]:
    """Acceptance by depth (0 where never verified) and overall, from the blocks' summed counts."""
    total = RunStats.combine(stats_list)
    return np.nan_to_num(total.acceptance_by_depth), total.acceptance_rate


def _in_run_target_costs(md_stats, lsd_stats, lookahead: int) -> dict[int, float]:
    """Target seconds per call averaged over the interleaved blocks: T_t(1) from target MD, T_t(K+1) per round."""
    md_calls = sum(s.target_calls for s in md_stats)
    lsd_calls = sum(s.target_calls for s in lsd_stats)
    return {1: sum(s.time_target_s for s in md_stats) / max(md_calls, 1),
            lookahead + 1: sum(s.time_target_s for s in lsd_stats) / max(lsd_calls, 1)}


def run_benchmark(config: RunConfig, repeats: int = 3, ase_steps: int | None = None,
                  log=print, warm_up_steps: int | None = None) -> dict[str, Any]:
    """Measure and predict the LSD speedup for ``config``; returns a JSON-ready dict.

    warm_up_steps: untimed steps of each sampler before the timed blocks (default 3(K+1):
    first calls and allocations). With draft learning, a longer warm-up measures the
    learned steady state; the default times the learning from its first labels."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warm_up_steps is not None and warm_up_steps < 0:
        raise ValueError(f"warm-up steps must be non-negative, got {warm_up_steps}")
    atoms = build_system(config.system, config.hydrogen_mass_amu)
    advice = None
    if config.draft == AUTO_DRAFT:
        draft, target, advice = build_auto_models(config, atoms, log=log)
    else:
        draft, target = build_models(config, atoms)
    executor = build_executor(config)
    try:
        result = _interleaved(config, atoms, draft, target, executor, repeats, ase_steps, log, warm_up_steps)
        if advice is not None:
            result["draft_advice"] = advice.to_dict()
        return result
    finally:
        if executor is not None:
            executor.close()


def _interleaved(config: RunConfig, atoms: Atoms, draft: ForceModel, target: ForceModel, executor,
                 repeats: int, ase_steps: int | None, log, warm_up_steps: int | None = None) -> dict[str, Any]:
    params = config.params()
    block = max(1, config.steps // repeats)
    md = LangevinMD(atoms, target, params, seed=config.seed)
    variants = {"lsd": (config, build_sampler(config, atoms, draft, target, executor))}
    learned = config.draft_learning not in NOT_LEARNED
    if learned or config.adaptive_lookahead:
        # the same pair with the seed paper's constant EC, interleaved in the same run: with a learned draft,
        # under the same K policy (the gain of learning alone); with adaptive K alone, at the fixed K
        baseline = dataclasses.replace(config, draft_learning="none",
                                       adaptive_lookahead=config.adaptive_lookahead and learned)
        variants["constant_ec"] = (baseline, build_sampler(baseline, atoms, draft, target, executor))
    warm_up = 3 * (config.lookahead + 1) if warm_up_steps is None else int(warm_up_steps)
    md.run(5)  # warm-up: first calls, lazy initialisation, allocations for both batch sizes
    for name, (_, sampler) in variants.items():
        if warm_up:
            stats = sampler.run(warm_up, progress=warm_up >= 500).stats
            log(f"  warm-up {name}: {warm_up} steps, acceptance {stats.acceptance_rate:.2f}")
    md_stats: list = []
    lsd_stats: dict[str, list] = {name: [] for name in variants}
    for repeat in range(repeats):
        md_stats.append(md.run(block).stats)
        line = f"  block {repeat + 1}/{repeats}: target MD {md_stats[-1].steps_per_s:.1f} steps/s"
        for name, (_, sampler) in variants.items():
            stats = sampler.run(block).stats
            lsd_stats[name].append(stats)
            line += f", {name} {stats.steps_per_s:.1f} steps/s (acceptance {stats.acceptance_rate:.2f})"
        log(line)
    md_rates = np.array([s.steps_per_s for s in md_stats])
    summaries = {name: _summarise(cfg, sampler, lsd_stats[name], md_stats, draft, target, executor, block)
                 for name, (cfg, sampler) in variants.items()}
    result = {"config": config.to_dict(), "repeats": repeats, "steps_per_block": block, "warm_up_steps": warm_up,
              "target_md_steps_per_s": float(np.median(md_rates)), **summaries.pop("lsd"), "n_atoms": len(atoms)}
    if "constant_ec" in summaries:
        base = result["constant_ec"] = summaries["constant_ec"]
        result["gain_over_constant_ec"] = {
            "speedup_ratio": result["speedup"] / base["speedup"],
            "expected_steps_per_round_ratio": result["expected_steps_per_round"] / base["expected_steps_per_round"]}
    if ase_steps is None:
        ase_steps = min(block, 200)
    if ase_steps > 0:
        result["ase_langevin_steps_per_s"] = time_ase_langevin(atoms, target, config, ase_steps)
        result["speedup_vs_ase_langevin"] = result["lsd_steps_per_s"] / result["ase_langevin_steps_per_s"]
    return result


def _summarise(config: RunConfig, sampler, stats_list, md_stats, draft, target, executor,
               block: int) -> dict[str, Any]:
    """Measured and predicted speedup of one LSD variant against the interleaved target-MD blocks."""
    md_rates = np.array([s.steps_per_s for s in md_stats])
    rates = np.array([s.steps_per_s for s in stats_list])
    ratios = rates / md_rates
    acceptance_by_depth, acceptance = _pooled_acceptance(stats_list)
    rounds_by_k = sum(s.rounds_by_lookahead for s in stats_list)
    used_k = [int(k) for k in np.flatnonzero(rounds_by_k)] or [config.lookahead]
    # Target costs for the prediction come from the same interleaved blocks (they dominate and drift with
    # machine load); the draft cost is the bare model call plus the learned correction's call, so the
    # engine's own drafting arithmetic, verification and bookkeeping all count against the efficiency.
    states = half_step_position(sampler.positions, sampler.momenta, sampler.constants)[None]
    in_run = _in_run_target_costs(md_stats, stats_list, config.lookahead)
    repeats = 7 if in_run[1] < 0.1 else 3  # a slow target (e.g. SevenNet on a CPU, ~1 s a call): fewer repeats
    isolated = timing.measure_costs(draft, target, states, [1] + [k + 1 for k in used_k], repeats=repeats,
                                    draft_repeats=31)
    correction_s = timing.correction_seconds_per_call(sampler.draft_correction, states[0], repeats=7)
    rounds = sum(s.rounds for s in stats_list)
    learning_s = sum(s.time_learning_s for s in stats_list)
    if len(used_k) == 1:
        target_costs = {1: in_run[1], used_k[0] + 1: in_run[config.lookahead + 1]}
    else:  # adaptive K: isolated batch costs, scaled to the in-run single-state cost
        scale = in_run[1] / isolated["target_batch_s"][1]
        target_costs = {b: scale * t for b, t in isolated["target_batch_s"].items()}
    costs = {"draft_step_s": isolated["draft_step_s"] + correction_s, "target_batch_s": target_costs,
             "overhead_s": learning_s / rounds if rounds else 0.0}
    rounds_of = {k: (rounds_by_k[k] if len(rounds_by_k) > k else 1) for k in used_k}
    # E_K and the synchronous cost model, averaged over the K the rounds used (one K unless adaptive)
    expected, predicted = theory.mixed_lookahead(acceptance_by_depth, rounds_of, costs["draft_step_s"],
                                                 costs["target_batch_s"], costs["overhead_s"])
    if config.mode == "async":  # streaming: the bound of docs/theory.md §10.3 with N_T workers, T_t(1) per state
        workers = getattr(executor, "capacity", 1) if executor is not None else 1
        predicted = float(theory.asynchronous_speedup(1.0 - acceptance, costs["draft_step_s"],
                                                      costs["target_batch_s"][1], workers))
    speedup = float(np.median(ratios))
    wall = {key: float(sum(getattr(s, key) for s in stats_list))
            for key in ("time_draft_s", "time_target_s", "time_verification_s", "time_overhead_s",
                        "time_learning_s", "wall_time_s")}
    return {
        "draft_learning": config.draft_learning, "draft_correction": getattr(sampler.draft_correction, "name", None),
        "adaptive_lookahead": config.adaptive_lookahead,
        "lsd_steps_per_s": float(np.median(rates)),
        "speedup": speedup, "speedup_range": [float(ratios.min()), float(ratios.max())],
        "predicted_speedup": predicted,
        "prediction_model": "asynchronous bound" if config.mode == "async" else "synchronous cost model",
        "efficiency": speedup / predicted if predicted > 0 else math.nan,
        "acceptance_rate": acceptance, "acceptance_by_depth": acceptance_by_depth.tolist(),
        "rejection_by_depth": (1.0 - acceptance_by_depth).tolist(),
        "expected_steps_per_round": expected,
        "expected_steps_per_round_at_max_lookahead": float(theory.expected_steps_per_round(acceptance_by_depth)),
        "measured_steps_per_round": block * len(stats_list) / rounds if rounds else math.nan,
        "rounds_by_lookahead": {str(k): int(rounds_by_k[k]) for k in np.flatnonzero(rounds_by_k)},
        "costs": {"draft_step_ms": 1e3 * isolated["draft_step_s"], "correction_call_ms": 1e3 * correction_s,
                  "learning_ms_per_round": 1e3 * costs["overhead_s"],
                  "source": "draft: isolated call; target: in-run averages",
                  "target_batch_ms": {str(b): 1e3 * t for b, t in costs["target_batch_s"].items()}},
        "costs_isolated": {"draft_step_ms": 1e3 * isolated["draft_step_s"],
                           "target_batch_ms": {str(b): 1e3 * t for b, t in isolated["target_batch_s"].items()}},
        "lsd_time_split_s": wall,
    }


def format_benchmark(result: dict[str, Any]) -> str:
    """Human-readable summary of ``run_benchmark``'s result."""
    c = result["config"]
    lines = [
        f"{c['system']}: {c['draft']} -> {c['target']}, dt {c['timestep_fs']} fs, {c['temperature_K']} K, "
        f"gamma {c['friction_per_ps']}/ps, K={c['lookahead']}, EC {'on' if c['error_correction'] else 'off'}"
        + (f", HMR H={c['hydrogen_mass_amu']} amu" if c.get("hydrogen_mass_amu") else ""),
        f"  target MD      {result['target_md_steps_per_s']:9.1f} steps/s",
        f"  LSD            {result['lsd_steps_per_s']:9.1f} steps/s",
        f"  speedup        {result['speedup']:.2f}x (range {result['speedup_range'][0]:.2f}-"
        f"{result['speedup_range'][1]:.2f}), predicted {result['predicted_speedup']:.2f}x, "
        f"efficiency {result['efficiency']:.2f}",
        f"  acceptance     {result['acceptance_rate']:.3f}; by depth "
        + " ".join(f"{a:.2f}" for a in result["acceptance_by_depth"]),
        f"  steps/round    {result['measured_steps_per_round']:.2f} measured, "
        f"{result['expected_steps_per_round']:.2f} expected from acceptance",
        f"  costs          draft {result['costs']['draft_step_ms']:.3f} ms/step, target "
        + ", ".join(f"B={b}: {ms:.2f} ms" for b, ms in result["costs"]["target_batch_ms"].items()),
    ]
    if result.get("draft_learning", "none") != "none":
        lines[0] += f", draft learning {result['draft_learning']}"
    if result.get("adaptive_lookahead"):
        lines.append("  K used         "
                     + ", ".join(f"K={k}: {n} rounds" for k, n in result["rounds_by_lookahead"].items()))
    if result.get("costs", {}).get("correction_call_ms"):
        lines.append(f"  learning       correction {result['costs']['correction_call_ms']:.3f} ms/draft step, "
                     f"refit {result['costs']['learning_ms_per_round']:.2f} ms/round")
    if "constant_ec" in result:
        base, gain = result["constant_ec"], result["gain_over_constant_ec"]
        label = "constant EC, adaptive K" if base["adaptive_lookahead"] else f"constant EC, K={c['lookahead']}"
        lines.append(f"  {label:14s} {base['lsd_steps_per_s']:9.1f} steps/s, speedup {base['speedup']:.2f}x, "
                     f"acceptance {base['acceptance_rate']:.3f}, E_K {base['expected_steps_per_round']:.2f}; by depth "
                     + " ".join(f"{a:.2f}" for a in base["acceptance_by_depth"]))
        lines.append(f"  gain           {gain['speedup_ratio']:.2f}x speedup, "
                     f"{gain['expected_steps_per_round_ratio']:.2f}x steps per round over {label}")
    if "draft_advice" in result:
        advice = result["draft_advice"]
        lines.append(f"  draft advice   {advice['winner']} chosen automatically in {advice['seconds']:.1f} s "
                     f"(not in the timed blocks)")
    if "ase_langevin_steps_per_s" in result:
        lines.append(f"  ASE Langevin   {result['ase_langevin_steps_per_s']:9.1f} steps/s "
                     f"(LSD is {result['speedup_vs_ase_langevin']:.2f}x faster)")
    return "\n".join(lines)
