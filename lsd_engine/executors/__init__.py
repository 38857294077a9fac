"""Where target batches are evaluated: in-process (default) or on a dask cluster.

``LocalExecutor`` evaluates in this process; ``DaskExecutor`` (needs the ``dask``
extra, imported on first use) spreads the work over dask workers: CPU processes,
one worker per GPU with dask-cuda, or any running scheduler. ``describe_execution(target,
executor)`` says where the target ran (executor, workers, device).
"""

from typing import Any

from .base import Executor, ExecutorModel, Job, describe_execution
from .local import LocalExecutor

__all__ = ["DaskExecutor", "Executor", "ExecutorModel", "Job", "LocalExecutor", "describe_execution"]


def __getattr__(name: str) -> Any:
    if name == "DaskExecutor":  # importing distributed costs ~1 s: only when asked for
        from .dask_executor import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
