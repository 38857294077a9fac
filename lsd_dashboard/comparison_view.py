"""The three-way comparison in the page: draft MD vs target MD vs LSD, observable by observable.

One small plot per one-dimensional observable of :mod:`lsd_dashboard.comparison` (pair
distances, kinetic temperature with its exact law, potential energy), a table of the
Jensen–Shannon divergences with the noise band, and a sentence saying whether LSD agrees
with target MD within the noise and whether the draft alone differs.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from .comparison import CONSISTENT_FACTOR, DIFFERENT_FACTOR, Comparison, Observable, Ramachandran, verdict_text

#: Seconds between updates of the distribution plots and their table (they change slowly; each update
#: redraws five plots in the browser).
UPDATE_PERIOD_S = 3.0
COLOURS = {"draft MD": "#ff7f0e", "target MD": "#1f77b4", "LSD": "#2ca02c", "exact": "#7f7f7f"}
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _fmt(value: Any, digits: int = 4) -> str:
    return "–" if value is None or not isinstance(value, (int, float)) or not math.isfinite(value) \
        else f"{value:.{digits}f}"


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


class ComparisonView:
    """Plots and table of one run's :class:`Comparison`; ``refresh(data)`` on the UI thread."""

    def __init__(self) -> None:
        self.comparison: Comparison | None = None
        self.sources: dict[str, ColumnDataSource] = {}
        self.plots = pn.FlexBox(sizing_mode="stretch_width", css_classes=["lsd-comparison-plots"])
        self.summary = pn.pane.HTML(self._intro(), sizing_mode="stretch_width", css_classes=["lsd-comparison"])
        self.panel = pn.Column(self.summary, self.plots, sizing_mode="stretch_width")
        self._next_update = 0.0

    @staticmethod
    def _intro() -> str:
        return ("<p>Press <b>Start</b>: the distributions of draft MD, target MD and LSD fill in here, with "
                "their divergences and the sampling-noise band.</p>")

    def _build(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self.sources = {}
        figures = []
        for observable in comparison.observables:
            if isinstance(observable, Ramachandran):
                continue  # the Ramachandran planes have their own image plots
            figures.append(self._figure(observable))
        self.plots.objects = figures

    def _figure(self, observable: Observable) -> pn.pane.Bokeh:
        columns = {"x": _centres(observable.edges), **{run: np.zeros(observable.shape[0]) for run in observable.runs}}
        exact = observable.exact()
        if exact is not None:
            columns["exact"] = exact
        source = ColumnDataSource(columns)
        self.sources[observable.name] = source
        fig = figure(title=observable.name, height=220, width=330, tools=TOOLS, toolbar_location=None)
        for run in (*observable.runs, *(["exact"] if exact is not None else [])):
            fig.line("x", run, source=source, color=COLOURS[run], line_width=2,
                     line_dash="dashed" if run == "exact" else "solid",
                     legend_label="exact law" if run == "exact" else run)
        fig.legend.label_text_font_size = "8pt"
        fig.legend.location = "top_right"
        fig.xaxis.axis_label = f"{observable.name} ({observable.unit})"
        fig.yaxis.axis_label = "probability per bin"
        fig.css_classes = ["lsd-comparison-plot"]
        return pn.pane.Bokeh(fig)

    def refresh(self, comparison: Comparison | None) -> None:
        if comparison is None or not comparison.complete:  # build the plots once, with every observable
            if self.comparison is not None:
                self.comparison = None
                self.plots.objects = []
                self.summary.object = self._intro()
            return
        now = time.monotonic()
        if comparison is not self.comparison:
            self._build(comparison)
        elif now < self._next_update:
            return
        self._next_update = now + UPDATE_PERIOD_S
        for observable in comparison.observables:
            source = self.sources.get(observable.name)
            if source is not None:
                update = {run: observable.density(run) for run in observable.runs}
                source.data.update(update)
        self.summary.object = self.summary_html(comparison)

    @staticmethod
    def summary_html(comparison: Comparison) -> str:
        reports = comparison.reports()
        rows = []
        for r in reports:
            rows.append(
                f"<tr><td>{html.escape(r['name'])}</td><td>{_fmt(r.get('js_LSD'))}</td>"
                f"<td>{_fmt(r.get('js_draft MD'))}</td><td>{_fmt(r['noise'])}</td>"
                f"<td>{html.escape(verdict_text(r))}</td></tr>")
        converged = comparison.converged()
        if converged is None:
            headline = "Collecting samples: the noise band needs a few thousand target MD steps."
        elif converged:
            headline = ("Converged: LSD agrees with target MD within the sampling noise in every observable, "
                        "and the draft alone samples a different distribution — the target's statistics, "
                        "computed with the draft's help.")
        else:
            headline = "Not yet converged: some divergence is still above the noise band (it shrinks as the runs grow)."
        state = "unknown" if converged is None else ("converged" if converged else "not-converged")
        return (
            f"<p data-testid='convergence' data-state='{state}'><b>{html.escape(headline)}</b></p>"
            "<table style='border-collapse:collapse;font-size:.9em' data-testid='comparison-table'>"
            "<tr><th>observable</th><th>JS(LSD, target MD)</th><th>JS(draft MD, target MD)</th>"
            "<th>noise band</th><th>reading</th></tr>" + "".join(rows) + "</table>"
            f"<p style='font-size:.85em'>Jensen–Shannon divergences in bits on fixed bins. The noise band comes "
            f"from the divergence between the first and second half of the target MD run (what two independent "
            f"samples of the exact distribution differ by), rescaled to the number of samples compared. LSD "
            f"counts as consistent within {CONSISTENT_FACTOR:g}× the band, the draft as different beyond "
            f"{DIFFERENT_FACTOR:g}× its band. Draft MD's energies are the draft's own, so only LSD and target MD "
            f"enter the energy comparison.</p>")
