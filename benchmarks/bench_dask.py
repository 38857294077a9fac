"""Distributed verification: rounds/s and steps/s versus dask workers and mode, and dask's cost per round.

For each configuration (in-process; dask with 1, 2, ... workers) x (sync, async) it runs the same
seeded trajectory and reports steps/s, rounds/s, steps per round, target jobs, and for the synchronous
mode the dask overhead per round (wall time of the round's target call minus the slowest worker's
model time, in ms). Every configuration must give the identical trajectory; the script checks it.

Targets:
  sleep   (default) a batched Morse target that costs ``--target-ms + (B-1) * --per-state-ms``
          per call of B states by sleeping: a stand-in for an accelerator (GPU) that frees the CPU.
  ani-1x  the registry's ANI-1x ensemble on alanine dipeptide, drafted by amber14 (needs the models extra).

Usage (CPU):  python benchmarks/bench_dask.py --workers 1 2 --steps 300 --json benchmarks/results/dask.json
On a GPU machine: ``--gpu`` starts a LocalCUDACluster (one worker per GPU) for the dask runs, e.g.
              python benchmarks/bench_dask.py --target ani-1x --target-option device=cuda --gpu --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from functools import partial

import numpy as np
from ase import Atoms

from lsd_engine import FunctionModel, LangevinParams, SpeculativeSampler
from lsd_engine.models.base import ForceModel
from lsd_engine.toys import morse_cluster


class SleepyMorse(ForceModel):
    """Morse forces, with a call cost of base_ms + (B - 1) * per_state_ms spent sleeping (a simulated GPU)."""

    def __init__(self, base_ms: float, per_state_ms: float, name: str = "sleepy-morse"):
        self.base_ms, self.per_state_ms, self.name = base_ms, per_state_ms, name

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(1e-3 * (self.base_ms + (len(positions) - 1) * self.per_state_ms))
        return morse_cluster(positions)


def cluster_atoms(n_atoms: int) -> Atoms:
    """A jittered cubic grid of carbon atoms 1.5 Å apart (the Morse minimum)."""
    side = int(np.ceil(n_atoms ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_atoms] * 1.5
    return Atoms(f"C{n_atoms}", positions=grid + np.random.default_rng(0).normal(scale=0.02, size=grid.shape))


def build(args) -> tuple[Atoms, ForceModel, ForceModel, LangevinParams]:
    if args.target == "sleep":
        atoms = cluster_atoms(args.atoms)
        draft = FunctionModel(partial(morse_cluster, depth_eV=0.5 * (1 - args.draft_error)), name="morse-draft")
        target = SleepyMorse(args.target_ms, args.per_state_ms)
        return atoms, draft, target, LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)
    from lsd_engine import models, systems

    atoms = systems.alanine_dipeptide("vacuum")
    options = dict(item.split("=", 1) for item in args.target_option)
    draft = models.create("amber14", atoms)
    target = models.create(args.target, atoms, **options)
    return atoms, draft, target, LangevinParams(timestep_fs=0.5, temperature_K=300.0, friction_per_ps=50.0)


def measure(args, executor, mode: str) -> tuple[dict, np.ndarray]:
    atoms, draft, target, params = build(args)
    sampler = SpeculativeSampler(atoms, draft, target, params, lookahead=args.lookahead,
                                 error_correction=not args.no_ec, seed=0, mode=mode, executor=executor)
    sampler.run(args.warmup)  # loads the model on the workers, warms caches
    before = None if executor is None else (executor.stats.calls, executor.stats.call_wall_s,
                                            executor.stats.call_compute_s)
    t0 = time.perf_counter()
    result = sampler.run(args.steps)
    wall = time.perf_counter() - t0
    s = result.stats
    row = {"mode": mode, "steps": args.steps, "wall_s": wall, "steps_per_s": args.steps / wall,
           "rounds_per_s": s.rounds / wall, "steps_per_round": s.steps_per_round,
           "acceptance_rate": s.acceptance_rate, "target_jobs": s.target_calls,
           "target_states": s.target_evaluations, "retries": s.retries}
    if before is not None and mode == "sync":
        calls = executor.stats.calls - before[0]
        overhead = (executor.stats.call_wall_s - before[1]) - (executor.stats.call_compute_s - before[2])
        row["dask_overhead_ms_per_round"] = 1e3 * overhead / calls
    return row, result.positions[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="sleep", help="'sleep' (simulated accelerator) or a registry name")
    parser.add_argument("--target-option", action="append", default=[], help="key=value for models.create")
    parser.add_argument("--atoms", type=int, default=22, help="atoms in the Morse cluster (sleep target)")
    parser.add_argument("--target-ms", type=float, default=20.0, help="sleep target: cost of one state (ms)")
    parser.add_argument("--per-state-ms", type=float, default=2.0, help="sleep target: cost per extra state (ms)")
    parser.add_argument("--draft-error", type=float, default=0.02, help="sleep target: draft Morse depth error")
    parser.add_argument("--lookahead", type=int, default=8)
    parser.add_argument("--no-ec", action="store_true", help="switch off error correction")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gpu", action="store_true", help="dask-cuda cluster (one worker per GPU)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from lsd_engine.executors import DaskExecutor
    from lsd_engine.executors.dask_executor import visible_gpus

    rows, finals = [], []
    for mode in ("sync", "async"):
        row, final = measure(args, None, mode)
        rows.append({"executor": "in-process", "workers": 0, **row})
        finals.append(final)
    for n in args.workers:
        with DaskExecutor(n_workers=n, gpu=True if args.gpu else False) as ex:
            for mode in ("sync", "async"):
                row, final = measure(args, ex, mode)
                rows.append({"executor": f"dask-{ex.kind}", "workers": len(ex.workers), **row})
                finals.append(final)
    deviation = [float(np.abs(f - finals[0]).max()) for f in finals]  # final positions vs in-process sync, Å
    identical = max(deviation) == 0.0
    for row, dev in zip(rows, deviation):
        row["final_position_deviation_A"] = dev

    header = f"{'executor':<12}{'workers':>8}{'mode':>7}{'steps/s':>9}{'rounds/s':>9}{'steps/rd':>9}" \
             f"{'jobs':>6}{'overhead ms/rd':>16}"
    print(header)
    for r in rows:
        overhead = r.get("dask_overhead_ms_per_round")
        print(f"{r['executor']:<12}{r['workers']:>8}{r['mode']:>7}{r['steps_per_s']:>9.1f}{r['rounds_per_s']:>9.1f}"
              f"{r['steps_per_round']:>9.2f}{r['target_jobs']:>6}{'' if overhead is None else f'{overhead:.2f}':>16}")
    print(f"identical trajectories in every configuration: {identical}"
          + ("" if identical else f" (largest final-position difference {max(deviation):.2e} Å)"))
    if args.json:
        meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "gpus": visible_gpus(),
                "args": vars(args), "identical": identical}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    if not identical and args.target == "sleep":  # numpy Morse rows are independent of the batch: must match
        raise SystemExit("trajectories differ between executors")
    if not identical:
        print("(this target's forces depend in the last bits on how states are batched, e.g. float32 networks, "
              "so batch splits change the trajectory, not its distribution)")


if __name__ == "__main__":
    main()
