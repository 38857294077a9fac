"""`lsd bench`: plain target MD vs LSD on one system and pair, interleaved in one process.

Blocks of target MD and LSD alternate (A B A B ...) so machine drift hits both
equally; both samplers continue their trajectories across blocks. ASE's own
Langevin driver with the same target (as an ASE calculator) is timed too, as the
reference a user would otherwise reach for.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from . import theory
from .kernel import half_step_position
from .langevin_md import LangevinMD
from .models.base import ForceModel
from .runconfig import RunConfig, build_executor, build_models, build_system
from .speculative import SpeculativeSampler


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
    verified = sum(s.verified_by_depth for s in stats_list)
    accepted = sum(np.nan_to_num(s.acceptance_by_depth) * s.verified_by_depth for s in stats_list)
    by_depth = np.where(verified > 0, accepted / np.maximum(verified, 1), 0.0)
    overall = float(accepted.sum() / verified.sum()) if verified.sum() else math.nan
    return by_depth, overall


def _in_run_target_costs(md_stats, lsd_stats, lookahead: int) -> dict[int, float]:
    """Target seconds per call averaged over the interleaved blocks: T_t(1) from target MD, T_t(K+1) per round."""
    md_calls = sum(s.target_calls for s in md_stats)
    lsd_calls = sum(s.target_calls for s in lsd_stats)
    return {1: sum(s.time_target_s for s in md_stats) / max(md_calls, 1),
            lookahead + 1: sum(s.time_target_s for s in lsd_stats) / max(lsd_calls, 1)}


def run_benchmark(config: RunConfig, repeats: int = 3, ase_steps: int | None = None,
                  log=print) -> dict[str, Any]:
    """Measure and predict the LSD speedup for ``config``; returns a JSON-ready dict."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    atoms = build_system(config.system, config.hydrogen_mass_amu)
    draft, target = build_models(config, atoms)
    executor = build_executor(config)
    try:
        return _interleaved(config, atoms, draft, target, executor, repeats, ase_steps, log)
    finally:
        if executor is not None:
            executor.close()


def _interleaved(config: RunConfig, atoms: Atoms, draft: ForceModel, target: ForceModel, executor,
                 repeats: int, ase_steps: int | None, log) -> dict[str, Any]:
    params = config.params()
    block = max(1, config.steps // repeats)
    md = LangevinMD(atoms, target, params, seed=config.seed)
    lsd = SpeculativeSampler(atoms, draft, target, params, lookahead=config.lookahead,
                             error_correction=config.error_correction, seed=config.seed,
                             executor=executor, mode=config.mode)
    md.run(5)  # warm-up: first calls, lazy initialisation, allocations for both batch sizes
    lsd.run(3 * (config.lookahead + 1))
    md_rates, lsd_rates, lsd_stats, md_stats_list = [], [], [], []
    for repeat in range(repeats):
        md_stats = md.run(block).stats
        stats = lsd.run(block).stats
        md_stats_list.append(md_stats)
        md_rates.append(md_stats.steps_per_s)
        lsd_rates.append(stats.steps_per_s)
        lsd_stats.append(stats)
        log(f"  block {repeat + 1}/{repeats}: target MD {md_rates[-1]:.1f} steps/s, LSD {lsd_rates[-1]:.1f} "
            f"steps/s, acceptance {stats.acceptance_rate:.2f}")
    ratios = np.array(lsd_rates) / np.array(md_rates)
    acceptance_by_depth, acceptance = _pooled_acceptance(lsd_stats)
    # Target costs for the prediction come from the same interleaved blocks (they dominate and drift with
    # machine load); the draft cost is the bare model call, so the engine's own drafting arithmetic,
    # verification and bookkeeping all count against the efficiency. Isolated timings are reported too.
    states = half_step_position(lsd.positions, lsd.momenta, lsd.constants)[None]
    isolated = theory.measure_costs(draft, target, states, [1, config.lookahead + 1], repeats=7)
    costs = {"draft_step_s": isolated["draft_step_s"],
             "target_batch_s": _in_run_target_costs(md_stats_list, lsd_stats, config.lookahead)}
    if config.mode == "async":  # streaming: the bound of DESIGN §2.4 with N_T workers, T_t(1) per state
        workers = getattr(executor, "capacity", 1) if executor is not None else 1
        predicted = float(theory.asynchronous_speedup(1.0 - acceptance, costs["draft_step_s"],
                                                      costs["target_batch_s"][1], workers))
    else:
        predicted = float(theory.synchronous_speedup(acceptance_by_depth, config.lookahead, costs["draft_step_s"],
                                                     costs["target_batch_s"]))
    rounds = sum(s.rounds for s in lsd_stats)
    speedup = float(np.median(ratios))
    wall = {key: float(sum(getattr(s, key) for s in lsd_stats))
            for key in ("time_draft_s", "time_target_s", "time_verification_s", "time_overhead_s", "wall_time_s")}
    result = {
        "config": config.to_dict(), "repeats": repeats, "steps_per_block": block,
        "target_md_steps_per_s": float(np.median(md_rates)), "lsd_steps_per_s": float(np.median(lsd_rates)),
        "speedup": speedup, "speedup_range": [float(ratios.min()), float(ratios.max())],
        "predicted_speedup": predicted,
        "prediction_model": "asynchronous bound" if config.mode == "async" else "synchronous cost model", "efficiency": speedup / predicted if predicted > 0 else math.nan,
        "acceptance_rate": acceptance, "acceptance_by_depth": acceptance_by_depth.tolist(),
        "expected_steps_per_round": float(theory.expected_steps_per_round(acceptance_by_depth)),
        "measured_steps_per_round": block * repeats / rounds if rounds else math.nan,
        "costs": {"draft_step_ms": 1e3 * costs["draft_step_s"], "source": "draft: isolated call; target: in-run averages",
                  "target_batch_ms": {str(b): 1e3 * s for b, s in costs["target_batch_s"].items()}},
        "costs_isolated": {"draft_step_ms": 1e3 * isolated["draft_step_s"],
                           "target_batch_ms": {str(b): 1e3 * s for b, s in isolated["target_batch_s"].items()}},
        "lsd_time_split_s": wall, "n_atoms": len(atoms),
    }
    if ase_steps is None:
        ase_steps = min(block, 200)
    if ase_steps > 0:
        result["ase_langevin_steps_per_s"] = time_ase_langevin(atoms, target, config, ase_steps)
        result["speedup_vs_ase_langevin"] = result["lsd_steps_per_s"] / result["ase_langevin_steps_per_s"]
    return result


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
    if "ase_langevin_steps_per_s" in result:
        lines.append(f"  ASE Langevin   {result['ase_langevin_steps_per_s']:9.1f} steps/s "
                     f"(LSD is {result['speedup_vs_ase_langevin']:.2f}x faster)")
    return "\n".join(lines)
