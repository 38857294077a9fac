"""AMBER ff14SB through OpenMM: ``amber14`` (vacuum, GBn2 implicit, TIP3P + PME explicit)."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from ..errors import LSDError
from ..systems import system_info
from ._bound import KJ_PER_MOL_IN_EV, KJ_PER_MOL_NM_IN_EV_PER_A, BoundModel, require

INSTALL = "openmm"


class OpenMMModel(BoundModel):
    """An OpenMM ``System`` evaluated in one reused ``Context`` (one call per configuration).

    OpenMM works in nm and kJ/mol; positions are converted Å -> nm on the way in
    and energies / forces to eV and eV/Å on the way out.
    """

    batched = False

    def __init__(self, atoms: Atoms, system: Any, name: str, platform: str = "Reference",
                 platform_properties: dict[str, str] | None = None):
        super().__init__(atoms, name)
        mm = require("openmm", name, INSTALL)
        if system.getNumParticles() != len(atoms):
            raise LSDError(f"{name}: the OpenMM system has {system.getNumParticles()} particles "
                           f"but the atoms have {len(atoms)}")
        # The centre-of-mass motion remover is an integrator-side device, not a force; drop it.
        for index in reversed(range(system.getNumForces())):
            if isinstance(system.getForce(index), mm.CMMotionRemover):
                system.removeForce(index)
        self.system = system  # the openmm.System
        self.platform_name = platform
        plat = mm.Platform.getPlatformByName(platform)
        self.context = mm.Context(system, mm.VerletIntegrator(0.001), plat, dict(platform_properties or {}))
        if self.periodic:
            cell_nm = np.asarray(atoms.cell.array) * 0.1
            self.context.setPeriodicBoxVectors(*(mm.Vec3(*row) for row in cell_nm))

    def _evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = positions.shape[0]
        energies = np.empty(batch)
        forces = np.empty_like(positions)
        context = self.context
        positions_nm = positions * 0.1
        for b in range(batch):
            context.setPositions(positions_nm[b])
            state = context.getState(getEnergy=True, getForces=True)
            # the raw numbers in OpenMM's own units (kJ/mol, kJ/mol/nm): value_in_unit gives the same bits
            # but adds 25-45 us per state, a third of an amber14 draft call (tests/test_layering.py)
            energies[b] = state.getPotentialEnergy()._value  # kJ/mol
            forces[b] = state.getForces(asNumpy=True)._value  # kJ/mol/nm
        return energies * KJ_PER_MOL_IN_EV, forces * KJ_PER_MOL_NM_IN_EV_PER_A


def _topology_from(atoms: Atoms, name: str, topology: Any, pdb: str | None):
    app = require("openmm.app", name, INSTALL)
    if topology is not None:
        return topology
    path = pdb or system_info(atoms).get("topology_file")
    if not path:
        raise LSDError(
            f"model {name!r} needs a topology (residues and bonds): build the system with "
            "lsd_engine.systems.alanine_dipeptide() / load_structure('file.pdb'), or pass pdb='file.pdb' "
            "or topology=<openmm.app.Topology>")
    return app.PDBFile(str(path)).topology


def make_amber14(atoms: Atoms, solvent: str | None = None, topology: Any = None, pdb: str | None = None,
                 platform: str | None = None, threads: int | None = None,
                 nonbonded_cutoff_nm: float | None = None, extra_xml: tuple[str, ...] = ()) -> OpenMMModel:
    """AMBER ff14SB (``amber14-all.xml``) for the system's topology.

    solvent: "vacuum" (no cutoff), "implicit" (GBn2, ``implicit/gbn2.xml``, no
      cutoff) or "explicit" (``amber14/tip3p.xml`` flexible TIP3P, PME with
      ``nonbonded_cutoff_nm``: default 0.9 nm, or just under half the smallest
      box edge). Default: ``atoms.info["lsd_system"]["solvent"]``, else explicit
      when periodic and vacuum otherwise.
    No constraints and flexible water (LSD integrates every degree of freedom).
    platform: default Reference for vacuum (fastest for small molecules), CPU otherwise;
    threads sets the CPU platform's thread count (default 1: bit-reproducible; more threads help
    large explicit-solvent systems at the price of last-digit run-to-run variation).
    """
    name = "amber14"
    app = require("openmm.app", name, INSTALL)
    unit = require("openmm.unit", name, INSTALL)
    periodic = bool(np.any(atoms.pbc))
    solvent = solvent or system_info(atoms).get("solvent") or ("explicit" if periodic else "vacuum")
    if solvent not in ("vacuum", "implicit", "explicit"):
        raise LSDError(f"{name}: solvent must be 'vacuum', 'implicit' or 'explicit', got {solvent!r}")
    if (solvent == "explicit") != periodic:
        raise LSDError(f"{name}: solvent={solvent!r} needs a {'periodic' if solvent == 'explicit' else 'non-periodic'} "
                       f"system, but atoms.pbc={atoms.pbc.tolist()}")
    topology = _topology_from(atoms, name, topology, pdb)
    _check_topology_matches(topology, atoms, name)
    files = ["amber14-all.xml"]
    if solvent == "implicit":
        files.append("implicit/gbn2.xml")
    elif solvent == "explicit":
        files.append("amber14/tip3p.xml")
    files.extend(extra_xml)
    forcefield = app.ForceField(*files)
    kwargs: dict[str, Any] = {"constraints": None, "rigidWater": False, "removeCMMotion": False}
    if solvent == "explicit":
        half_box = 0.5 * min(np.linalg.norm(atoms.cell.array, axis=1)) * 0.1
        if nonbonded_cutoff_nm is None:
            nonbonded_cutoff_nm = min(0.9, np.floor(0.98 * half_box * 100) / 100)
        if nonbonded_cutoff_nm >= half_box:
            raise LSDError(f"{name}: nonbonded cutoff {nonbonded_cutoff_nm} nm must be below half the box "
                           f"({half_box:.3f} nm); pass nonbonded_cutoff_nm=")
        kwargs.update(nonbondedMethod=app.PME, nonbondedCutoff=nonbonded_cutoff_nm * unit.nanometer)
    else:
        kwargs.update(nonbondedMethod=app.NoCutoff)
    try:
        system = forcefield.createSystem(topology, **kwargs)
    except ValueError as exc:  # e.g. "No template found for residue ..."
        raise LSDError(f"{name}: AMBER ff14SB cannot parameterise this topology: {exc}") from exc
    if platform is None:
        platform = "Reference" if solvent == "vacuum" else "CPU"
    props: dict[str, str] = {}
    if platform == "CPU":
        # One thread by default: the same positions then give bit-identical energies and forces on every
        # call (measured: with several threads GBn2 varies by ~2e-7 eV even with DeterministicForces),
        # which LSD's same-seed-same-trajectory guarantee relies on; it is also fastest for small molecules.
        props["DeterministicForces"] = "true"
        props["Threads"] = str(int(threads or 1))
    return OpenMMModel(atoms, system, name=name, platform=platform, platform_properties=props)


def _check_topology_matches(topology: Any, atoms: Atoms, name: str) -> None:
    elements = [a.element.atomic_number if a.element is not None else 0 for a in topology.atoms()]
    if len(elements) != len(atoms):
        raise LSDError(f"{name}: the topology has {len(elements)} atoms but the system has {len(atoms)}")
    mismatch = np.flatnonzero(np.asarray(elements) != atoms.numbers)
    if len(mismatch):
        raise LSDError(f"{name}: topology and atoms disagree on the element of atom(s) {mismatch[:10].tolist()} "
                       "(the atom order must match the topology PDB)")
