"""LSD vs plain target MD with the defaults a user gets, via `lsd bench`'s engine; one JSON per case.

Every case gives only a system, a target and (for some) physics or an executor: the draft is chosen
automatically, the draft correction is learned online from scratch and K is adaptive (the defaults of
``RunConfig``). Each result also holds constant EC + adaptive K measured side by side in the same run.

Usage: python benchmarks/bench_speedup.py [--only NAME ...] [--steps 1500] [--repeats 3] [--out benchmarks/results]
  NAME: a case below, ``scan`` (speedup vs fixed K), or ``small-<target case>`` (five small molecules as
  XYZ files, e.g. ``small-gfn2``); default: every alanine case and the scan.
(a script that starts dask workers: keep the __main__ guard)
Then:  python benchmarks/make_report.py   (tables + plots into README.md and benchmarks/results/)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from lsd_engine.bench import format_benchmark, run_benchmark
from lsd_engine.runconfig import RunConfig

ALANINE = "alanine-dipeptide-vacuum"

#: target case -> settings beyond the defaults (system aside)
TARGETS: dict[str, dict] = {
    "ani": dict(target="ani-1x"),
    "gfn2": dict(target="gfn2-xtb"),
    "gfn2_async_2workers": dict(target="gfn2-xtb", executor="dask", workers=2, mode="async"),
}

#: name -> (settings, steps factor). The factor scales --steps for slow targets.
CASES: dict[str, tuple[dict, float]] = {
    "ani": (dict(TARGETS["ani"], system=ALANINE), 1.0),
    "ani_gamma50_hmr": (dict(TARGETS["ani"], system=ALANINE, friction_per_ps=50.0, hydrogen_mass_amu=3.0), 1.0),
    "gfn1_batched": (dict(system=ALANINE, target="gfn1-xtb-batched"), 0.2),
    "gfn2": (dict(TARGETS["gfn2"], system=ALANINE), 0.5),
    "gfn2_async_2workers": (dict(TARGETS["gfn2_async_2workers"], system=ALANINE), 0.5),
}

#: the fixed-K scan of the main pair (speedup vs K plot): the draft the defaults choose, learning on
SCAN = (dict(TARGETS["ani"], system=ALANINE, draft="gfn-ff", adaptive_lookahead=False), (1, 2, 3, 4, 6, 8, 12))

#: small organic molecules (H, C, N, O only) that amber14 cannot type: ase.build.molecule names
SMALL_MOLECULES = ("CH3CH2OH", "CH3COOH", "H3CNH2", "CH3CONH2", "HCOOCH3")


def _write_small_molecules(folder: Path) -> dict[str, Path]:
    from ase.build import molecule

    files = {}
    for name in SMALL_MOLECULES:
        files[name] = folder / f"{name}.xyz"
        molecule(name).write(files[name])
    return files


def _run(config: RunConfig, repeats: int, name: str, out_file: Path, **labels: str) -> dict:
    print(f"== {name}")
    result = run_benchmark(config, repeats=repeats)
    result.update(case=name, **labels)
    print(format_benchmark(result))
    out_file.write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*",
                        help=f"cases to run ({', '.join(CASES)}, scan, {', '.join('small-' + t for t in TARGETS)})")
    parser.add_argument("--steps", type=int, default=1500, help="alanine steps (scaled per case); small molecules "
                        "use the same number")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    selected = args.only or [*CASES, "scan"]
    unknown = [n for n in selected if n not in CASES and n != "scan" and n.removeprefix("small-") not in TARGETS]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}")
    for name in selected:
        if name == "scan":
            base, lookaheads = SCAN
            rows = []
            for k in lookaheads:
                config = RunConfig.from_mapping(dict(base, lookahead=k, steps=args.steps // 2))
                rows.append(run_benchmark(config, repeats=args.repeats, ase_steps=0, log=lambda *_: None))
                print(f"scan K={k:2d}: speedup {rows[-1]['speedup']:.2f} (predicted {rows[-1]['predicted_speedup']:.2f})")
            (out / "speedup_vs_lookahead.json").write_text(json.dumps(rows, indent=2))
        elif name.startswith("small-"):
            target_case = name.removeprefix("small-")
            with tempfile.TemporaryDirectory() as folder:
                for molecule, path in _write_small_molecules(Path(folder)).items():
                    config = RunConfig.from_mapping(dict(TARGETS[target_case], system=str(path), steps=args.steps))
                    _run(config, args.repeats, f"{name} {molecule}", out / f"small_{target_case}_{molecule}.json",
                         molecule=molecule)
        else:
            settings, factor = CASES[name]
            config = RunConfig.from_mapping(dict(settings, steps=max(30, int(args.steps * factor))))
            _run(config, args.repeats, name, out / f"speedup_{name}.json")


if __name__ == "__main__":
    main()
