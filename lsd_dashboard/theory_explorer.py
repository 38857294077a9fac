"""Theory explorer: acceptance and speedup of LSD versus one physical or algorithmic parameter
(docs/theory.md §10), for teaching and planning. All formulas come from ``lsd_engine.theory``.

Model: i.i.d. draft force errors of RMS ``force_error_eV_per_A`` per component (with error
correction, read it as the residual error left after the correction), the small-γdt
acceptance erfc(|δ|/√8) with |δ| = sqrt(3Nσ²dt/(2γkT m̄)), the same acceptance at every
draft depth, target cost T_t(B) = T_t(1) + (B-1)·extra, synchronous rounds of K drafts and
asynchronous streaming to ``n_workers`` target workers.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh
import numpy as np
import pandas as pd
import panel as pn
import param

from lsd_engine import theory
from lsd_engine.coupling import acceptance_probability

from .choices import RUN_DEFAULTS

#: x-axis choice -> (parameter name, sweep, logarithmic axis)
SWEEPS: dict[str, tuple[str, np.ndarray, bool]] = {
    "atoms N": ("n_atoms", np.unique(np.geomspace(1, 20000, 120).round()), True),
    "temperature (K)": ("temperature_K", np.linspace(50, 2000, 120), False),
    "timestep (fs)": ("timestep_fs", np.linspace(0.1, 4.0, 120), False),
    "friction (1/ps)": ("friction_per_ps", np.geomspace(0.1, 1000, 120), True),
    "force error (eV/Å)": ("force_error_eV_per_A", np.geomspace(0.003, 3.0, 120), True),
    "lookahead K": ("lookahead", np.arange(1, 41), False),
    "target workers": ("n_workers", np.arange(1, 65), False),
}


class TheoryExplorer(param.Parameterized):
    """Interactive acceptance / speedup curves; defaults: alanine dipeptide, ff14SB draft, ANI-1x target."""

    x_axis = param.Selector(default="force error (eV/Å)", objects=list(SWEEPS), label="x axis")
    n_atoms = param.Integer(default=22, bounds=(1, 1_000_000), softbounds=(1, 1000), label="atoms N")
    temperature_K = param.Number(default=RUN_DEFAULTS.temperature_K, bounds=(1.0, 5000.0),
                                 softbounds=(50.0, 2000.0), label="temperature (K)")
    timestep_fs = param.Number(default=RUN_DEFAULTS.timestep_fs, bounds=(0.01, 10.0), softbounds=(0.1, 4.0),
                               step=0.1, label="timestep (fs)")
    friction_per_ps = param.Number(default=RUN_DEFAULTS.friction_per_ps, bounds=(0.01, 10000.0),
                                   softbounds=(0.1, 100.0), label="friction γ (1/ps)")
    force_error_eV_per_A = param.Number(default=0.1, bounds=(0.0, 10.0), softbounds=(0.0, 1.0), step=0.01,
                                        label="force error σ (eV/Å)",
                                        doc="RMS draft force error per component (after EC: the residual).")
    mean_mass_amu = param.Number(default=1.74, bounds=(0.1, 500.0), softbounds=(1.0, 40.0),
                                 label="mean mass m̄ (amu)",
                                 doc="Harmonic mean of the atomic masses (alanine dipeptide: 1.74 amu).")
    lookahead = param.Integer(default=RUN_DEFAULTS.lookahead, bounds=(1, 64), label="lookahead K")
    n_workers = param.Integer(default=4, bounds=(1, 1024), softbounds=(1, 64), label="target workers",
                              doc="Target workers for asynchronous streaming.")
    draft_ms = param.Number(default=0.05, bounds=(0.0, 1e5), softbounds=(0.0, 5.0), step=0.01,
                            label="draft cost per step (ms)")
    target_ms = param.Number(default=12.0, bounds=(1e-3, 1e6), softbounds=(0.1, 200.0),
                             label="target cost, one state (ms)")
    target_extra_ms = param.Number(default=1.5, bounds=(0.0, 1e6), softbounds=(0.0, 50.0),
                                   label="target cost per extra state (ms)",
                                   doc="Added target cost per extra state in a batch.")

    # -- numbers --------------------------------------------------------------------
    def _values(self, **override: Any) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in
                  ("n_atoms", "temperature_K", "timestep_fs", "friction_per_ps", "force_error_eV_per_A",
                   "mean_mass_amu", "lookahead", "n_workers", "draft_ms", "target_ms", "target_extra_ms")}
        values.update(override)
        return values

    @staticmethod
    def _acceptance(v: dict[str, Any]) -> np.ndarray:
        delta = theory.small_friction_delta_norm(v["n_atoms"], v["temperature_K"], v["timestep_fs"],
                                                 v["friction_per_ps"], v["force_error_eV_per_A"], v["mean_mass_amu"])
        return np.asarray(acceptance_probability(np.asarray(delta)))

    @staticmethod
    def _speedups(a: float, v: dict[str, Any]) -> tuple[float, float, float]:
        """(E_K, synchronous speedup, asynchronous speedup) for a per-step acceptance ``a``."""
        k = int(v["lookahead"])
        cost = theory.affine_target_cost((v["target_ms"] - v["target_extra_ms"]) / 1e3, v["target_extra_ms"] / 1e3)
        steps = float(theory.expected_steps_per_round(a, k))
        sync = float(theory.synchronous_speedup(a, k, v["draft_ms"] / 1e3, cost))
        asyn = float(theory.asynchronous_speedup(1.0 - a, v["draft_ms"] / 1e3, v["target_ms"] / 1e3,
                                                 int(v["n_workers"])))
        return steps, sync, asyn

    def curves(self) -> pd.DataFrame:
        """One row per x value: acceptance, steps per round, synchronous and asynchronous speedup."""
        name, xs, _ = SWEEPS[self.x_axis]
        rows = []
        for x in xs:
            v = self._values(**{name: int(x) if name in ("n_atoms", "lookahead", "n_workers") else float(x)})
            a = float(self._acceptance(v))
            steps, sync, asyn = self._speedups(a, v)
            rows.append({"x": float(x), "acceptance": a, "steps_per_round": steps, "sync": sync, "async": asyn})
        return pd.DataFrame(rows)

    def current(self) -> dict[str, float]:
        v = self._values()
        a = float(self._acceptance(v))
        steps, sync, asyn = self._speedups(a, v)
        cost = theory.affine_target_cost((self.target_ms - self.target_extra_ms) / 1e3, self.target_extra_ms / 1e3)
        best = theory.optimal_lookahead(a, self.draft_ms / 1e3, cost, max_lookahead=64)
        return {"acceptance": a, "steps_per_round": steps, "sync": sync, "async": asyn,
                "best_lookahead": best.lookahead, "best_sync": best.speedup,
                "async_bound": float(theory.asynchronous_speedup(1.0 - a, self.draft_ms / 1e3, self.target_ms / 1e3))}

    # -- views -----------------------------------------------------------------------
    @param.depends("x_axis", "n_atoms", "temperature_K", "timestep_fs", "friction_per_ps", "force_error_eV_per_A",
                   "mean_mass_amu", "lookahead", "n_workers", "draft_ms", "target_ms", "target_extra_ms")
    def plot(self) -> hv.Layout:
        data = self.curves()
        name, _, log = SWEEPS[self.x_axis]
        here = hv.VLine(float(getattr(self, name))).opts(color="gray", line_dash="dotted")
        common = dict(logx=log, height=300, responsive=True, xlabel=self.x_axis, tools=["hover"], toolbar=None)
        acceptance = (hv.Curve(data, "x", "acceptance", label="per-step acceptance").opts(color="#2ca02c",
                                                                                           line_width=2)
                      * here).opts(title="acceptance per drafted step", ylim=(0, 1.02), **common)
        speedup = (hv.Curve(data, "x", "sync", label=f"synchronous, K={self.lookahead}").opts(color="#1f77b4",
                                                                                             line_width=2)
                   * hv.Curve(data, "x", "async", label=f"asynchronous, {self.n_workers} workers").opts(
                       color="#ff7f0e", line_width=2, line_dash="dashed")
                   * hv.HLine(1.0).opts(color="gray", line_dash="dotted") * here).opts(
            title="speedup over plain target MD", ylabel="speedup", legend_position="top_right", **common)
        return (acceptance + speedup).cols(2)

    @param.depends("n_atoms", "temperature_K", "timestep_fs", "friction_per_ps", "force_error_eV_per_A",
                   "mean_mass_amu", "lookahead", "n_workers", "draft_ms", "target_ms", "target_extra_ms")
    def summary(self) -> str:
        c = self.current()
        return (f"At these settings: acceptance per step **{c['acceptance']:.3f}**, "
                f"{c['steps_per_round']:.2f} steps per round at K={self.lookahead}, synchronous speedup "
                f"**{c['sync']:.2f}×** (best K={c['best_lookahead']}: {c['best_sync']:.2f}×), asynchronous with "
                f"{self.n_workers} workers **{c['async']:.2f}×** (bound with enough workers 1/(c+β̄) = "
                f"{c['async_bound']:.2f}×).\n\n"
                "Rejection grows with atom count, force error and dt/γ, and falls with temperature and mass "
                "(|δ|² ≈ 3Nσ²dt/(2γkT m̄), docs/theory.md §10.4).")

    def __panel__(self) -> pn.viewable.Viewable:
        sliders = {name: (pn.widgets.EditableIntSlider if isinstance(self.param[name], param.Integer)
                          else pn.widgets.EditableFloatSlider)
                   for name in self.param if name not in ("name", "x_axis")}
        controls = pn.Param(self.param, name="Theory parameters", width=300, widgets=sliders)
        return pn.Row(controls, pn.Column(pn.pane.HoloViews(self.plot, sizing_mode="stretch_width"),
                                          pn.pane.Markdown(self.summary, sizing_mode="stretch_width"),
                                          sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
