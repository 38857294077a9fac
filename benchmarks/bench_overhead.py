"""Sampler overhead per drafted step, model time excluded.

Both models are wrapped in a timer, so overhead = wall time - time inside the
models: the engine's own drafting arithmetic, RNG, verification and bookkeeping.
Usage: python benchmarks/bench_overhead.py [--json benchmarks/results/overhead.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from functools import partial

import numpy as np
from ase import Atoms

from lsd_engine import FunctionModel, LangevinMD, LangevinParams, SpeculativeSampler
from lsd_engine.toys import harmonic_bonds, morse_cluster


class TimedModel(FunctionModel):
    """A FunctionModel that accumulates the seconds spent inside its function."""

    def __init__(self, fn, name):
        super().__init__(fn, name=name)
        self.seconds = 0.0

    def evaluate(self, positions):
        t0 = time.perf_counter()
        out = self.fn(positions)
        self.seconds += time.perf_counter() - t0
        return out


def cluster(n_atoms: int) -> Atoms:
    side = int(np.ceil(n_atoms ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_atoms] * 1.5
    return Atoms(f"C{n_atoms}", positions=grid + np.random.default_rng(0).normal(scale=0.02, size=grid.shape))


def measure(n_atoms: int, lookahead: int, error_correction: bool, draft_kind: str, n_steps: int) -> dict:
    params = LangevinParams(timestep_fs=0.5, temperature_K=300.0, friction_per_ps=10.0)
    target = TimedModel(morse_cluster, "morse")
    draft = TimedModel(morse_cluster if draft_kind == "exact" else partial(harmonic_bonds, k_eV_per_A2=2.0),
                       draft_kind)
    sampler = SpeculativeSampler(cluster(n_atoms), draft, target, params, lookahead=lookahead,
                                 error_correction=error_correction, seed=0)
    stats = sampler.run(n_steps).stats
    model_s = draft.seconds + target.seconds
    drafted = stats.draft_calls
    return {"n_atoms": n_atoms, "lookahead": lookahead, "error_correction": error_correction, "draft": draft_kind,
            "steps": n_steps, "acceptance_rate": stats.acceptance_rate, "drafted_steps": drafted,
            "rounds": stats.rounds, "wall_s": stats.wall_time_s, "model_s": model_s,
            "overhead_us_per_drafted_step": 1e6 * (stats.wall_time_s - model_s) / drafted,
            "overhead_us_per_output_step": 1e6 * (stats.wall_time_s - model_s) / n_steps}


def measure_md(n_atoms: int, n_steps: int) -> dict:
    target = TimedModel(morse_cluster, "morse")
    md = LangevinMD(cluster(n_atoms), target, LangevinParams(0.5, 300.0, 10.0), seed=0)
    stats = md.run(n_steps).stats
    return {"n_atoms": n_atoms, "sampler": "LangevinMD", "steps": n_steps,
            "overhead_us_per_step": 1e6 * (stats.wall_time_s - target.seconds) / n_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/overhead.json")
    parser.add_argument("--steps", type=int, default=4000)
    args = parser.parse_args()
    rows = []
    for n_atoms in (22, 1000):
        steps = args.steps if n_atoms < 100 else args.steps // 4
        for draft_kind in ("exact", "harmonic"):
            for ec in (False, True):
                row = measure(n_atoms, 8, ec, draft_kind, steps)
                rows.append(row)
                print(f"N={n_atoms:5d} K=8 draft={draft_kind:8s} EC={ec!s:5s} acc={row['acceptance_rate']:.2f} "
                      f"overhead {row['overhead_us_per_drafted_step']:7.1f} us/drafted step "
                      f"({row['overhead_us_per_output_step']:7.1f} us/output step)")
        md = measure_md(n_atoms, steps)
        rows.append(md)
        print(f"N={n_atoms:5d} plain LangevinMD overhead {md['overhead_us_per_step']:7.1f} us/step")
    out = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(), "rows": rows}
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
