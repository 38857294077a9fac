"""Where torch targets compute: the device option, its errors, the recipe dask workers rebuild
from, where a run says it ran, GPU counting, thread limits shared between threads, and
(where a CUDA GPU exists, marked ``gpu``) every torch model on CUDA against the CPU."""

from __future__ import annotations

import logging
import os
import pickle
import sys
import threading
import time
import warnings
from types import SimpleNamespace

import cloudpickle
import numpy as np
import pytest
import torch

from lsd_engine import ModelError, models, systems
from lsd_engine.errors import LSDError
from lsd_engine.executors import describe_execution
from lsd_engine.executors.gpus import PYNVML_FIX, gpu_inventory
from lsd_engine.models.checks import perturbed_positions
from lsd_engine.models.devices import (DEFAULT_DEVICE, DeviceError, check_device_name, model_device,
                                       resolve_device, use_deterministic_if_asked)
from lsd_engine.models.threads import SharedSetting, torch_threads

CUDA = torch.cuda.is_available()
#: Every registry model with a device option, on a system it supports (fp32 tolerances for the GPU check:
#: energies eV, forces eV/Å; float32 sums over ~20-100 atoms differ in the last bits between kernels).
TORCH_MODELS = {"ani-1x": ("alanine", {}, 2e-3, 2e-3), "sevennet-0": ("copper", {}, 2e-3, 2e-3),
                "chgnet": ("copper", {}, 2e-3, 2e-3), "gfn1-xtb-batched": ("alanine", {}, 1e-6, 1e-6)}


@pytest.fixture(scope="module")
def ala():
    return systems.alanine_dipeptide()


@pytest.fixture(scope="module")
def ani_cpu(ala):
    return models.create("ani-1x", ala, threads=1, device="cpu")


def _system(kind):
    return systems.alanine_dipeptide() if kind == "alanine" else systems.copper_fcc(2)


def test_the_registry_says_which_models_take_a_device():
    torch_models = {s.name for s in models.available() if "cuda" in s.devices}
    assert torch_models == {"ani-1x", "gfn1-xtb-batched", "gfn2-xtb-batched", "sevennet-0", "chgnet", "uma"}
    assert models.get_spec("amber14").devices == ("cpu",) and models.get_spec("ani-1x").to_dict()["devices"] == [
        "cpu", "cuda"]


def test_device_names_are_checked_without_torch_work():
    assert check_device_name(None) == DEFAULT_DEVICE == "auto"
    assert [check_device_name(n) for n in ("CPU", " cuda ", "cuda:1", "auto")] == ["cpu", "cuda", "cuda:1", "auto"]
    for bad in ("gpu", "cuda:", "cuda:x", "mps", 0, True):
        with pytest.raises(DeviceError, match="ani-1x: .*device"):
            check_device_name(bad, "ani-1x")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(CUDA, reason="checks the error of a machine without a usable GPU")
@pytest.mark.parametrize("name, kind", [("ani-1x", "alanine"), ("sevennet-0", "copper"), ("chgnet", "copper"),
                                        ("gfn1-xtb-batched", "alanine"), ("uma:/no/such/checkpoint.pt", "alanine")])
def test_cuda_without_a_gpu_is_a_clear_error_naming_the_model(name, kind):
    for device in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError) as info:
            models.create(name, _system(kind), device=device)
        message = str(info.value)
        assert message.startswith(f"{name}: device '{device}' was requested but torch cannot use a GPU here")
        assert "device='cpu'" in message


def test_explicit_cpu_equals_the_default_and_the_device_travels_in_the_recipe(ala, ani_cpu):
    x = perturbed_positions(ala, 3, 0.05, seed=1)
    default = models.create("ani-1x", ala, threads=1)
    cpu = ani_cpu
    assert cpu.device == torch.device("cpu") and model_device(cpu)["device"] == "cpu"
    if not CUDA:
        assert default.device == torch.device("cpu")
        for got, want in zip(default.evaluate(x), cpu.evaluate(x)):
            np.testing.assert_array_equal(got, want)
    rebuilt = pickle.loads(pickle.dumps(cpu))
    assert rebuilt.device == torch.device("cpu") and rebuilt.recipe[2]["device"] == "cpu"
    for got, want in zip(rebuilt.evaluate(x), cpu.evaluate(x)):
        np.testing.assert_array_equal(got, want)


def test_a_deferred_model_is_its_recipe_and_is_built_only_when_evaluated(ala, ani_cpu):
    x = perturbed_positions(ala, 2, 0.05, seed=2)
    target = models.deferred("ani-1x", ala, threads=1, device="CPU")
    assert target.built is None and target.batched and target.n_atoms == len(ala)
    assert target.describe_device() == {"device": "not built here", "requested_device": "cpu"}
    built = ani_cpu
    assert cloudpickle.dumps(target) == cloudpickle.dumps(built)  # dask workers get the same payload, same cache
    for got, want in zip(target.evaluate(x), built.evaluate(x)):
        np.testing.assert_array_equal(got, want)
    assert target.built is not None and describe_execution(target) == {
        "executor": "local", "workers": 1, **model_device(built)}
    with pytest.raises(LSDError, match="does not support element"):
        models.deferred("ani-1x", systems.copper_fcc(2))
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        models.deferred("ani-1x", ala, device="gpu")


# -- dask workers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def capped(request):
    """A local cluster asked for 2 workers where (we say) one GPU is visible: CPU workers, with a warning."""
    pytest.importorskip("distributed")
    from lsd_engine.executors import dask_executor

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    dask_executor.log.addHandler(handler)
    saved = dask_executor.visible_gpus
    dask_executor.visible_gpus = lambda: 1
    try:
        with dask_executor.DaskExecutor(n_workers=2) as ex:
            yield ex, records
    finally:
        dask_executor.visible_gpus = saved
        dask_executor.log.removeHandler(handler)


def test_more_workers_than_gpus_is_reported_and_cpu_workers_hide_the_gpus(capped, ala, ani_cpu):
    ex, records = capped
    assert ex.kind == "cpu" and len(ex.workers) == 2 and ex.requested_workers == 2
    expected = ("2 workers were asked for but 1 GPU(s) are visible (dask-cuda runs one worker per GPU; ask for at "
                "most 1 workers, or none, to get GPU workers); starting 2 CPU dask worker process(es) instead")
    assert ex.note == expected
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.WARNING, expected)]
    target = models.deferred("ani-1x", ala, threads=1)  # device "auto": the CPU on CPU workers, GPU or not
    x = perturbed_positions(ala, 2, 0.05, seed=3)
    energies, forces = ex.evaluate(target, x, role="target", first_step=0)
    rows = [ani_cpu.evaluate(x[i:i + 1]) for i in range(2)]  # one state per worker (fp32: batching moves last bits)
    np.testing.assert_array_equal(energies, np.concatenate([r[0] for r in rows]))
    np.testing.assert_array_equal(forces, np.concatenate([r[1] for r in rows]))
    assert target.built is None  # the client never built a copy
    where = describe_execution(target, ex)
    assert (where["executor"], where["cluster"], where["workers"], where["device"]) == ("dask", "cpu", 2, "cpu")
    assert where["note"] == expected and len(where["worker_devices"]) == 2
    assert {w["cuda_visible_devices"] for w in where["worker_devices"]} == {""}
    assert len({w["pid"] for w in where["worker_devices"]} | {os.getpid()}) == 3


def test_cuda_asked_of_cpu_workers_fails_loudly_on_load(capped, ala):
    ex, _ = capped
    with pytest.raises(ModelError, match=r"could not be loaded on dask worker .*DeviceError: ani-1x: device 'cuda' "
                                         r"was requested but torch cannot use a GPU here"):
        ex.evaluate(models.deferred("ani-1x", ala, device="cuda"), ala.positions[None], role="target", first_step=0)


def test_the_local_cluster_http_server_binds_loopback_only(capped):
    ex, _ = capped
    sockets = list(ex.cluster.scheduler.http_server._sockets.values())
    assert sockets and {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}
    assert ex.cluster.scheduler.address.startswith("tcp://127.0.0.1:")


def test_more_gpu_workers_than_gpus_is_an_error(monkeypatch):
    pytest.importorskip("distributed")
    from lsd_engine.executors import dask_executor

    monkeypatch.setattr(dask_executor, "visible_gpus", lambda: 1)
    with pytest.raises(LSDError, match=r"3 GPU dask workers were asked for but 1 GPU\(s\) are visible"):
        dask_executor.DaskExecutor(n_workers=3, gpu=True)


class _BrokenNVML:
    """pynvml as chgnet's old nvidia-ml-py3 leaves it for dask-cuda: a call it does not have."""

    @staticmethod
    def nvmlInit():
        raise AttributeError("module 'pynvml' has no attribute 'nvmlDeviceGetCount_v2'")


class _NoDriverError(Exception):
    value = 12  # NVML_ERROR_LIBRARY_NOT_FOUND: a machine without the NVIDIA driver


def _no_driver():
    raise _NoDriverError("NVML Shared Library Not Found")


def test_a_broken_nvml_is_an_error_not_zero_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", _BrokenNVML)
    inventory = gpu_inventory()
    assert inventory.count == 0 and "NVML failed (AttributeError" in inventory.error and PYNVML_FIX in inventory.error
    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(nvmlInit=_no_driver))
    if not os.path.exists("/dev/nvidia0") and not CUDA:
        assert gpu_inventory().error is None  # a CPU machine: no GPU, and nothing wrong
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_inventory().count == 0 and gpu_inventory().error is None


# -- thread limits --------------------------------------------------------------------------------
def test_shared_setting_never_mixes_values_and_restores_the_process_value():
    state = {"value": 8, "log": []}

    def get():
        return state["value"]

    def set(v):
        state["value"] = v

    setting = SharedSetting(get, set)
    errors = []

    def worker(value):
        for _ in range(30):
            with setting.hold(value):
                if state["value"] != value:
                    errors.append((value, state["value"]))
                time.sleep(0.0005)
                with setting.hold(99):  # nested: runs under the outer value, without waiting
                    if state["value"] != value:
                        errors.append(("nested", state["value"]))

    threads = [threading.Thread(target=worker, args=(v,)) for v in (1, 1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and state["value"] == 8 and setting.holders == 0


def test_models_with_different_thread_counts_in_threads_leave_torch_as_it_was(ala, ani_cpu):
    before = torch.get_num_threads()
    one, two = ani_cpu, models.create("ani-1x", ala, threads=2)
    x = perturbed_positions(ala, 2, 0.05, seed=4)
    reference = one.evaluate(x)
    out = {}

    def run(model, tag):
        out[tag] = [model.evaluate(x) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(m, t)) for m, t in ((one, "a"), (two, "b"), (one, "c"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.get_num_threads() == before
    for tag in "ac":
        for e, f in out[tag]:
            np.testing.assert_array_equal(e, reference[0])
            np.testing.assert_array_equal(f, reference[1])
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_deterministic_algorithms_on_request(monkeypatch):
    monkeypatch.delenv("LSD_DETERMINISTIC", raising=False)
    assert use_deterministic_if_asked() is False
    was = torch.are_deterministic_algorithms_enabled()
    monkeypatch.setenv("LSD_DETERMINISTIC", "1")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        resolve_device("cpu", "ani-1x")
        assert torch.are_deterministic_algorithms_enabled() and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(was)


# -- on a GPU -------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_cuda_matches_cpu(name):
    kind, options, e_tol, f_tol = TORCH_MODELS[name]
    atoms = _system(kind)
    x = perturbed_positions(atoms, 4, 0.05, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = models.create(name, atoms, device="cuda", **options)
        cpu = models.create(name, atoms, device="cpu", **options)
    assert gpu.device.type == "cuda" and model_device(gpu)["device_name"] == torch.cuda.get_device_name(0)
    (e_gpu, f_gpu), (e_cpu, f_cpu) = gpu.evaluate(x), cpu.evaluate(x)
    assert np.max(np.abs(e_gpu - e_cpu)) < e_tol and np.max(np.abs(f_gpu - f_cpu)) < f_tol


def test_run_config_device_reaches_the_target_options_and_dask_targets_stay_recipes(ala):
    from lsd_engine.runconfig import ConfigError, RunConfig, build_models, target_options

    assert RunConfig().device == "auto" and target_options(RunConfig()) == {}
    assert target_options(RunConfig(device="CPU", target_options={"threads": 1})) == {"threads": 1, "device": "cpu"}
    assert target_options(RunConfig(device="cpu", target_options={"device": "cuda"})) == {"device": "cuda"}
    assert target_options(RunConfig(target="gfn2-xtb", device="cpu")) == {}
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        RunConfig(device="gpu")
    with pytest.raises(ConfigError, match="target 'gfn2-xtb' computes on the CPU only; device='cuda'"):
        target_options(RunConfig(target="gfn2-xtb", device="cuda"))
    _, target = build_models(RunConfig(draft="amber14", executor="dask", device="cpu"), ala)
    assert isinstance(target, models.DeferredModel) and target.built is None and target.requested_device == "cpu"
