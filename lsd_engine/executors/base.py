"""The executor interface: where target batches are evaluated.

Two ways to use an executor:

- ``evaluate(model, positions (B, N, 3) Å, role=, first_step=)`` returns checked
  ``(energies (B,) eV, forces (B, N, 3) eV/Å)``; the synchronous sampler sends one
  batch per round (a cluster executor splits it into one chunk per worker).
- ``submit(...)`` returns a :class:`Job` at once; the asynchronous streaming
  scheduler keeps up to ``capacity`` jobs running, waits with ``wait_any`` and
  reads results with ``Job.result()``.

An executor never changes numbers: a deterministic model gives bitwise the same
forces whichever executor evaluates it, as long as each row of a batch is computed
independently of the others (true of the numpy toys; not of every GPU kernel).
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Sequence

import numpy as np

from ..models.base import ForceModel
from ..models.devices import model_device


class Job:
    """One submitted evaluation: a handle on ``(energies (B,), forces (B, N, 3))``.

    ``future`` is a :class:`concurrent.futures.Future`; an executor may replace it
    when it re-sends the work (a worker was lost), so always go through the job.
    """

    __slots__ = ("executor", "future", "model", "positions", "role", "first_step", "worker", "attempts",
                 "cancelled", "compute_s")

    def __init__(self, executor: "Executor", future: cf.Future, model: ForceModel, positions: np.ndarray,
                 role: str, first_step: int, worker: object = None):
        self.executor = executor
        self.future = future
        self.model = model
        self.positions = positions
        self.role = role
        self.first_step = first_step
        self.worker = worker
        self.attempts = 1
        self.cancelled = False
        self.compute_s = 0.0  # model seconds on the worker, when the executor reports it

    def done(self) -> bool:
        """True when ``result()`` will not block (or will only re-send lost work)."""
        return self.future.done()

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Checked (energies (B,) eV, forces (B, N, 3) eV/Å); raises ModelError on a model failure."""
        return self.executor.job_result(self)

    def cancel(self) -> None:
        """The result is no longer wanted (a rejection made it stale)."""
        self.executor.cancel_job(self)


def describe_execution(target: ForceModel, executor: "Executor | None" = None) -> dict[str, Any]:
    """Where ``target`` ran, for run summaries, the CLI and the dashboard: executor kind, worker
    count and device (e.g. ``{"executor": "dask", "cluster": "cuda", "workers": 2, "device": "cuda:0",
    "device_name": "NVIDIA H200", "worker_devices": [...]}``). ``executor`` None: in this process."""
    return (executor if executor is not None else Executor()).describe(target)


class ExecutorModel(ForceModel):
    """A model evaluated through an executor: what cost timing and probes should call when the
    target lives on dask workers, so the client never builds (or warms) a copy of its own."""

    def __init__(self, executor: "Executor", model: ForceModel, role: str = "target"):
        self.executor, self.model, self.role = executor, model, role
        self.name = model.name
        self.n_atoms = getattr(model, "n_atoms", None)

    def evaluate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(positions, dtype=float)
        return self.executor.evaluate(self.model, x[None] if x.ndim == 2 else x, role=self.role, first_step=0)


def completed_future(fn, *args, **kwargs) -> cf.Future:
    """A finished Future holding ``fn(*args, **kwargs)`` or the exception it raised."""
    future: cf.Future = cf.Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - delivered through the future, as a pool would
        future.set_exception(exc)
    return future


class Executor:
    """Base class: batched ``evaluate`` plus single-job ``submit`` for the streaming scheduler.

    Subclasses implement ``evaluate``; the default ``submit`` evaluates at once and
    returns a finished job, which is all the asynchronous mode needs to be exact.
    """

    #: Work re-sent because a worker was lost (cumulative over the executor's life).
    retries: int = 0

    @property
    def capacity(self) -> int:
        """How many submitted jobs may usefully run at once (one per worker)."""
        return 1

    def evaluate(self, model: ForceModel, positions: np.ndarray, *, role: str,
                 first_step: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def submit(self, model: ForceModel, positions: np.ndarray, *, role: str, first_step: int) -> Job:
        """Start evaluating ``positions`` (B, N, 3) Å; the default evaluates now."""
        future = completed_future(self.evaluate, model, positions, role=role, first_step=first_step)
        return Job(self, future, model, positions, role, first_step)

    def wait_any(self, jobs: Sequence[Job], timeout: float | None = None) -> None:
        """Block until at least one of ``jobs`` is done (or ``timeout`` seconds pass)."""
        if jobs:
            cf.wait([job.future for job in jobs], timeout=timeout, return_when=cf.FIRST_COMPLETED)

    def job_result(self, job: Job) -> tuple[np.ndarray, np.ndarray]:
        """The result of one of this executor's jobs (what ``Job.result()`` returns); blocks until it is done."""
        return job.future.result()

    def cancel_job(self, job: Job) -> None:
        """Mark ``job`` as no longer wanted (what ``Job.cancel()`` does); work already running may finish."""
        job.cancelled = True
        job.future.cancel()

    def describe(self, model: ForceModel) -> dict[str, Any]:
        """Where ``model`` is evaluated: ``{"executor", "workers", "device", "device_name"}``."""
        return {"executor": "local", "workers": 1, **model_device(model)}

    def close(self) -> None:
        """Release resources (clusters, workers, threads)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
