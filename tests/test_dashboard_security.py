"""Hostile input to a served dashboard, without a browser: URLs, tampered widget values, uploads,
server limits and background runs. Each must be refused with a readable message, run no code
and touch no file outside the allowed places (tests/test_browser_app.py repeats the worst
cases against a real `panel serve` in Chromium)."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import pytest
from ase import Atoms

pytest.importorskip("panel")

from lsd_dashboard import choices
from lsd_dashboard.app import BoundedFileDropper, Dashboard, apply_query_args
from lsd_dashboard.controller import RunController
from lsd_dashboard.policy import ServerPolicy, is_loopback
from lsd_dashboard.runs import KEEP_ENDED, RUNS, RunRegistry
from lsd_dashboard.uploads import UploadError, check_stored, check_upload, parse_in_subprocess
from lsd_engine import FunctionModel
from lsd_engine.toys import harmonic_bonds, morse_cluster


def _args(**values) -> dict[str, list[bytes]]:
    return {key: [str(value).encode()] for key, value in values.items()}


def _marker_command(tmp_path: Path) -> tuple[Path, str]:
    marker = tmp_path / "pwned"
    return marker, f"command='touch {marker}'"


HOSTILE_MODELS = ["ase:os.system", "ase:subprocess.call", "ase:builtins.exec", "ase:posix.system",
                  "ase:Vasp", "ase:espresso", "uma:/etc/passwd", "distilled:/tmp/evil.npz", "os.system"]


@pytest.mark.parametrize("name", HOSTILE_MODELS)
def test_model_names_from_a_url_or_a_tampered_widget_run_nothing(tmp_path, name):
    marker, option = _marker_command(tmp_path)
    c = RunController(n_steps=10)
    messages = apply_query_args(c, _args(draft=name, draft_options=option, target=name, target_options=option))
    assert (c.draft, c.target) == (choices.DEFAULT_DRAFT, choices.DEFAULT_TARGET)
    assert sum("not one of the choices offered" in m for m in messages) == 2
    # a crafted websocket message can set a Select's value to anything: the controller refuses it
    c.param.update(draft=name, draft_options=option)
    assert "is not one of the offered models" in c.problems
    assert not c.start() and "Cannot start" in c.error
    time.sleep(0.2)
    assert not marker.exists()


@pytest.mark.parametrize("options", [
    "command='touch {marker}'", "pdb='/etc/passwd'", "topology='/etc/passwd'", "extra_xml=('/etc/passwd',)",
    "__import__('os').system('touch {marker}')", "solvent=__import__('os')", "threads=10**100",
    "model='/tmp/evil.pth'", "platform='NoSuchPlatform'", "solvent=True",
])
def test_model_options_outside_the_allowlist_are_refused(tmp_path, options):
    marker = tmp_path / "pwned"
    c = RunController(target="amber14", target_options=options.format(marker=marker), n_steps=10)
    assert "Target options:" in c.problems, c.problems
    assert not c.start()
    assert not marker.exists()


def test_allowed_model_options_pass_and_run():
    c = RunController(target="amber14", target_options="solvent='implicit', threads=1")
    assert "options" not in c.problems, c.problems
    c = RunController(system="copper-32", draft="ase:lj", draft_options="sigma=2.3, epsilon=0.4, rc=6.0",
                      target="emt", n_steps=20, lookahead=2, reference=False, block_seconds=0.05)
    assert c.problems == ""
    c.run_blocking(timeout=120)
    assert c.status == "finished", c.error


@pytest.mark.parametrize("setting", ["structure_path", "output_dir", "scheduler_address", "policy", "data",
                                     "status", "_custom"])
def test_files_folders_addresses_and_state_cannot_come_from_a_url(tmp_path, setting):
    c = RunController()
    before = getattr(c, setting, None)
    messages = apply_query_args(c, _args(**{setting: str(tmp_path / "x")}))
    assert any("not one a URL may set" in m for m in messages)
    assert getattr(c, setting, None) == before


@pytest.mark.parametrize("system", ["/etc/passwd", "../../../../etc/hosts", "secret.xyz", "{secret}"])
def test_systems_naming_server_files_are_refused_without_reading_them(tmp_path, system):
    secret = tmp_path / "secret.xyz"
    secret.write_text("1\nTOP-SECRET-LINE\nH 0 0 0\n")
    name = system.format(secret=secret)
    c = RunController()
    messages = apply_query_args(c, _args(system=name))
    assert c.system == choices.DEFAULT_SYSTEM and any("not used" in m for m in messages)
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        c.system = name  # tampered widget
    finally:
        os.chdir(old)
    assert "is not one of the offered systems" in c.problems
    assert "TOP-SECRET" not in c.problems and "No such file" not in c.problems


@pytest.mark.parametrize("key, value, expected", [
    ("n_steps", 10**12, "max_steps"), ("n_workers", 1024, "max_workers"),
    ("save_stride", 1, "max_saved_frames"),
])
def test_counts_beyond_the_servers_limits_are_refused(key, value, expected):
    policy = ServerPolicy(max_steps=10**6, max_saved_frames=1000)
    settings = {"n_steps": 5000, "executor": choices.LOCAL_DASK, key: value}
    c = RunController(policy=policy, **settings)
    assert expected in c.problems
    assert not c.start()


@pytest.mark.parametrize("text", ["-1", "99999999999999999999999", "1e400", "nan", "x" * 1000])
def test_bad_numbers_in_a_url_are_reported(text):
    c = RunController()
    messages = apply_query_args(c, _args(seed=text, temperature_K=text))
    assert c.seed == 0 and c.temperature_K == 300.0 and len(messages) == 2


def test_scheduler_addresses_only_from_the_operator():
    c = RunController(executor=choices.SCHEDULER, scheduler_address="tcp://203.0.113.7:8786")
    assert "only the addresses the server's operator configured" in c.problems
    allowed = RunController(policy=ServerPolicy(scheduler_addresses=("tcp://127.0.0.1:8786",)),
                            executor=choices.SCHEDULER, scheduler_address="tcp://127.0.0.1:8786")
    assert "Scheduler address" not in allowed.problems


def test_server_policy_from_environment_and_args():
    env = {"LSD_DASHBOARD_MAX_ATOMS": "100", "LSD_DASHBOARD_SCHEDULER_ADDRESSES": "tcp://a:1, tcp://b:2",
           "LSD_DASHBOARD_ALLOW_REMOTE": "false"}
    policy = ServerPolicy.from_sources(env, ["--max-atoms", "200", "--max-upload-mb", "2.5"])
    assert (policy.max_atoms, policy.max_upload_MB, policy.allow_remote) == (200, 2.5, False)
    assert policy.scheduler_addresses == ("tcp://a:1", "tcp://b:2")
    assert ServerPolicy().allow_remote is False and ServerPolicy().scheduler_addresses == ()
    with pytest.raises(ValueError, match="max_atoms"):
        ServerPolicy.from_sources({"LSD_DASHBOARD_MAX_ATOMS": "lots"})
    with pytest.raises(ValueError, match="allow_remote"):
        ServerPolicy.from_sources({"LSD_DASHBOARD_ALLOW_REMOTE": "maybe"})
    with pytest.raises(ValueError, match="max_active_runs"):
        ServerPolicy(max_active_runs=0)


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.5", False), ("192.168.1.2", False), ("203.0.113.9", False), ("::ffff:8.8.8.8", False),
    ("", False), (None, False), ("localhost", False), ("not an ip", False),
])
def test_loopback_clients(address, loopback):
    assert is_loopback(address) is loopback


# -- uploads ----------------------------------------------------------------------------------

MAX = 10_000_000


def test_a_huge_xyz_header_is_refused_before_any_allocation(tmp_path):
    started = time.perf_counter()
    for data, expected in ((b"999999999999\n\nH 0 0 0\n", "only 9 bytes follow"),
                           (b"4000\ncomment\nH 0 0 0\n\n\n", "4000 atoms, but only 18 bytes follow"),
                           (b"4000\n\n" + b"H 0 0 0\n" * 4000, "more than the limit of 3000")):
        path = tmp_path / "big.xyz"
        path.write_bytes(data)
        with pytest.raises(UploadError, match=expected) as refused:
            check_stored(path, 3000)
        assert str(tmp_path) not in str(refused.value)  # the server's folder is not shown
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("filename", ["evil.py", "x.traj", "x.npz", "x.pkl", "noext", ".bashrc", "x.pdb.py"])
def test_uploads_other_than_structure_text_formats_are_refused(filename):
    with pytest.raises(UploadError, match="only .pdb"):
        check_upload(filename, b"import os\nos.system('id')\n", MAX)


def test_oversize_and_empty_uploads_are_refused():
    with pytest.raises(UploadError, match="larger than this server's limit of 1.0 MB"):
        check_upload("big.pdb", b"x" * 1_000_001, 1_000_000)
    with pytest.raises(UploadError, match="empty"):
        check_upload("empty.pdb", b"  \n", MAX)


def test_upload_names_cannot_leave_the_session_folder():
    assert check_upload("../../etc/cron.d/evil.pdb", b"ATOM\n", MAX) == "evil.pdb"
    assert check_upload("/abs/path/x y$(id).xyz", b"1\n\nH 0 0 0\n", MAX) == "x y__id_.xyz"


def test_parsing_is_limited_in_time_and_atoms(tmp_path):
    path = tmp_path / "many.xyz"
    path.write_text("3000\n\n" + "".join(f"H {i * 1.1:.2f} 0 0\n" for i in range(3000)))
    with pytest.raises(UploadError, match="at most 100"):
        parse_in_subprocess(path, max_atoms=100, timeout_s=60)
    with pytest.raises(UploadError, match="longer than 0.01 s"):
        parse_in_subprocess(path, max_atoms=5000, timeout_s=0.01)
    garbage = tmp_path / "garbage.pdb"
    garbage.write_bytes(b"\x00\xff" * 100)
    with pytest.raises(UploadError, match="garbage.pdb"):
        parse_in_subprocess(garbage, max_atoms=5000, timeout_s=60)


def test_the_upload_widget_drops_chunks_beyond_its_limit():
    from panel.models.file_dropper import UploadEvent

    widget = BoundedFileDropper(max_bytes=1000)
    model = widget.get_root()

    def send(chunk: int, total: int, size: int) -> None:
        data = {"name": "big.pdb", "chunk": chunk, "total_chunks": total, "data": b"x" * size, "type": ""}
        widget._process_event(UploadEvent(model=model, data=data))

    send(1, 3, 600)
    send(2, 3, 600)  # 1200 bytes > 1000: dropped here
    send(3, 3, 600)
    assert widget.value == {} and "larger than this server's limit" in widget.refused
    send(1, 1, 900)  # a file within the limit still arrives
    assert widget.value == {"big.pdb": b"x" * 900}


def test_a_hostile_upload_in_the_page_is_refused_and_leaves_no_file(tmp_path):
    dashboard = Dashboard(RunController(policy=ServerPolicy(max_atoms=50)))
    c = dashboard.controller
    dashboard.upload.value = {"huge.xyz": b"999999999999\n\n"}
    assert "999999999999 atoms, but only" in dashboard.upload_note.object and c.system == choices.DEFAULT_SYSTEM
    dashboard.upload.value = {"evil.py": b"import os"}
    assert "only .pdb" in dashboard.upload_note.object
    assert dashboard.uploads.path is None or not any(dashboard.uploads.path.iterdir())  # nothing refused is kept
    # passes the cheap checks, fails in the child process's reader: refused on the UI thread, file removed
    dashboard.upload.value = {"garbage.xyz": b"2\n\nH 0 0 0\nH zero one two\n"}
    assert "Checking garbage.xyz" in dashboard.upload_note.object
    deadline = time.time() + 60
    while "Checking" in dashboard.upload_note.object and time.time() < deadline:
        dashboard.refresh()
        time.sleep(0.05)
    assert "garbage.xyz: not a readable .xyz file" in dashboard.upload_note.object, dashboard.upload_note.object
    assert dashboard.upload_note.alert_type == "danger" and c.system == choices.DEFAULT_SYSTEM
    assert not any(dashboard.uploads.path.iterdir())
    dashboard.session_closed()


# -- runs and background runs -------------------------------------------------------------------

def _cluster() -> Atoms:
    return Atoms("H4", positions=[[0, 0, 0], [1.5, 0, 0], [0.75, 1.3, 0], [0.75, 0.45, 1.2]])


def _slow_toy(policy: ServerPolicy, **settings) -> RunController:
    def slow(positions):
        time.sleep(0.003)
        return morse_cluster(positions)

    return RunController(policy=policy, n_steps=100_000, block_seconds=0.05, **settings).use(
        atoms=_cluster(), draft=FunctionModel(partial(harmonic_bonds, k_eV_per_A2=2.0), name="harmonic"),
        target=FunctionModel(slow, name="slow morse"))


def test_concurrent_runs_are_capped():
    policy = ServerPolicy(max_active_runs=1)
    first, second = _slow_toy(policy), _slow_toy(policy)
    try:
        assert first.start()
        assert not second.start() and "max_active_runs=1" in second.error
        first.stop(wait=True, timeout=30)
        assert second.start()
    finally:
        RUNS.stop_all(timeout=30)


def test_background_runs_are_capped_listed_stoppable_from_a_page_and_written_under_the_root(tmp_path):
    policy = ServerPolicy(max_active_runs=4, max_background_runs=1, output_root=tmp_path / "root")
    kept, refused = _slow_toy(policy, keep_running=True), _slow_toy(policy, keep_running=True)
    try:
        assert kept.start() and refused.start()
        kept.session_closed()
        refused.session_closed()  # the cap is reached: this one stops with its page
        assert refused.wait(30) and refused.status == "stopped"
        assert kept.running and [r for r in RUNS.background() if r is kept] == [kept]
        assert Path(kept.output_dir).parent == (tmp_path / "root").resolve()
        page = Dashboard(RunController(policy=policy))
        page.refresh()
        text = str(page.background_list.objects[1].objects[0].object)
        assert "running" in text and kept.output_dir in text
        stop = page.background_list.objects[1].objects[1]
        stop.clicks += 1  # the Stop button of the listed run
        assert kept.wait(30) and kept.status == "stopped"
        assert {p.name for p in Path(kept.output_dir).iterdir()} >= {"lsd-stats.json"}
    finally:
        RUNS.stop_all(timeout=30)
        RUNS.forget(kept)


class _Ended:
    running = False

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        pass


def test_ended_background_runs_are_pruned():
    registry = RunRegistry()
    runs = [_Ended() for _ in range(KEEP_ENDED + 3)]
    for run in runs:
        registry._background.append(run)  # noqa: SLF001 - white-box: fill the book with ended runs
    assert registry.background() == runs[-KEEP_ENDED:]
