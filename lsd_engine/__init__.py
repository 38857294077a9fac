"""LSD: Langevin Speculative Dynamics — exact speculative sampling for faster molecular dynamics."""

from .errors import CheckpointError, LSDError, ModelError
from .executors import LocalExecutor
from .langevin_md import LangevinMD
from .models import ForceModel, FunctionModel
from .params import LangevinParams
from .results import RunResult, RunStats, StepKind
from .speculative import SpeculativeSampler

__all__ = ["CheckpointError", "ForceModel", "FunctionModel", "LSDError", "LangevinMD", "LangevinParams",
           "LocalExecutor", "ModelError", "RunResult", "RunStats", "SpeculativeSampler", "StepKind"]
__version__ = "0.1.0"
