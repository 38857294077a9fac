"""Hydrogen mass repartitioning keeps the total mass and moves mass from bonded heavy atoms."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from lsd_engine.hmr import repartition_hydrogen_mass


def test_hydrogens_get_the_mass_and_heavy_partners_pay_for_it():
    ethanol = molecule("CH3CH2OH")
    out = repartition_hydrogen_mass(ethanol, 3.0)
    masses, original = out.get_masses(), ethanol.get_masses()
    hydrogens = ethanol.get_atomic_numbers() == 1
    np.testing.assert_allclose(masses[hydrogens], 3.0)
    assert masses.sum() == pytest.approx(original.sum(), rel=1e-12)
    # methyl carbon carries 3 H, methylene carbon 2 H, oxygen 1 H
    symbols = ethanol.get_chemical_symbols()
    heavy_loss = {i: original[i] - masses[i] for i, s in enumerate(symbols) if s != "H"}
    assert sorted(round(v / (3.0 - original[hydrogens][0]), 6) for v in heavy_loss.values()) == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(out.positions, ethanol.positions)
    assert ethanol.get_masses()[hydrogens][0] < 1.1  # the input is untouched


def test_impossible_repartitioning_is_refused():
    with pytest.raises(ValueError, match="positive"):
        repartition_hydrogen_mass(molecule("CH4"), -1.0)
    with pytest.raises(ValueError, match="lighter than 1 amu"):
        repartition_hydrogen_mass(molecule("CH4"), 4.0)
    lonely = molecule("H2")
    with pytest.raises(ValueError, match="no bonded heavy atom"):
        repartition_hydrogen_mass(lonely, 3.0)
