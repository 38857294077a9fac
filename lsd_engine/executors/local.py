"""The in-process executor: one batched model call in this process."""

from __future__ import annotations

import numpy as np

from ..models.base import ForceModel, evaluate_checked


class Executor:
    """Interface: evaluate a model on a batch of positions, with checked output."""

    def evaluate(self, model: ForceModel, positions: np.ndarray, *, role: str,
                 first_step: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (clusters, workers)."""


class LocalExecutor(Executor):
    """Evaluates every batch in one call of ``model.evaluate`` in this process."""

    def evaluate(self, model: ForceModel, positions: np.ndarray, *, role: str,
                 first_step: int) -> tuple[np.ndarray, np.ndarray]:
        return evaluate_checked(model, positions, role=role, first_step=first_step)
