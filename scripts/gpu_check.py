#!/usr/bin/env python3
"""Validate LSD on a CUDA machine in one command (about 5 minutes on one GPU):

    python scripts/gpu_check.py --json gpu_check.json [--quick]

1. what LSD sees (torch build, GPUs, NVML, dask-cuda: ``python -m lsd_engine.models.devices``);
2. for each installed torch target (ani-1x, gfn1-xtb-batched on alanine dipeptide; sevennet-0,
   chgnet on Cu 32; uma on a random-weight checkpoint built here): CUDA against CPU energies and
   forces on 4 perturbed configurations, within the fp32 tolerances below;
3. the CUDA cost of a batch of B states, B = 1..64, after warm-up calls (compilation and
   first-call allocation excluded), and the ratio cost(17)/cost(1) (goal for ani-1x: <= 1.3);
4. ``lsd bench`` of alanine dipeptide amber14 -> ani-1x on CUDA with learned drafts and adaptive K
   (its JSON is the format of benchmarks/results/speedup_*.json: copy it there for the README table);
5. a dask-cuda run with one GPU worker: the target built on the worker (not the client) from its
   recipe, on the worker's GPU, a short LSD run through it.

Every check writes its numbers and ``ok`` into the JSON; the exit status is 1 when any check
failed, 2 when there is no usable CUDA GPU (the report says why). ``--markdown`` prints the README
table of a JSON written earlier. Nothing here downloads anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: CUDA vs CPU, max over atoms and configurations: |ΔE| eV, |ΔF| eV/Å (fp32 models: kernels sum in a
#: different order; dxtb is float64).
TOLERANCES = {"ani-1x": (2e-3, 2e-3), "sevennet-0": (2e-3, 2e-3), "chgnet": (2e-3, 2e-3),
              "gfn1-xtb-batched": (1e-6, 1e-6), "uma": (2e-3, 2e-3)}
BATCH_SIZES = (1, 2, 4, 8, 17, 32, 64)
ANI_BATCH_GOAL = 1.3  # cost(17) / cost(1)


def _systems():
    from lsd_engine import systems

    return {"alanine": systems.alanine_dipeptide(), "copper": systems.copper_fcc(2)}


def _targets(workdir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(registry name, system, options) for every torch target whose backend imports here."""
    import importlib.util

    out = []
    for name, system, module in (("ani-1x", "alanine", "torchani"), ("sevennet-0", "copper", "sevenn"),
                                 ("chgnet", "copper", "chgnet"), ("gfn1-xtb-batched", "alanine", "dxtb")):
        if importlib.util.find_spec(module) is not None:
            out.append((name, system, {}))
    if importlib.util.find_spec("fairchem") is not None:
        from lsd_engine.models.uma import write_random_checkpoint

        path = write_random_checkpoint(str(workdir / "uma_random.pt"))
        out.append((f"uma:{path}", "alanine", {}))
    return out


def check_model(name: str, atoms, options: dict[str, Any], quick: bool, device: str = "cuda") -> dict[str, Any]:
    """CUDA vs CPU on 4 perturbed configurations, then CUDA batch costs after warm-up."""
    from lsd_engine import models
    from lsd_engine.models.checks import perturbed_positions
    from lsd_engine.models.devices import model_device
    from lsd_engine.timing import model_seconds_per_call

    key = name.split(":", 1)[0]
    e_tol, f_tol = TOLERANCES[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        gpu = models.create(name, atoms, device=device, **options)
        build_s = time.perf_counter() - t0
        cpu = models.create(name, atoms, device="cpu", **options)
        x = perturbed_positions(atoms, 4, 0.05, seed=7)
        (e_gpu, f_gpu), (e_cpu, f_cpu) = gpu.evaluate(x), cpu.evaluate(x)
        de, df = float(np.max(np.abs(e_gpu - e_cpu))), float(np.max(np.abs(f_gpu - f_cpu)))
        sizes = BATCH_SIZES[:5] if quick else BATCH_SIZES
        states = perturbed_positions(atoms, max(sizes), 0.05, seed=8)
        costs = {b: model_seconds_per_call(gpu, states[:b], repeats=3 if quick else 5, warm_up_calls=2)
                 for b in sizes}
    row = {"model": key, "n_atoms": len(atoms), **model_device(gpu), "build_s": round(build_s, 2),
           "max_dE_eV": de, "max_dF_eV_per_A": df, "tolerance_E_eV": e_tol, "tolerance_F_eV_per_A": f_tol,
           "batch_ms": {str(b): round(1e3 * s, 3) for b, s in costs.items()}}
    if 17 in costs:
        row["batch17_over_1"] = round(costs[17] / costs[1], 3)
    row["ok"] = bool(de <= e_tol and df <= f_tol and row["device"].startswith(device))
    if key == "ani-1x" and "batch17_over_1" in row:
        row["batch_goal_met"] = bool(row["batch17_over_1"] <= ANI_BATCH_GOAL)
    return row


def check_bench(workdir: Path, quick: bool, device: str = "cuda") -> dict[str, Any]:
    """``lsd bench`` amber14 -> ani-1x on CUDA, learned drafts, adaptive K; returns its JSON."""
    config = workdir / "bench_gpu.toml"
    config.write_text('system = "alanine-dipeptide-vacuum"\ndraft = "amber14"\ntarget = "ani-1x"\n'
                      'timestep_fs = 0.5\nlookahead = 16\nadaptive_lookahead = true\ndraft_learning = "online"\n'
                      f'steps = {600 if quick else 3000}\nseed = 0\n[target_options]\ndevice = "{device}"\n')
    out = workdir / "speedup_alanine_amber14_ani1x_cuda.json"
    cmd = [sys.executable, "-m", "lsd_engine.cli", "bench", "--config", str(config), "--repeats", "3",
           "--ase-steps", "0", "--json", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    row: dict[str, Any] = {"command": " ".join(cmd[1:]), "wall_s": round(time.perf_counter() - t0, 1),
                           "returncode": proc.returncode, "output_tail": (proc.stdout + proc.stderr)[-3000:]}
    if proc.returncode == 0 and out.is_file():
        result = json.loads(out.read_text())
        row["result"] = result
        row["speedup"] = result.get("speedup")
        row["goal_4x_met"] = bool((result.get("speedup") or 0) >= 4.0)
    row["ok"] = proc.returncode == 0
    return row


def check_dask_cuda(atoms, device: str = "cuda") -> dict[str, Any]:
    """One GPU worker: the deferred ani-1x target is built there (not here) and computes on its GPU."""
    from lsd_engine import LangevinParams, SpeculativeSampler, models
    from lsd_engine.executors import DaskExecutor, describe_execution

    target = models.deferred("ani-1x", atoms)
    draft = models.create("amber14", atoms)
    with DaskExecutor(n_workers=1, gpu=device != "cpu") as ex:
        sampler = SpeculativeSampler(atoms, draft, target, LangevinParams(0.5, 300.0, 10.0), lookahead=8,
                                     error_correction=True, seed=0, executor=ex)
        t0 = time.perf_counter()
        result = sampler.run(200)
        wall = time.perf_counter() - t0
        where = describe_execution(target, ex)
    row = {"cluster": where["cluster"], "workers": where["workers"], "device": where["device"],
           "device_name": where["device_name"], "note": where["note"], "steps": 200, "wall_s": round(wall, 2),
           "acceptance": float(result.stats.acceptance_rate), "client_built_target": target.built is not None}
    row["ok"] = bool(where["cluster"] == ("cpu" if device == "cpu" else "cuda") and where["device"].startswith(device)
                     and not row["client_built_target"] and np.all(np.isfinite(result.energies)))
    return row


def _guard(name: str, fn: Callable[[], dict[str, Any]], report: dict[str, Any]) -> None:
    print(f"-- {name}", flush=True)
    t0 = time.perf_counter()
    try:
        row = fn()
    except Exception as exc:  # noqa: BLE001 - one failed check must not hide the others
        row = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    row["check_s"] = round(time.perf_counter() - t0, 1)
    report["checks"][name] = row
    shown = {k: v for k, v in row.items() if k not in ("result", "traceback", "output_tail")}
    print(json.dumps(shown, default=str), flush=True)


def markdown(report: dict[str, Any]) -> str:
    """The README table of a report: one row per model, then the bench and the dask-cuda run."""
    env = report["environment"]
    gpus = ", ".join(g["name"] for g in env.get("gpus", [])) or "none"
    lines = [f"Measured {report['date']} on {gpus} (torch {env.get('torch')}, CUDA {env.get('torch_cuda')}) "
             "with `python scripts/gpu_check.py`.", "",
             "| target | atoms | max ΔE CUDA-CPU eV | max ΔF eV/Å | ms per batch of 1 / 17 / 64 | 17 vs 1 | ok |",
             "|---|---|---|---|---|---|---|"]
    for name, row in report["checks"].items():
        if not name.startswith("model "):
            continue
        if "batch_ms" not in row:
            lines.append(f"| {name[6:]} | | | | | | failed: {row.get('error', '')[:60]} |")
            continue
        b = row["batch_ms"]
        lines.append(f"| {row['model']} | {row['n_atoms']} | {row['max_dE_eV']:.1e} | {row['max_dF_eV_per_A']:.1e} | "
                     f"{b.get('1', '-')} / {b.get('17', '-')} / {b.get('64', '-')} | {row.get('batch17_over_1', '-')} "
                     f"| {'yes' if row['ok'] else 'no'} |")
    bench = report["checks"].get("lsd bench", {})
    if "speedup" in bench:
        lines += ["", f"`lsd bench` alanine dipeptide amber14 -> ani-1x on CUDA, online learned draft, adaptive K: "
                      f"{bench['speedup']:.2f}x over plain ani-1x MD on the same GPU."]
    dask = report["checks"].get("dask-cuda", {})
    if "cluster" in dask:
        lines += ["", f"dask-cuda, one GPU worker: target on {dask['device']} ({dask['device_name']}), "
                      f"{dask['steps']} steps in {dask['wall_s']} s, acceptance {dask['acceptance']:.2f}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default="gpu_check.json", help="where to write the report")
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes and bench steps (~2 minutes)")
    parser.add_argument("--skip", action="append", default=[], choices=["models", "bench", "dask"],
                        help="leave a group of checks out")
    parser.add_argument("--markdown", metavar="REPORT", help="print the README table of an earlier report")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                        help="cpu: a dry run of the same code paths on a machine without a GPU (nothing validated)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    from lsd_engine.models.devices import device_report

    report: dict[str, Any] = {"date": datetime.date.today().isoformat(), "environment": device_report(),
                              "tolerances": {k: {"E_eV": e, "F_eV_per_A": f} for k, (e, f) in TOLERANCES.items()},
                              "checks": {}}
    print(json.dumps(report["environment"], indent=1), flush=True)
    path = Path(args.json)
    if args.device == "cuda" and not report["environment"].get("cuda_available"):
        report["ok"] = False
        path.write_text(json.dumps(report, indent=1, default=str))
        print(f"no usable CUDA GPU: {report['environment'].get('why_no_cuda')}; report in {path}", file=sys.stderr)
        return 2
    atoms = _systems()
    with tempfile.TemporaryDirectory(prefix="lsd-gpu-check-") as tmp:
        workdir = Path(tmp)
        if "models" not in args.skip:
            for name, system, options in _targets(workdir):
                _guard(f"model {name.split(':', 1)[0]}",
                       lambda: check_model(name, atoms[system], options, args.quick, args.device), report)
                path.write_text(json.dumps(report, indent=1, default=str))
        if "dask" not in args.skip:
            _guard("dask-cuda", lambda: check_dask_cuda(atoms["alanine"], args.device), report)
            path.write_text(json.dumps(report, indent=1, default=str))
        if "bench" not in args.skip:
            _guard("lsd bench", lambda: check_bench(workdir, args.quick, args.device), report)
            bench = report["checks"]["lsd bench"].get("result")
            if bench is not None:  # beside the report, ready for benchmarks/results/
                (path.parent / "speedup_alanine_amber14_ani1x_cuda.json").write_text(json.dumps(bench, indent=1))
    report["ok"] = all(row.get("ok") for row in report["checks"].values())
    path.write_text(json.dumps(report, indent=1, default=str))
    print(markdown(report))
    print(f"report: {path} ({'all checks passed' if report['ok'] else 'SOME CHECKS FAILED'})")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
