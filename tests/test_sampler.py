"""Identity, reproducibility, statistics bookkeeping and output of the samplers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.io import read

from exactness import POOR_DRAFT, TARGET, start_atoms
from lsd_engine import LangevinMD, LangevinParams, SpeculativeSampler, StepKind

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)


@pytest.mark.parametrize("lookahead", [1, 3, 8])
@pytest.mark.parametrize("error_correction", [True, False])
def test_draft_equal_to_target_reproduces_plain_md_exactly(lookahead, error_correction):
    md = LangevinMD(start_atoms(), TARGET, PARAMS, seed=5).run(40)
    lsd = SpeculativeSampler(start_atoms(), TARGET, TARGET, PARAMS, lookahead=lookahead,
                             error_correction=error_correction, seed=5).run(40)
    np.testing.assert_array_equal(lsd.positions, md.positions)
    np.testing.assert_array_equal(lsd.momenta, md.momenta)
    np.testing.assert_array_equal(lsd.energies, md.energies)
    assert lsd.stats.acceptance_rate == 1.0 and lsd.stats["acceptance_rate"] == 1.0
    assert np.all(lsd.stats.acceptance_by_depth == 1.0)


def test_same_seed_same_trajectory_and_different_seed_differs():
    def run(seed):
        return SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=4, seed=seed).run(30)

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.kinds, b.kinds)
    assert not np.array_equal(a.positions, c.positions)


def test_without_ec_the_trajectory_does_not_depend_on_the_lookahead_split():
    # Each step's outcome depends only on (state, xi_n, u_n): rounds are invisible.
    runs = [SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=k, error_correction=False,
                               seed=3).run(37) for k in (1, 2, 5, 16)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.positions, runs[0].positions)
        np.testing.assert_array_equal(other.momenta, runs[0].momenta)


@pytest.mark.parametrize("error_correction", [True, False])
def test_splitting_a_run_into_several_calls_changes_nothing(error_correction):
    # The position inside a round (and its EC correction) carries over between run() calls.
    def sampler():
        return SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=4,
                                  error_correction=error_correction, seed=3)

    whole = sampler().run(60)
    split = sampler()
    parts = [split.run(n) for n in (7, 1, 4, 13, 35)]
    np.testing.assert_array_equal(np.concatenate([parts[0].positions] + [p.positions[1:] for p in parts[1:]]),
                                  whole.positions)
    np.testing.assert_array_equal(split.momenta, whole.momenta[-1])


def test_stats_bookkeeping_is_consistent():
    lookahead, n_steps = 4, 203
    result = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=lookahead, seed=0).run(n_steps)
    s = result.stats
    kinds = result.kinds[1:]
    assert len(result.positions) == n_steps + 1 and result.positions.shape[1:] == (3, 3)
    assert result.kinds[0] == StepKind.INITIAL
    assert s.accepted_steps == np.sum(kinds == StepKind.ACCEPTED)
    assert s.repaired_steps == np.sum(kinds == StepKind.REPAIRED)
    assert s.target_steps == np.sum(kinds == StepKind.TARGET)
    assert s.accepted_steps + s.repaired_steps + s.target_steps == n_steps
    assert s.target_calls == s.rounds + 1  # + the initial energy / EC residual call
    assert s.acceptance_by_depth.shape == (lookahead,)
    assert s.verified_by_depth[0] == s.rounds
    assert np.isclose(s.acceptance_rate, s.accepted_steps / s.verified_by_depth.sum())
    assert 0.2 < s.acceptance_rate < 0.95
    timed = s.time_draft_s + s.time_target_s + s.time_verification_s + s.time_overhead_s
    assert np.isclose(timed, s.wall_time_s)
    json.dumps(s.to_dict())  # JSON-ready


def test_stride_keeps_initial_state_and_every_stride_th_step():
    full = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=3, seed=4).run(50)
    thin = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=3, seed=4).run(50, stride=7)
    np.testing.assert_array_equal(thin.steps, np.arange(0, 51, 7))
    np.testing.assert_array_equal(thin.positions, full.positions[::7])
    np.testing.assert_array_equal(thin.energies, full.energies[::7])


def test_initial_momenta_from_atoms_or_maxwell_boltzmann():
    atoms = start_atoms()
    assert np.array_equal(LangevinMD(atoms, TARGET, PARAMS).momenta, atoms.get_momenta())
    atoms.set_momenta(np.zeros((3, 3)))
    a, b = LangevinMD(atoms, TARGET, PARAMS, seed=1), LangevinMD(atoms, TARGET, PARAMS, seed=1)
    np.testing.assert_array_equal(a.momenta, b.momenta)
    assert np.any(a.momenta != 0)
    many = start_atoms()
    many.cell = [5.0, 5.0, 5.0]
    many = many.repeat((40, 40, 1))  # 4800 atoms: kinetic temperature near 300 K
    many.set_momenta(np.zeros((len(many), 3)))
    md = LangevinMD(many, TARGET, PARAMS, seed=2)
    kinetic_temperature = np.sum(md.momenta ** 2 / many.get_masses()[:, None]) / (3 * len(many) * PARAMS.kT_eV)
    assert abs(kinetic_temperature - 1.0) < 4 * np.sqrt(2 / (3 * len(many)))


@pytest.mark.parametrize("suffix", [".traj", ".extxyz"])
def test_trajectory_file_and_summary_are_readable(tmp_path, suffix):
    traj, summary = tmp_path / f"run{suffix}", tmp_path / "summary.json"
    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=3, seed=0)
    result = sampler.run(20, stride=2, trajectory=traj, summary=summary)
    frames = read(traj, index=":")
    assert len(frames) == len(result.steps) == 11
    # .traj stores float64; extended XYZ prints 8 decimals (1e-8 Å / 1e-8 momentum units).
    atol = 0.0 if suffix == ".traj" else 1e-7
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], result.energies, atol=atol)
    np.testing.assert_allclose(frames[-1].positions, result.positions[-1], rtol=1e-12, atol=atol)
    np.testing.assert_allclose(frames[-1].get_momenta(), result.momenta[-1], rtol=1e-10, atol=atol)
    data = json.loads(summary.read_text())
    assert data["stats"]["acceptance_rate"] == pytest.approx(result.stats.acceptance_rate)
    assert data["options"]["lookahead"] == 3 and data["params"]["timestep_fs"] == 1.0
    result.write(tmp_path / f"copy{suffix}")
    assert len(read(tmp_path / f"copy{suffix}", index=":")) == 11
