"""The in-process executor: one batched model call in this process."""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np

from ..models.base import ForceModel, evaluate_checked
from .base import Executor, Job

__all__ = ["Executor", "Job", "LocalExecutor"]


class LocalExecutor(Executor):
    """Evaluates every batch in one call of ``model.evaluate`` in this process.

    threads: 0 (default) evaluates submitted jobs at once in the calling thread;
    ``threads=1`` evaluates them in a background thread, so in the asynchronous mode
    the target runs while the main thread drafts (useful when the target releases
    the GIL, e.g. torch). More than one thread calls the model concurrently, which
    only a thread-safe model allows.
    """

    def __init__(self, threads: int = 0):
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be a non-negative integer, got {threads!r}")
        self.threads = threads
        self._pool = cf.ThreadPoolExecutor(threads, thread_name_prefix="lsd-target") if threads else None

    @property
    def capacity(self) -> int:
        return max(1, self.threads)

    def evaluate(self, model: ForceModel, positions: np.ndarray, *, role: str,
                 first_step: int) -> tuple[np.ndarray, np.ndarray]:
        return evaluate_checked(model, positions, role=role, first_step=first_step)

    def submit(self, model: ForceModel, positions: np.ndarray, *, role: str, first_step: int) -> Job:
        if self._pool is None:
            return super().submit(model, positions, role=role, first_step=first_step)
        positions = np.array(positions, dtype=float)  # the caller may reuse its buffer
        future = self._pool.submit(evaluate_checked, model, positions, role=role, first_step=first_step)
        return Job(self, future, model, positions, role, first_step)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
