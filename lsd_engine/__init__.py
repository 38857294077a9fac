"""LSD: Langevin Speculative Dynamics — exact speculative sampling for faster molecular dynamics."""

from .errors import CheckpointError, LSDError, ModelError
from .models import ForceModel, FunctionModel
from .params import LangevinParams

__all__ = ["CheckpointError", "ForceModel", "FunctionModel", "LSDError", "LangevinParams", "ModelError"]
__version__ = "0.1.0"
