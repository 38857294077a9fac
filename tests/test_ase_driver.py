"""lsd_engine.ase.SpeculativeLangevin: ASE's MolecularDynamics interface, SpeculativeSampler's trajectory.

Real models: ASE's EMT on a Cu13 cluster as the target, a Lennard-Jones calculator as the draft
(acceptance about 0.87 at 1 fs, K = 4, so rounds end by rejections and by bonus steps).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.io import Trajectory

from lsd_engine import LangevinParams, SpeculativeSampler
from lsd_engine.ase import SpeculativeLangevin
from lsd_engine.kernel import half_step_position

STEPS = 60
SEED = 3


def cluster(with_calc: bool = True):
    atoms = Icosahedron("Cu", 2)
    if with_calc:
        atoms.calc = EMT()
    return atoms


def lj():
    return LennardJones(sigma=2.338, epsilon=0.409, rc=6.0)


def dynamics(atoms, **options):
    return SpeculativeLangevin(atoms, 1 * units.fs, temperature_K=300, friction=0.01 / units.fs,
                               draft=options.pop("draft", lj()), lookahead=4, seed=SEED, **options)


@pytest.fixture(scope="module")
def reference():
    """SpeculativeSampler on the same system, models, parameters and seed, in one run."""
    atoms = cluster()
    dyn = dynamics(atoms)  # only to build the same models from calculators
    params = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)
    assert dyn.params == params  # ASE units convert to exactly these numbers
    sampler = SpeculativeSampler(cluster(), dyn.draft_model, EMT_model(atoms), params, lookahead=4, seed=SEED)
    result = sampler.run(STEPS)
    kinds = set(result.kinds[1:].tolist())
    assert len(kinds) == 3, "the reference should have accepted, repaired and bonus steps"
    return result


def EMT_model(atoms):
    from lsd_engine.models import from_ase_calculator

    return from_ase_calculator(EMT(), atoms)


def record(dyn, atoms):
    frames = []
    dyn.attach(lambda: frames.append((atoms.positions.copy(), atoms.get_momenta().copy(),
                                      atoms.get_potential_energy())), interval=1)
    return frames


def assert_same(frames, result, start=0):
    positions = np.array([f[0] for f in frames])
    momenta = np.array([f[1] for f in frames])
    energies = np.array([f[2] for f in frames])
    end = start + len(frames)
    assert np.array_equal(positions, result.positions[start:end])
    assert np.array_equal(momenta, result.momenta[start:end])
    assert np.array_equal(energies, result.energies[start:end])


def test_run_reproduces_sampler_bit_for_bit_with_the_same_target_calls(reference):
    atoms = cluster()
    dyn = dynamics(atoms)
    frames = record(dyn, atoms)
    assert dyn.run(STEPS)
    assert len(frames) == STEPS + 1  # ASE calls observers at step 0 too
    assert_same(frames, reference)
    assert dyn.counts["target_calls"] == reference.stats.target_calls  # rounds were not cut per step
    assert dyn.counts["accepted_steps"] == reference.stats.accepted_steps
    assert dyn.acceptance_rate == reference.stats.acceptance_rate
    assert isinstance(atoms.calc, EMT)  # the atoms' calculator is back after the run
    assert dyn.get_time() == pytest.approx(STEPS * units.fs)


@pytest.mark.parametrize("chunk_steps", [1, 7])
def test_split_runs_irun_and_small_chunks_give_the_same_trajectory(reference, chunk_steps):
    atoms = cluster()
    dyn = dynamics(atoms, chunk_steps=chunk_steps)
    frames = record(dyn, atoms)
    dyn.run(25)
    for _ in dyn.irun(STEPS - 25):
        pass
    assert_same(frames, reference)
    if chunk_steps == 1:  # every step a cut round: plain-MD cost, as the module doc says
        assert dyn.counts["target_calls"] > reference.stats.target_calls


def test_ase_trajectory_and_mdlogger(tmp_path, reference):
    atoms = cluster()
    dyn = dynamics(atoms, trajectory=str(tmp_path / "md.traj"), logfile=str(tmp_path / "md.log"), loginterval=5)
    dyn.run(STEPS)
    dyn.close()
    frames = list(Trajectory(str(tmp_path / "md.traj")))
    assert len(frames) == STEPS // 5 + 1
    target = EMT_model(atoms)
    for i, frame in zip(range(0, STEPS + 1, 5), frames):
        assert np.array_equal(frame.positions, reference.positions[i])
        assert np.array_equal(frame.get_momenta(), reference.momenta[i])
        assert frame.get_potential_energy() == reference.energies[i]
        # forces: the target's, where this step's energy was evaluated (its half-step position)
        where = reference.positions[0] if i == 0 else half_step_position(
            reference.positions[i - 1], reference.momenta[i - 1], dyn.sampler.constants)
        np.testing.assert_allclose(frame.get_forces(), target.evaluate(where[None])[1][0], rtol=0, atol=1e-10)
    lines = (tmp_path / "md.log").read_text().splitlines()
    assert lines[0].split()[0] == "Time[ps]" and len(lines) == STEPS // 5 + 2
    last = lines[-1].split()
    assert float(last[0]) == pytest.approx(STEPS / 1000, abs=1e-4)
    assert float(last[2]) == pytest.approx(reference.energies[-1], abs=1e-4)


def test_registry_names_and_atoms_without_calculator(reference):
    atoms = cluster(with_calc=False)
    dyn = SpeculativeLangevin(atoms, 2 * units.fs, temperature_K=300, friction=0.01 / units.fs,
                              draft="emt", target="emt", lookahead=4, seed=SEED)
    dyn.run(10)
    assert dyn.acceptance_rate == 1.0  # draft == target
    assert atoms.calc is None


def test_moving_atoms_between_runs_continues_from_there_and_from_an_observer_is_refused():
    atoms = cluster()
    dyn = dynamics(atoms)
    dyn.run(5)
    atoms.positions = atoms.positions * 1.01
    moved = atoms.positions.copy()
    dyn.run(1)
    assert dyn.sampler.step == 6 and not np.array_equal(dyn.sampler.positions, moved)
    assert np.abs(dyn.sampler.positions - moved).max() < 0.1  # one step away from the moved state

    dyn.attach(lambda: atoms.set_positions(atoms.positions + 0.01), interval=3)
    with pytest.raises(RuntimeError, match="computed-ahead"):
        dyn.run(10)
    assert isinstance(atoms.calc, EMT)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="atoms.calc"):
        dynamics(cluster(with_calc=False))
    constrained = cluster()
    constrained.set_constraint(FixAtoms(indices=[0]))
    with pytest.raises(ValueError, match="constraints"):
        dynamics(constrained)
    with pytest.raises(TypeError, match="draft must be"):
        dynamics(cluster(), draft=3.0)
    with pytest.raises(ValueError, match="timestep_fs .*from timestep=-1.0"):
        SpeculativeLangevin(cluster(), -1.0, temperature_K=300, friction=0.01, draft=lj())
    with pytest.raises(ValueError, match="friction_per_ps .*friction=nan"):
        SpeculativeLangevin(cluster(), 1.0, temperature_K=300, friction=float("nan"), draft=lj())
    with pytest.raises(ValueError, match="chunk_steps"):
        dynamics(cluster(), chunk_steps=0)
