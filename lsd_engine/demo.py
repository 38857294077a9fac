"""A one-minute LSD demonstration on a toy pair: `python -m lsd_engine.demo`.

Runs plain target MD and LSD side by side on a 3-atom Morse cluster (target)
with a harmonic draft, and prints acceptance by depth and steps per round.
"""

from __future__ import annotations

from functools import partial

from ase import Atoms

from . import FunctionModel, LangevinMD, LangevinParams, SpeculativeSampler
from .toys import harmonic_bonds, morse_cluster


def main(n_steps: int = 2000) -> None:
    atoms = Atoms("H3", positions=[[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [0.75, 1.3, 0.0]])
    params = LangevinParams(timestep_fs=0.5, temperature_K=300.0, friction_per_ps=10.0)
    target = FunctionModel(morse_cluster, name="morse (target)")
    draft = FunctionModel(partial(harmonic_bonds, k_eV_per_A2=2.0), name="harmonic (draft)")
    md = LangevinMD(atoms, target, params, seed=0).run(n_steps)
    print(f"plain target MD: {n_steps} steps, {md.stats.target_calls} target calls")
    for ec in (False, True):
        result = SpeculativeSampler(atoms, draft, target, params, lookahead=8, error_correction=ec,
                                    seed=0).run(n_steps, progress=True)
        s = result.stats
        depth = " ".join(f"{a:.2f}" for a in s.acceptance_by_depth)
        print(f"LSD, error correction {'on ' if ec else 'off'}: acceptance {s.acceptance_rate:.2f}, "
              f"by depth [{depth}], {s.steps_per_round:.2f} steps per target call "
              f"({s.target_calls} calls instead of {n_steps})")


if __name__ == "__main__":
    main()
