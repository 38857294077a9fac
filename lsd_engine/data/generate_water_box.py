"""Regenerate ``water_box_64.pdb``: 64 flexible TIP3P waters, equilibrated at 300 K.

Provenance script for the bundled data file (run once by the project; never at
run time). Needs openmm. Usage: ``python lsd_engine/data/generate_water_box.py``.

Steps: OpenMM's Modeller places 64 waters from its pre-equilibrated box; the
molecule centres are scaled into a cube at 0.997 g/cm^3; the box is minimised and equilibrated for 20 ps of NVT
Langevin dynamics (flexible TIP3P of amber14, PME, 0.6 nm cutoff, 0.5 fs).
"""

from __future__ import annotations

from pathlib import Path

N_WATERS = 64
DENSITY_G_CM3 = 0.997


def main(out: Path = Path(__file__).with_name("water_box_64.pdb")) -> None:
    import numpy as np
    import openmm
    import openmm.app as app
    import openmm.unit as u

    mass_g = N_WATERS * 18.01528 / 6.02214076e23
    edge_nm = (mass_g / DENSITY_G_CM3) ** (1.0 / 3.0) * 1e7
    ff = app.ForceField("amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(ff, model="tip3p", numAdded=N_WATERS, boxShape="cube")
    # Modeller pads the box; shrink it to the target density by scaling molecule centres.
    old_edge = modeller.topology.getPeriodicBoxVectors()[0][0].value_in_unit(u.nanometer)
    xyz = np.array(modeller.positions.value_in_unit(u.nanometer)).reshape(N_WATERS, 3, 3)
    centres = xyz[:, :1, :]
    xyz = xyz - centres + centres * (edge_nm / old_edge)
    box = [openmm.Vec3(edge_nm, 0, 0), openmm.Vec3(0, edge_nm, 0), openmm.Vec3(0, 0, edge_nm)] * u.nanometer
    modeller.topology.setPeriodicBoxVectors(box)
    positions = xyz.reshape(-1, 3) * u.nanometer
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.PME, nonbondedCutoff=0.6 * u.nanometer,
                             constraints=None, rigidWater=False)
    integrator = openmm.LangevinMiddleIntegrator(300 * u.kelvin, 5.0 / u.picosecond, 0.5 * u.femtosecond)
    integrator.setRandomNumberSeed(2024)
    sim = app.Simulation(modeller.topology, system, integrator, openmm.Platform.getPlatformByName("CPU"))
    sim.context.setPositions(positions)
    sim.context.setPeriodicBoxVectors(*box)
    sim.minimizeEnergy()
    sim.context.setVelocitiesToTemperature(300 * u.kelvin, 2024)
    sim.step(40_000)
    state = sim.context.getState(getPositions=True, enforcePeriodicBox=False)
    with open(out, "w") as handle:
        app.PDBFile.writeFile(sim.topology, state.getPositions(), handle, keepIds=False)
    print(f"wrote {out}: {sim.topology.getNumResidues()} waters, box {box[0][0]}")


if __name__ == "__main__":
    main()
