"""Live views of a run: 3D molecule, step-kind strip, headline numbers, acceptance by depth,
lookahead K (rounds by K, K per block), draft-learning status, energy / temperature traces,
timing breakdown, speedup history and Ramachandran plots.

``LiveViews.refresh()`` runs on the UI thread (a periodic callback in the page or
notebook): it reads what the run thread appended to ``controller.data`` since the
last refresh and streams it into Bokeh ``ColumnDataSource``s (``stream`` with a
rollover for traces, a whole-column swap for histograms and bars), so the browser
receives one small patch per refresh, not one per step, and the server spends
milliseconds per refresh.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, LogColorMapper, Span
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from lsd_engine.observables import ALANINE_BASINS

from .comparison_view import ComparisonView
from .controller import RunController
from .rundata import KIND_STYLE, RAMA_BINS, RunData, execution_text, learning_text, mean_lookahead
from .viewer3d import MoleculeView

RAMA_CLIM = (1e-4, 0.2)  # fixed colour range: the LSD and reference plots are directly comparable
TRACE_LENGTH = 4000  # points kept per trace in the browser
STRIP_LENGTH = 300  # steps shown in the step-kind strip
MAX_NEW_POINTS = 400  # per trace and refresh (thinned beyond that)
RAMA_PERIOD_S = 2.0  # seconds between redraws of the Ramachandran images
#: seconds between moves of the 3D molecule: a WebGL redraw is the page's most expensive paint (seconds
#: each in a browser without a GPU), so it moves at most this often while the numbers refresh every period
MOLECULE_PERIOD_S = 1.5
KIND_COLOURS = {code: colour for code, (_, colour) in KIND_STYLE.items()}
TIMING_PARTS = ("draft", "target", "verification", "overhead")
TIMING_COLOURS = ("#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f")
RUN_COLOURS = {"LSD": "#2ca02c", "target MD": "#1f77b4", "draft MD": "#ff7f0e"}
TARGET_ENERGY_RUNS = ("LSD", "target MD")  # draft MD's energies are the draft's, on another scale
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _fmt(value: float, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}{suffix}"


def _thin(rows: dict[str, np.ndarray], limit: int = MAX_NEW_POINTS) -> dict[str, np.ndarray]:
    n = len(rows["step"])
    if n <= limit:
        return rows
    index = np.linspace(0, n - 1, limit).round().astype(int)
    return {k: v[index] if len(v) == n else v for k, v in rows.items()}


def _figure(title: str, height: int = 230, **options: Any):
    fig = figure(title=title, height=height, sizing_mode="stretch_width", tools=TOOLS, toolbar_location="right",
                 **options)
    fig.toolbar.logo = None
    return fig


def _pane(fig, css: list[str] | None = None) -> pn.pane.Bokeh:
    fig.css_classes = css or []  # on the figure itself: the Bokeh pane renders the figure as its model
    return pn.pane.Bokeh(fig, sizing_mode="stretch_width")


class LiveViews:
    """All live views of one controller; ``panels`` maps a name to a Panel component."""

    def __init__(self, controller: RunController):
        self.controller = controller
        self._data: RunData | None = None
        self._seen_version = -1
        self._seen_status = ""
        self._cursor = {"LSD": 0, "target MD": 0, "draft MD": 0, "history": 0, "blocks": 0}
        self._energy_zero: float | None = None
        self._last_point: dict[str, tuple[float, float]] = {}
        self._next_rama = self._next_molecule = 0.0
        self.comparison = ComparisonView()
        self.molecule = MoleculeView(self._initial_atoms())
        self.sources = {
            "strip": ColumnDataSource({"step": [], "colour": []}),
            "speedup": ColumnDataSource({"step": [], "measured": [], "predicted": []}),
            "depth": ColumnDataSource({"depth": [], "acceptance": []}),
            "lookahead": ColumnDataSource({"k": [], "share": []}),
            "blocks": ColumnDataSource({"step": [], "lookahead": [], "mean_lookahead": []}),
            "timing": ColumnDataSource({"run": list(RUN_COLOURS), **{part: [0.0] * len(RUN_COLOURS) for part in TIMING_PARTS}}),
            **{f"trace:{label}": ColumnDataSource({"step": [], "energy": [], "temperature": []})
               for label in RUN_COLOURS},
            **{f"rama:{label}": ColumnDataSource({"image": [np.zeros((RAMA_BINS, RAMA_BINS))]})
               for label in RUN_COLOURS},
            **{f"point:{label}": ColumnDataSource({"phi": [], "psi": []}) for label in RUN_COLOURS},
        }
        self.numbers = pn.pane.HTML(self._numbers_html({}), sizing_mode="stretch_width",
                                    css_classes=["lsd-numbers"])
        self.observables = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["lsd-observables"])
        self.panels = self._build_panels()

    # -- plots ---------------------------------------------------------------------
    def _initial_atoms(self):
        try:
            return self.controller.build_atoms()
        except Exception:  # noqa: BLE001 - an invalid choice shows an empty view, the problem is explained
            return None

    def _build_panels(self) -> dict[str, Any]:
        src = self.sources
        strip = _figure("latest steps: green accepted, red repaired, blue target (bonus step)", height=95,
                        y_range=(0, 1))
        strip.vbar(x="step", top=1, width=1.0, color="colour", source=src["strip"])
        strip.yaxis.visible = False
        strip.ygrid.visible = False

        traces = {}
        for column, title in (("energy", "potential energy − initial (eV)"), ("temperature", "kinetic T (K)")):
            fig = _figure(title)
            for label, colour in RUN_COLOURS.items():
                if column == "energy" and label not in TARGET_ENERGY_RUNS:
                    continue
                fig.line("step", column, source=src[f"trace:{label}"], color=colour, line_width=1.5,
                         legend_label=label)
            fig.legend.location = "top_left"
            fig.xaxis.axis_label = "step"
            traces[column] = fig
        self.bath_line = Span(location=float(self.controller.temperature_K), dimension="width",
                              line_color="gray", line_dash="dotted")
        traces["temperature"].add_layout(self.bath_line)

        speedup = _figure("speedup over plain target MD")
        speedup.line("step", "measured", source=src["speedup"], color="#ff7f0e", line_width=2, legend_label="measured")
        speedup.line("step", "predicted", source=src["speedup"], color="#9467bd", line_width=2, line_dash="dashed",
                     legend_label="theory (measured acceptance and costs)")
        speedup.add_layout(Span(location=1.0, dimension="width", line_color="gray", line_dash="dotted"))
        speedup.legend.location = "top_left"
        speedup.xaxis.axis_label = "LSD step"

        self.depth_range = FactorRange(factors=[str(d) for d in range(1, self.controller.lookahead + 1)])
        depth = _figure("acceptance by draft depth", x_range=self.depth_range, y_range=(0, 1.05))
        depth.vbar(x="depth", top="acceptance", width=0.8, color="#2ca02c", source=src["depth"])
        depth.xaxis.axis_label = "draft depth"

        # the same factors (1..K, K_max with adaptive K) as the depth plot: K = depth of the last draft
        shares = _figure("rounds by lookahead K (share)", x_range=self.depth_range, y_range=(0, 1.05))
        shares.vbar(x="k", top="share", width=0.8, color="#9467bd", source=src["lookahead"])
        shares.xaxis.axis_label = "lookahead K"

        per_block = _figure("lookahead K per block")
        per_block.step("step", "lookahead", source=src["blocks"], mode="after", color="#9467bd", line_width=2,
                       legend_label="K of the next round")
        per_block.line("step", "mean_lookahead", source=src["blocks"], color="#8c564b", line_width=1.5,
                       line_dash="dashed", legend_label="mean K of the block's rounds")
        per_block.y_range.start = 0
        per_block.legend.location = "bottom_right"
        per_block.xaxis.axis_label = "LSD step"

        timing = _figure("wall time per trajectory step (ms)", x_range=FactorRange(factors=list(RUN_COLOURS)))
        timing.vbar_stack(list(TIMING_PARTS), x="run", width=0.6, color=list(TIMING_COLOURS), source=src["timing"],
                          legend_label=list(TIMING_PARTS))
        timing.add_layout(timing.legend[0], "right")

        rama = {}
        mapper = LogColorMapper(palette=Viridis256, low=RAMA_CLIM[0], high=RAMA_CLIM[1], low_color="#f4f4f4")
        for label in RUN_COLOURS:
            fig = _figure(f"Ramachandran: {label}", height=330, x_range=(-180, 180), y_range=(-180, 180),
                          match_aspect=True)
            fig.image(image="image", x=-180, y=-180, dw=360, dh=360, color_mapper=mapper,
                      source=src[f"rama:{label}"])
            fig.scatter("phi", "psi", source=src[f"point:{label}"], marker="x", size=12, line_width=3,
                        color="#d62728")
            fig.add_tools(HoverTool(tooltips=[("φ", "$x{0}"), ("ψ", "$y{0}"), ("density", "@image{0.0000}")]))
            fig.xaxis.axis_label, fig.yaxis.axis_label = "φ (deg)", "ψ (deg)"
            rama[label] = fig
        return {
            "molecule": self.molecule.pane,
            "strip": _pane(strip, ["lsd-strip"]),
            "numbers": self.numbers,
            "speedup": _pane(speedup),
            "depth": _pane(depth),
            "lookahead": _pane(shares, ["lsd-lookahead"]),
            "lookahead_blocks": _pane(per_block, ["lsd-lookahead-blocks"]),
            "timing": _pane(timing),
            "energy": _pane(traces["energy"]),
            "temperature": _pane(traces["temperature"]),
            "rama_lsd": _pane(rama["LSD"], ["lsd-rama", "lsd-rama-lsd"]),
            "rama_ref": _pane(rama["target MD"], ["lsd-rama", "lsd-rama-ref"]),
            "rama_draft": _pane(rama["draft MD"], ["lsd-rama", "lsd-rama-draft"]),
            "observables": self.observables,
            "comparison": self.comparison.panel,
        }

    # -- numbers ---------------------------------------------------------------------
    @staticmethod
    def _numbers_html(values: dict[str, str]) -> str:
        cards = [("acceptance", "acceptance"), ("steps-per-round", "steps per target call"),
                 ("speedup-measured", "measured speedup"), ("speedup-predicted", "theory speedup"),
                 ("lsd-rate", "LSD steps/s"), ("ref-rate", "target MD steps/s"),
                 ("lsd-ns-day", "LSD ns/day"), ("ref-ns-day", "target MD ns/day"),
                 ("steps", "LSD steps"), ("ref-steps", "target MD steps"),
                 ("lookahead", "lookahead K (mean)")]
        items = "".join(
            f"<div class='card'><div class='value' data-testid='{key}'>{html.escape(values.get(key, '–'))}</div>"
            f"<div class='label'>{label}</div></div>" for key, label in cards)
        learning = (f"<div class='learning'>draft learning: <span data-testid='draft-learning'>"
                    f"{html.escape(values.get('draft-learning', '–'))}</span></div>"
                    f"<div class='learning'>target runs: <span data-testid='execution'>"
                    f"{html.escape(values.get('execution', '–'))}</span></div>")
        style = ("<style>.lsdn{display:flex;flex-wrap:wrap;gap:8px}.lsdn .card{flex:1 1 110px;border:1px solid #ddd;"
                 "border-radius:6px;padding:6px 8px;background:#fafafa}.lsdn .value{font-size:1.5em;font-weight:600}"
                 ".lsdn .label{font-size:.8em;color:#555}.lsdn .learning{flex:1 1 100%;font-size:.9em}</style>")
        return f"{style}<div class='lsdn'>{items}{learning}</div>"

    @staticmethod
    def _observables_html(data: RunData) -> str:
        if data.atoms is None:
            return "<p>Press <b>Start</b>: the Ramachandran plots of the LSD run and of plain target MD fill in here.</p>"
        if not data.has_dihedrals:
            return "<p>No backbone dihedrals in this system: no Ramachandran comparison.</p>"
        js = data.js_divergence()
        lsd, ref = data.lsd.basin_populations() or {}, data.reference.basin_populations() or {}
        rows = "".join(f"<tr><td>{name}</td><td>{_fmt(lsd.get(name, math.nan), 3)}</td>"
                       f"<td>{_fmt(ref.get(name, math.nan), 3)}</td></tr>" for name in ALANINE_BASINS)
        return (f"<p><b>Jensen–Shannon divergence</b> (LSD vs target MD, {RAMA_BINS}×{RAMA_BINS} bins): "
                f"<span data-testid='js-divergence'>{_fmt(js, 4)}</span> bits "
                f"({data.lsd.n_rows} vs {data.reference.n_rows} samples; short runs differ by sampling noise "
                "alone — LSD is exact, so the divergence shrinks as both runs grow)</p>"
                "<table style='border-collapse:collapse' data-testid='basins'><tr><th>basin</th><th>LSD</th>"
                f"<th>target MD</th></tr>{rows}</table>")

    # -- refresh -------------------------------------------------------------------------
    def _reset(self, data: RunData) -> None:
        self._data = data
        self._cursor = {"LSD": 0, "target MD": 0, "draft MD": 0, "history": 0, "blocks": 0}
        self._energy_zero = None
        self._last_point = {}
        self._next_rama = self._next_molecule = 0.0
        for key, source in self.sources.items():
            if key.startswith(("trace:", "point:")) or key in ("strip", "speedup", "depth", "lookahead", "blocks"):
                source.data = {column: [] for column in source.data}
            elif key.startswith("rama:"):
                source.data = {"image": [np.zeros((RAMA_BINS, RAMA_BINS))]}
        lookahead = int(data.config.get("lookahead", self.controller.lookahead))  # K_max with adaptive K
        self.depth_range.factors = [str(d) for d in range(1, lookahead + 1)]
        self.bath_line.location = float(data.config.get("temperature_K", self.controller.temperature_K))
        if data.atoms is not None:
            self.molecule.reset(data.atoms)
        for key in ("rama_lsd", "rama_ref", "rama_draft"):  # no backbone dihedrals: no empty planes
            self.panels[key].visible = data.atoms is None or data.has_dihedrals

    def refresh(self) -> bool:
        """Push what is new in the controller's data into the views; False when nothing changed."""
        data = self.controller.data
        if data is not self._data or (data.atoms is not None and self.molecule.numbers is None):
            self._reset(data)
            self._seen_version = -1
        status = self.controller.status
        if data.version == self._seen_version and status == self._seen_status:
            return False
        with data.lock:
            self._seen_version, self._seen_status = data.version, status
            rows = {"LSD": data.lsd.rows_since(self._cursor["LSD"]),
                    "target MD": data.reference.rows_since(self._cursor["target MD"]),
                    "draft MD": data.draft.rows_since(self._cursor["draft MD"])}
            history = data.history_since(self._cursor["history"])
            blocks = data.blocks_since(self._cursor["blocks"])
            shares = data.lookahead_shares()
            last = (data.lsd.last_positions, data.lsd.last_kind, data.lsd.last_step)
            depth = data.lsd.stats.acceptance_by_depth
            timing = {"LSD": data.lsd.stats.per_step_ms(), "target MD": data.reference.stats.per_step_ms(),
                      "draft MD": data.draft.stats.per_step_ms()}
            hists = {"LSD": data.lsd.ramachandran(), "target MD": data.reference.ramachandran(),
                     "draft MD": data.draft.ramachandran()}
            numbers = self._current_numbers(data)
            observables_html = self._observables_html(data)
            self.comparison.refresh(data.comparison)
        self._push(rows, history, last, depth, timing, hists)
        self._push_lookahead(blocks, shares)
        self.numbers.object = self._numbers_html(numbers)
        self.observables.object = observables_html
        # In a notebook, edits to Bokeh models must be pushed explicitly (a no-op in a served page).
        pn.io.push_notebook(*(pane for pane in self.panels.values() if isinstance(pane, pn.pane.Bokeh)))
        return True

    @staticmethod
    def _current_numbers(data: RunData) -> dict[str, str]:
        lsd, ref = data.lsd.stats, data.reference.stats
        throughput = data.ns_per_day()
        return {
            "acceptance": _fmt(lsd.acceptance_rate, 3),
            "steps-per-round": (f"{_fmt(lsd.n_steps / lsd.target_calls if lsd.target_calls else math.nan)}"
                                f" (theory {_fmt(data.predicted_steps_per_round())})"),
            "speedup-measured": _fmt(data.measured_speedup(), 2, "×"),
            "speedup-predicted": _fmt(data.predicted_speedup(), 2, "×"),
            "lsd-rate": _fmt(lsd.steps_per_s, 1), "ref-rate": _fmt(ref.steps_per_s, 1),
            "lsd-ns-day": _fmt(throughput["LSD"], 3), "ref-ns-day": _fmt(throughput["target MD"], 3),
            "steps": str(lsd.n_steps), "ref-steps": str(ref.n_steps),
            "lookahead": ("–" if data.lookahead_now is None else
                          f"{data.lookahead_now} ({_fmt(mean_lookahead(lsd.rounds_by_lookahead), 1)})"),
            "draft-learning": learning_text(data.learning),
            "execution": execution_text(data.execution),
        }

    def _push_lookahead(self, blocks: dict[str, np.ndarray], shares: np.ndarray) -> None:
        src = self.sources
        if len(blocks["step"]):
            self._cursor["blocks"] += len(blocks["step"])
            src["blocks"].stream(blocks, rollover=TRACE_LENGTH)
        if shares.size:
            if len(self.depth_range.factors) < shares.size:
                self.depth_range.factors = [str(d) for d in range(1, shares.size + 1)]
            src["lookahead"].data = {"k": [str(k) for k in range(1, shares.size + 1)], "share": shares}

    def _push(self, rows, history, last, depth, timing, hists) -> None:
        src = self.sources
        for label, new in rows.items():
            n = len(new["step"])
            if not n:
                continue
            self._cursor[label] += n
            if self._energy_zero is None and label in TARGET_ENERGY_RUNS:
                self._energy_zero = float(new["energy"][0])
            thin = _thin(new)
            energy = thin["energy"] - self._energy_zero if label in TARGET_ENERGY_RUNS else np.full(len(thin["step"]),
                                                                                                   np.nan)
            src[f"trace:{label}"].stream({"step": thin["step"], "energy": energy,
                                          "temperature": thin["temperature"]}, rollover=TRACE_LENGTH)
            if label == "LSD":
                tail = new["kind"][-STRIP_LENGTH:]
                src["strip"].stream({"step": new["step"][-STRIP_LENGTH:],
                                     "colour": [KIND_COLOURS.get(int(k), "#000000") for k in tail]},
                                    rollover=STRIP_LENGTH)
            if len(new["phi"]):
                self._last_point[label] = (float(new["phi"][-1]), float(new["psi"][-1]))
        if len(history["step"]):
            self._cursor["history"] += len(history["step"])
            src["speedup"].stream({k: history[k] for k in ("step", "measured", "predicted")}, rollover=TRACE_LENGTH)
        positions, kind, step = last
        finished = self.controller.status not in ("running", "starting")
        if positions is not None and (time.monotonic() >= self._next_molecule or finished):
            self._next_molecule = time.monotonic() + MOLECULE_PERIOD_S
            self.molecule.update(positions, kind, step)
        if depth.size:
            if len(self.depth_range.factors) != depth.size:
                self.depth_range.factors = [str(d) for d in range(1, depth.size + 1)]
            src["depth"].data = {"depth": [str(d) for d in range(1, depth.size + 1)],
                                 "acceptance": np.nan_to_num(depth)}
        src["timing"].data = {"run": list(timing), **{part: [timing[run][part] for run in timing]
                                                      for part in TIMING_PARTS}}
        redraw = time.monotonic() >= self._next_rama or finished
        if redraw:  # three 36x36 images: redrawn every RAMA_PERIOD_S, not on every refresh
            self._next_rama = time.monotonic() + RAMA_PERIOD_S
        for label, hist in hists.items():
            if hist is not None and redraw:
                src[f"rama:{label}"].data = {"image": [hist.T]}
            point = self._last_point.get(label)
            if point is not None:
                src[f"point:{label}"].data = {"phi": [point[0]], "psi": [point[1]]}
