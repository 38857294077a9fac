"""Draft corrections: what the draft adds to its own force, learned from target labels.

The draft used in a round is F_draft(x) + correction(x). Exactness rule: the
correction is frozen for the whole round (it may depend only on information
available before the round starts), and verification uses the same corrected
draft mean. Between rounds the sampler calls ``observe`` with the round's
target labels on the trajectory: the half-step positions of the steps the round
produced (up to the repaired or bonus step that ended it), in step order, with
the target and raw draft forces there. The last label is where the next round
starts from, so constant EC references it.

``ConstantCorrection`` is the speculative error correction of the seed paper
(docs/theory.md §5): the residual F_t - F_d at the most recent label.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class DraftCorrection(Protocol):
    """A force correction for the draft, refitted between rounds."""

    name: str

    def correction(self, positions: np.ndarray) -> np.ndarray:
        """Force (N, 3) eV/Å to add to the draft force at half-step positions (N, 3) Å."""

    def observe(self, positions: np.ndarray, target_forces: np.ndarray, draft_forces: np.ndarray) -> None:
        """New target labels (B, N, 3) in step order; called only between rounds."""

    def state(self) -> dict[str, np.ndarray]:
        """Arrays that a checkpoint must store to resume bit for bit."""

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of ``state``."""


class ConstantCorrection:
    """Seed-paper EC: correction(x) = F_t(x_ref) - F_d(x_ref) at the latest label x_ref."""

    name = "constant"

    def __init__(self) -> None:
        self.residual: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        return self.residual is not None

    def correction(self, positions: np.ndarray) -> np.ndarray:
        if self.residual is None:
            return np.zeros_like(positions)
        return self.residual

    def observe(self, positions: np.ndarray, target_forces: np.ndarray, draft_forces: np.ndarray) -> None:
        self.residual = target_forces[-1] - draft_forces[-1]

    def state(self) -> dict[str, Any]:
        return {} if self.residual is None else {"residual": self.residual}

    def restore(self, state: dict[str, Any]) -> None:
        self.residual = None if state.get("residual") is None else np.array(state["residual"], dtype=float)
