"""Biomolecular output formats: DCD / XTC trajectories (through MDTraj) with a PDB topology, and a CSV
state log like OpenMM's ``StateDataReporter``.

Why MDTraj (not MDAnalysis): its low-level file classes (``DCDTrajectoryFile``, ``XTCTrajectoryFile``,
``PDBTrajectoryFile``) write plain numpy arrays in each format's native units with no universe or
topology object to keep in sync, and it is one small package (MDAnalysis brings a much larger
dependency tree for the same two writers). Neither library appends to a DCD or XTC file, which a
resumed run needs; here an append writes the new frames to a temporary file with MDTraj and adds their
bytes to the existing file: XTC is a plain sequence of self-contained frames, and a DCD's header frame
count is updated in place, as MDTraj's own DCD writer does after every frame. Files written this way
read back with MDTraj (tested); they are the standard formats that MDAnalysis, VMD and GROMACS read.

Units: DCD and PDB in Å, XTC in nm (XTC stores 3 decimals, i.e. 0.01 Å). The topology PDB beside a
trajectory (same name, ``.pdb``) holds the first frame; it is the system's own PDB topology (residues
and atom names) when ``atoms.info["lsd_system"]["topology_file"]`` names one with the same atoms, else
one residue ``MOL`` with element names.
"""

from __future__ import annotations

import csv
import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms, units

from .errors import LSDError
from .frames import FrameWriter, TrajectoryFile, write_ase_frames
from .systems import system_info

__all__ = ["MDTRAJ_FORMATS", "TRAJECTORY_SUFFIXES", "MDTrajFile", "StateLog", "open_trajectory",
           "topology_path", "write_frames", "write_mdtraj"]

#: Trajectory suffixes written through MDTraj.
MDTRAJ_FORMATS = (".dcd", ".xtc")
#: Every suffix the run loop writes: ASE .traj, extended XYZ, and the MDTraj formats.
TRAJECTORY_SUFFIXES = (".traj", ".xyz", ".extxyz") + MDTRAJ_FORMATS

_DCD_FRAME_COUNT_OFFSETS = (8, 20)  # NSET and NSTEP in the first header block (int32)


def _mdtraj():
    try:
        import mdtraj
    except ImportError as exc:
        raise LSDError(f"writing DCD / XTC trajectories needs the Python package 'mdtraj' ({exc}); install it "
                       "with:  pip install mdtraj   (or pip install 'lsd-engine[formats]')") from exc
    return mdtraj


def topology_path(path: str | os.PathLike) -> Path:
    """The PDB topology written beside a DCD / XTC trajectory."""
    return Path(path).with_suffix(".pdb")


def _topology(atoms: Atoms):
    md = _mdtraj()
    pdb = system_info(atoms).get("topology_file")
    if pdb and Path(pdb).is_file():
        topology = md.load_topology(str(pdb))
        if topology.n_atoms == len(atoms) and [a.element.atomic_number for a in topology.atoms] == \
                [int(z) for z in atoms.numbers]:
            return topology
    topology = md.Topology()
    residue = topology.add_residue("MOL", topology.add_chain())
    for z, symbol in zip(atoms.numbers, atoms.get_chemical_symbols()):
        topology.add_atom(symbol, md.element.Element.getByAtomicNumber(int(z)), residue)
    return topology


def _cell(atoms: Atoms) -> np.ndarray | None:
    """Cell parameters (a, b, c in Å, α, β, γ in degrees) of a periodic system, else None."""
    return np.asarray(atoms.cell.cellpar()) if np.any(atoms.pbc) and atoms.cell.rank == 3 else None


def _write_new(path: Path, suffix: str, positions: np.ndarray, cell: np.ndarray | None,
               steps: np.ndarray, timestep_fs: float) -> None:
    md = _mdtraj()
    n = len(positions)
    if suffix == ".dcd":
        lengths = None if cell is None else np.tile(cell[:3], (n, 1))
        angles = None if cell is None else np.tile(cell[3:], (n, 1))
        with md.formats.DCDTrajectoryFile(str(path), "w") as f:
            f.write(positions.astype(np.float32), cell_lengths=lengths, cell_angles=angles)
    else:
        box = None
        if cell is not None:
            vectors = md.utils.lengths_and_angles_to_box_vectors(*cell[:3] / 10.0, *cell[3:])
            box = np.tile(np.array(vectors, dtype=np.float32), (n, 1, 1))
        with md.formats.XTCTrajectoryFile(str(path), "w") as f:
            f.write((positions / 10.0).astype(np.float32), time=(steps * timestep_fs / 1000.0).astype(np.float32),
                    step=steps.astype(np.int32), box=box)


def _dcd_header_length(data: bytes) -> int:
    first = struct.unpack("<i", data[:4])[0]  # 84
    title_start = 4 + first + 4
    title = struct.unpack("<i", data[title_start:title_start + 4])[0]
    return title_start + 4 + title + 4 + 12  # + the atom-count block


def write_mdtraj(path: str | os.PathLike, positions: np.ndarray, cell: np.ndarray | None, append: bool,
                 steps: np.ndarray | None = None, timestep_fs: float = 1.0) -> None:
    """Write (or append) frames positions (F, N, 3) Å to a .dcd or .xtc file. ``cell``: cellpar or None;
    steps: the step index of each frame (XTC stores it with the time in ps)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MDTRAJ_FORMATS:
        raise ValueError(f"{path}: MDTraj output is {' or '.join(MDTRAJ_FORMATS)}, not {suffix!r}")
    positions = np.asarray(positions, dtype=float)
    steps = np.arange(len(positions)) if steps is None else np.asarray(steps)
    if len(positions) == 0:
        return
    if not (append and path.exists() and path.stat().st_size > 0):
        _write_new(path, suffix, positions, cell, steps, timestep_fs)
        return
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        part = Path(tmp) / f"part{suffix}"
        _write_new(part, suffix, positions, cell, steps, timestep_fs)
        data = part.read_bytes()
    if suffix == ".xtc":
        with open(path, "ab") as f:
            f.write(data)
        return
    with open(path, "r+b") as f:
        head = f.read(_DCD_FRAME_COUNT_OFFSETS[-1] + 4)
        if head[4:8] != b"CORD":
            raise LSDError(f"{path} is not a DCD file written by LSD / MDTraj; cannot append to it")
        frames = struct.unpack("<i", head[8:12])[0] + len(positions)
        f.seek(0, os.SEEK_END)
        f.write(data[_dcd_header_length(data):])
        for offset in _DCD_FRAME_COUNT_OFFSETS:
            f.seek(offset)
            f.write(struct.pack("<i", frames))


class MDTrajFile(FrameWriter):
    """Frames of a running simulation in a .dcd / .xtc file, with the PDB topology written beside it
    when the file is (re)started. Momenta and energies are not stored (use the state log)."""

    def __init__(self, path: str | os.PathLike, template: Atoms, append: bool, timestep_fs: float = 1.0):
        super().__init__(path, append)
        if self.path.suffix.lower() not in MDTRAJ_FORMATS:
            raise ValueError(f"{self.path}: not a {' / '.join(MDTRAJ_FORMATS)} path")
        _mdtraj()  # fail now, not at the first flush
        self.template = template.copy()
        self.timestep_fs = float(timestep_fs)
        self._cell = _cell(template)
        self._positions: list[np.ndarray] = []
        self._steps: list[int] = []
        self._next_step = 0

    def add(self, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray,
            steps: np.ndarray | None = None) -> None:
        steps = np.arange(self._next_step, self._next_step + len(positions)) if steps is None else np.asarray(steps)
        self._positions.extend(np.asarray(positions, dtype=float))
        self._steps.extend(int(s) for s in steps)
        if len(steps):
            self._next_step = int(steps[-1]) + 1

    def flush(self) -> None:
        if not self._positions:
            return
        if not self._append:
            self._write_topology(self._positions[0])
        write_mdtraj(self.path, np.array(self._positions), self._cell, self._append, np.array(self._steps),
                     self.timestep_fs)
        self._positions, self._steps = [], []
        self._append = True

    def _write_topology(self, positions: np.ndarray) -> None:
        md = _mdtraj()
        cell = self._cell
        with md.formats.PDBTrajectoryFile(str(topology_path(self.path)), "w") as f:
            f.write(np.asarray(positions, dtype=float), _topology(self.template),
                    unitcell_lengths=None if cell is None else tuple(cell[:3]),
                    unitcell_angles=None if cell is None else tuple(cell[3:]))


def write_frames(path: str | os.PathLike, frames: Sequence[Atoms], append: bool) -> None:
    """Append (or write) frames to ``path``: ASE .traj, .dcd / .xtc (MDTraj, with a PDB topology beside
    a new file), or extended XYZ for .xyz/.extxyz."""
    if Path(path).suffix.lower() not in MDTRAJ_FORMATS:
        write_ase_frames(path, frames, append)
    elif frames:
        writer = MDTrajFile(path, frames[0], append)
        writer.add(np.array([a.positions for a in frames]), np.array([a.get_momenta() for a in frames]),
                   np.zeros(len(frames)))
        writer.flush()


def open_trajectory(path: str | os.PathLike, template: Atoms, append: bool, timestep_fs: float = 1.0):
    """The run loop's trajectory writer for ``path``, chosen by its suffix: .dcd / .xtc through MDTraj,
    otherwise ASE (.traj, or extended XYZ)."""
    if Path(path).suffix.lower() in MDTRAJ_FORMATS:
        return MDTrajFile(path, template, append, timestep_fs)
    return TrajectoryFile(path, template, append)


class StateLog:
    """A CSV state log like OpenMM's ``StateDataReporter``, one row per saved frame, flushed with the
    checkpoint (so after an interrupt it ends at the checkpoint step, like the trajectory).

    Columns: step, time in ps, potential energy (eV: the target energy of the step, at its half-step
    position), kinetic energy Σ|p|²/2m (eV), their total, temperature 2 E_kin/(3 N k_B) (K; ASE's
    convention, no degrees of freedom removed), and speed in ns/day since the run started (empty for
    the initial frame).
    """

    HEADER = ('#"Step","Time (ps)","Potential Energy (eV)","Kinetic Energy (eV)","Total Energy (eV)",'
              '"Temperature (K)","Speed (ns/day)"')

    def __init__(self, path: str | os.PathLike, masses_amu: np.ndarray, timestep_fs: float, append: bool):
        self.path = Path(path)
        if not self.path.resolve().parent.is_dir():
            raise FileNotFoundError(f"state log folder does not exist: {self.path.resolve().parent}")
        self.masses = np.asarray(masses_amu, dtype=float)
        self.timestep_fs = float(timestep_fs)
        self._rows: list[list[Any]] = []
        self._append = append and self.path.exists() and self.path.stat().st_size > 0

    @property
    def starts_new_file(self) -> bool:
        return not self._append

    def add(self, steps: np.ndarray, momenta: np.ndarray, energies: np.ndarray,
            ns_per_day: float | None = None) -> None:
        kinetic = 0.5 * np.sum(np.asarray(momenta) ** 2 / self.masses[None, :, None], axis=(1, 2))
        temperature = 2.0 * kinetic / (3 * len(self.masses) * units.kB)
        speed = "" if ns_per_day is None else f"{ns_per_day:.6g}"
        for step, e_pot, e_kin, t in zip(np.asarray(steps), np.asarray(energies), kinetic, temperature):
            self._rows.append([int(step), f"{step * self.timestep_fs / 1000.0:.6f}", f"{e_pot:.10g}",
                               f"{e_kin:.10g}", f"{e_pot + e_kin:.10g}", f"{t:.6g}", speed])

    def flush(self) -> None:
        buffer = io.StringIO()
        if not self._append:
            buffer.write(self.HEADER + "\n")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(self._rows)
        with open(self.path, "a" if self._append else "w", newline="") as f:
            f.write(buffer.getvalue())
        self._rows = []
        self._append = True
