"""The dashboard: configuration sidebar, live run, theory explorer and model table.

``Dashboard()`` works in a notebook (``pn.extension("plotly")`` then display it) and is
what ``panel serve app`` serves (``app/main.py`` calls :func:`serve_page`). Every asset
comes from Panel's bundled resources: the page makes no request off the machine.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from lsd_engine import models

from . import choices, downloads
from .controller import ACTIVE, CONFIG_PARAMETERS, RunController
from .theory_explorer import TheoryExplorer
from .views import LiveViews

REFRESH_MS = 700
PAGE_FLAGS = ("autostart",)  # URL arguments that act on the page rather than the run settings
UPLOAD_DIR = Path(tempfile.gettempdir()) / "lsd-dashboard-uploads"

ABOUT = """
**Langevin Speculative Dynamics.** A cheap *draft* model proposes K Langevin steps, the expensive
*target* model checks all of them in one batched call, and an exact accept/reject with a reflection
transport map keeps the accepted steps and repairs the first rejected one. The trajectory is
distributed exactly like plain Langevin MD with the target — the Ramachandran plots below compare the
two. Green bonds / strips: accepted draft steps; red: repaired (rejected) steps; blue: steps sampled
from the target directly (the bonus step of a fully accepted round). With *draft learning* the draft's
force is corrected by a model refitted on the target forces each round verifies; with *adaptive K* each
round's lookahead is chosen from the measured acceptance by depth and model costs — the lookahead plots
and the draft-learning line show their effect as the run goes.
"""

SPECULATION_HELP = (
    "**Draft learning** refits a correction of the draft force on the target forces of each verified round "
    "(needs error correction; *online*: bonded terms for molecules, radial + first-order for crystals). "
    "**Adaptive K** picks each round's K between the smallest K and the lookahead K, maximising the expected "
    "speedup (costs measured once at the start). Both keep LSD exact."
)


def apply_query_args(controller: RunController, args: Mapping[str, Any]) -> list[str]:
    """Set configuration parameters from URL query arguments (``?target=amber14&n_steps=500``).

    Values may be bytes lists (``pn.state.session_args``) or strings; unknown names and bad
    values are reported, not raised. Returns the messages.
    """
    messages = []
    for name, raw in args.items():
        value = raw[0] if isinstance(raw, (list, tuple)) else raw
        value = value.decode() if isinstance(value, bytes) else str(value)
        if name in PAGE_FLAGS:
            continue
        if name not in CONFIG_PARAMETERS:
            messages.append(f"ignored unknown URL setting {name!r}")
            continue
        parameter = controller.param[name]
        try:
            if isinstance(parameter, param.Boolean):
                converted: Any = value.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(parameter, param.Integer):
                converted = int(value)
            elif isinstance(parameter, param.Number):
                converted = None if value.strip().lower() in ("", "none") else float(value)
            else:
                converted = value
            setattr(controller, name, converted)
        except Exception as exc:  # noqa: BLE001 - a bad URL value is reported in the page
            messages.append(f"URL setting {name}={value!r} not used: {exc}")
    return messages


def models_table() -> pd.DataFrame:
    rows = []
    for spec in models.available():
        rows.append({"name": spec.name, "role": spec.role, "cost": spec.cost, "batched": spec.batched,
                     "periodic": spec.periodic, "non-periodic": spec.nonperiodic,
                     "installed": choices.backend_installed(spec.package),
                     "install": f"pip install {spec.install}", "cost note": spec.cost_note,
                     "description": spec.description})
    return pd.DataFrame(rows)


class Dashboard(pn.viewable.Viewer):
    """Sidebar of run settings and controls; tabs with the live run, theory explorer and models."""

    def __init__(self, controller: RunController | None = None, refresh_ms: int = REFRESH_MS, **params: Any):
        super().__init__(**params)
        self.controller = controller or RunController()
        self.views = LiveViews(self.controller)
        self.theory = TheoryExplorer()
        self.refresh_ms = refresh_ms
        self._callback = None
        self.sidebar = self._sidebar()
        self.main = self._main()
        self.controller.param.watch(self._on_status, ["status"])
        self._on_status()

    # -- widgets ---------------------------------------------------------------------
    def _sidebar(self) -> list[Any]:
        c = self.controller
        p = c.param
        support = choices.executor_support()
        self.upload = pn.widgets.FileInput(accept=".pdb,.xyz,.extxyz,.cif,.traj,.vasp,.gro,.mol", label="Upload")
        self.upload.param.watch(self._on_upload, "value")
        self.buttons = {
            "start": pn.widgets.Button(label="Start", color="success", css_classes=["lsd-start"]),
            "pause": pn.widgets.Button(label="Pause", color="warning", css_classes=["lsd-pause"]),
            "resume": pn.widgets.Button(label="Resume", color="primary", css_classes=["lsd-resume"]),
            "stop": pn.widgets.Button(label="Stop", color="danger", css_classes=["lsd-stop"]),
        }
        for key, button in self.buttons.items():
            button.on_click(lambda event, k=key: self._press(k))
        executor = pn.widgets.Select.from_param(p.executor, name="Executor",
                                                disabled_options=[k for k, v in support.items() if v])
        mode = pn.widgets.Select.from_param(p.mode, name="Mode",
                                            disabled_options=[] if choices.sampler_supports_mode() else ["async"])
        unsupported = [f"{k}: {v}" for k, v in support.items() if v]
        if not choices.sampler_supports_mode():
            unsupported.append("async mode: the installed engine has only the synchronous sampler")
        status = pn.pane.Markdown(pn.bind(lambda s, m, n, r, k: f"**Status: {s}** — {m}  \nLSD steps {n}, "
                                          f"target MD steps {r}" + (f"  \n{k}" if k else ""),
                                          p.status, p.message, p.steps_done, p.reference_steps_done, p.speculation),
                                  css_classes=["lsd-status"], sizing_mode="stretch_width")
        problems = pn.pane.Alert(pn.bind(lambda text: text, p.problems), alert_type="danger",
                                 visible=pn.bind(bool, p.problems), sizing_mode="stretch_width",
                                 css_classes=["lsd-problems"])
        notes = pn.pane.Alert(pn.bind(lambda text: text, p.notes), alert_type="info",
                              visible=pn.bind(bool, p.notes), sizing_mode="stretch_width")
        error = pn.pane.Alert(pn.bind(lambda text: text, p.error), alert_type="danger",
                              visible=pn.bind(bool, p.error), sizing_mode="stretch_width",
                              css_classes=["lsd-error"])
        downloads_row = pn.Column(
            pn.widgets.FileDownload(callback=self._download_trajectory, filename="lsd-trajectory.extxyz",
                                    label="Trajectory (extended XYZ)", color="light",
                                    css_classes=["lsd-download-traj"]),
            pn.widgets.FileDownload(callback=self._download_stats, filename="lsd-stats.json",
                                    label="Statistics (JSON)", color="light",
                                    css_classes=["lsd-download-stats"]),
            pn.widgets.FileDownload(callback=self._download_plots, filename="lsd-plots.png",
                                    label="Plots (PNG)", color="light", css_classes=["lsd-download-plots"]),
        )
        num = pn.widgets.FloatInput.from_param
        integer = pn.widgets.IntInput.from_param
        return [
            pn.Row(*self.buttons.values(), sizing_mode="stretch_width"),
            status, error, self._background_runs(),
            pn.Card(
                pn.widgets.Select.from_param(p.system, name="System", css_classes=["lsd-system"]),
                pn.pane.Markdown("or upload a PDB / XYZ file:", margin=(0, 10)), self.upload,
                pn.widgets.Select.from_param(p.draft, name="Draft model", css_classes=["lsd-draft"]),
                pn.widgets.Select.from_param(p.target, name="Target model", css_classes=["lsd-target"]),
                problems, notes,
                title="System and models", sizing_mode="stretch_width"),
            pn.Card(
                num(p.temperature_K, name="Temperature (K)", step=10),
                num(p.timestep_fs, name="Timestep (fs)", step=0.1),
                num(p.friction_per_ps, name="Friction (1/ps)", step=1),
                num(p.hydrogen_mass_amu, name="Hydrogen mass (amu, empty = natural)", step=0.5),
                title="Langevin dynamics", sizing_mode="stretch_width"),
            pn.Card(
                pn.widgets.IntSlider.from_param(p.lookahead, name="Lookahead K (largest K when adaptive)", end=32),
                pn.widgets.Checkbox.from_param(p.adaptive_lookahead, name="Adaptive K (chosen per round)",
                                               css_classes=["lsd-adaptive"]),
                pn.widgets.IntSlider.from_param(p.min_lookahead, name="Smallest adaptive K", end=32,
                                                visible=pn.bind(bool, p.adaptive_lookahead),
                                                css_classes=["lsd-min-lookahead"]),
                pn.widgets.Checkbox.from_param(p.error_correction, name="Speculative error correction"),
                pn.widgets.Select.from_param(p.draft_learning, name="Draft learning (needs error correction)",
                                             css_classes=["lsd-draft-learning"]),
                pn.pane.Markdown(SPECULATION_HELP, styles={"font-size": "0.85em"}, margin=(0, 10)),
                mode, executor,
                integer(p.n_workers, name="Dask workers"),
                pn.widgets.TextInput.from_param(p.scheduler_address, name="Scheduler address",
                                                placeholder="tcp://head-node:8786"),
                pn.pane.Markdown("\n".join(f"- {u}" for u in unsupported), styles={"font-size": "0.85em"},
                                 visible=bool(unsupported)),
                title="Speculation and execution", sizing_mode="stretch_width"),
            pn.Card(
                integer(p.n_steps, name="Steps", step=1000),
                integer(p.seed, name="Seed"),
                pn.widgets.Checkbox.from_param(p.reference, name="Run plain target MD alongside (reference)"),
                pn.widgets.Checkbox.from_param(p.keep_running, name="Keep running when this tab is closed"),
                pn.widgets.TextInput.from_param(p.output_dir, name="Results folder for a background run",
                                                placeholder="./lsd-dashboard-runs/<start time>"),
                title="Run", sizing_mode="stretch_width"),
            pn.Card(
                num(p.block_seconds, name="Seconds per streamed block", step=0.5),
                integer(p.save_stride, name="Save every n-th frame (download)"),
                num(p.reference_share, name="Reference MD share of the run thread", step=0.05),
                pn.widgets.TextInput.from_param(p.draft_options, name="Draft options (key=value, …)"),
                pn.widgets.TextInput.from_param(p.target_options, name="Target options (key=value, …)",
                                                placeholder="solvent='implicit'"),
                title="Advanced", collapsed=True, sizing_mode="stretch_width"),
            pn.Card(downloads_row, title="Download", sizing_mode="stretch_width"),
        ]

    @staticmethod
    def _background_runs() -> pn.pane.Alert:
        """Runs on this server that outlived their page (``keep_running``) and where their results go."""
        lines = [f"- started {run.started_at}: {run.status}, {run.data.lsd.n_steps} LSD steps → {run.output_dir}"
                 for run in RunController.background]
        return pn.pane.Alert("**Background runs on this server**\n" + "\n".join(lines), alert_type="secondary",
                             visible=bool(lines), sizing_mode="stretch_width")

    def _main(self) -> pn.Tabs:
        v = self.views.panels
        live = pn.Column(
            pn.pane.Markdown(ABOUT, sizing_mode="stretch_width"),
            pn.Row(pn.Column(v["molecule"], v["strip"], sizing_mode="stretch_width"),
                   pn.Column(v["numbers"], v["speedup"], sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(v["rama_lsd"], v["rama_ref"], v["observables"], sizing_mode="stretch_width"),
            pn.Row(v["depth"], v["lookahead"], v["timing"], sizing_mode="stretch_width"),
            pn.Row(v["energy"], v["temperature"], v["lookahead_blocks"], sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        table = pn.widgets.Tabulator(models_table(), disabled=True, show_index=False, sizing_mode="stretch_width",
                                     layout="fit_data_table")
        return pn.Tabs(("Live run", live), ("Theory explorer", pn.panel(self.theory)), ("Models", table),
                       dynamic=False, sizing_mode="stretch_width")

    # -- actions ---------------------------------------------------------------------
    def _press(self, key: str) -> None:
        action = {"start": self.controller.start, "pause": self.controller.pause,
                  "resume": self.controller.resume, "stop": self.controller.stop}[key]
        action()

    def _on_status(self, *_: Any) -> None:
        status = self.controller.status
        active = status in ACTIVE
        self.buttons["start"].disabled = active
        self.buttons["pause"].disabled = status not in ("running", "starting")
        self.buttons["resume"].disabled = status != "paused"
        self.buttons["stop"].disabled = not active

    def _on_upload(self, event: Any) -> None:
        if not event.new:
            return
        UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
        name = Path(self.upload.filename or "structure.pdb").name
        path = Path(tempfile.mkdtemp(dir=UPLOAD_DIR)) / name
        path.write_bytes(event.new)
        self.controller.param.update(structure_path=str(path), system=choices.UPLOADED)

    def _download_trajectory(self) -> io.BytesIO:
        return io.BytesIO(downloads.trajectory_bytes(self.controller.data))

    def _download_stats(self) -> io.StringIO:
        return io.StringIO(downloads.stats_json(self.controller.data))

    def _download_plots(self) -> io.BytesIO:
        return io.BytesIO(downloads.plots_png(self.controller.data))

    # -- refresh ---------------------------------------------------------------------
    def refresh(self) -> bool:
        return self.views.refresh()

    def start_refreshing(self) -> None:
        """Poll the run on the UI thread every ``refresh_ms`` (once per page / notebook output)."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.refresh_ms)

    def __panel__(self) -> pn.viewable.Viewable:
        self.start_refreshing()
        return pn.Row(pn.Column(*self.sidebar, width=360), self.main, sizing_mode="stretch_width")

    def template(self) -> pn.template.BaseTemplate:
        """The page served by ``panel serve app``."""
        self.start_refreshing()
        # BootstrapTemplate: its CSS/JS are bundled with Panel (the Fast templates fetch Google Fonts).
        return pn.template.BootstrapTemplate(title="LSD — Langevin Speculative Dynamics", sidebar=self.sidebar,
                                             main=[self.main], sidebar_width=380, header_background="#2e7d32")


def serve_page() -> pn.template.BaseTemplate:
    """Build one session's page: its own controller, URL settings applied, stopped when the tab closes."""
    pn.extension("plotly", "tabulator", notifications=False)
    controller = RunController()
    messages = apply_query_args(controller, pn.state.session_args or {})
    dashboard = Dashboard(controller)
    if messages:
        controller.message = "; ".join(messages)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.on_session_destroyed(lambda context: controller.session_closed())
    if "autostart" in (pn.state.session_args or {}):
        pn.state.onload(controller.start)
    return dashboard.template()
