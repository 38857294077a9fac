"""Force models: the protocol, plain-function models, and the registry of real backends.

``available()`` lists the registered models with their metadata;
``create(name, atoms, **options)`` returns a model bound to ``atoms``;
``from_ase_calculator(calc, atoms)`` wraps any ASE calculator; ``deferred(name, atoms, **options)``
is a recipe built where it is first evaluated (dask workers, not the client).
"""

from ._bound import BoundModel
from .base import EvaluateFn, ForceModel, FunctionModel, evaluate_checked
from .deferred import DeferredModel, deferred
from .registry import (MissingBackendError, ModelSpec, UnsupportedSystemError, available, create, format_table,
                       from_ase_calculator, get_spec)

__all__ = ["BoundModel", "DeferredModel", "EvaluateFn", "ForceModel", "FunctionModel", "MissingBackendError",
           "ModelSpec", "UnsupportedSystemError", "available", "create", "deferred", "evaluate_checked",
           "format_table", "from_ase_calculator", "get_spec"]
