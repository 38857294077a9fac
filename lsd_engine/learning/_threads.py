"""One BLAS thread for the small linear algebra of the corrections.

Multi-threaded OpenBLAS on matrices of a few hundred rows is slower than one thread
(and far slower on a busy machine, where its threads spin), and a fixed thread count
keeps results bit for bit reproducible. Uses threadpoolctl when it is installed
(it comes with scikit-learn); otherwise leaves the process setting alone.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

_CONTROLLER = None
_AVAILABLE: bool | None = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    global _CONTROLLER, _AVAILABLE
    if _AVAILABLE is None:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
            _AVAILABLE = True
        except Exception:  # not installed, or no BLAS found
            _AVAILABLE = False
    context = _CONTROLLER.limit(limits=1, user_api="blas") if _AVAILABLE else nullcontext()
    with context:
        yield
