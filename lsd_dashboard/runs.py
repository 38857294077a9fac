"""The server's runs, across sessions: admission against the operator's caps, background runs.

A run is *active* while its thread computes. A run whose page closed with 'keep running'
ticked becomes a *background* run: it is listed in every page, can be stopped from any
page, and is pruned from the list once it has ended and newer ones have taken its place.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class ManagedRun(Protocol):
    """What the registry needs of a run (``RunController`` provides it)."""

    @property
    def running(self) -> bool: ...

    def stop(self, wait: bool = False, timeout: float | None = None) -> None: ...


class RunLimitError(RuntimeError):
    """A run that the server's caps do not admit now."""


#: Ended background runs kept in the list (newest) so their pages can say where the results went.
KEEP_ENDED = 5


class RunRegistry:
    """Thread-safe book of active and background runs of one server process.

    A run is active from :meth:`admit` (before its thread starts) until :meth:`release`
    (the last thing its thread does).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[Any] = []
        self._background: list[Any] = []

    def admit(self, run: ManagedRun, max_active: int) -> None:
        """Record ``run`` as active, or raise :class:`RunLimitError` when ``max_active`` runs already compute."""
        with self._lock:
            self._active = [r for r in self._active if r is not run]  # a run leaves by release()
            if len(self._active) >= max_active:
                raise RunLimitError(f"this server already runs {len(self._active)} run(s), its limit "
                                    f"(max_active_runs={max_active}); stop one or wait for it to finish")
            self._active.append(run)

    def release(self, run: ManagedRun) -> None:
        with self._lock:
            self._active = [r for r in self._active if r is not run]

    def detach(self, run: ManagedRun, max_background: int) -> bool:
        """Make ``run`` a background run if the cap allows (False: it must stop with its page)."""
        with self._lock:
            self._prune()
            if any(r is run for r in self._background):
                return True
            going = [r for r in self._background if r.running]
            if len(going) >= max_background:
                return False
            self._background.append(run)
            return True

    def background(self) -> list[Any]:
        """Background runs, newest last (ended ones pruned to the newest :data:`KEEP_ENDED`)."""
        with self._lock:
            self._prune()
            return list(self._background)

    def forget(self, run: ManagedRun) -> None:
        with self._lock:
            self._background = [r for r in self._background if r is not run]

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every run (server shutdown, tests)."""
        with self._lock:
            runs = list(dict.fromkeys([*self._active, *self._background]))
        for run in runs:
            run.stop(wait=True, timeout=timeout)

    def _prune(self) -> None:
        ended = [r for r in self._background if not r.running]
        drop = ended[:-KEEP_ENDED] if len(ended) > KEEP_ENDED else []
        self._background = [r for r in self._background if not any(r is d for d in drop)]


#: The registry of this server process.
RUNS = RunRegistry()
