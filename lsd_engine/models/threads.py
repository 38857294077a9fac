"""Thread limits that several Python threads can hold at once without racing.

Torch's intra-op thread count and the BLAS thread count are process-wide settings.
Setting one on every call and restoring the old value afterwards races when two
threads evaluate models at once (one restores a value while the other still
computes, and the process can end up with the wrong count for good). A
:class:`SharedSetting` hands the setting out like a shared lock: any number of
threads may hold the same value at once; a thread wanting a different value waits
until the holders of the current one are done; the first holder saves the process
value and the last one restores it. A thread that already holds it (a model called
inside another model's call) runs under the held value without waiting.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["SharedSetting", "torch_threads"]


class SharedSetting:
    """A process-wide value (``get``/``set`` callables) held by threads in turns of equal values."""

    def __init__(self, get: Callable[[], Any], set: Callable[[Any], None]):
        self._get, self._set = get, set
        self._cond = threading.Condition()
        self._holders: dict[int, int] = {}  # thread id -> nesting depth
        self._value: Any = None
        self._saved: Any = None

    @property
    def holders(self) -> int:
        """Threads holding the setting now."""
        with self._cond:
            return len(self._holders)

    @contextmanager
    def hold(self, value: Any) -> Iterator[None]:
        """Run the block with the setting at ``value`` (shared with holders of the same value)."""
        me = threading.get_ident()
        with self._cond:
            if me in self._holders:  # nested: keep the value the outer call set
                self._holders[me] += 1
            else:
                while self._holders and self._value != value:
                    self._cond.wait()
                if not self._holders:
                    self._saved = self._get()
                    self._value = value
                    if self._saved != value:
                        self._set(value)
                self._holders[me] = 1
        try:
            yield
        finally:
            with self._cond:
                self._holders[me] -= 1
                if not self._holders[me]:
                    del self._holders[me]
                    if not self._holders:
                        if self._saved != self._value:
                            self._set(self._saved)
                        self._value = None
                        self._cond.notify_all()


_TORCH: SharedSetting | None = None
_TORCH_LOCK = threading.Lock()


def torch_threads(n: int):
    """Context manager: torch's intra-op threads at ``n`` for the block, shared safely between threads."""
    global _TORCH
    with _TORCH_LOCK:
        if _TORCH is None:
            import torch

            _TORCH = SharedSetting(torch.get_num_threads, torch.set_num_threads)
    return _TORCH.hold(int(n))
