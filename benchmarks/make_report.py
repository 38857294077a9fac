"""Build the README results section and PNG plots from benchmarks/results/*.json.

Usage: python benchmarks/make_report.py  (rewrites the block between the results markers in README.md)
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path("benchmarks/results")
README = Path("README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load_cases() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("speedup_*.json"))
            if p.name != "speedup_vs_lookahead.json"]


def _execution(c: dict) -> str:
    if c.get("executor") == "dask":
        return f" ({c['mode']}, {c['workers']} dask workers)"
    return "" if c.get("mode", "sync") == "sync" else f" ({c['mode']})"


def _table(cases: list[dict]) -> str:
    lines = ["| pair | dt fs | γ /ps | HMR | K | acceptance | E_K | draft ms | target ms (1 / K+1) | "
             "predicted | measured (range) | efficiency | vs ASE Langevin |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in cases:
        c, costs = r["config"], r["costs"]["target_batch_ms"]
        batch = [costs[k] for k in sorted(costs, key=int)]
        lines.append(
            f"| {c['draft']} → {c['target']}{_execution(c)} | {c['timestep_fs']} | {c['friction_per_ps']:g} | "
            f"{c['hydrogen_mass_amu'] or 'no'} | {c['lookahead']} | {r['acceptance_rate']:.2f} | "
            f"{r['measured_steps_per_round']:.2f} | {r['costs']['draft_step_ms']:.3f} | "
            f"{batch[0]:.1f} / {batch[-1]:.1f} | {r['predicted_speedup']:.2f}x | {r['speedup']:.2f}x "
            f"({r['speedup_range'][0]:.2f}–{r['speedup_range'][1]:.2f}) | {r['efficiency']:.2f} | "
            f"{r.get('speedup_vs_ase_langevin', float('nan')):.2f}x |")
    return "\n".join(lines)


def _plots(cases: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in cases:
        c = r["config"]
        depth = range(1, len(r["acceptance_by_depth"]) + 1)
        label = f"{c['draft']}→{c['target']} γ={c['friction_per_ps']:g}" + (" HMR" if c["hydrogen_mass_amu"] else "")
        ax.plot(depth, r["acceptance_by_depth"], "o-", label=label)
    ax.set(xlabel="draft depth", ylabel="acceptance (given the depth is reached)", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "acceptance_by_depth.png", dpi=110)
    made.append("acceptance_by_depth.png")
    scan_file = RESULTS / "speedup_vs_lookahead.json"
    if scan_file.exists():
        rows = json.loads(scan_file.read_text())
        ks = [r["config"]["lookahead"] for r in rows]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(ks, [r["speedup"] for r in rows], "o-", label="measured (median)")
        ax.fill_between(ks, [r["speedup_range"][0] for r in rows], [r["speedup_range"][1] for r in rows], alpha=0.2)
        ax.plot(ks, [r["predicted_speedup"] for r in rows], "s--", label="cost model with measured acceptance")
        ax.axhline(1.0, color="grey", lw=0.8)
        c = rows[0]["config"]
        ax.set(xlabel="lookahead K", ylabel="speedup over plain target MD",
               title=f"{c['draft']} → {c['target']}, γ={c['friction_per_ps']:g}/ps, dt={c['timestep_fs']} fs")
        ax.legend()
        fig.tight_layout()
        fig.savefig(RESULTS / "speedup_vs_lookahead.png", dpi=110)
        made.append("speedup_vs_lookahead.png")
    plt.close("all")
    return made


def main() -> None:
    cases = _load_cases()
    if not cases:
        raise SystemExit("no benchmarks/results/speedup_*.json: run benchmarks/bench_speedup.py first")
    plots = _plots(cases)
    block = "\n".join([
        START,
        "Measured on the 2-core CPU machine (no GPU, other jobs running), alanine dipeptide in vacuum, "
        "300 K, EC on, one target thread; target MD and LSD interleaved in one process (`lsd bench`). "
        "Predicted: the synchronous cost model with the measured acceptance, the bare draft call and the "
        "target costs of the same run (async: the asynchronous bound); efficiency = measured / predicted. "
        "Regenerate with `python benchmarks/bench_speedup.py && python benchmarks/make_report.py`.",
        "",
        _table(cases),
        "",
        *[f"![{p}](benchmarks/results/{p})" for p in plots],
        END,
    ])
    text = README.read_text()
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n## Results\n\n" + block + "\n"
    README.write_text(text)
    print(f"updated README.md results ({len(cases)} cases, plots: {', '.join(plots)})")


if __name__ == "__main__":
    main()
