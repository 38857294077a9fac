"""Simulation.attach: observers called at round ends, never cutting a round, never changing the trajectory."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from lsd_engine import FunctionModel, LangevinMD, LangevinParams, SpeculativeSampler, toys
from lsd_engine.results import StepKind

PARAMS = LangevinParams(timestep_fs=2.0, temperature_K=300.0, friction_per_ps=10.0)
ATOMS_SEED = 0


def atoms():
    from ase import Atoms

    return Atoms("H8", positions=np.random.default_rng(ATOMS_SEED).normal(0.0, 0.3, (8, 3)))


def sampler():
    target = FunctionModel(toys.harmonic_wells, name="wells")
    draft = FunctionModel(functools.partial(toys.harmonic_wells, k_eV_per_A2=0.7), name="softer wells")
    return SpeculativeSampler(atoms(), draft, target, PARAMS, lookahead=4, seed=5)


def test_observers_see_round_ends_and_change_nothing():
    reference = sampler().run(60)
    sim = sampler()
    every, sevens = [], []
    sim.attach(lambda: every.append((sim.step, sim.positions.copy(), sim.live_stats.rounds,
                                     len(sim.live_block.energies))))
    sim.attach(lambda tag: sevens.append((tag, sim.step)), 7, "seven")
    result = sim.run(60)
    assert np.array_equal(result.positions, reference.positions)
    assert result.stats.target_calls == reference.stats.target_calls  # no round was cut for reporting
    steps = [e[0] for e in every]
    kinds = reference.kinds
    assert len(set(kinds[1:].tolist()) - {StepKind.ACCEPTED}) == 2  # rounds end by repairs and bonus steps
    assert steps[-1] == 60 and len(steps) == reference.stats.rounds
    for step, positions, rounds, _ in every:
        assert np.array_equal(positions, reference.positions[step])
    assert [e[2] for e in every] == list(range(1, len(every) + 1))  # live counts, one round each
    crossing = [s for prev, s in zip([0] + steps, steps) if s // 7 > prev // 7]
    assert [s for _, s in sevens] == crossing and all(t == "seven" for t, _ in sevens)
    assert max(np.diff(steps)) > 1  # a round end, not every step


def test_plain_md_reports_every_interval_and_bad_input():
    md = LangevinMD(atoms(), FunctionModel(toys.harmonic_wells), PARAMS, seed=1)
    seen = []
    md.attach(lambda: seen.append(md.step), interval=3)
    md.run(10)
    md.run(5)  # observers stay attached across run() calls
    assert seen == [3, 6, 9, 12, 15]
    with pytest.raises(TypeError, match="callable"):
        md.attach(3)
    with pytest.raises(ValueError, match="interval"):
        md.attach(print, interval=0)
