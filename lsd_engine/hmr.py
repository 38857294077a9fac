"""Hydrogen mass repartitioning (HMR).

Moves mass from each heavy atom to the hydrogens bonded to it, so that every
hydrogen weighs ``hydrogen_mass_amu`` and the total mass is unchanged. The same
masses are used by the draft and the target (the sampler owns the masses).

What it changes: only the dynamics (masses enter the kinetic energy, the noise
scale sqrt((1-c^2) m kT) and the velocity p/m). The Boltzmann distribution of
configurations exp(-U(x)/kT) does not depend on masses, so configurational
averages (Ramachandran populations, energies) are unchanged; time correlation
functions, diffusion constants and momenta are not. LSD benefits because the
whitened force error |delta|^2 ~ sum_i |dF_i|^2 / m_i shrinks on light atoms.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import natural_cutoffs, neighbor_list


def repartition_hydrogen_mass(atoms: Atoms, hydrogen_mass_amu: float = 3.0) -> Atoms:
    """A copy of ``atoms`` with hydrogen masses raised to ``hydrogen_mass_amu`` (amu).

    Each hydrogen takes the extra mass from the heavy atom it is bonded to (the
    nearest non-hydrogen within covalent cutoffs). Raises ValueError when a
    hydrogen has no heavy-atom partner or a heavy atom would be left too light.
    """
    if not np.isfinite(hydrogen_mass_amu) or hydrogen_mass_amu <= 0:
        raise ValueError(f"hydrogen_mass_amu must be positive, got {hydrogen_mass_amu}")
    out = atoms.copy()
    numbers = out.get_atomic_numbers()
    masses = out.get_masses().copy()
    hydrogens = np.flatnonzero(numbers == 1)
    if hydrogens.size == 0:
        return out
    first, second, distance = neighbor_list("ijd", out, natural_cutoffs(out, mult=1.1))
    heavy_pair = (numbers[first] == 1) & (numbers[second] != 1)
    first, second, distance = first[heavy_pair], second[heavy_pair], distance[heavy_pair]
    order = np.lexsort((distance, first))  # per hydrogen, nearest heavy atom first
    first, second = first[order], second[order]
    has_partner, index = np.unique(first, return_index=True)
    missing = np.setdiff1d(hydrogens, has_partner)
    if missing.size:
        raise ValueError(f"hydrogen atoms {missing.tolist()} have no bonded heavy atom; cannot repartition")
    partner = second[index]
    shift = hydrogen_mass_amu - masses[has_partner]
    masses[has_partner] = hydrogen_mass_amu
    np.subtract.at(masses, partner, shift)
    if np.any(masses[partner] < 1.0):
        raise ValueError(f"hydrogen mass {hydrogen_mass_amu} amu leaves a heavy atom lighter than 1 amu")
    out.set_masses(masses)
    return out
