"""The dashboard: configuration sidebar, live run, theory explorer and model table.

``Dashboard()`` works in a notebook (``pn.extension("plotly")`` then display it) and is
what ``panel serve app`` serves (``app/main.py`` calls :func:`serve_page`). Every asset
comes from Panel's bundled resources: the page makes no request off the machine.
"""

from __future__ import annotations

import io
import queue
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pandas as pd
import panel as pn
import param

from lsd_engine import models

from . import choices, downloads
from .advisor import DraftAdvisor
from .backpressure import ClientAck
from .controller import ACTIVE, RunController
from .policy import ServerPolicy, is_loopback
from .runs import RUNS
from .sessions import OPEN_PAGES
from .theory_explorer import TheoryExplorer
from .uploads import UPLOAD_SUFFIXES, UploadError, UploadFolder, check_stored, check_upload, parse_in_subprocess
from .validation import MAX_TEXT_LENGTH, URL_SETTINGS
from .views import LiveViews

REFRESH_MS = 700
PAGE_FLAGS = ("autostart", "preset")  # URL arguments that act on the page rather than the run settings

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
    """Set run settings from URL query arguments (``?target=amber14&n_steps=500``).

    Only the names in :data:`~lsd_dashboard.validation.URL_SETTINGS` are taken (never files,
    folders or scheduler addresses), each converted to its parameter's type and bounds; the
    controller's checks then hold them to the page's choices and the server's limits. Values
    may be bytes lists (``pn.state.session_args``) or strings; refused names and values are
    reported, not raised. Returns the messages.
    """
    messages = []
    preset = args.get("preset")
    if preset:
        key = preset[0] if isinstance(preset, (list, tuple)) else preset
        key = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        if key in choices.PRESETS:
            controller.param.update(**choices.PRESETS[key]["settings"])  # then the URL's own settings
        else:
            messages.append(f"ignored URL preset {key[:40]!r} (presets: {', '.join(choices.PRESETS)})")
    for name, raw in args.items():
        name = str(name)[:40]
        value = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
        value = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        if name in PAGE_FLAGS:
            continue
        if name not in URL_SETTINGS:
            messages.append(f"ignored URL setting {name!r} (not one a URL may set)")
            continue
        if len(value) > MAX_TEXT_LENGTH:
            messages.append(f"URL setting {name} not used: longer than {MAX_TEXT_LENGTH} characters")
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
            if isinstance(parameter, param.Selector) and converted not in parameter.objects:
                messages.append(f"URL setting {name}={value[:60]!r} not used: not one of the choices offered")
                continue
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


class BoundedFileDropper(pn.widgets.FileDropper):
    """Panel's chunked FileDropper with a server-side size cap.

    The browser refuses a file over ``max_file_size`` before sending it; a client that sends
    more anyway has its chunks dropped once they pass ``max_bytes`` and ``refused`` says why.
    This extends Panel 1.x's ``FileDropper._process_event`` (chunk bookkeeping in
    ``_file_buffer``); tests/test_dashboard_security.py checks it still does.
    """

    max_bytes = param.Integer(default=10_000_000, bounds=(1, None), doc="Largest upload accepted (bytes).")
    refused = param.String(default="", doc="Why the last upload was dropped.")

    _rename = {**pn.widgets.FileDropper._rename, "max_bytes": None, "refused": None}  # server-side only

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._received: dict[str, int] = {}

    def _process_event(self, event: Any) -> None:
        data = event.data
        if event.event_name == "upload_event":
            name, chunk = str(data.get("name")), data.get("chunk")
            last = chunk == data.get("total_chunks")
            if chunk != 1 and name not in self._received:
                return  # the rest of a dropped (or never started) upload
            total = (0 if chunk == 1 else self._received[name]) + len(data.get("data") or b"")
            if total > self.max_bytes or (chunk == 1 and name not in self._received and len(self._received) >= 2):
                self._received.pop(name, None)
                getattr(self, "_file_buffer", {}).pop(name, None)
                self.refused = ""
                self.refused = (f"upload {name[:60]!r}: larger than this server's limit of "
                                f"{self.max_bytes / 1e6:.1f} MB; refused")
                return
            if last:
                self._received.pop(name, None)
            else:
                self._received[name] = total
        super()._process_event(event)


class Dashboard(pn.viewable.Viewer):
    """Sidebar of run settings and controls; tabs with the live run, theory explorer and models."""

    def __init__(self, controller: RunController | None = None, refresh_ms: int = REFRESH_MS, **params: Any):
        super().__init__(**params)
        self.controller = controller or RunController()
        self.policy = self.controller.policy
        self.uploads = UploadFolder()
        self.advisor = DraftAdvisor(self.controller)
        self.views = LiveViews(self.controller)
        self.theory = TheoryExplorer()
        self.refresh_ms = refresh_ms
        self.ack = ClientAck()  # skips refreshes while the browser is behind (see backpressure.py)
        self._callback = None
        self._upload_checks: queue.SimpleQueue = queue.SimpleQueue()  # (path, report or None, error or None)
        self.sidebar = [*self._sidebar(), self.ack]  # the sidebar is always on screen
        self.main = self._main()
        self._run_state_shown: tuple = ()
        self._show_run_state()

    # -- widgets ---------------------------------------------------------------------
    def _sidebar(self) -> list[Any]:
        c = self.controller
        p = c.param
        support = choices.executor_support()
        self.upload = BoundedFileDropper(max_bytes=self.policy.max_upload_bytes,
                                         max_file_size=f"{self.policy.max_upload_MB:g}MB",
                                         # the server checks the suffix: FilePond's type check is by MIME
                                         # type, and structure formats have none it knows
                                         multiple=False,
                                         chunk_size=1_000_000, layout="compact", css_classes=["lsd-upload"],
                                         sizing_mode="stretch_width")
        self.upload.param.watch(self._on_upload, "value")
        self.upload.param.watch(lambda event: self._upload_said(event.new, "danger"), "refused")
        self.upload_note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width",
                                         css_classes=["lsd-upload-note"])
        self.background_list = pn.Column(sizing_mode="stretch_width", css_classes=["lsd-background"])
        self.url_note = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width",
                                      css_classes=["lsd-url-note"])
        self.preset = pn.widgets.Select(label="Preset", options={"(none)": "", **{
            v["label"]: k for k, v in choices.PRESETS.items()}}, css_classes=["lsd-preset"], sizing_mode="stretch_width")
        self.preset.param.watch(lambda event: self.apply_preset(event.new), "value")
        self.preset_note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width",
                                         css_classes=["lsd-preset-note"])
        self._background_shown: tuple = ()
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
        self.status_pane = pn.pane.Markdown("", css_classes=["lsd-status"], sizing_mode="stretch_width")
        problems = pn.pane.Alert(pn.bind(lambda text: text, p.problems), alert_type="danger",
                                 visible=pn.bind(bool, p.problems), sizing_mode="stretch_width",
                                 css_classes=["lsd-problems"])
        notes = pn.pane.Alert(pn.bind(lambda text: text, p.notes), alert_type="info",
                              visible=pn.bind(bool, p.notes), sizing_mode="stretch_width")
        self.error_alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
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
            self.status_pane, self.error_alert, self.url_note, self.background_list, self.preset,
            pn.Card(
                pn.widgets.Select.from_param(p.system, name="System", css_classes=["lsd-system"]),
                pn.pane.Markdown(f"or upload a structure ({', '.join(UPLOAD_SUFFIXES)}; at most "
                                 f"{self.policy.max_upload_MB:g} MB and {self.policy.max_atoms} atoms):",
                                 margin=(0, 10)), self.upload, self.upload_note,
                pn.widgets.Select.from_param(p.draft, name="Draft model", css_classes=["lsd-draft"]),
                pn.widgets.Select.from_param(p.target, name="Target model", css_classes=["lsd-target"]),
                problems, notes, self.advisor.panel,
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
                pn.widgets.Select.from_param(p.device, name="Device of torch models", css_classes=["lsd-device"]),
                integer(p.n_workers, name=f"Dask workers (at most {self.policy.max_workers})", start=1,
                        end=self.policy.max_workers),
                pn.widgets.Select.from_param(p.scheduler_address, name="Scheduler address (set by the server)",
                                             options=["", *self.policy.scheduler_addresses],
                                             disabled=not self.policy.scheduler_addresses),
                pn.pane.Markdown("\n".join(f"- {u}" for u in unsupported), styles={"font-size": "0.85em"},
                                 visible=bool(unsupported)),
                title="Speculation and execution", sizing_mode="stretch_width"),
            pn.Card(
                integer(p.n_steps, name="Steps", step=1000),
                integer(p.seed, name="Seed"),
                pn.widgets.Checkbox.from_param(p.reference, name="Run plain target MD alongside (reference)"),
                pn.widgets.Checkbox.from_param(p.keep_running, name="Keep running when this tab is closed",
                                               disabled=self.policy.max_background_runs == 0),
                pn.pane.Markdown(f"A background run writes its results to a new folder under "
                                 f"`{self.policy.output_root}` on the server (at most "
                                 f"{self.policy.max_background_runs} background runs at once).",
                                 styles={"font-size": "0.85em"}, margin=(0, 10)),
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

    def _refresh_background(self) -> None:
        """List the server's background runs (those that outlived their page), each with a Stop button."""
        runs = RUNS.background()
        shown = tuple((id(run), run.status, run.data.lsd.n_steps // 100) for run in runs)
        if shown == self._background_shown:
            return
        self._background_shown = shown
        rows: list[Any] = [pn.pane.Markdown("**Background runs on this server**", margin=(0, 5))] if runs else []
        for run in runs:
            stop = pn.widgets.Button(label="Stop", color="danger", width=60, disabled=not run.running,
                                     css_classes=["lsd-stop-background"])
            stop.on_click(lambda event, r=run: r.stop())
            text = f"started {run.started_at}: {run.status}, {run.data.lsd.n_steps} LSD steps → `{run.output_dir}`"
            rows.append(pn.Row(pn.pane.Markdown(text, styles={"font-size": "0.85em"}, sizing_mode="stretch_width"),
                               stop, sizing_mode="stretch_width"))
        self.background_list.objects = rows

    def _main(self) -> pn.Tabs:
        v = self.views.panels
        live = pn.Column(
            pn.pane.Markdown(ABOUT, sizing_mode="stretch_width"),
            self.preset_note,
            pn.Row(pn.Column(v["molecule"], v["strip"], sizing_mode="stretch_width"),
                   pn.Column(v["numbers"], v["speedup"], sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(v["rama_draft"], v["rama_ref"], v["rama_lsd"], sizing_mode="stretch_width"),
            v["observables"],
            pn.pane.Markdown("### Draft MD vs target MD vs LSD", margin=(0, 10)),
            v["comparison"],
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
        self._show_run_state()

    def _show_run_state(self) -> None:
        """Show the controller's status, message and error, and enable the buttons that apply.

        Called on the UI thread only (each refresh period and after a button press): the run thread changes
        the controller's parameters but never the page. A status the run thread pushed into a bound pane
        while the page was streaming updates was seen to be lost for good (``Status: paused`` never shown).
        """
        c = self.controller
        shown = (c.status, c.message, c.steps_done, c.reference_steps_done, c.speculation, c.chosen_draft, c.error)
        if shown == self._run_state_shown:
            return
        self._run_state_shown = shown
        extra = "".join(f"  \n{line}" for line in (c.speculation, c.chosen_draft) if line)
        self.status_pane.object = (f"**Status: {c.status}** — {c.message}  \nLSD steps {c.steps_done}, "
                                   f"target MD steps {c.reference_steps_done}{extra}")
        self.error_alert.param.update(object=c.error, visible=bool(c.error))
        active = c.status in ACTIVE
        self.buttons["start"].disabled = active
        self.buttons["pause"].disabled = c.status not in ("running", "starting")
        self.buttons["resume"].disabled = c.status != "paused"
        self.buttons["stop"].disabled = not active

    def _on_upload(self, event: Any) -> None:
        """Cheap checks here (size, name, XYZ count line); parsing in a worker thread and child process."""
        if not event.new:
            return
        filename, data = list(event.new.items())[-1]
        data = data.encode() if isinstance(data, str) else bytes(data)
        try:
            name = check_upload(filename, data, self.policy.max_upload_bytes)
            path = self.uploads.store(name, data)
            try:
                check_stored(path, self.policy.max_atoms)
            except UploadError:
                path.unlink(missing_ok=True)  # a refused file is not kept
                raise
        except (UploadError, OSError) as exc:
            self._upload_said(str(exc), "danger")
            return
        self._upload_said(f"Checking {name}…", "info")
        threading.Thread(target=self._check_upload, args=(path,), name="lsd-upload-check", daemon=True).start()

    def _check_upload(self, path: Any) -> None:
        """Worker thread: parse the stored file in a child process. The page is changed by
        :meth:`_apply_upload_checks` on the UI thread (a worker that sets parameters bound to panes can
        lose the update while the page streams)."""
        try:
            self._upload_checks.put((path, parse_in_subprocess(path, self.policy.max_atoms,
                                                               self.policy.upload_parse_seconds), None))
        except (UploadError, OSError) as exc:
            self._upload_checks.put((path, None, str(exc)))

    def _apply_upload_checks(self) -> None:
        """UI thread: use each upload whose check finished, or say why it was refused (and remove it)."""
        while True:
            try:
                path, report, error = self._upload_checks.get_nowait()
            except queue.Empty:
                return
            if error is not None:
                path.unlink(missing_ok=True)  # a refused file is not kept
                self._upload_said(error, "danger")
                continue
            self.controller.param.update(structure_path=str(path), system=choices.UPLOADED)
            self._upload_said(f"Using {path.name}: {report['n_atoms']} atoms ({report['formula']}).", "success")

    def apply_preset(self, key: str, settings: bool = True) -> None:
        """Apply a preset's run settings (``choices.PRESETS``; ``settings=False``: already applied, as from
        a URL) and explain what it shows."""
        preset = choices.PRESETS.get(key)
        if preset is None:
            self.preset_note.visible = False
            return
        if settings and not self.controller.running:
            self.controller.param.update(**preset["settings"])
        self.preset_note.param.update(object=preset["explanation"], visible=True)
        if self.preset.value != key:
            self.preset.value = key

    def show_url_messages(self, messages: list[str]) -> None:
        """Say which URL settings were not used (kept on the page while the run goes)."""
        text = "**URL settings not used**\n" + "\n".join(f"- {m}" for m in messages) if messages else ""
        self.url_note.param.update(object=text, visible=bool(messages))

    def _upload_said(self, text: str, kind: str) -> None:
        self.upload_note.param.update(object=text, alert_type=kind, visible=bool(text))

    def session_closed(self) -> None:
        """The page went away: its run stops (unless kept running) and its uploads are removed."""
        self.controller.session_closed()
        self.uploads.remove()

    def _download_trajectory(self) -> io.BytesIO:
        return io.BytesIO(downloads.trajectory_bytes(self.controller.data))

    def _download_stats(self) -> io.StringIO:
        return io.StringIO(downloads.stats_json(self.controller.data))

    def _download_plots(self) -> io.BytesIO:
        return io.BytesIO(downloads.plots_png(self.controller.data))

    # -- refresh ---------------------------------------------------------------------
    def refresh(self) -> bool:
        """One refresh period: False when nothing was pushed (nothing new, or the browser is behind)."""
        self._apply_upload_checks()
        self._show_run_state()
        if self.ack.lagging:
            return False
        self._refresh_background()
        pushed = self.views.refresh()
        if pushed:
            self.ack.sent_one()
        return pushed

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


def client_address() -> tuple[str | None, bool]:
    """(the session's client IP, whether it came through a proxy) from the page request."""
    context = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    request = getattr(context, "request", None)
    if request is None:
        return None, False
    headers = {str(k).lower() for k in (getattr(request, "headers", None) or {})}
    return getattr(request, "remote_ip", None), bool(headers & {"x-forwarded-for", "forwarded", "x-real-ip"})


def refusal_page(reason: str) -> pn.template.BaseTemplate:
    return pn.template.BootstrapTemplate(title="LSD — not served", main=[pn.pane.Alert(reason, alert_type="danger")],
                                         header_background="#2e7d32")


def serve_page(policy: ServerPolicy | None = None) -> pn.template.BaseTemplate:
    """Build one session's page: its own controller, URL settings applied, stopped when the tab closes.

    ``policy``: the operator's limits (default: ``LSD_DASHBOARD_*`` variables and ``panel serve app
    --args ...``). Sessions from clients that are not on this machine, or that come through a proxy,
    are refused unless the policy allows remote access (docs/security.md).
    """
    pn.extension("plotly", "tabulator", "filedropper", notifications=False)
    try:
        policy = policy or ServerPolicy.from_sources(argv=sys.argv[1:])
    except ValueError as exc:
        return refusal_page(f"The server's configuration is invalid: {exc}")
    address, proxied = client_address()
    if not policy.allow_remote and address is not None and (proxied or not is_loopback(address)):
        return refusal_page("This LSD dashboard serves only this machine (127.0.0.1). Its operator can allow "
                            "other clients with allow_remote after setting up authentication; see "
                            "docs/security.md.")
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    if served and not OPEN_PAGES.admit(policy.max_sessions):
        return refusal_page(f"This LSD dashboard has {policy.max_sessions} pages open, the most its operator "
                            "allows (max_sessions); close a tab of it or try again in a minute.")
    try:
        controller = RunController(policy=policy)
        messages = apply_query_args(controller, pn.state.session_args or {})
        dashboard = Dashboard(controller)
        dashboard.show_url_messages(messages)
        preset = (pn.state.session_args or {}).get("preset")
        if preset and preset[0].decode(errors="replace") in choices.PRESETS:
            dashboard.apply_preset(preset[0].decode(errors="replace"), settings=False)
    except BaseException:
        if served:
            OPEN_PAGES.release()
        raise
    if served:
        def closed(context) -> None:
            try:
                dashboard.session_closed()
            finally:
                OPEN_PAGES.release()

        pn.state.on_session_destroyed(closed)
    if "autostart" in (pn.state.session_args or {}):
        pn.state.onload(controller.start)
    return dashboard.template()
