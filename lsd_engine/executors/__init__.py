"""Where target batches are evaluated: in-process (default) or on a cluster."""

from .local import Executor, LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
