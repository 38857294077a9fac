"""Force models: the protocol, plain-function models, and (later) the registry of real backends."""

from .base import EvaluateFn, ForceModel, FunctionModel, evaluate_checked

__all__ = ["EvaluateFn", "ForceModel", "FunctionModel", "evaluate_checked"]
