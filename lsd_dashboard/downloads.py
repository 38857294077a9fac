"""Downloads of a dashboard run: the LSD trajectory (extended XYZ), the statistics JSON and a PNG of
the plots (matplotlib, so it needs no browser)."""

from __future__ import annotations

import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from .rundata import KIND_STYLE, RunData, learning_text


def trajectory_bytes(data: RunData, which: str = "lsd") -> bytes:
    """Saved frames (every ``save_stride`` steps) of the LSD or reference run as extended XYZ."""
    log = data.lsd if which == "lsd" else data.reference
    if data.atoms is None or not log.frames["steps"]:
        raise ValueError("no frames yet: start a run first")
    with data.lock:
        result = log.as_result(data.atoms)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trajectory.extxyz"
        result.write(str(path))
        return path.read_bytes()


def stats_json(data: RunData) -> str:
    return json.dumps(data.summary(), indent=2, sort_keys=True)


def plots_png(data: RunData, dpi: int = 110) -> bytes:
    """One PNG with the run's Ramachandran plots, acceptance by depth (and the K used), traces and timing."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8.5), constrained_layout=True)
    axes = fig.subplots(2, 3)
    with data.lock:
        logs = {"LSD": data.lsd, "target MD": data.reference}
        for ax, (label, log) in zip(axes[0, :2], logs.items()):
            hist = log.ramachandran()
            ax.set_title(f"Ramachandran: {label} ({log.n_rows} samples)")
            ax.set_xlabel("φ (deg)")
            ax.set_ylabel("ψ (deg)")
            if hist is not None:
                ax.imshow(np.log10(np.where(hist > 0, hist, np.nan)).T, origin="lower", extent=(-180, 180, -180, 180),
                          cmap="viridis")
            else:
                ax.text(0.5, 0.5, "no dihedral samples", ha="center", transform=ax.transAxes)
        js = data.js_divergence()
        depth = data.lsd.stats.acceptance_by_depth
        ax = axes[0, 2]
        ax.bar(np.arange(1, depth.size + 1), np.nan_to_num(depth), color=KIND_STYLE[2][1], label="acceptance")
        shares = data.lookahead_shares()
        if np.count_nonzero(shares) > 1:  # adaptive K: which K the rounds used, on the same axis
            ax.plot(np.arange(1, shares.size + 1), shares, "o-", color="#9467bd", label="share of rounds with K")
            ax.legend(loc="upper right")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel(f"draft depth / K; draft learning: {learning_text(data.learning)}")
        ax.set_title(f"acceptance by depth (overall {data.lsd.stats.acceptance_rate:.3f}); "
                     f"JS {'–' if not math.isfinite(js) else f'{js:.4f}'} bits")
        for ax, column, unit in ((axes[1, 0], "energy", "potential energy (eV)"),
                                 (axes[1, 1], "temperature", "kinetic temperature (K)")):
            for label, log in logs.items():
                rows = log.rows_since(0)
                ax.plot(rows["step"], rows[column], lw=0.8, label=label)
            ax.set_xlabel("step")
            ax.set_title(unit)
            ax.legend()
        ax = axes[1, 2]
        parts = ("draft", "target", "verification", "overhead")
        bottoms = np.zeros(2)
        timing = [log.stats.per_step_ms() for log in logs.values()]
        for part in parts:
            values = np.array([t[part] for t in timing])
            ax.bar(list(logs), values, bottom=bottoms, label=part)
            bottoms += values
        ax.set_title(f"ms per step; measured speedup {data.measured_speedup():.2f}×, "
                     f"theory {data.predicted_speedup():.2f}×")
        ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
