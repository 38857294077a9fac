"""The `lsd` command line, run as a real subprocess (exit codes, files, one-line errors)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from lsd_engine.learning import load_labels


def lsd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsd_engine.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


FAST_PAIR = ["--system", "alanine-dipeptide-vacuum", "--draft", "amber14", "--target", "amber14",
             "--timestep-fs", "0.5", "--temperature-K", "300", "--friction-per-ps", "10"]


def test_run_writes_outputs_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    first = lsd("run", *FAST_PAIR, "--lookahead", "4", "--steps", "30", "--output", str(out))
    assert first.returncode == 0, first.stderr
    assert "acceptance 1.000" in first.stdout  # draft == target
    assert len(read(out / "trajectory.traj", index=":")) == 31
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 30 and summary["stats"]["acceptance_rate"] == 1.0
    again = lsd("run", *FAST_PAIR, "--lookahead", "4", "--steps", "50", "--output", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert "resuming at step 30" in again.stdout
    assert len(read(out / "trajectory.traj", index=":")) == 51


def test_config_file_and_flags(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('system = "alanine-dipeptide-vacuum"\ndraft = "amber14"\ntarget = "amber14"\n'
                      'timestep_fs = 0.5\nsteps = 10\nlookahead = 3\n')
    done = lsd("run", "--config", str(config), "--steps", "12", "--output", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["step"] == 12  # the flag wins


@pytest.mark.parametrize("args, message", [
    (["run", "--target", "no-such-model", "--steps", "5"], "no-such-model"),
    (["run", "--system", "no-such-system"], "unknown system"),
    (["run", "--timestep-fs", "-1"], "timestep_fs"),
    (["run", "--lookahead", "0"], "lookahead"),
    (["run", "--system", "copper-32", "--draft", "emt", "--target", "ani-1x"], "ani-1x"),
    (["run", *FAST_PAIR, "--output", "/proc/lsd-cannot-write-here"], "not writable"),
    (["run", "--config", "/nonexistent/run.toml"], "not found"),
    (["bench", *FAST_PAIR, "--repeats", "0"], "repeats"),
    (["run", *FAST_PAIR, "--draft-learning", "bonded", "--no-error-correction"], "needs error correction"),
    (["run", *FAST_PAIR, "--adaptive-lookahead", "--lookahead", "3", "--min-lookahead", "5"], "min_lookahead"),
    (["run", "--system", "copper-32", "--draft", "emt", "--target", "emt", "--draft-learning", "bonded"],
     "molecules"),
    (["distill", "--labels", "/nonexistent/labels.npz", "--output", "m.npz"], "labels.npz"),
    (["theory", "--n-atoms", "0"], "n-atoms"),
])
def test_bad_input_gives_one_line_error_and_nonzero_exit(tmp_path, args, message):
    done = lsd(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_bench_contract_json(tmp_path):
    # The contract used by outside scripts (issue 5), with fewer steps to stay quick.
    out = tmp_path / "bench.json"
    done = lsd("bench", "--system", "alanine-dipeptide-vacuum", "--draft", "amber14", "--target", "ani-1x",
               "--timestep-fs", "0.5", "--temperature-K", "300", "--friction-per-ps", "10", "--lookahead", "8",
               "--steps", "60", "--repeats", "2", "--ase-steps", "10", "--json", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    for key in ("speedup", "predicted_speedup", "efficiency", "acceptance_by_depth", "lsd_steps_per_s",
                "target_md_steps_per_s", "expected_steps_per_round", "ase_langevin_steps_per_s"):
        assert key in data, key
    assert len(data["acceptance_by_depth"]) == 8
    assert data["speedup"] > 0 and data["predicted_speedup"] > 0
    assert "speedup" in done.stdout


def test_theory_prints_curves_and_saves_plot(tmp_path):
    done = lsd("theory", "--n-atoms", "100", "--plot", str(tmp_path / "t.png"), "--json", str(tmp_path / "t.json"))
    assert done.returncode == 0, done.stderr
    assert "best K" in done.stdout and (tmp_path / "t.png").stat().st_size > 10_000
    numbers = json.loads((tmp_path / "t.json").read_text())
    assert 0 < numbers["acceptance_per_step"] < 1 and numbers["best_lookahead"] >= 1


def test_models_lists_the_registry():
    done = lsd("models")
    assert done.returncode == 0 and "amber14" in done.stdout and "ani-1x" in done.stdout


def test_learning_and_adaptive_run_saves_labels_that_distill_trains_on(tmp_path):
    out = tmp_path / "run"
    done = lsd("run", *FAST_PAIR, "--draft-learning", "online", "--adaptive-lookahead", "--lookahead", "6",
               "--steps", "40", "--save-labels", "--output", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["adaptive_lookahead"] and summary["options"]["draft_correction"] == "bonded"
    assert sum(summary["stats"]["rounds_by_lookahead"]) >= 1
    assert "target labels" in done.stdout and (out / "labels.npz").exists()
    first = len(load_labels(out / "labels.npz"))
    again = lsd("run", *FAST_PAIR, "--draft-learning", "online", "--adaptive-lookahead", "--lookahead", "6",
                "--steps", "60", "--save-labels", "--output", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    # about one label per step (which steps have one depends on where rounds ended, so on adaptive K,
    # which follows the machine's timing): the resumed run adds its labels to the first run's
    n_labels = len(load_labels(out / "labels.npz"))
    assert 30 <= first < n_labels
    model = tmp_path / "distilled.npz"
    distilled = lsd("distill", "--labels", str(out / "labels.npz"), "--system", "alanine-dipeptide-vacuum",
                    "--draft", "amber14", "--kind", "bonded", "--output", str(model),
                    "--json", str(tmp_path / "d.json"))
    assert distilled.returncode == 0, distilled.stderr
    assert model.exists() and f"distilled:{model}" in distilled.stdout
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["n_train"] + report.get("n_validation", 0) == n_labels


def test_bench_with_learning_reports_the_constant_ec_baseline(tmp_path):
    out = tmp_path / "bench.json"
    done = lsd("bench", *FAST_PAIR, "--lookahead", "4", "--draft-learning", "online", "--adaptive-lookahead",
               "--steps", "40", "--repeats", "2", "--ase-steps", "0", "--json", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["draft_learning"] == "online" and data["adaptive_lookahead"] is True
    for key in ("expected_steps_per_round", "rounds_by_lookahead", "rejection_by_depth", "constant_ec",
                "gain_over_constant_ec"):
        assert key in data, key
    # the baseline: constant EC under the same K policy, so the gain is that of learning alone
    assert data["constant_ec"]["draft_learning"] == "none" and data["constant_ec"]["adaptive_lookahead"]
    assert "constant EC" in done.stdout


def test_default_run_is_repeated_exactly_from_its_config_json(tmp_path):
    """The defaults learn the draft online and adapt K with costs measured at the start; config.json
    records those costs, so `lsd run --config OUTPUT/config.json` gives the same trajectory."""
    pair = ["--system", "alanine-dipeptide-vacuum", "--draft", "amber14", "--target", "ani-1x"]
    first = lsd("run", *pair, "--steps", "30", "--output", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert "adaptive K costs" in first.stdout
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["draft_learning"] == "online" and saved["adaptive_lookahead"] is True
    assert set(saved["adaptive_costs"]) == {"draft_step_s", "target_batch_s", "overhead_s"}
    again = lsd("run", "--config", str(tmp_path / "a" / "config.json"), "--output", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr
    assert "adaptive K costs" not in again.stdout  # given, not measured
    a, b = (read(tmp_path / name / "trajectory.traj", index=":") for name in ("a", "b"))
    assert len(a) == len(b) == 31
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["options"]["draft_correction"] == "bonded" and summary["options"]["adaptive_lookahead"]


def test_each_default_can_be_turned_off(tmp_path):
    out = tmp_path / "plain"
    done = lsd("run", *FAST_PAIR, "--no-adaptive-lookahead", "--no-error-correction", "--lookahead", "3",
               "--steps", "8", "--output", str(out))
    assert done.returncode == 0, done.stderr
    saved = json.loads((out / "config.json").read_text())
    assert saved["adaptive_lookahead"] is False and saved["draft_learning"] == "none"
    assert saved["adaptive_costs"] is None
    bad = lsd("run", "--config", str(_write(tmp_path / "c.toml", "[adaptive_costs]\ndraft_step_s = 0.001\n"
                                           "target_batch_s = { 1 = -2.0 }\n")), "--output", str(tmp_path / "x"))
    assert bad.returncode == 2 and "target_batch_s[1]" in bad.stderr


def _write(path, text):
    path.write_text(text)
    return path
