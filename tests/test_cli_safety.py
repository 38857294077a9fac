"""`lsd run` never loses a run: output folders, --resume / --overwrite, malformed files, wrong config types.

Runs the real CLI in-process (``lsd_engine.cli.main``) on a 3-atom copper cluster with
ASE's EMT as the draft and (mostly) ASE's Lennard-Jones as the target, a few steps each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from lsd_engine.cli import main


@pytest.fixture()
def cluster(tmp_path) -> Path:
    path = tmp_path / "cu3.xyz"
    path.write_text("3\n\nCu 0 0 0\nCu 2.5 0 0\nCu 0 2.5 0\n")
    return path


def run_args(system: Path, out: Path, *extra: str, target: str = "ase:lj") -> list[str]:
    return ["run", "--system", str(system), "--draft", "emt", "--target", target, "--lookahead", "4",
            "--output", str(out), *extra]


def lsd(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "step/s" not in line and "it/s" not in line
             and not line.lstrip().startswith(("0%", "|"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_non_empty_output_is_refused_unless_resume_or_overwrite(capsys, tmp_path, cluster):
    out = tmp_path / "keep"
    code, _, err = lsd(capsys, *run_args(cluster, out, "--steps", "12"))
    assert code == 0, err
    before = {name: (out / name).read_bytes() for name in ("trajectory.traj", "checkpoint.npz", "summary.json")}
    code, _, err = lsd(capsys, *run_args(cluster, out, "--steps", "5"))
    line = one_line_error(err)
    assert code == 2 and "not empty" in line and "--resume" in line and "--overwrite" in line
    assert "checkpoint.npz" in line and "trajectory.traj" in line and "summary.json" in line
    assert before == {name: (out / name).read_bytes() for name in before}  # nothing touched
    # a refused --overwrite (bad setting) also loses nothing: validation comes first
    code, _, err = lsd(capsys, *run_args(cluster, out, "--steps", "5", "--overwrite", "--target", "no-such-model"))
    assert code == 2 and "no-such-model" in one_line_error(err)
    assert before == {name: (out / name).read_bytes() for name in before}
    (out / "notes.txt").write_text("mine")
    code, stdout, err = lsd(capsys, *run_args(cluster, out, "--steps", "5", "--overwrite"))
    assert code == 0, err
    assert "--overwrite: replaced" in stdout
    assert len(read(out / "trajectory.traj", index=":")) == 6
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    assert json.loads((out / "summary.json").read_text())["step"] == 5
    with pytest.raises(SystemExit) as exit_status:  # argparse: not both
        main(run_args(cluster, out, "--steps", "5", "--overwrite", "--resume"))
    assert exit_status.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_resume_needs_only_the_output_and_refuses_different_settings(capsys, tmp_path, cluster):
    out = tmp_path / "run"
    code, _, err = lsd(capsys, *run_args(cluster, out, "--steps", "10", "--seed", "7", "--stride", "2", target="emt"))
    assert code == 0, err
    code, stdout, err = lsd(capsys, "run", "--resume", "--output", str(out), "--steps", "16")
    assert code == 0, err
    assert "resuming at step 10" in stdout
    assert len(read(out / "trajectory.traj", index=":")) == 9  # steps 0, 2, ..., 16 with the saved stride
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 7 and config["lookahead"] == 4 and config["target"] == "emt"
    assert config["steps"] == 16 and config["stride"] == 2
    for flags, expected in [(["--lookahead", "8", "--seed", "99"], "lookahead 8 != 4, seed 99 != 7"),
                            (["--no-error-correction"], "error_correction False != True"),
                            (["--draft", "ase:lj"], "draft 'ase:lj' != 'emt'"),
                            (["--timestep-fs", "1.0"], "timestep_fs 1.0 != 0.5"),
                            (["--stride", "1"], "stride 1 != 2")]:
        code, _, err = lsd(capsys, "run", "--resume", "--output", str(out), "--steps", "20", *flags)
        line = one_line_error(err)
        assert code == 2 and "settings differ from the checkpoint's" in line and expected in line, line
    assert json.loads((out / "summary.json").read_text())["step"] == 16  # refused resumes changed nothing
    # the same settings given again are fine, and the run extends
    code, _, err = lsd(capsys, *run_args(cluster, out, "--steps", "20", "--seed", "7", "--resume", target="emt"))
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["step"] == 20
    code, _, err = lsd(capsys, "run", "--resume", "--output", str(tmp_path / "empty"))
    assert code == 2 and "no checkpoint to resume" in one_line_error(err)


def test_resumed_run_is_the_uninterrupted_run(capsys, tmp_path, cluster):
    whole, split = tmp_path / "whole", tmp_path / "split"
    dotted = "ase:ase.calculators.lj.LennardJones"  # an 'ase:<class path>': not on the safe-options allowlist
    assert lsd(capsys, *run_args(cluster, whole, "--steps", "14", target=dotted))[0] == 0
    assert lsd(capsys, *run_args(cluster, split, "--steps", "6", target=dotted))[0] == 0
    # a saved 'ase:<class>' model is not taken from a file on trust (ASE calculators may run a command=)
    code, _, err = lsd(capsys, "run", "--resume", "--output", str(split), "--steps", "14")
    line = one_line_error(err)
    assert code == 2 and f"give --target '{dotted}' again" in line, line
    code, _, err = lsd(capsys, "run", "--resume", "--output", str(split), "--steps", "14", "--target", dotted)
    assert code == 0, err
    a = np.array([f.positions for f in read(whole / "trajectory.traj", index=":")])
    b = np.array([f.positions for f in read(split / "trajectory.traj", index=":")])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("what", ["checkpoint", "config"])
def test_truncated_or_malformed_run_files_give_one_line(capsys, tmp_path, cluster, what):
    out = tmp_path / "run"
    assert lsd(capsys, *run_args(cluster, out, "--steps", "4"))[0] == 0
    if what == "checkpoint":
        data = (out / "checkpoint.npz").read_bytes()
        (out / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    else:  # an old checkpoint without settings falls back to config.json, which is damaged
        (out / "config.json").write_text("{not json")
        with np.load(out / "checkpoint.npz") as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = json.loads(str(arrays["meta"]))
        meta.pop("run_config")
        arrays["meta"] = np.array(json.dumps(meta))
        np.savez(out / "checkpoint.npz", **arrays)
    code, _, err = lsd(capsys, "run", "--resume", "--output", str(out), "--steps", "8")
    line = one_line_error(err)
    assert code == 2 and str(out) in line, line


@pytest.mark.parametrize("text, message", [
    ('lookahead = "8"\n', "config key 'lookahead' must be an integer, got '8'"),
    ('error_correction = "no"\n', "config key 'error_correction' must be true or false"),
    ("seed = 1.5\n", "config key 'seed' must be an integer"),
    ('timestep_fs = "0.5"\n', "config key 'timestep_fs' must be a finite number"),
    ("steps = true\n", "config key 'steps' must be an integer"),
    ("draft_options = 3\n", "config key 'draft_options'"),
    ("lookahed = 8\n", "unknown configuration key(s): lookahed"),
    ("lookahead = \n", "is not valid TOML"),
])
def test_wrong_toml_types_name_the_file_and_key(capsys, tmp_path, cluster, text, message):
    config = tmp_path / "run.toml"
    config.write_text(text)
    code, _, err = lsd(capsys, *run_args(cluster, tmp_path / "out", "--steps", "2", "--config", str(config)))
    line = one_line_error(err)
    assert code == 2 and str(config) in line and message in line, line
    assert not (tmp_path / "out" / "config.json").exists()


def test_yaml_booleans_must_be_booleans(capsys, tmp_path, cluster):
    pytest.importorskip("yaml")
    config = tmp_path / "run.yaml"
    config.write_text('error_correction: "no"\n')
    code, _, err = lsd(capsys, *run_args(cluster, tmp_path / "out", "--config", str(config)))
    assert code == 2 and "config key 'error_correction' must be true or false" in one_line_error(err)


def test_malformed_structure_files_are_refused_before_parsing(capsys, tmp_path):
    huge = tmp_path / "huge.xyz"
    huge.write_text("999999999999\n\nH 0 0 0\n")  # 24 bytes that would make ASE skip 10^12 lines
    code, _, err = lsd(capsys, "run", "--system", str(huge), "--draft", "emt", "--target", "emt",
                       "--output", str(tmp_path / "o"))
    line = one_line_error(err)
    assert code == 2 and str(huge) in line and "999999999999 atoms" in line
    (tmp_path / "bad.pdb").write_bytes(b"\x00\xff" * 10)
    code, _, err = lsd(capsys, "run", "--system", str(tmp_path / "bad.pdb"), "--output", str(tmp_path / "o"))
    assert code == 2 and "bad.pdb" in one_line_error(err)
    assert not (tmp_path / "o").exists()


def test_labels_and_distilled_files_from_the_cli(capsys, tmp_path):
    (tmp_path / "labels.npz").write_bytes(b"PK\x03\x04 truncated")
    code, _, err = lsd(capsys, "distill", "--labels", str(tmp_path / "labels.npz"), "--output", str(tmp_path / "m.npz"))
    assert code == 2 and "labels.npz" in one_line_error(err)
    np.savez(tmp_path / "model.npz", header=np.array(json.dumps({"format": "lsd-distilled", "version": 1,
                                                                  "kind": "bonded", "numbers": [1, 6],
                                                                  "base": "ase:os.system", "options": {}})))
    code, _, err = lsd(capsys, "run", "--system", "alanine-dipeptide-vacuum", "--draft",
                       f"distilled:{tmp_path / 'model.npz'}", "--target", "emt", "--output", str(tmp_path / "o"))
    line = one_line_error(err)
    assert code == 2 and "model.npz" in line and "'base'" in line, line
