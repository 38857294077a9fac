"""Ready-made draft → target pairings on built-in systems (tests, benchmark, app presets).

``build(name, threads=None)`` returns the system, the bound draft and target models and
the Langevin parameters; hand them to ``SpeculativeSampler``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ase import Atoms

from .. import systems
from ..params import LangevinParams
from .base import ForceModel
from .registry import create


@dataclass(frozen=True)
class Pairing:
    name: str
    system: Callable[[], Atoms]
    draft: str
    target: str
    params: LangevinParams
    description: str
    draft_options: dict[str, Any] = field(default_factory=dict)
    target_options: dict[str, Any] = field(default_factory=dict)


_PEPTIDE = LangevinParams(timestep_fs=0.5, temperature_K=300.0, friction_per_ps=10.0)
_COPPER = LangevinParams(timestep_fs=2.0, temperature_K=1500.0, friction_per_ps=10.0)

PAIRINGS: dict[str, Pairing] = {p.name: p for p in (
    Pairing("ala-vacuum-amber14-ani1x", lambda: systems.alanine_dipeptide("vacuum"), "amber14", "ani-1x",
            _PEPTIDE, "alanine dipeptide in vacuum: AMBER ff14SB draft, ANI-1x ensemble target"),
    Pairing("ala-vacuum-amber14-gfn2", lambda: systems.alanine_dipeptide("vacuum"), "amber14", "gfn2-xtb",
            _PEPTIDE, "alanine dipeptide in vacuum: AMBER ff14SB draft, GFN2-xTB (tblite) target"),
    Pairing("ala-implicit-amber14-gfn2", lambda: systems.alanine_dipeptide("implicit"), "amber14", "gfn2-xtb",
            _PEPTIDE, "alanine dipeptide, implicit water: ff14SB + GBn2 draft, GFN2-xTB + ALPB(water) target"),
    Pairing("cu32-emt-sevennet0", lambda: systems.copper_fcc(2), "emt", "sevennet-0",
            _COPPER, "FCC copper, 32 atoms at 1500 K: EMT draft, SevenNet-0 target"),
)}


def build(name: str, threads: int | None = None) -> tuple[Atoms, ForceModel, ForceModel, LangevinParams]:
    """The system, draft, target and parameters of a registered pairing."""
    if name not in PAIRINGS:
        raise KeyError(f"unknown pairing {name!r}; known: {', '.join(PAIRINGS)}")
    pairing = PAIRINGS[name]
    atoms = pairing.system()
    draft = create(pairing.draft, atoms, **pairing.draft_options)
    target_options = dict(pairing.target_options)
    if threads is not None:
        target_options.setdefault("threads", threads)
    target = create(pairing.target, atoms, **target_options)
    return atoms, draft, target, pairing.params
