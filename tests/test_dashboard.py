"""The dashboard without a browser: controller lifecycle, streaming in blocks, errors, choices,
views, theory explorer, downloads and URL settings."""

from __future__ import annotations

import io
import json
import math
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

pytest.importorskip("panel")
pytest.importorskip("holoviews")

from lsd_dashboard import choices
from lsd_dashboard.controller import DRAFT_SEED_OFFSET, REFERENCE_SEED_OFFSET, RunController
from lsd_dashboard.runs import RUNS
from lsd_engine import FunctionModel, LangevinMD, LangevinParams, SpeculativeSampler, StepKind
from lsd_engine.runconfig import RunConfig
from lsd_engine.toys import harmonic_bonds, morse_cluster


def _cluster() -> Atoms:
    return Atoms("H4", positions=[[0, 0, 0], [1.5, 0, 0], [0.75, 1.3, 0], [0.75, 0.45, 1.2]])


def _draft():
    return FunctionModel(partial(harmonic_bonds, k_eV_per_A2=2.0), name="harmonic")


def _target():
    return FunctionModel(morse_cluster, name="morse")


def _slow(fn, seconds=0.003):
    def evaluate(positions):
        time.sleep(seconds)
        return fn(positions)
    return evaluate


def _toy_controller(**params) -> RunController:
    # the plain sampler (fixed K, constant EC), so runs can be compared with SpeculativeSampler's
    settings = dict(n_steps=200, lookahead=4, block_seconds=0.002, save_stride=1, seed=3, draft_learning="none",
                    adaptive_lookahead=False)
    settings.update(params)
    return RunController(**settings).use(atoms=_cluster(), draft=_draft(), target=_target())


def _wait_for(predicate, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# -- controller ---------------------------------------------------------------------------

def test_defaults_are_the_engines_measured_best():
    """The page starts from RunConfig's defaults, the same as `lsd run`: automatic draft, online draft
    learning, adaptive K."""
    c, run = RunController(), RunConfig()
    same = ("system", "draft", "target", "timestep_fs", "temperature_K", "friction_per_ps", "lookahead",
            "error_correction", "draft_learning", "adaptive_lookahead", "min_lookahead", "hydrogen_mass_amu",
            "mode", "device", "seed")
    assert {k: getattr(c, k) for k in same} == {k: getattr(run, k) for k in same}
    assert c.n_workers == run.workers
    assert (c.draft, c.draft_learning, c.adaptive_lookahead) == ("auto", "online", True)
    assert c.run_config() == run  # nothing is lost on the way to the engine
    assert c.executor == choices.IN_PROCESS and c.reference and not c.keep_running
    assert c.status == "idle"


def test_streaming_reproduces_one_long_run_and_the_reference_is_plain_md():
    c = _toy_controller(n_steps=300).run_blocking(timeout=60)
    assert c.status == "finished", c.error
    data = c.data
    assert data.lsd.n_steps == 300 and len(data.history["step"].view()) > 3  # many streamed blocks
    params = LangevinParams(0.5, 300.0, 10.0)
    one_run = SpeculativeSampler(_cluster(), _draft(), _target(), params, lookahead=4, seed=3).run(300)
    frames = data.lsd.saved_frames()
    np.testing.assert_array_equal(frames["positions"], one_run.positions)
    np.testing.assert_array_equal(frames["kinds"], one_run.kinds)
    assert data.lsd.stats.target_calls == one_run.stats.target_calls  # streaming never cuts a round
    assert set(np.unique(frames["kinds"][1:])) <= {StepKind.ACCEPTED, StepKind.REPAIRED, StepKind.TARGET}
    n_ref = data.reference.n_steps
    assert n_ref > 0
    reference = LangevinMD(_cluster(), _target(), params, seed=3 + REFERENCE_SEED_OFFSET).run(n_ref)
    np.testing.assert_array_equal(data.reference.saved_frames()["positions"], reference.positions)
    stats = data.lsd.stats
    assert stats.accepted_steps + stats.repaired_steps + stats.target_steps == 300
    assert 0 < stats.acceptance_rate < 1
    assert math.isfinite(data.measured_speedup()) and math.isfinite(data.predicted_speedup())


def test_draft_md_runs_alongside_and_is_plain_draft_md():
    c = _toy_controller(n_steps=300, draft_reference=True).run_blocking(timeout=60)
    assert c.status == "finished", c.error
    n_draft = c.data.draft.n_steps
    assert n_draft > 0
    params = LangevinParams(0.5, 300.0, 10.0)
    plain = LangevinMD(_cluster(), _draft(), params, seed=3 + DRAFT_SEED_OFFSET).run(n_draft)
    np.testing.assert_array_equal(c.data.draft.saved_frames()["positions"], plain.positions)
    names = {r["name"] for r in c.data.comparison.reports()}
    assert {"H–H distances", "kinetic temperature", "potential energy"} <= names
    summary = c.data.summary()
    assert summary["draft_md"]["n_steps"] == n_draft and summary["throughput_ns_per_day"]["LSD"] > 0
    assert summary["execution"]["executor"] == "local" and summary["execution"]["device"] == "cpu"
    json.dumps(summary)  # what the statistics download writes


def test_pause_resume_stop_keep_the_data():
    c = RunController(n_steps=100_000, lookahead=4, block_seconds=0.05).use(
        atoms=_cluster(), draft=_draft(), target=FunctionModel(_slow(morse_cluster), name="slow morse"))
    assert c.start()
    assert _wait_for(lambda: c.status == "running" and c.steps_done > 0)
    c.pause()
    assert _wait_for(lambda: c.status == "paused")
    paused_at = c.data.lsd.n_steps
    time.sleep(0.3)
    assert c.data.lsd.n_steps == paused_at
    c.resume()
    assert _wait_for(lambda: c.data.lsd.n_steps > paused_at)
    c.stop(wait=True, timeout=30)
    assert c.status == "stopped" and not c.running
    assert c.data.lsd.n_steps > paused_at and "Stopped after" in c.message
    assert not c.start() or c.stop(wait=True) is None  # a stopped run can be restarted


def test_closing_the_tab_stops_unless_asked_to_keep_running(tmp_path):
    slow = FunctionModel(_slow(morse_cluster), name="slow morse")
    c = RunController(n_steps=100_000, block_seconds=0.05).use(atoms=_cluster(), draft=_draft(), target=slow)
    c.start()
    assert _wait_for(lambda: c.steps_done > 0)
    c.session_closed()
    assert c.wait(30) and c.status == "stopped" and not c.detached
    # asked to keep running: it goes on without its page and writes its results when it ends
    c.param.update(keep_running=True, output_dir=str(tmp_path / "run"), n_steps=300)
    c.start()
    assert _wait_for(lambda: c.steps_done > 0)
    c.session_closed()
    time.sleep(0.2)
    assert c.running and any(run is c for run in RUNS.background())
    assert c.wait(60) and c.status == "finished"
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"lsd-stats.json", "lsd-plots.png",
                                                              "lsd-trajectory.extxyz"}
    assert "Results written to" in c.message
    RUNS.forget(c)


def test_model_error_is_a_readable_message_and_the_data_so_far_is_kept():
    calls = {"n": 0}

    def flaky(positions):
        calls["n"] += 1
        if calls["n"] > 40:
            raise RuntimeError("GPU fell off the bus")
        return morse_cluster(positions)

    c = RunController(n_steps=5000, block_seconds=0.02, reference=False).use(
        atoms=_cluster(), draft=_draft(), target=FunctionModel(flaky, name="flaky target"))
    c.run_blocking(timeout=60)
    assert c.status == "error"
    assert "flaky target" in c.error and "GPU fell off the bus" in c.error and "step" in c.error
    assert "Traceback" not in c.error  # a ModelError is explained, not dumped
    assert c.data.lsd.n_steps > 0 and "data so far is kept" in c.message


def test_incompatible_choices_are_explained_not_crashing():
    c = RunController(system="copper-32", draft="amber14")
    assert "ani-1x" in c.problems and "Cu" in c.problems
    assert "amber14" in c.problems
    assert not c.start() and c.status == "error" and "Cannot start" in c.error
    c.param.update(draft="emt", target="emt")
    assert c.problems == "" and "draft = target" in c.notes
    c.target = "no-such-model"
    assert "not one of the offered models" in c.problems
    assert choices.parse_options("solvent=") == {"solvent": ""}  # an empty value is the empty string
    c.param.update(target="emt", target_options="solvent=")
    assert "option 'solvent' cannot be set here" in c.problems
    c.target_options = "not an option"
    assert "key=value" in c.problems


def test_auto_draft_is_chosen_when_the_run_starts():
    pytest.importorskip("gfnff")
    c = RunController(n_steps=20, reference=False, draft_reference=False, block_seconds=0.2)  # -> ani-1x
    assert c.draft == "auto" and c.problems == "" and "Draft auto" in c.notes
    c.run_blocking(timeout=180)
    assert c.status == "finished", c.error
    ranking = c.data.auto_draft
    assert ranking["winner"] in choices.offered_candidates("ani-1x")
    assert f"**{ranking['winner']}**" in c.chosen_draft
    assert json.loads(json.dumps(c.data.summary()))["auto_draft"]["winner"] == ranking["winner"]
    c.draft_options = "sigma_A=3.0"
    assert "the automatic draft takes none" in c.problems


def test_uploaded_xyz_has_no_topology_for_amber(tmp_path):
    path = tmp_path / "mol.xyz"
    path.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    c = RunController(system=choices.UPLOADED, structure_path=str(path), draft="amber14")
    assert "amber14 needs residues and bonds" in c.problems
    c.structure_path = str(tmp_path / "missing.xyz")
    assert "System:" in c.problems


def test_real_registry_models_and_ramachandran():
    pytest.importorskip("openmm")
    c = RunController(target="amber14", target_options="solvent='implicit'", n_steps=120, block_seconds=0.1,
                      save_stride=5).run_blocking(timeout=120)
    assert c.status == "finished", c.error
    data = c.data
    assert data.has_dihedrals and data.lsd.ramachandran() is not None
    assert math.isfinite(data.js_divergence())
    assert set(data.lsd.basin_populations()) == {"C7eq", "C5", "alphaR", "C7ax", "alphaL"}
    assert len(data.lsd.saved_frames()["steps"]) == 1 + 120 // 5


def test_dask_executor_and_async_mode_from_the_dashboard():
    pytest.importorskip("openmm")
    pytest.importorskip("distributed")
    c = RunController(target="amber14", target_options="solvent='implicit'", n_steps=40, block_seconds=0.2,
                      executor=choices.LOCAL_DASK, n_workers=1, mode="async")
    assert c.problems == "", c.problems
    c.run_blocking(timeout=180)
    assert c.status == "finished", c.error
    assert c.data.lsd.n_steps == 40 and c.data.lsd.stats.target_calls > 0


def test_draft_learning_and_adaptive_k_validation():
    c = RunController(error_correction=False, draft_learning="bonded", adaptive_lookahead=False)
    assert "Draft learning bonded: needs speculative error correction on" in c.problems
    assert not c.start() and c.status == "error" and "error correction" in c.error
    c.draft_learning = "constant"  # constant EC without EC is just no correction: allowed
    assert c.problems == ""
    c.param.update(error_correction=True, draft_learning="online")
    assert c.problems == ""
    c.param.update(lookahead=4, min_lookahead=6)
    assert c.problems == ""  # the smallest K only matters with adaptive K
    c.adaptive_lookahead = True
    assert "Adaptive lookahead: the smallest K (6) exceeds the lookahead K (4)" in c.problems
    c.min_lookahead = 2
    assert c.problems == ""
    config = c.run_config()
    assert (config.draft_learning, config.adaptive_lookahead, config.min_lookahead, config.lookahead) == \
        ("online", True, 2, 4)
    c.param.update(system="copper-32", draft="emt", target="emt", draft_learning="bonded")
    assert "Draft learning bonded: the bonded correction is for molecules" in c.problems
    c.draft_learning = "online"  # radial+first-order for a crystal
    assert c.problems == ""


def test_draft_learning_and_adaptive_k_stream_their_effect():
    """A learned draft (first-order) and adaptive K on the toy pair with a slow target: the live data
    records K per block, the rounds by K and the correction's state, and the views show them."""
    import panel as pn

    from lsd_dashboard import downloads
    from lsd_dashboard.app import Dashboard

    c = _toy_controller(n_steps=1200, lookahead=10, min_lookahead=2, adaptive_lookahead=True,
                        draft_learning="first-order", block_seconds=0.05)
    c.use(target=FunctionModel(_slow(morse_cluster, 0.002), name="slow morse"))
    dashboard = Dashboard(c)
    pn.panel(dashboard).get_root()
    c.run_blocking(timeout=60)
    assert c.status == "finished", c.error
    data, stats = c.data, c.data.lsd.stats
    blocks = data.blocks_since(0)
    assert len(blocks["step"]) > 3 and blocks["step"][-1] == 1200
    assert np.all((blocks["lookahead"] >= 2) & (blocks["lookahead"] <= 10))
    assert stats.rounds_by_lookahead.size == 11 and stats.rounds_by_lookahead[:2].sum() == 0
    # rounds_by_lookahead counts the rounds that ended; a round cut by a block end is verified in both blocks
    ended = stats.rounds_by_lookahead.sum()
    assert stats.rounds - len(blocks["step"]) <= ended <= stats.rounds and stats.verified_by_depth.size == 10
    assert data.lookahead_now == blocks["lookahead"][-1] and stats.time_learning_s > 0
    # the gate may close at the end (at large K the fit extrapolates worse than constant EC): adaptive K
    # follows the measured call costs, so which state the run ends in depends on the machine's timing
    in_use = data.learning["uses_model"]
    assert data.learning == {"requested": "first-order", "name": "first-order", "learned": True,
                             "uses_model": in_use, "n_labels": data.learning["n_labels"]}
    assert isinstance(in_use, bool) and data.learning["n_labels"] >= 1000
    state = "model in use" if in_use else "constant EC for now"
    assert c.speculation == (f"K {data.lookahead_now} (adaptive 2–10); draft learning: first-order "
                             f"({state}, {data.learning['n_labels']} labels)")
    # theory with the K mix the rounds used tracks the measured steps per round
    assert data.predicted_steps_per_round() == pytest.approx(stats.steps_per_round, rel=0.25)
    dashboard.refresh()
    views, src = dashboard.views, dashboard.views.sources
    assert views.depth_range.factors == [str(k) for k in range(1, 11)]
    assert src["lookahead"].data["k"] == views.depth_range.factors
    assert sum(src["lookahead"].data["share"]) == pytest.approx(1.0)
    assert list(src["blocks"].data["lookahead"]) == list(blocks["lookahead"])
    assert f"first-order ({state}" in views.numbers.object
    assert f"data-testid='lookahead'>{data.lookahead_now} (" in views.numbers.object
    summary = json.loads(downloads.stats_json(data))
    assert summary["config"]["draft_learning"] == "first-order" and summary["config"]["adaptive_lookahead"]
    assert summary["speculation"]["draft_learning"]["uses_model"] is in_use
    assert sum(summary["lsd"]["rounds_by_lookahead"]) == ended


def test_online_learning_and_adaptive_k_on_a_real_pair():
    """amber14 in vacuum drafting amber14 with implicit solvent, 'online' draft learning (bonded
    for a molecule) and adaptive K: the live data shows each block's K and the learning status."""
    pytest.importorskip("openmm")
    # a named draft: with draft auto this cheap, unbatched target gets constant EC (learning cannot pay)
    c = RunController(draft="amber14", target="amber14", target_options="solvent='implicit'", n_steps=300,
                      block_seconds=0.1,
                      lookahead=8, min_lookahead=2, adaptive_lookahead=True, draft_learning="online")
    assert c.problems == "", c.problems
    c.run_blocking(timeout=120)
    assert c.status == "finished", c.error
    data = c.data
    k = data.blocks_since(0)["lookahead"]
    assert len(k) > 1 and np.all((k >= 2) & (k <= 8))
    assert 0 < data.lsd.stats.rounds_by_lookahead.sum() <= data.lsd.stats.rounds
    learning = data.learning
    assert (learning["requested"], learning["name"], learning["learned"]) == ("online", "bonded", True)
    assert learning["n_labels"] > 0 and isinstance(learning["uses_model"], bool)
    state = "model in use" if learning["uses_model"] else "constant EC for now"
    assert c.speculation.endswith(f"draft learning: online → bonded ({state}, {learning['n_labels']} labels)")
    assert len(data.lsd.stats.acceptance_by_depth) == 8


# -- views ------------------------------------------------------------------------------

def test_views_refresh_streams_the_run_into_the_plots():
    import panel as pn

    from lsd_dashboard.app import Dashboard

    # the plain sampler on a cheap pair: fewer than MAX_NEW_POINTS reference steps, so one refresh after the
    # run shows every one
    c = RunController(draft="amber14", target="amber14", target_options="solvent='implicit'", n_steps=80,
                      block_seconds=0.1, draft_learning="none", adaptive_lookahead=False)
    if c.problems:
        pytest.skip(c.problems)
    dashboard = Dashboard(c)
    pn.panel(dashboard).get_root()  # build the Bokeh models, as a page would
    assert dashboard.buttons["start"].disabled is False and dashboard.buttons["stop"].disabled is True
    c.run_blocking(timeout=120)
    assert c.status == "finished", c.error
    assert dashboard.refresh() is True and dashboard.refresh() is False  # nothing new the second time
    views = dashboard.views
    numbers = views.numbers.object
    assert f"data-testid='steps'>{c.data.lsd.n_steps}<" in numbers
    assert f"{c.data.lsd.stats.acceptance_rate:.3f}" in numbers
    assert "step 80" in views.molecule.pane.object.layout.title.text
    src = views.sources
    assert len(src["strip"].data["step"]) == 81 and len(src["trace:LSD"].data["step"]) == 81  # + initial state
    assert len(src["trace:target MD"].data["step"]) == c.data.reference.n_steps + 1
    for label in ("LSD", "target MD"):
        image = src[f"rama:{label}"].data["image"][0]
        assert image.shape == (36, 36) and image.sum() == pytest.approx(1.0)
        assert len(src[f"point:{label}"].data["phi"]) == 1
    assert "js-divergence" in views.observables.object and "C7eq" in views.observables.object
    assert len(src["depth"].data["acceptance"]) == c.lookahead
    assert src["lookahead"].data["share"][-1] == 1.0 and sum(src["lookahead"].data["share"]) == 1.0  # fixed K
    assert "off (constant error correction)" in numbers
    assert sum(src["timing"].data["target"]) > 0
    # a second run resets the views
    c.param.update(n_steps=20, lookahead=3)
    c.run_blocking(timeout=60)
    dashboard.refresh()
    assert len(src["trace:LSD"].data["step"]) == 21 and views.depth_range.factors == ["1", "2", "3"]


def test_refreshes_wait_for_the_browser_acknowledgement():
    from lsd_dashboard.backpressure import MAX_IN_FLIGHT, ClientAck

    ack = ClientAck()
    for _ in range(5):
        ack.sent_one()
    assert not ack.lagging  # never rendered (in-process, notebook cell not shown): never held back
    ack.seen = ack.sent  # the browser rendered and caught up
    for _ in range(MAX_IN_FLIGHT - 1):
        ack.sent_one()
    assert not ack.lagging
    ack.sent_one()
    assert ack.lagging  # MAX_IN_FLIGHT refreshes unacknowledged: the next period is skipped
    ack.seen = ack.sent - 1
    assert not ack.lagging


def test_theory_explorer_curves_follow_the_theory():
    from lsd_dashboard.theory_explorer import SWEEPS, TheoryExplorer

    explorer = TheoryExplorer()
    for axis in SWEEPS:
        explorer.x_axis = axis
        curves = explorer.curves()
        assert np.isfinite(curves[["acceptance", "steps_per_round", "sync", "async"]].to_numpy()).all(), axis
    explorer.x_axis = "force error (eV/Å)"
    assert np.all(np.diff(explorer.curves()["acceptance"]) <= 1e-12)
    explorer.x_axis = "atoms N"
    assert np.all(np.diff(explorer.curves()["acceptance"]) <= 1e-12)
    explorer.x_axis = "temperature (K)"
    assert np.all(np.diff(explorer.curves()["acceptance"]) >= -1e-12)
    explorer.x_axis = "lookahead K"
    curves = explorer.curves()
    current = explorer.current()
    assert current["best_lookahead"] == int(curves["x"][curves["sync"].idxmax()])
    assert explorer.plot() is not None and "acceptance per step" in explorer.summary()


# -- downloads and URL settings ----------------------------------------------------------

def test_downloads_trajectory_stats_and_plots():
    from ase.io import read

    from lsd_dashboard import downloads

    c = _toy_controller(n_steps=60, save_stride=10).run_blocking(timeout=60)
    frames = read(io.StringIO(downloads.trajectory_bytes(c.data).decode()), index=":", format="extxyz")
    assert len(frames) == 7 and len(frames[0]) == 4
    np.testing.assert_allclose(frames[-1].positions, c.data.lsd.saved_frames()["positions"][-1], atol=1e-6)
    stats = json.loads(downloads.stats_json(c.data))
    assert stats["lsd"]["n_steps"] == 60 and stats["config"]["lookahead"] == 4
    assert {"measured_speedup", "predicted_speedup", "reference_md", "basin_populations"} <= set(stats)
    assert downloads.plots_png(c.data).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no frames"):
        downloads.trajectory_bytes(RunController().data)


def test_uploading_a_structure_selects_it(tmp_path):
    import panel as pn

    from lsd_dashboard.app import Dashboard

    pdb = (Path(choices.__file__).resolve().parents[1] / "lsd_engine" / "data" / "alanine_dipeptide.pdb")
    dashboard = Dashboard(RunController())
    pn.panel(dashboard).get_root()
    dashboard.upload.value = {"my peptide.pdb": pdb.read_bytes()}
    c = dashboard.controller
    assert "Checking my peptide.pdb" in dashboard.upload_note.object
    # the check runs in a worker; its result reaches the page on the UI thread, in a refresh period
    time.sleep(0.5)
    assert c.system != choices.UPLOADED
    assert _wait_for(lambda: dashboard.refresh() is None or c.system == choices.UPLOADED, timeout=60), \
        dashboard.upload_note.object
    assert Path(c.structure_path).name == "my peptide.pdb"
    assert Path(c.structure_path).read_bytes() == pdb.read_bytes()
    assert len(c.build_atoms()) == 22 and c.problems == ""
    assert "Using my peptide.pdb: 22 atoms" in dashboard.upload_note.object
    folder = Path(c.structure_path).parent
    assert folder.stat().st_mode & 0o077 == 0  # private to the server's user
    dashboard.session_closed()
    assert not folder.exists()


def test_query_arguments_set_the_run():
    from lsd_dashboard.app import apply_query_args

    c = RunController()
    messages = apply_query_args(c, {"target": [b"amber14"], "n_steps": [b"123"], "error_correction": [b"false"],
                                    "hydrogen_mass_amu": [b"3"], "autostart": [b"1"], "bogus": [b"1"],
                                    "lookahead": [b"many"], "draft_learning": [b"online"],
                                    "adaptive_lookahead": [b"1"], "min_lookahead": [b"3"]})
    assert (c.target, c.n_steps, c.error_correction, c.hydrogen_mass_amu) == ("amber14", 123, False, 3.0)
    assert c.lookahead == 8
    assert (c.draft_learning, c.adaptive_lookahead, c.min_lookahead) == ("online", True, 3)
    assert any("bogus" in m for m in messages) and any("lookahead" in m for m in messages)
    assert not any("autostart" in m for m in messages)


def test_nglview_widget_of_a_run():
    pytest.importorskip("nglview")
    from lsd_dashboard.jupyter import trajectory_atoms, trajectory_widget

    c = _toy_controller(n_steps=30, save_stride=10).run_blocking(timeout=60)
    assert len(trajectory_atoms(c)) == 4
    widget = trajectory_widget(c)
    assert widget.max_frame == 3


def test_draft_advisor_ranks_offered_drafts_and_uses_one():
    pytest.importorskip("gfnff")
    from lsd_dashboard.advisor import DraftAdvisor
    from lsd_dashboard.choices import offered_candidates

    assert "distilled" not in offered_candidates("ani-1x")  # names a file: never tried from a page
    c = RunController(draft="amber14")  # alanine dipeptide -> ani-1x: drafts much cheaper than the target
    advisor = DraftAdvisor(c)
    assert advisor.start() and advisor.wait(180)
    ranking = advisor.ranking
    assert ranking is not None, advisor.status.object
    calibrated = [cand.name for cand in ranking.candidates if cand.skipped is None]
    assert {"gfn-ff", "amber14"} <= set(calibrated) and "calibration took" in advisor.status.object
    assert len(advisor.rows.objects) == 1 + len(ranking.candidates)
    advisor.use("gfn-ff")
    assert c.draft == "gfn-ff" and c.draft_options == "" and c.problems == ""
    # a target as cheap as any draft (the teaching preset's Lennard-Jones on argon-13): nothing can speed it
    # up; each draft is either skipped with its reason (a call costs no less than the target's, or the model
    # cannot take argon) or predicted slower than plain MD, and the table has a row for each
    cheap = DraftAdvisor(RunController(**choices.PRESETS["teaching"]["settings"]))
    assert cheap.start() and cheap.wait(120)
    for cand in cheap.ranking.candidates:
        assert cand.skipped or cand.predicted_speedup < 1.0, cand
    assert len(cheap.rows.objects) == 1 + len(cheap.ranking.candidates)


def test_device_choice_reaches_torch_models_and_an_unusable_gpu_is_refused():
    pytest.importorskip("torchani")
    import torch

    from lsd_engine.models import DeferredModel

    atoms = choices.load_system("alanine-dipeptide-vacuum")
    c = RunController(device="cpu")
    assert c.build_model("target", atoms).device == torch.device("cpu")
    assert c.run_config().device == "cpu"
    if not torch.cuda.is_available():
        c.device = "cuda"
        assert "Device:" in c.problems and "cannot use a GPU" in c.problems and not c.start()
    # dask workers build the target; without a reference run the page never builds a copy of its own
    c = RunController(device="cpu", executor=choices.LOCAL_DASK, reference=False)
    assert isinstance(c.build_model("target", atoms), DeferredModel)
