"""Built-in systems and the structure loaders."""

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from lsd_engine import systems
from lsd_engine.errors import LSDError


def test_alanine_dipeptide_vacuum_and_implicit():
    for solvent in ("vacuum", "implicit"):
        atoms = systems.alanine_dipeptide(solvent)
        info = atoms.info["lsd_system"]
        assert len(atoms) == 22 and not atoms.pbc.any()
        assert atoms.get_chemical_formula() == "C6H12N2O2"
        assert info["solvent"] == solvent
        assert [atoms[i].symbol for i in info["phi_indices"]] == ["C", "N", "C", "C"]
        assert [atoms[i].symbol for i in info["psi_indices"]] == ["N", "C", "C", "N"]
        assert atoms.arrays["residuenames"][info["phi_indices"][0]].strip() == "ACE"
        assert atoms.arrays["residuenames"][info["psi_indices"][-1]].strip() == "NME"


def test_alanine_dipeptide_explicit_is_a_periodic_water_box():
    atoms = systems.alanine_dipeptide("explicit")
    assert atoms.pbc.all() and len(atoms) == 22 + 3 * 749
    assert np.allclose(atoms.cell.lengths(), [32.853, 32.862, 31.855])
    assert atoms.get_chemical_symbols()[22:25] == ["O", "H", "H"]
    # peptide atoms in the same order as the vacuum file
    vac = systems.alanine_dipeptide()
    assert atoms.get_chemical_symbols()[:22] == vac.get_chemical_symbols()
    systems.check_structure(atoms)


def test_alanine_unknown_solvent():
    with pytest.raises(ValueError, match="solvent"):
        systems.alanine_dipeptide("water")


def test_copper_and_water_boxes():
    cu = systems.copper_fcc(2)
    assert len(cu) == 32 and cu.pbc.all() and np.allclose(cu.cell.lengths(), 7.22)
    assert len(systems.copper_fcc((3, 2, 1))) == 24
    water = systems.water_box()
    assert water.get_chemical_formula() == "H128O64" and water.pbc.all()
    density = water.get_masses().sum() / water.get_volume() * 1.66053907
    assert density == pytest.approx(0.997, abs=0.005)
    systems.check_structure(water)  # no overlaps across the periodic boundary
    assert len(systems.water_box(2)) == 8 * 192
    with pytest.raises(ValueError):
        systems.copper_fcc(0)


def test_load_structure_roundtrip(tmp_path):
    mol = systems.alanine_dipeptide()
    path = tmp_path / "ala.xyz"
    write(path, Atoms(mol.numbers, mol.positions))
    atoms = systems.load_structure(path)
    assert np.allclose(atoms.positions, mol.positions)
    assert atoms.info["lsd_system"]["solvent"] == "vacuum" and not atoms.pbc.any()
    pdb = systems.load_structure(systems.DATA_DIR / "alanine_dipeptide.pdb")
    assert pdb.info["lsd_system"]["topology_file"].endswith("alanine_dipeptide.pdb")
    cu = systems.copper_fcc(2)
    write(tmp_path / "cu.xyz", cu, format="extxyz")
    loaded = systems.load_structure(tmp_path / "cu.xyz", periodic=True)
    assert loaded.pbc.all() and np.allclose(loaded.cell, cu.cell)


@pytest.mark.parametrize("text, message", [
    ("2\n\nXx 0 0 0\nH 1 0 0\n", "unknown element"),
    ("2\n\nH 0 0 0\nH 0.1 0 0\n", "overlap"),
    ("3\n\nH 0 0\n", "cannot read"),
])
def test_load_structure_errors(tmp_path, text, message):
    path = tmp_path / "bad.xyz"
    path.write_text(text)
    with pytest.raises(systems.StructureError, match=message):
        systems.load_structure(path)


def test_load_structure_missing_cell_and_files(tmp_path):
    path = tmp_path / "h2o.xyz"
    path.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    assert len(systems.load_structure(path)) == 3
    with pytest.raises(systems.StructureError, match="no 3-D unit cell"):
        systems.load_structure(path, periodic=True)
    with pytest.raises(systems.StructureError, match="no such file"):
        systems.load_structure(tmp_path / "missing.pdb")
    (tmp_path / "empty.pdb").write_text("")
    with pytest.raises(systems.StructureError, match="empty"):
        systems.load_structure(tmp_path / "empty.pdb")
    pdb = tmp_path / "bad.pdb"
    pdb.write_text("ATOM      1  QQ1 ALA A   1       0.000   0.000   0.000  1.00  0.00          Qq\nEND\n")
    with pytest.raises(systems.StructureError, match="unknown element"):
        systems.load_structure(pdb)
    assert issubclass(systems.StructureError, LSDError)


def test_check_structure_periodic_overlap_uses_minimum_image():
    atoms = Atoms("H2", positions=[[0.05, 0, 0], [4.95, 0, 0]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(systems.StructureError, match="overlap"):
        systems.check_structure(atoms)
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    systems.check_structure(atoms)
