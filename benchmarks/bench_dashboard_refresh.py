"""Cost of the dashboard's periodic refresh while a run streams (three runs, every view).

Runs a dashboard run in its thread (default: the teaching preset, which streams the most
steps per second) and calls ``Dashboard.refresh()`` every ``--period-ms`` on this thread,
as the page's periodic callback does; prints and writes the time per refresh and the
share of the period it takes. Also reports the convergence time of the preset, the measured
speedup of LSD over the page's target MD and the draft 'auto' chose.
Usage: python benchmarks/bench_dashboard_refresh.py [--seconds 60] [--preset teaching]
       [--json benchmarks/results/dashboard_refresh.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import panel as pn

from lsd_dashboard import choices
from lsd_dashboard.app import REFRESH_MS, Dashboard
from lsd_dashboard.controller import RunController


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--preset", default="teaching", choices=[*choices.PRESETS, "defaults"])
    parser.add_argument("--period-ms", type=float, default=REFRESH_MS)
    parser.add_argument("--json", default="benchmarks/results/dashboard_refresh.json")
    args = parser.parse_args()
    settings = {} if args.preset == "defaults" else choices.PRESETS[args.preset]["settings"]
    controller = RunController(**settings)
    dashboard = Dashboard(controller)
    pn.panel(dashboard).get_root()  # the Bokeh models exist, as in a served page
    controller.start()
    times, converged_at = [], None
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds and controller.status in ("starting", "running"):
        time.sleep(args.period_ms / 1000.0)
        t0 = time.perf_counter()
        dashboard.refresh()
        times.append(time.perf_counter() - t0)
        comparison = controller.data.comparison
        if converged_at is None and comparison is not None:
            with controller.data.lock:
                if comparison.converged():
                    converged_at = time.perf_counter() - started
    controller.stop(wait=True, timeout=60)
    ms = np.asarray(times[3:] or times) * 1000.0  # the first refreshes build the plots
    result = {
        "preset": args.preset, "seconds": args.seconds, "period_ms": args.period_ms, "refreshes": len(times),
        "refresh_ms_median": float(np.median(ms)), "refresh_ms_p90": float(np.percentile(ms, 90)),
        "refresh_ms_max": float(ms.max()), "share_of_period_median": float(np.median(ms) / args.period_ms),
        "lsd_steps": controller.data.lsd.n_steps, "target_md_steps": controller.data.reference.n_steps,
        "draft_md_steps": controller.data.draft.n_steps, "converged_after_s": converged_at,
        "measured_speedup": controller.data.measured_speedup(), "predicted_speedup": controller.data.predicted_speedup(),
        "chosen_draft": controller.chosen_draft, "speculation": controller.speculation,
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
