"""Force models: the protocol, plain-function models, and the registry of real backends.

``available()`` lists the registered models with their metadata;
``create(name, atoms, **options)`` returns a model bound to ``atoms``;
``from_ase_calculator(calc, atoms)`` wraps any ASE calculator.
"""

from .base import EvaluateFn, ForceModel, FunctionModel, evaluate_checked
from .registry import (MissingBackendError, ModelSpec, UnsupportedSystemError, available, create, format_table,
                       from_ase_calculator, get_spec)

__all__ = ["EvaluateFn", "ForceModel", "FunctionModel", "MissingBackendError", "ModelSpec",
           "UnsupportedSystemError", "available", "create", "evaluate_checked", "format_table",
           "from_ase_calculator", "get_spec"]
