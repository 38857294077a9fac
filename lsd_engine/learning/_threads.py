"""One BLAS thread (and one torch thread) for the small linear algebra of the corrections.

Multi-threaded OpenBLAS on matrices of a few hundred rows is slower than one thread
(and far slower on a busy machine, where its threads spin), and a fixed thread count
keeps results bit for bit reproducible. Uses threadpoolctl when it is installed
(it comes with scikit-learn); otherwise leaves the process setting alone.

Both limits are process-wide settings held through :class:`~lsd_engine.models.threads.SharedSetting`,
so corrections evaluated in several threads at once (dashboard runs, a background
target) share the limit instead of restoring each other's values mid-call.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

from ..models.threads import SharedSetting, torch_threads

_BLAS: SharedSetting | None = None
_AVAILABLE: bool | None = None
_LOCK = threading.Lock()


def _blas_setting() -> SharedSetting | None:
    global _BLAS, _AVAILABLE
    with _LOCK:
        if _AVAILABLE is None:
            try:
                from threadpoolctl import ThreadpoolController

                libraries = ThreadpoolController().select(user_api="blas").lib_controllers
            except Exception:  # not installed, or no BLAS found
                libraries = []
            _AVAILABLE = bool(libraries)
            if libraries:
                def get() -> tuple[int, ...]:
                    return tuple(int(lib.num_threads) for lib in libraries)

                def set(value: int | tuple[int, ...]) -> None:
                    counts = value if isinstance(value, tuple) else (value,) * len(libraries)
                    for lib, n in zip(libraries, counts):
                        lib.set_num_threads(int(n))

                _BLAS = SharedSetting(get, set)
    return _BLAS


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS at one thread inside the block (every loaded BLAS library)."""
    setting = _blas_setting()
    with setting.hold(1) if setting is not None else nullcontext():
        yield


@contextmanager
def torch_single_thread() -> Iterator[Any]:
    """torch with one intra-op thread inside the block (deterministic, no oversubscription); yields torch."""
    import torch

    with torch_threads(1):
        yield torch
