"""Drafts that learn the target on the fly (issue 7): online corrections of the draft force.

Every verification round hands the sampler target force labels on the trajectory; a
correction object (the ``lsd_engine.corrections.DraftCorrection`` protocol) turns them
into a better draft, F_draft(x) + g(x), refitted between rounds only, so each round
drafts and verifies with one fixed draft (exactness rule of docs/theory.md §6).

Corrections (``make_correction(name, atoms)``), with E16 (expected steps per round at
K = 16) measured by ``benchmarks/bench_learning.py`` (alanine dipeptide amber14 -> ANI-1x,
0.5 fs, 300 K, 10/ps | Cu32 EMT -> SevenNet-0, 1 fs, 1500 K, 1/ps) and µs per call:

- ``constant``: the seed paper's EC, g = r(x_ref).                      E16 2.20 | 7.24
- ``first-order``: g(x) = r(x_ref) + J (x - x_ref), J ridge-fitted to the last few labels
  (``FirstOrderCorrection``); 10 µs/call; excellent for metals, no help for a flexible
  molecule (its J is not identifiable from a handful of labels).         E16 2.40 | 12.6
- ``bonded``: online refit of force-field-like terms (per-pair stretch polynomials of
  1-2/1-3/1-4 pairs plus cross terms), anchored at x_ref (``BondedCorrection``);
  degree 3; ~0.13 ms/call and 1.5-5 ms per round on alanine (more labels per round cost
  more); the winner for molecules.                                       E16 4.67 | -
- ``radial``: species-pair radial pair potential + EAM-like embedding
  (``RadialCorrection``); 0.2 ms/call for Cu32.                          E16 -    | 12.8
- ``radial+first-order``: first-order on what ``radial`` leaves; the winner for metals.
                                                                         E16 -    | 14.8
- ``neural``: a small Behler-Parrinello network on local environments, trained online on a
  replay buffer (``NeuralCorrection``); ~3 ms/call and ~0.2 s per round on a CPU, so it
  loses on cost (and, online, on accuracy).                              E16 3.45 | 12.9
- ``online``: the measured winner for the system: ``bonded`` for molecules (non-periodic
  with a covalent graph), ``radial+first-order`` for periodic systems.

Every learned correction is clipped to a per-atom trust region around the reference and
gated: it is used only while it predicts fresh labels better than constant EC (see
``learning.base``). The E16 figures above were replayed before the gate existed; live,
bonded at K = 8 gave E8 4.14 with the gate and 4.26 without, and at K = 16 the gate (and
the clip) is what keeps an early, poorly fitted model from sending the draft to NaN.

``replay_rounds`` evaluates a correction offline on recorded labels (the round protocol
with the acceptance formula); ``record_target_md`` records such labels.
``learning.distill`` trains a draft offline on such labels (``lsd distill``) and loads the saved
file as the registry model ``distilled:<path>``. ``learning.payoff`` bounds whether learning can pay
for its own cost at all (used with the automatic draft: ``draft_choice.decide_learning``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from ..corrections import ConstantCorrection, DraftCorrection
from .base import LabelBuffer, LearnedCorrection
from .firstorder import FirstOrderCorrection
from .labels import LabelSet, load_labels, record_target_md, save_labels
from .linear import BondedCorrection, LinearEnergyCorrection, RadialCorrection
from .replay import ReplayResult, replay_rounds

__all__ = ["BondedCorrection", "ConstantCorrection", "CORRECTIONS", "DraftCorrection", "FirstOrderCorrection",
           "LabelBuffer", "LabelSet", "LearnedCorrection", "LinearEnergyCorrection", "NOT_LEARNED", "RadialCorrection",
           "RecordingCorrection", "ReplayResult", "load_labels", "make_correction", "record_target_md",
           "replay_rounds", "save_labels"]

#: Names accepted by ``make_correction`` (``online`` picks per system).
CORRECTIONS = ("none", "constant", "first-order", "bonded", "radial", "radial+first-order", "neural", "online")
#: Of those, the ones that learn nothing (constant EC when EC is on).
NOT_LEARNED = ("none", "constant")


def _is_molecule(atoms: Atoms) -> bool:
    return not bool(np.any(atoms.pbc))


def make_correction(name: str, atoms: Atoms, **options: Any):
    """A fresh correction for ``atoms`` (masses as used by the dynamics, e.g. after HMR).

    ``name``: one of ``CORRECTIONS``; ``none`` returns None (no correction). Options go
    to the class (see each class); the defaults are the settings measured best in
    ``benchmarks/bench_learning.py``.
    """
    key = str(name).lower()
    numbers, masses = np.asarray(atoms.numbers), atoms.get_masses()
    cell, pbc = np.array(atoms.cell[:]), np.array(atoms.pbc)
    if key == "online":
        key = "bonded" if _is_molecule(atoms) else "radial+first-order"
    if key == "none":
        return None
    if key == "constant":
        return ConstantCorrection()
    first_order = {"window": 8, "ridge": 1e-3, "cutoff": None if len(atoms) <= 64 else 4.0}  # sparse J when large
    if key == "first-order":
        return FirstOrderCorrection(len(atoms), cell, pbc, **{**first_order, **options})
    if key == "bonded":
        if not _is_molecule(atoms):
            raise ValueError("the bonded correction is for molecules (non-periodic systems); use 'radial' or "
                             "'first-order' for periodic ones")
        return BondedCorrection(numbers, masses, **{"degree": 3, "cross_separation": 2, "forgetting": 0.998,
                                                    "fit_stride": 4, "solve_every": 16, **options})
    if key == "radial":
        return RadialCorrection(numbers, masses, cell, pbc, **{"cutoff": 4.5, "skin": 0.5, **options})
    if key == "radial+first-order":
        prior = RadialCorrection(numbers, masses, cell, pbc, cutoff=4.5, skin=0.5)
        correction = FirstOrderCorrection(len(atoms), cell, pbc, **{**first_order, **options}, prior=prior)
        correction.name = "radial+first-order"
        return correction
    if key == "neural":
        from .neural import NeuralCorrection

        return NeuralCorrection(numbers, masses, cell, pbc, **options)
    raise ValueError(f"unknown draft correction {name!r}; choose one of {', '.join(CORRECTIONS)}")


class RecordingCorrection:
    """Wraps a correction (or none) and keeps every label the sampler passes to ``observe``.

    ``labels(atoms)`` returns them as a ``LabelSet`` (save it with ``save_labels`` and
    train a draft on it with ``lsd distill --labels``): an LSD run's verification data.
    """

    def __init__(self, inner=None):
        self.inner = inner
        self.name = getattr(inner, "name", "constant" if inner is None else type(inner).__name__)
        self._positions: list[np.ndarray] = []
        self._target: list[np.ndarray] = []
        self._draft: list[np.ndarray] = []

    def correction(self, positions: np.ndarray) -> np.ndarray:
        if self.inner is None:
            return np.zeros_like(positions)
        return self.inner.correction(positions)

    def observe(self, positions, target_forces, draft_forces) -> None:
        self._positions.append(np.array(positions, dtype=float))
        self._target.append(np.array(target_forces, dtype=float))
        self._draft.append(np.array(draft_forces, dtype=float))
        if self.inner is not None:
            self.inner.observe(positions, target_forces, draft_forces)

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.inner is None else self.inner.state()

    def restore(self, state) -> None:
        if self.inner is not None:
            self.inner.restore(state)

    @property
    def n_labels(self) -> int:
        return sum(len(x) for x in self._positions)

    def labels(self, atoms: Atoms) -> LabelSet:
        if not self._positions:
            raise ValueError("no labels recorded yet")
        x = np.concatenate(self._positions)
        return LabelSet(positions=x, target_forces=np.concatenate(self._target),
                        target_energies=np.full(x.shape[0], np.nan), numbers=np.asarray(atoms.numbers).copy(),
                        masses=atoms.get_masses().copy(), cell=np.array(atoms.cell[:]), pbc=np.array(atoms.pbc),
                        draft_forces=np.concatenate(self._draft), meta={"source": "lsd-run"})
