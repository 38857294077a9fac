"""`lsd theory`: acceptance and speedup predicted from physical parameters (docs/theory.md §10)."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

import numpy as np
from scipy.special import erfc

from . import theory
from .params import LangevinParams


def _acceptance(n_atoms, temperature_K, timestep_fs, friction_per_ps, force_error, mass) -> np.ndarray:
    """Per-step acceptance erfc(|delta|/sqrt 8) for i.i.d. force errors (small gamma dt form)."""
    delta = theory.small_friction_delta_norm(n_atoms, temperature_K, timestep_fs, friction_per_ps, force_error, mass)
    return erfc(np.asarray(delta) / np.sqrt(8.0))


def theory_report(args: Namespace) -> dict[str, Any]:
    """Numbers and text for the given parameters; saves curves to ``args.plot`` if set."""
    LangevinParams(args.timestep_fs, args.temperature_K, args.friction_per_ps)  # validates
    for name in ("n_atoms", "max_lookahead", "workers"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name.replace('_', '-')} must be at least 1")
    for name in ("force_error", "mean_mass_amu", "draft_ms", "target_ms"):
        if not getattr(args, name) > 0:
            raise ValueError(f"{name.replace('_', '-')} must be positive")
    a = float(_acceptance(args.n_atoms, args.temperature_K, args.timestep_fs, args.friction_per_ps,
                          args.force_error, args.mean_mass_amu))
    draft_s, target_s = args.draft_ms / 1e3, args.target_ms / 1e3
    cost = theory.affine_target_cost(target_s - args.target_ms_per_extra_state / 1e3, args.target_ms_per_extra_state / 1e3)
    ks = np.arange(1, args.max_lookahead + 1)
    profile = np.full(args.max_lookahead, a)
    speedups = theory.synchronous_speedup(profile, ks, draft_s, cost)
    best = theory.optimal_lookahead(profile, draft_s, cost)
    async_bound = float(theory.asynchronous_speedup(1.0 - a, draft_s, target_s, args.workers))
    numbers = {"acceptance_per_step": a, "lookahead": ks.tolist(), "expected_steps_per_round":
               [float(theory.expected_steps_per_round(profile[:k])) for k in ks], "synchronous_speedup":
               speedups.tolist(), "best_lookahead": best.lookahead, "best_speedup": best.speedup,
               "asynchronous_speedup": async_bound, "inputs": {k: v for k, v in vars(args).items() if k != "func"}}
    text = "\n".join([
        f"N={args.n_atoms} atoms, T={args.temperature_K} K, dt={args.timestep_fs} fs, gamma={args.friction_per_ps}/ps, "
        f"force error {args.force_error} eV/Å, mean mass {args.mean_mass_amu} amu",
        f"  acceptance per step (no EC)  {a:.3f}",
        "  K:        " + " ".join(f"{k:6d}" for k in ks),
        "  E_K:      " + " ".join(f"{e:6.2f}" for e in numbers["expected_steps_per_round"]),
        "  speedup:  " + " ".join(f"{s:6.2f}" for s in speedups),
        f"  best K = {best.lookahead} (speedup {best.speedup:.2f}x); asynchronous bound with {args.workers} "
        f"workers {async_bound:.2f}x",
    ])
    if args.plot:
        _plot(args, a, ks, speedups)
        text += f"\n  wrote {args.plot}"
    return {"text": text, "numbers": numbers}


def _plot(args: Namespace, a: float, ks: np.ndarray, speedups: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    atoms = np.unique(np.logspace(0, 4, 80).astype(int))
    for temperature in sorted({args.temperature_K, 300.0, 600.0, 1500.0}):
        left.semilogx(atoms, _acceptance(atoms, temperature, args.timestep_fs, args.friction_per_ps, args.force_error,
                                         args.mean_mass_amu), label=f"{temperature:g} K")
    left.axvline(args.n_atoms, color="grey", lw=0.8, ls=":")
    left.set(xlabel="atoms N", ylabel="acceptance per step", title=f"force error {args.force_error} eV/Å")
    left.legend()
    right.plot(ks, speedups, "o-")
    right.axhline(1.0, color="grey", lw=0.8)
    right.set(xlabel="lookahead K", ylabel="synchronous speedup", title=f"acceptance {a:.2f} per step")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    plt.close(fig)
