"""Benchmark the four required draft → target pairings with speculative error correction.

For each pairing: the measured cost of one draft call, one target call and one
batched target call of K+1 configurations (median of repeats), then an LSD run
with EC reporting acceptance by depth, steps per round, the run's own draft /
target time per call, and the predicted speedup over plain target MD
(docs/theory.md §10.2: S = E_K · T_t(1) / (K · T_d + T_t(K+1)), with the measured E_K).

    python benchmarks/bench_pairs.py                      # all four, default lengths
    python benchmarks/bench_pairs.py --pairs cu32-emt-sevennet0 --steps 100
    python benchmarks/bench_pairs.py --threads 2 --out my.json

Writes JSON (default benchmarks/bench_pairs_results.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsd_engine.models.checks import perturbed_positions  # noqa: E402
from lsd_engine.models.pairings import PAIRINGS, build  # noqa: E402
from lsd_engine.timing import model_seconds_per_call  # noqa: E402
from lsd_engine.speculative import SpeculativeSampler  # noqa: E402

DEFAULTS = {  # pairing: (steps, lookahead)
    "ala-vacuum-amber14-ani1x": (300, 8),
    "ala-vacuum-amber14-gfn2": (300, 8),
    "ala-implicit-amber14-gfn2": (300, 8),
    "cu32-emt-sevennet0": (200, 4),
}


def measure_costs(atoms, draft, target, lookahead: int, repeats: int) -> dict[str, float]:
    single = perturbed_positions(atoms, 1, 0.02, seed=1)
    batch = perturbed_positions(atoms, lookahead + 1, 0.02, seed=2)
    return {
        "draft_ms": 1e3 * model_seconds_per_call(draft, single, repeats=max(repeats * 20, 50)),
        "target_ms": 1e3 * model_seconds_per_call(target, single, repeats=repeats),
        "target_batch_ms": 1e3 * model_seconds_per_call(target, batch, repeats=max(repeats // 2, 1)),
    }


def run_pair(name: str, steps: int, lookahead: int, threads: int | None, seed: int, repeats: int,
             error_correction: bool = True) -> dict:
    atoms, draft, target, params = build(name, threads=threads)
    costs = measure_costs(atoms, draft, target, lookahead, repeats)
    sampler = SpeculativeSampler(atoms, draft, target, params, lookahead=lookahead,
                                 error_correction=error_correction, seed=seed)
    start = time.perf_counter()
    result = sampler.run(steps)
    wall = time.perf_counter() - start
    st = result.stats
    steps_per_round = st.steps_per_round
    predicted = steps_per_round * costs["target_ms"] / (lookahead * costs["draft_ms"] + costs["target_batch_ms"])
    plain_md_s = steps * costs["target_ms"] / 1e3
    pairing = PAIRINGS[name]
    return {
        "pairing": name, "description": pairing.description, "draft": pairing.draft, "target": pairing.target,
        "n_atoms": len(atoms), "params": pairing.params.to_dict(), "steps": steps, "lookahead": lookahead,
        "error_correction": error_correction, "seed": seed,
        "acceptance_rate": st.acceptance_rate,
        "acceptance_by_depth": [None if not np.isfinite(a) else float(a) for a in st.acceptance_by_depth],
        "verified_by_depth": [int(v) for v in st.verified_by_depth],
        "steps_per_round": steps_per_round, "rounds": st.rounds,
        "cost_ms": costs,
        "run_draft_ms_per_call": 1e3 * st.time_draft_s / max(st.draft_calls, 1),
        "run_target_ms_per_call": 1e3 * st.time_target_s / max(st.target_calls, 1),
        "run_target_configs_per_call": st.target_evaluations / max(st.target_calls, 1),
        "wall_s": wall, "plain_target_md_estimate_s": plain_md_s,
        "measured_speedup_vs_plain_estimate": plain_md_s / wall if wall > 0 else None,
        "predicted_speedup": predicted,
    }


MODEL_COSTS = [  # (model, system, options): every registered backend on a reference system
    ("amber14", "ala-vacuum", {}), ("amber14", "ala-implicit", {}), ("emt", "cu32", {}),
    ("ani-1x", "ala-vacuum", {}), ("ani-1x", "ala-vacuum", {"precision": "float64"}),
    ("gfn2-xtb", "ala-vacuum", {}), ("gfn2-xtb", "ala-implicit", {}),
    ("gfn1-xtb-batched", "ala-vacuum", {}), ("gfn2-xtb-batched", "ala-vacuum", {}),
    ("sevennet-0", "cu32", {}), ("chgnet", "cu32", {}),
]


def model_costs(threads: int | None, batch: int, repeats: int) -> list[dict]:
    """Median time of one call with 1 and with ``batch`` configurations, per model."""
    from lsd_engine import models, systems

    makers = {"ala-vacuum": lambda: systems.alanine_dipeptide("vacuum"),
              "ala-implicit": lambda: systems.alanine_dipeptide("implicit"),
              "cu32": lambda: systems.copper_fcc(2)}
    rows = []
    for name, system, options in MODEL_COSTS:
        atoms = makers[system]()
        opts = dict(options)
        if threads is not None and name not in ("amber14", "emt"):
            opts["threads"] = threads
        model = models.create(name, atoms, **opts)
        cheap = name in ("amber14", "emt")
        one = model_seconds_per_call(model, perturbed_positions(atoms, 1, 0.02, seed=1),
                                     repeats=repeats * (50 if cheap else 1))
        many = model_seconds_per_call(model, perturbed_positions(atoms, batch, 0.02, seed=2),
                                      repeats=max(repeats // 2, 1) * (10 if cheap else 1))
        row = {"model": name, "system": system, "options": options, "n_atoms": len(atoms),
               "single_ms": 1e3 * one, f"batch{batch}_ms": 1e3 * many, "batch_over_single": many / one}
        rows.append(row)
        print(f"{name:18s} {system:13s} {str(options or ''):24s} 1: {1e3 * one:9.3f} ms   {batch}: {1e3 * many:9.2f} ms"
              f"   ({many / one:.1f}x one call)", flush=True)
    return rows


def format_row(r: dict) -> str:
    depth = " ".join("  - " if a is None else f"{a:.2f}" for a in r["acceptance_by_depth"])
    c = r["cost_ms"]
    return (f"{r['pairing']:27s} K={r['lookahead']} acc={r['acceptance_rate']:.2f} by depth [{depth}] "
            f"steps/round={r['steps_per_round']:.2f}  draft {c['draft_ms']:.3f} ms  target {c['target_ms']:.1f} ms "
            f"(batch of {r['lookahead'] + 1}: {c['target_batch_ms']:.1f} ms)  speedup pred {r['predicted_speedup']:.2f} "
            f"/ run {r['measured_speedup_vs_plain_estimate']:.2f}  wall {r['wall_s']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="*", default=list(DEFAULTS), choices=list(DEFAULTS))
    parser.add_argument("--steps", type=int, default=None, help="steps per pairing (default: per pairing)")
    parser.add_argument("--lookahead", type=int, default=None, help="K (default: per pairing)")
    parser.add_argument("--threads", type=int, default=1, help="threads per model call (0: backend default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each cost measurement")
    parser.add_argument("--no-ec-too", action="store_true", help="also run each pairing without EC")
    parser.add_argument("--model-costs", action="store_true",
                        help="only time every registered backend (1 and --batch configurations)")
    parser.add_argument("--batch", type=int, default=9, help="batch size for --model-costs")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/bench_pairs_results.json, "
                        "or benchmarks/bench_model_costs.json with --model-costs)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    threads = args.threads or None
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "threads_per_model": threads, "load_average": os.getloadavg()}
    command = " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))
    if args.model_costs:
        out = Path(args.out or Path(__file__).with_name("bench_model_costs.json"))
        rows = model_costs(threads, args.batch, args.repeats)
        out.write_text(json.dumps({"machine": machine, "command": command, "results": rows}, indent=2))
        print(f"wrote {out}")
        return 0
    rows = []
    for name in args.pairs:
        steps, lookahead = DEFAULTS[name]
        steps = args.steps or steps
        lookahead = args.lookahead or lookahead
        for ec in ([True, False] if args.no_ec_too else [True]):
            row = run_pair(name, steps, lookahead, threads, args.seed, args.repeats, error_correction=ec)
            rows.append(row)
            print(format_row(row) + ("" if ec else "  (no EC)"), flush=True)
    out = Path(args.out or Path(__file__).with_name("bench_pairs_results.json"))
    out.write_text(json.dumps({"machine": machine, "command": command, "results": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
