"""Exceptions raised by the engine, each naming what went wrong and where."""

from __future__ import annotations

from typing import Any


class LSDError(Exception):
    """Base class of every error the engine raises on purpose."""


class ModelError(LSDError, RuntimeError):
    """A force model failed or returned unusable output (wrong shape, NaN/inf).

    When raised from ``run``, ``partial_result`` holds the trajectory up to the
    last good step and the sampler stays at that step, so nothing is lost.
    """

    def __init__(self, message: str, *, model_name: str = "", step: int | None = None):
        super().__init__(message)
        self.model_name = model_name
        self.step = step
        self.partial_result: Any = None


class CheckpointError(LSDError, ValueError):
    """A checkpoint file is missing, malformed, or belongs to another system."""
