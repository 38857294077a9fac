"""Open pages on this server, counted against the operator's ``max_sessions``.

Every served page builds its own controller, plots and 3D view (about 2 s of CPU), so a
visitor who opens pages in a loop could exhaust the server even though runs are capped.
``serve_page`` takes a place before building a page and gives it back when Bokeh destroys
the session (the tab closed, or a page that never connected expired).
"""

from __future__ import annotations

import threading

__all__ = ["OPEN_PAGES", "PageCount"]


class PageCount:
    """A thread-safe count of open pages with a cap given at each admission."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    def admit(self, limit: int) -> bool:
        """Take a place if fewer than ``limit`` pages are open (False: none taken)."""
        with self._lock:
            if self._open >= limit:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        """Give a place back (never below zero)."""
        with self._lock:
            self._open = max(0, self._open - 1)


#: The pages open on this server process.
OPEN_PAGES = PageCount()
