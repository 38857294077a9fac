"""The draft advisor in the page: "Compare drafts" calibrates each offered draft for the chosen
system and target (``lsd_engine.draft_choice.suggest_draft``) and lists the predicted acceptance
by depth and speedup, each with a "Use this" button that makes it the run's draft.

The calibration runs in a worker thread (seconds to tens of seconds, a few target calls per
draft); one at a time on a server, and not while the page's own run computes.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import panel as pn

from lsd_engine.draft_choice import DraftRanking, suggest_draft

from .choices import offered_candidates
from .controller import RunController

_BUSY = threading.Lock()  # one calibration at a time on this server


def _fmt(value: float, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}{suffix}"


def _css_name(name: str) -> str:
    """A draft name as a CSS class fragment (letters, digits, '-' and '_'; anything else becomes '_')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


class DraftAdvisor:
    """A button, a status line and the ranking table with one "Use this" button per draft."""

    def __init__(self, controller: RunController):
        self.controller = controller
        self.ranking: DraftRanking | None = None
        self.button = pn.widgets.Button(label="Compare drafts", color="primary", css_classes=["lsd-advise"])
        self.button.on_click(lambda event: self.start())
        self.status = pn.pane.Markdown("Calibrates each draft briefly for this system and target and predicts "
                                       "its acceptance by depth and speedup.", css_classes=["lsd-advice-status"],
                                       styles={"font-size": "0.85em"}, margin=(0, 10))
        self.rows = pn.Column(sizing_mode="stretch_width", css_classes=["lsd-advice"])
        self.panel = pn.Column(self.button, self.status, self.rows, sizing_mode="stretch_width")
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Begin a calibration in a worker thread (False, with the reason in the status, if it cannot)."""
        c = self.controller
        if c.running:
            self.status.object = "Stop the run first: the calibration would compete with it for the CPU."
            return False
        if c.problems:
            self.status.object = "Fix the choices marked above first."
            return False
        if not _BUSY.acquire(blocking=False):
            self.status.object = "Another page of this server is comparing drafts; try again in a moment."
            return False
        self.button.disabled = True
        self.status.object = "Comparing drafts (a short calibration each)…"
        self._thread = threading.Thread(target=self._work, name="lsd-draft-advice", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _work(self) -> None:
        c = self.controller
        try:
            atoms = c.build_atoms()
            target = c.build_model("target", atoms)
            candidates = offered_candidates(c.target)
            self.ranking = suggest_draft(atoms, target, c.run_config().params(), lookahead=c.lookahead,
                                         adaptive_lookahead=c.adaptive_lookahead, candidates=candidates,
                                         seed=c.seed, log=None)
            self.status.object = (f"Predicted for target {c.target} (calibration took {self.ranking.seconds:.1f} s; "
                                  "best first). Predictions use this machine's measured costs.")
            self.rows.objects = self._rows(self.ranking)
        except Exception as exc:  # noqa: BLE001 - any failure is explained in the page
            self.status.object = f"Comparing drafts failed: {type(exc).__name__}: {exc}"
        finally:
            self.button.disabled = False
            _BUSY.release()

    def _rows(self, ranking: DraftRanking) -> list[Any]:
        header = pn.pane.HTML("<table style='font-size:.85em;width:100%'><tr><th style='width:28%'>draft</th>"
                              "<th>speedup</th><th>E_K</th><th>acceptance by depth</th></tr></table>",
                              sizing_mode="stretch_width", margin=(0, 5))
        rows: list[Any] = [header]
        for candidate in ranking.candidates:
            if candidate.skipped is not None:
                text = f"<b>{candidate.name}</b>: skipped ({candidate.skipped})"
                rows.append(pn.pane.HTML(f"<div style='font-size:.8em;color:#777'>{text}</div>",
                                         sizing_mode="stretch_width", margin=(0, 5)))
                continue
            depth = " ".join(f"{a:.2f}" for a in candidate.acceptance_by_depth[:6])
            text = (f"<b>{candidate.name}</b> {_fmt(candidate.predicted_speedup, 2, '×')} at K {candidate.lookahead}, "
                    f"E_K {_fmt(candidate.expected_steps_per_round)}; {depth}")
            use = pn.widgets.Button(label="Use this", color="light", width=80,
                                    css_classes=["lsd-use-draft", f"lsd-use-{_css_name(candidate.name)}"])
            use.on_click(lambda event, name=candidate.name: self.use(name))
            rows.append(pn.Row(pn.pane.HTML(f"<div style='font-size:.85em' data-testid='advice-{candidate.name}'>"
                                            f"{text}</div>", sizing_mode="stretch_width"), use,
                               sizing_mode="stretch_width"))
        return rows

    def use(self, name: str) -> None:
        """Make ``name`` the run's draft (its default options)."""
        self.controller.param.update(draft=name, draft_options="")
        self.status.object = f"Draft set to {name}."
