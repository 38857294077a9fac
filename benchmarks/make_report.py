"""Build the README results section and PNG plots from benchmarks/results/*.json.

Usage: python benchmarks/make_report.py  (rewrites the block between the results markers in README.md)
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path("benchmarks/results")
EARLIER = RESULTS / "earlier"  # amber14 draft, constant EC, fixed K: the defaults before draft auto
README = Path("README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"
SCAN_FILE = "speedup_vs_lookahead.json"
MOLECULE_NAMES = {"CH3CH2OH": "ethanol", "CH3COOH": "acetic acid", "H3CNH2": "methylamine",
                  "CH3CONH2": "acetamide", "HCOOCH3": "methyl formate"}


def _load(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(pattern)) if p.name != SCAN_FILE]


def _execution(c: dict) -> str:
    if c.get("executor") == "dask":
        return f" ({c['mode']}, {c['workers']} dask workers)"
    return "" if c.get("mode", "sync") == "sync" else f" ({c['mode']})"


def _batch_ms(r: dict) -> str:
    costs = r["costs"]["target_batch_ms"]
    batch = [costs[k] for k in sorted(costs, key=int)]
    return f"{batch[0]:.1f} / {batch[-1]:.1f}"


def _k_used(r: dict) -> str:
    """The K the rounds used: ``4-5`` (the range holding 90 % of the rounds) for adaptive K."""
    c = r["config"]
    if not c.get("adaptive_lookahead"):
        return str(c["lookahead"])
    counts = {int(k): n for k, n in r.get("rounds_by_lookahead", {}).items() if n}
    total = sum(counts.values())
    if not total:
        return f"≤{c['lookahead']}"
    kept, low, high = 0, None, None
    for k in sorted(counts, key=lambda k: -counts[k]):  # the most used Ks until 90 % of the rounds
        low, high = min(k, low or k), max(k, high or k)
        kept += counts[k]
        if kept >= 0.9 * total:
            break
    return str(low) if low == high else f"{low}-{high}"


def _depths(r: dict) -> str:
    a = r["acceptance_by_depth"]
    def one(value: float) -> str:
        return f"{value:.2f}".removeprefix("0")

    return " / ".join(one(a[d - 1]) if d <= len(a) and a[d - 1] > 0 else "–" for d in (1, 4, 8))


def _draft(r: dict) -> str:
    advice = r.get("draft_advice")
    return f"auto: {advice['winner']}" if advice else r["config"]["draft"]


def _constant_ec(r: dict) -> str:
    """Constant EC in the same run: with the same K policy, or at the fixed K when only K is adaptive."""
    ec = r.get("constant_ec")
    if not ec:
        return "–"
    fixed = "" if ec.get("adaptive_lookahead") else f", K {r['config']['lookahead']}"
    return f"{ec['speedup']:.2f}x (E_K {ec['measured_steps_per_round']:.2f}{fixed})"


def _learning(r: dict) -> str:
    payoff = (r.get("draft_advice") or {}).get("learning_payoff")
    if payoff and not payoff["pays"]:
        return "off: cannot pay"
    return r.get("draft_correction") or "constant"


def _defaults_table(cases: list[dict]) -> str:
    lines = ["| pair | dt fs | γ /ps | HMR | K used | learning | acceptance by depth 1 / 4 / 8 | E_K | "
             "draft ms | target ms (1 / K+1) | predicted | measured (range) | constant EC, same run | "
             "efficiency | vs ASE Langevin |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in cases:
        c = r["config"]
        lines.append(
            f"| {_draft(r)} → {c['target']}{_execution(c)} | {c['timestep_fs']} | {c['friction_per_ps']:g} | "
            f"{c['hydrogen_mass_amu'] or 'no'} | {_k_used(r)} | {_learning(r)} | "
            f"{_depths(r)} | {r['measured_steps_per_round']:.2f} | {r['costs']['draft_step_ms']:.3f} | "
            f"{_batch_ms(r)} | {r['predicted_speedup']:.2f}x | **{r['speedup']:.2f}x** "
            f"({r['speedup_range'][0]:.2f}–{r['speedup_range'][1]:.2f}) | {_constant_ec(r)} | "
            f"{r['efficiency']:.2f} | {r.get('speedup_vs_ase_langevin', float('nan')):.2f}x |")
    return "\n".join(lines)


def _small_table(target_case: str, cases: list[dict]) -> str:
    c0 = cases[0]["config"]
    lines = [f"Small molecules as XYZ files, target {c0['target']}{_execution(c0)}, {c0['steps']} steps "
             f"(`python benchmarks/bench_speedup.py --only small-{target_case}`):",
             "",
             "| molecule | atoms | draft | learning | K used | acceptance by depth 1 / 4 / 8 | E_K | "
             "target ms (1 / K+1) | measured (range) | constant EC, same run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in cases:
        lines.append(
            f"| {MOLECULE_NAMES.get(r['molecule'], '')} {r['molecule']} | {r['n_atoms']} | {_draft(r)} | {_learning(r)} | "
            f"{_k_used(r)} | {_depths(r)} | {r['measured_steps_per_round']:.2f} | {_batch_ms(r)} | "
            f"**{r['speedup']:.2f}x** ({r['speedup_range'][0]:.2f}–{r['speedup_range'][1]:.2f}) | {_constant_ec(r)} |")
    return "\n".join(lines)


def _earlier_table(cases: list[dict]) -> str:
    lines = ["| pair | dt fs | γ /ps | HMR | K | acceptance | E_K | draft ms | target ms (1 / K+1) | "
             "predicted | measured (range) | efficiency | vs ASE Langevin |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in cases:
        c = r["config"]
        lines.append(
            f"| {c['draft']} → {c['target']}{_execution(c)} | {c['timestep_fs']} | {c['friction_per_ps']:g} | "
            f"{c['hydrogen_mass_amu'] or 'no'} | {c['lookahead']} | {r['acceptance_rate']:.2f} | "
            f"{r['measured_steps_per_round']:.2f} | {r['costs']['draft_step_ms']:.3f} | "
            f"{_batch_ms(r)} | {r['predicted_speedup']:.2f}x | {r['speedup']:.2f}x "
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
        reached = r["acceptance_by_depth"]  # depths no round reached are stored as 0: not drawn
        reached = reached[:next((i for i, a in enumerate(reached) if a == 0.0), len(reached))]
        depth = range(1, len(reached) + 1)
        label = (f"{c['draft']}→{c['target']}{_execution(c)} γ={c['friction_per_ps']:g}"
                 + (" HMR" if c["hydrogen_mass_amu"] else ""))
        ax.plot(depth, reached, "o-", label=label)
    ax.set(xlabel="draft depth", ylabel="acceptance (given the depth is reached)", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "acceptance_by_depth.png", dpi=110)
    made.append("acceptance_by_depth.png")
    scan_file = RESULTS / SCAN_FILE
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
    cases = _load(RESULTS, "speedup_*.json")
    if not cases:
        raise SystemExit("no benchmarks/results/speedup_*.json: run benchmarks/bench_speedup.py first")
    plots = _plots(cases)
    small = {}
    for r in _load(RESULTS, "small_*.json"):
        small.setdefault(r.get("case", "small-?").split()[0].removeprefix("small-"), []).append(r)
    earlier = _load(EARLIER, "speedup_*.json")
    block = [
        START,
        "Measured on the 2-core CPU machine (no GPU), alanine dipeptide in vacuum, 0.5 fs, 300 K, EC on, with "
        "the defaults: only the system, the target and (where shown) the physics or executor are given, so "
        "the draft is chosen automatically (its calibration is part of the run's cost but not of the timed "
        "blocks), the draft correction is learned online from scratch and K is adaptive (at most 8). Target "
        "MD, LSD and LSD with constant EC + adaptive K are interleaved in one process (`lsd bench`), "
        "median of 3 repeats; where learning was turned off because it cannot pay (`lsd_engine.learning.payoff`), "
        "the comparison is constant EC at the fixed K 8 instead. Predicted: the synchronous cost model with the "
        "measured acceptance and costs of the same run (async: the asynchronous bound); efficiency = measured / "
        "predicted. gfn2-xtb (tblite) does not batch, so synchronous rounds cannot beat plain MD with it, and on "
        "2 cores the asynchronous mode's 2 dask workers share the machine with the drafting process (an actor "
        "round trip, ~3 ms, is as long as a call for the small molecules): nothing beats plain gfn2-xtb MD on "
        "this machine. Regenerate with `python benchmarks/bench_speedup.py && python benchmarks/make_report.py`.",
        "",
        _defaults_table(cases),
        "",
    ]
    for target_case, rows in sorted(small.items()):
        block += [_small_table(target_case, sorted(rows, key=lambda r: r["molecule"])), ""]
    if earlier:
        block += ["Earlier figures, kept for comparison: the defaults before draft auto, learning and adaptive K "
                  "(amber14 draft, constant EC, fixed K, one target thread, 400 steps; "
                  "`benchmarks/results/earlier/`):", "", _earlier_table(earlier), ""]
    block += [*[f"![{p}](benchmarks/results/{p})" for p in plots], END]
    text = README.read_text()
    if START in text and END in text:
        text = text[:text.index(START)] + "\n".join(block) + text[text.index(END) + len(END):]
    else:
        text += "\n## Results\n\n" + "\n".join(block) + "\n"
    README.write_text(text)
    print(f"updated README.md results ({len(cases)} cases, {sum(map(len, small.values()))} small-molecule runs, "
          f"{len(earlier)} earlier, plots: {', '.join(plots)})")


if __name__ == "__main__":
    main()
