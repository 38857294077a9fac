"""DCD / XTC trajectories with a PDB topology (through MDTraj) and the CSV state log, read back with MDTraj."""

from __future__ import annotations

import csv
import functools

import mdtraj
import numpy as np
import pytest
from ase import units

from lsd_engine import FunctionModel, LangevinParams, SpeculativeSampler, systems, toys
from lsd_engine.formats import StateLog, topology_path

PARAMS = LangevinParams(timestep_fs=0.5, temperature_K=300.0, friction_per_ps=10.0)


def sampler(atoms, seed: int = 1):
    target = FunctionModel(toys.harmonic_wells, name="wells")
    draft = FunctionModel(functools.partial(toys.harmonic_wells, k_eV_per_A2=0.9), name="softer wells")
    return SpeculativeSampler(atoms, draft, target, PARAMS, lookahead=3, seed=seed)


def alanine():
    atoms = systems.alanine_dipeptide("vacuum")
    atoms.positions -= atoms.positions.mean(axis=0)  # near the wells' minimum
    return atoms


def read(path):
    return mdtraj.load(str(path), top=str(topology_path(path)))


@pytest.mark.parametrize("suffix, atol_A", [(".dcd", 1e-5), (".xtc", 0.006)])
def test_trajectory_reads_back_with_mdtraj_including_appends_and_resume(tmp_path, suffix, atol_A):
    path = tmp_path / f"run{suffix}"
    sim = sampler(alanine())
    # checkpoint_every=4 flushes (appends) inside the run; the second run() appends like --resume
    first = sim.run(12, stride=2, trajectory=path, checkpoint=tmp_path / "c.npz", checkpoint_every=4)
    second = sim.run(8, stride=2, trajectory=path, append=True)
    traj = read(path)
    positions = np.concatenate([first.positions, second.positions[1:]])  # frame 0 of a run is not rewritten
    assert traj.n_frames == len(positions) == 11
    np.testing.assert_allclose(traj.xyz * 10.0, positions, rtol=0, atol=atol_A)
    residues = [r.name for r in traj.topology.residues]
    assert residues == ["ACE", "ALA", "NME"]  # the system's own PDB topology, atom order checked
    if suffix == ".dcd":  # the header's frame count (NSET) follows the appends, for readers that trust it
        assert int(np.frombuffer(path.read_bytes()[8:12], dtype="<i4")[0]) == 11
    if suffix == ".xtc":
        steps = np.concatenate([first.steps, second.steps[1:]])
        np.testing.assert_allclose(traj.time, steps * PARAMS.timestep_fs / 1000.0, rtol=1e-6)


def test_periodic_cell_and_plain_topology(tmp_path):
    atoms = systems.copper_fcc(1)
    atoms.info.pop("lsd_system", None)
    atoms.rattle(0.01, seed=0)
    result = sampler(atoms).run(4, trajectory=tmp_path / "cu.dcd")
    traj = read(tmp_path / "cu.dcd")
    np.testing.assert_allclose(traj.xyz * 10.0, result.positions, rtol=0, atol=1e-5)
    np.testing.assert_allclose(traj.unitcell_lengths * 10.0, np.tile(atoms.cell.lengths(), (5, 1)), rtol=1e-6)
    assert [a.element.symbol for a in traj.topology.atoms] == ["Cu"] * 4
    result.write(str(tmp_path / "copy.xtc"))  # RunResult.write dispatches by suffix too
    np.testing.assert_allclose(read(tmp_path / "copy.xtc").xyz * 10.0, result.positions, rtol=0, atol=0.006)


def rows(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith('#"Step","Time (ps)","Potential Energy (eV)"')
    assert not any(line.startswith("#") for line in lines[1:])
    return list(csv.reader(lines[1:]))


def test_state_log_columns_and_resume(tmp_path):
    atoms = alanine()
    log = tmp_path / "state.csv"
    sim = sampler(atoms)
    first = sim.run(10, stride=5, state_log=log)
    second = sim.run(5, stride=5, state_log=log, append=True)
    table = rows(log)
    assert [int(r[0]) for r in table] == [0, 5, 10, 15]
    momenta = np.concatenate([first.momenta, second.momenta[1:]])
    energies = np.concatenate([first.energies, second.energies[1:]])
    kinetic = 0.5 * np.sum(momenta ** 2 / atoms.get_masses()[None, :, None], axis=(1, 2))
    for row, e_pot, e_kin in zip(table, energies, kinetic):
        step, time_ps, pot, kin, total, temp = (float(v) for v in row[:6])
        assert time_ps == pytest.approx(step * 0.5 / 1000.0)
        assert pot == pytest.approx(e_pot, rel=1e-9) and kin == pytest.approx(e_kin, rel=1e-9)
        assert total == pytest.approx(pot + kin, rel=1e-9)
        assert temp == pytest.approx(2 * e_kin / (3 * len(atoms) * units.kB), rel=1e-5)
    assert table[0][6] == "" and all(float(r[6]) > 0 for r in table[1:])  # speed in ns/day


def test_state_log_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        StateLog(tmp_path / "missing" / "s.csv", np.ones(2), 1.0, append=False)


def test_lsd_run_format_and_resume_keep_the_format(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    pair = ["--system", "alanine-dipeptide-vacuum", "--draft", "amber14", "--target", "amber14",
            "--timestep-fs", "0.5", "--lookahead", "4"]
    lsd = [sys.executable, "-m", "lsd_engine.cli", "run", *pair, "--output", str(out), "--stride", "2"]
    first = subprocess.run([*lsd, "--steps", "10", "--format", "xtc"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*lsd, "--steps", "16", "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "trajectory.xtc" in again.stdout and not (out / "trajectory.traj").exists()
    traj = read(out / "trajectory.xtc")
    assert traj.n_frames == 9 and [r.name for r in traj.topology.residues] == ["ACE", "ALA", "NME"]
    assert [int(r[0]) for r in rows(out / "state.csv")] == list(range(0, 17, 2))
