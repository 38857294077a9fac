"""Live views of a run: 3D molecule, step-kind strip, headline numbers, acceptance by depth,
energy / temperature traces, timing breakdown, speedup history and Ramachandran plots.

``LiveViews.refresh()`` runs on the UI thread (a periodic callback in the page or
notebook): it reads what the run thread appended to ``controller.data`` since the
last refresh and pushes it into HoloViews ``Buffer`` / ``Pipe`` streams, so the
browser receives one small patch per refresh, not one per step.
"""

from __future__ import annotations

import html
import math
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend for .opts)
import numpy as np
import pandas as pd
import panel as pn

from lsd_engine.observables import ALANINE_BASINS

from .controller import RunController
from .rundata import KIND_STYLE, RAMA_BINS, RunData
from .viewer3d import MoleculeView

RAMA_CLIM = (1e-4, 0.2)  # fixed colour range: the LSD and reference plots are directly comparable
TRACE_LENGTH = 4000  # points kept per trace in the browser
STRIP_LENGTH = 300  # steps shown in the step-kind strip
MAX_NEW_POINTS = 400  # per trace and refresh (thinned beyond that)
KIND_LABELS = {code: label for code, (label, _) in KIND_STYLE.items()}
KIND_COLOURS = {label: colour for label, colour in KIND_STYLE.values()}
TIMING_PARTS = ("draft", "target", "verification", "overhead")
RUN_COLOURS = {"LSD": "#2ca02c", "target MD": "#1f77b4"}


def _fmt(value: float, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}{suffix}"


def _thin(rows: dict[str, np.ndarray], limit: int = MAX_NEW_POINTS) -> dict[str, np.ndarray]:
    n = len(rows["step"])
    if n <= limit:
        return rows
    index = np.linspace(0, n - 1, limit).round().astype(int)
    return {k: v[index] if len(v) == n else v for k, v in rows.items()}


def _empty_trace() -> pd.DataFrame:
    return pd.DataFrame({"step": np.zeros(0, dtype=np.int64), "energy": np.zeros(0),
                         "temperature": np.zeros(0)})


class LiveViews:
    """All live views of one controller; ``panels`` maps a name to a Panel component."""

    def __init__(self, controller: RunController):
        self.controller = controller
        self._data: RunData | None = None
        self._seen_version = -1
        self._seen_status = ""
        self._cursor = {"LSD": 0, "target MD": 0, "history": 0}
        self._energy_zero: float | None = None
        self._last_point: dict[str, tuple[float, float]] = {}

        self.molecule = MoleculeView(self._initial_atoms())
        self.strip_buffer = hv.streams.Buffer(pd.DataFrame({"step": np.zeros(0, dtype=np.int64),
                                                            "height": np.zeros(0), "kind": []}),
                                              length=STRIP_LENGTH, index=False)
        self.trace_buffers = {label: hv.streams.Buffer(_empty_trace(), length=TRACE_LENGTH, index=False)
                              for label in RUN_COLOURS}
        self.speedup_buffer = hv.streams.Buffer(pd.DataFrame({"step": np.zeros(0, dtype=np.int64),
                                                              "measured": np.zeros(0), "predicted": np.zeros(0)}),
                                                length=TRACE_LENGTH, index=False)
        self.depth_pipe = hv.streams.Pipe(data=self._depth_frame(np.zeros(controller.lookahead)))
        self.timing_pipe = hv.streams.Pipe(data=self._timing_frame({label: {part: 0.0 for part in TIMING_PARTS}
                                                                        for label in RUN_COLOURS}))
        self.rama_pipes = {label: hv.streams.Pipe(data=(None, None)) for label in RUN_COLOURS}

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
        strip = hv.DynamicMap(self._strip, streams=[self.strip_buffer])
        traces = {}
        for column, unit in (("energy", "potential energy − initial (eV)"), ("temperature", "kinetic T (K)")):
            curves = [hv.DynamicMap(lambda data, c=column, lab=label: hv.Curve(data, "step", c, label=lab).opts(
                color=RUN_COLOURS[lab], line_width=1.5), streams=[buffer])
                for label, buffer in self.trace_buffers.items()]
            overlay = curves[0] * curves[1]
            if column == "temperature":
                overlay = overlay * hv.DynamicMap(self._bath_line)
            traces[column] = overlay.opts(height=230, responsive=True, title=unit, legend_position="top_left",
                                           framewise=True)
        speedup = (hv.DynamicMap(lambda data: hv.Curve(data, "step", "measured", label="measured").opts(
            color="#ff7f0e", line_width=2), streams=[self.speedup_buffer])
            * hv.DynamicMap(lambda data: hv.Curve(data, "step", "predicted", label="theory").opts(
                color="#9467bd", line_dash="dashed", line_width=2), streams=[self.speedup_buffer])
            * hv.HLine(1.0).opts(color="gray", line_dash="dotted")).opts(
            height=230, responsive=True, title="speedup over plain target MD", legend_position="top_left",
            framewise=True)
        depth = hv.DynamicMap(lambda data: hv.Bars(data, "depth", "acceptance").opts(
            color="#2ca02c", ylim=(0, 1.05), height=230, responsive=True, title="acceptance by draft depth",
            framewise=True, toolbar=None), streams=[self.depth_pipe])
        timing = hv.DynamicMap(lambda data: hv.Bars(data, ["run", "part"], "ms").opts(
            stacked=True, height=230, responsive=True, title="wall time per trajectory step (ms)",
            cmap={"draft": "#2ca02c", "target": "#1f77b4", "verification": "#ff7f0e", "overhead": "#7f7f7f"},
            framewise=True, toolbar=None, legend_position="right"), streams=[self.timing_pipe])
        rama = {label: hv.DynamicMap(lambda data, lab=label: self._rama(data, lab), streams=[pipe])
                for label, pipe in self.rama_pipes.items()}
        return {
            "molecule": self.molecule.pane,
            "strip": pn.pane.HoloViews(strip, sizing_mode="stretch_width", css_classes=["lsd-strip"]),
            "numbers": self.numbers,
            "speedup": pn.pane.HoloViews(speedup, sizing_mode="stretch_width"),
            "depth": pn.pane.HoloViews(depth, sizing_mode="stretch_width"),
            "timing": pn.pane.HoloViews(timing, sizing_mode="stretch_width"),
            "energy": pn.pane.HoloViews(traces["energy"], sizing_mode="stretch_width"),
            "temperature": pn.pane.HoloViews(traces["temperature"], sizing_mode="stretch_width"),
            "rama_lsd": pn.pane.HoloViews(rama["LSD"], sizing_mode="stretch_width",
                                          css_classes=["lsd-rama", "lsd-rama-lsd"]),
            "rama_ref": pn.pane.HoloViews(rama["target MD"], sizing_mode="stretch_width",
                                          css_classes=["lsd-rama", "lsd-rama-ref"]),
            "observables": self.observables,
        }

    @staticmethod
    def _strip(data: pd.DataFrame) -> hv.Spikes:
        """One coloured spike per recent step: accepted / repaired / target (bonus)."""
        first, last = (int(data["step"].min()), int(data["step"].max())) if len(data) else (0, 1)
        return hv.Spikes(data, "step", ["height", "kind"]).opts(
            color="kind", cmap=KIND_COLOURS, spike_length=1.0, line_width=2, yaxis=None, height=90,
            responsive=True, xlim=(first - 0.5, max(last, first + STRIP_LENGTH) + 0.5), toolbar=None,
            title="latest steps: green accepted, red repaired, blue target (bonus step)")

    @staticmethod
    def _depth_frame(acceptance: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"depth": [str(d) for d in range(1, acceptance.size + 1)],
                             "acceptance": np.nan_to_num(acceptance)})

    @staticmethod
    def _timing_frame(timing: dict[str, dict[str, float]]) -> pd.DataFrame:
        return pd.DataFrame([{"run": run, "part": part, "ms": parts[part]}
                             for run, parts in timing.items() for part in TIMING_PARTS])

    def _bath_line(self) -> hv.HLine:
        return hv.HLine(float(self.controller.temperature_K)).opts(color="gray", line_dash="dotted")

    @staticmethod
    def _rama(data: tuple[np.ndarray | None, tuple[float, float] | None], label: str) -> hv.Overlay:
        hist, point = data
        edges = np.linspace(-180.0, 180.0, RAMA_BINS + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        z = np.full((RAMA_BINS, RAMA_BINS), np.nan) if hist is None else np.where(hist > 0, hist, np.nan).T
        image = hv.Image((centres, centres, z), kdims=["φ (deg)", "ψ (deg)"], vdims=["density"]).opts(
            cmap="viridis", logz=True, clim=RAMA_CLIM, colorbar=False, aspect=1, responsive=True, min_height=250,
            title=f"Ramachandran: {label}", xlim=(-180, 180), ylim=(-180, 180), tools=["hover"], toolbar=None,
            clipping_colors={"NaN": "#f4f4f4"})
        points = hv.Points([] if point is None else [point], kdims=["φ (deg)", "ψ (deg)"]).opts(
            color="#d62728", size=9, marker="x", line_width=3)
        return (image * points).opts(framewise=True)

    # -- numbers ---------------------------------------------------------------------
    @staticmethod
    def _numbers_html(values: dict[str, str]) -> str:
        cards = [("acceptance", "acceptance"), ("steps-per-round", "steps per target call"),
                 ("speedup-measured", "measured speedup"), ("speedup-predicted", "theory speedup"),
                 ("lsd-rate", "LSD steps/s"), ("ref-rate", "target MD steps/s"),
                 ("steps", "LSD steps"), ("ref-steps", "target MD steps")]
        items = "".join(
            f"<div class='card'><div class='value' data-testid='{key}'>{html.escape(values.get(key, '–'))}</div>"
            f"<div class='label'>{label}</div></div>" for key, label in cards)
        style = ("<style>.lsdn{display:flex;flex-wrap:wrap;gap:8px}.lsdn .card{flex:1 1 110px;border:1px solid #ddd;"
                 "border-radius:6px;padding:6px 8px;background:#fafafa}.lsdn .value{font-size:1.5em;font-weight:600}"
                 ".lsdn .label{font-size:.8em;color:#555}</style>")
        return f"{style}<div class='lsdn'>{items}</div>"

    @staticmethod
    def _observables_html(data: RunData) -> str:
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
        self._cursor = {"LSD": 0, "target MD": 0, "history": 0}
        self._energy_zero = None
        self._last_point = {}
        for buffer in (self.strip_buffer, self.speedup_buffer, *self.trace_buffers.values()):
            buffer.clear()
        if data.atoms is not None:
            self.molecule.reset(data.atoms)

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
                    "target MD": data.reference.rows_since(self._cursor["target MD"])}
            history = data.history_since(self._cursor["history"])
            last = (data.lsd.last_positions, data.lsd.last_kind, data.lsd.last_step)
            depth = data.lsd.stats.acceptance_by_depth
            timing = {"LSD": data.lsd.stats.per_step_ms(), "target MD": data.reference.stats.per_step_ms()}
            hists = {"LSD": data.lsd.ramachandran(), "target MD": data.reference.ramachandran()}
            numbers = self._current_numbers(data)
            observables_html = self._observables_html(data)
        self._push(rows, history, last, depth, timing, hists)
        self.numbers.object = self._numbers_html(numbers)
        self.observables.object = observables_html
        return True

    @staticmethod
    def _current_numbers(data: RunData) -> dict[str, str]:
        lsd, ref = data.lsd.stats, data.reference.stats
        return {
            "acceptance": _fmt(lsd.acceptance_rate, 3),
            "steps-per-round": (f"{_fmt(lsd.n_steps / lsd.target_calls if lsd.target_calls else math.nan)}"
                                f" (theory {_fmt(data.predicted_steps_per_round())})"),
            "speedup-measured": _fmt(data.measured_speedup(), 2, "×"),
            "speedup-predicted": _fmt(data.predicted_speedup(), 2, "×"),
            "lsd-rate": _fmt(lsd.steps_per_s, 1), "ref-rate": _fmt(ref.steps_per_s, 1),
            "steps": str(lsd.n_steps), "ref-steps": str(ref.n_steps),
        }

    def _push(self, rows, history, last, depth, timing, hists) -> None:
        for label, new in rows.items():
            n = len(new["step"])
            if not n:
                continue
            self._cursor[label] += n
            if self._energy_zero is None:
                self._energy_zero = float(new["energy"][0])
            thin = _thin(new)
            self.trace_buffers[label].send(pd.DataFrame({
                "step": thin["step"], "energy": thin["energy"] - self._energy_zero,
                "temperature": thin["temperature"]}))
            if label == "LSD":
                tail = {k: v[-STRIP_LENGTH:] for k, v in new.items()}
                self.strip_buffer.send(pd.DataFrame({
                    "step": tail["step"], "height": np.ones(len(tail["step"])),
                    "kind": [KIND_LABELS.get(int(k), "?") for k in tail["kind"]]}))
        if len(history["step"]):
            self._cursor["history"] += len(history["step"])
            self.speedup_buffer.send(pd.DataFrame({k: history[k] for k in ("step", "measured", "predicted")}))
        positions, kind, step = last
        if positions is not None:
            self.molecule.update(positions, kind, step)
        if depth.size:
            self.depth_pipe.send(self._depth_frame(depth))
        self.timing_pipe.send(self._timing_frame(timing))
        for label, hist in hists.items():
            source = rows[label]
            if len(source["phi"]):
                self._last_point[label] = (float(source["phi"][-1]), float(source["psi"][-1]))
            if hist is not None:
                self.rama_pipes[label].send((hist, self._last_point.get(label)))
