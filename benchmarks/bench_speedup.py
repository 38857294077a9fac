"""LSD vs plain target MD on real pairs, via `lsd bench`'s engine; writes one JSON per case.

Usage: python benchmarks/bench_speedup.py [--only NAME ...] [--steps 400] [--out benchmarks/results]
(a script that starts dask workers: keep the __main__ guard)
Then:  python benchmarks/make_report.py   (tables + plots into README.md and benchmarks/results/)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsd_engine.bench import format_benchmark, run_benchmark
from lsd_engine.runconfig import RunConfig

# One thread per target call: on a small or shared machine this is much faster than contending threads.
ALANINE = dict(system="alanine-dipeptide-vacuum", draft="amber14", timestep_fs=0.5, temperature_K=300.0,
               target_options={"threads": 1})

#: name -> (config, steps factor). Steps factor scales --steps for slow targets.
CASES: dict[str, tuple[dict, float]] = {
    "ani_gamma10": (dict(ALANINE, target="ani-1x", friction_per_ps=10.0, lookahead=4), 1.0),
    "ani_gamma50_hmr": (dict(ALANINE, target="ani-1x", friction_per_ps=50.0, lookahead=8,
                             hydrogen_mass_amu=3.0), 1.0),
    "gfn1_batched_gamma10": (dict(ALANINE, target="gfn1-xtb-batched", friction_per_ps=10.0, lookahead=4), 0.5),
    "gfn2_tblite_gamma10": (dict(ALANINE, target="gfn2-xtb", friction_per_ps=10.0, lookahead=4), 0.5),
    "gfn2_tblite_async_2workers": (dict(ALANINE, target="gfn2-xtb", friction_per_ps=10.0, lookahead=4,
                                        executor="dask", workers=2, mode="async"), 0.5),
}

#: the lookahead scan of the main pair (speedup vs K plot)
SCAN = ("ani_gamma10", (1, 2, 3, 4, 6, 8, 12, 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help=f"cases to run ({', '.join(CASES)}, scan)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    selected = args.only or [*CASES, "scan"]
    for name in selected:
        if name == "scan":
            base, lookaheads = CASES[SCAN[0]][0], SCAN[1]
            rows = []
            for k in lookaheads:
                config = RunConfig.from_mapping(dict(base, lookahead=k, steps=args.steps // 2))
                rows.append(run_benchmark(config, repeats=args.repeats, ase_steps=0, log=lambda *_: None))
                print(f"scan K={k:2d}: speedup {rows[-1]['speedup']:.2f} (predicted {rows[-1]['predicted_speedup']:.2f})")
            (out / "speedup_vs_lookahead.json").write_text(json.dumps(rows, indent=2))
            continue
        config_values, factor = CASES[name]
        config = RunConfig.from_mapping(dict(config_values, steps=max(30, int(args.steps * factor))))
        print(f"== {name}")
        result = run_benchmark(config, repeats=args.repeats)
        result["case"] = name
        print(format_benchmark(result))
        (out / f"speedup_{name}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
