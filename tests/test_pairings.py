"""The four required draft → target pairings run end to end with EC (short runs).

The benchmark (benchmarks/bench_pairs.py) runs them longer and reports costs.
"""

import numpy as np
import pytest

from lsd_engine import observables
from lsd_engine.models.pairings import PAIRINGS, build
from lsd_engine.speculative import SpeculativeSampler

RUNS = {  # pairing: (steps, lookahead) — kept short; SevenNet-0 costs ~0.4 s per configuration here
    "ala-vacuum-amber14-ani1x": (40, 4),
    "ala-vacuum-amber14-gfn2": (40, 4),
    "ala-implicit-amber14-gfn2": (40, 4),
    "cu32-emt-sevennet0": (8, 2),
}


def test_the_required_pairings_are_registered():
    assert set(RUNS) == set(PAIRINGS)
    assert {(p.draft, p.target) for p in PAIRINGS.values()} == {
        ("amber14", "ani-1x"), ("amber14", "gfn2-xtb"), ("emt", "sevennet-0")}


@pytest.mark.parametrize("name", list(RUNS))
def test_pairing_runs_end_to_end(name):
    n_steps, lookahead = RUNS[name]
    atoms, draft, target, params = build(name, threads=1)
    sampler = SpeculativeSampler(atoms, draft, target, params, lookahead=lookahead, error_correction=True, seed=3)
    result = sampler.run(n_steps)
    stats = result.stats
    assert stats.n_steps == n_steps and len(result) == n_steps + 1
    assert np.all(np.isfinite(result.positions)) and np.all(np.isfinite(result.energies))
    depth = np.asarray(stats.acceptance_by_depth, dtype=float)
    assert depth.shape == (lookahead,)
    reached = np.asarray(stats.verified_by_depth) > 0
    assert np.all((depth[reached] >= 0) & (depth[reached] <= 1))
    assert 0 < stats.acceptance_rate <= 1  # EC makes early drafted steps acceptable
    assert stats.target_evaluations >= stats.target_calls > 0 and stats.draft_calls > 0
    temperature = observables.kinetic_temperature(result.momenta, result.masses)
    assert np.all(np.isfinite(temperature)) and temperature.mean() > 0
    info = atoms.info["lsd_system"]
    if "phi_indices" in info:
        phi, psi = observables.phi_psi(result.positions, info["phi_indices"], info["psi_indices"])
        assert phi.shape == psi.shape == (n_steps + 1,)
        assert sum(observables.basin_populations(phi, psi).values()) == pytest.approx(1.0)
