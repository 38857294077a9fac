"""The dask executor on real clusters over loopback.

One ``LocalCluster`` of 2 CPU worker processes serves the module. Covered: bitwise trajectory identity
with the in-process executor in both modes (and on clusters of 1 and 3 workers), statistical exactness
of the asynchronous mode through the cluster (tests/exactness.py), a worker killed mid-run, a scheduler
and worker started as separate ``dask`` processes, an unreachable scheduler, a model that fails to load
on the workers, models built once per worker, registry models shipped as recipes, and the GPU path
(dask-cuda when a GPU is visible, the CPU fall-back with a logged note otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402

from exactness import (FAMILY_ALPHA, POOR_DRAFT, TARGET, compare, lsd_factory, md_factory, run_many,  # noqa: E402
                       start_atoms)
from lsd_engine import (ForceModel, FunctionModel, LangevinParams, LocalExecutor, LSDError, ModelError,  # noqa: E402
                        SpeculativeSampler)
from lsd_engine.executors import DaskExecutor, dask_executor  # noqa: E402
from lsd_engine.executors.dask_executor import visible_gpus  # noqa: E402
from lsd_engine.toys import harmonic_bonds, morse_cluster  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # helpers below travel by value to any worker

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)
SOFT_DRAFT = FunctionModel(partial(harmonic_bonds, k_eV_per_A2=0.5), name="harmonic-soft")
CASES = [(mode, ec) for mode in ("sync", "async") for ec in (False, True)]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
            distributed.Client(cluster, direct_to_workers=True) as c:
        yield c


@pytest.fixture(scope="module")
def executor(client):
    with DaskExecutor(client=client) as ex:
        yield ex


def _run(executor, mode, error_correction, target=TARGET, n_steps=(41, 19), seed=4):
    sampler = SpeculativeSampler(start_atoms(), SOFT_DRAFT if error_correction else POOR_DRAFT, target, PARAMS,
                                 lookahead=4, error_correction=error_correction, seed=seed, mode=mode,
                                 executor=executor)
    parts = [sampler.run(n) for n in n_steps]
    return parts


def _assert_same(parts, reference):
    for got, want in zip(parts, reference):
        np.testing.assert_array_equal(got.positions, want.positions)
        np.testing.assert_array_equal(got.momenta, want.momenta)
        np.testing.assert_array_equal(got.energies, want.energies)
        np.testing.assert_array_equal(got.kinds, want.kinds)


@pytest.fixture(scope="module")
def in_process():
    return {(mode, ec): _run(LocalExecutor(), "sync", ec) for mode, ec in CASES}


@pytest.mark.parametrize("mode, error_correction", CASES)
def test_two_workers_give_the_in_process_trajectory(executor, in_process, mode, error_correction):
    parts = _run(executor, mode, error_correction)
    _assert_same(parts, in_process[mode, error_correction])
    assert parts[0].stats.retries == 0


def test_sync_rounds_send_one_chunk_per_worker(executor):
    before = (executor.stats.calls, executor.stats.jobs)
    result = SpeculativeSampler(start_atoms(), TARGET, TARGET, PARAMS, lookahead=7, error_correction=False, seed=0,
                                executor=executor).run(16)
    calls, jobs = executor.stats.calls - before[0], executor.stats.jobs - before[1]
    assert result.stats.rounds == 2 and calls == 3  # the start energy, then 2 rounds of 8 states
    assert jobs == 1 + 2 * 2  # a single state goes to one worker; a batch of 8 to each of the 2 workers once


class _UnusableCUDACluster:
    """Stands in for dask-cuda on a machine whose driver is missing."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("NVMLError_LibraryNotFound: NVML Shared Library Not Found")


@pytest.mark.parametrize("n_workers", [1, 3])
def test_own_cluster_of_n_workers_gives_the_in_process_trajectory(in_process, n_workers, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="lsd_engine.executors.dask_executor")
    no_gpu = visible_gpus() == 0
    if n_workers == 1 and no_gpu:  # GPUs asked for, dask-cuda "installed" but unusable: CPU workers, no crash
        monkeypatch.setitem(sys.modules, "dask_cuda", SimpleNamespace(LocalCUDACluster=_UnusableCUDACluster))
        monkeypatch.setattr(dask_executor, "visible_gpus", lambda: 1)
    with DaskExecutor(n_workers=n_workers, gpu=True if n_workers == 1 else None) as ex:
        assert len(ex.workers) == n_workers
        for mode, ec in CASES:
            _assert_same(_run(ex, mode, ec), in_process[mode, ec])
        cluster = ex.cluster
    assert cluster.status.name == "closed"
    if 0 < visible_gpus() < n_workers:  # more workers than GPUs: the count asked for, on CPUs, with a warning
        assert ex.kind == "cpu" and f"{n_workers} workers were asked for but" in ex.note
    if no_gpu:
        assert ex.kind == "cpu"
        notes = {(r.levelno, r.getMessage()) for r in caplog.records if r.name == dask_executor.__name__}
        expected = ((logging.WARNING, "LocalCUDACluster failed (RuntimeError: NVMLError_LibraryNotFound: NVML "
                     "Shared Library Not Found); starting 1 CPU dask worker process(es) instead") if n_workers == 1
                    else (logging.INFO, "no CUDA GPU is visible; starting 3 CPU dask worker process(es) instead"))
        assert expected in notes


# -- faults ---------------------------------------------------------------------------------------
class KillsItsWorkerOnce(ForceModel):
    """The Morse target, except that the first worker to make its ``at_call``-th call kills its own process."""

    name = "morse"

    def __init__(self, marker: Path, at_call: int):
        self.marker, self.at_call, self.calls = str(marker), at_call, 0

    def evaluate(self, positions):
        self.calls += 1
        if self.calls == self.at_call:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return morse_cluster(positions)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_worker_killed_mid_run_changes_nothing_and_is_counted(executor, in_process, tmp_path, mode):
    parts = _run(executor, mode, False, target=KillsItsWorkerOnce(tmp_path / "killed", at_call=5))
    assert (tmp_path / "killed").exists(), "no worker was killed"
    _assert_same(parts, in_process[mode, False])
    assert parts[0].stats.retries >= 1


def test_unreachable_scheduler_is_a_clear_error_at_start():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    t0 = time.perf_counter()
    with pytest.raises(LSDError, match=rf"cannot reach the dask scheduler at 'tcp://127.0.0.1:{port}' within 1 s"):
        DaskExecutor(address=f"tcp://127.0.0.1:{port}", connect_timeout_s=1)
    assert time.perf_counter() - t0 < 15


def _missing_weights(path: str):
    raise FileNotFoundError(f"no checkpoint at {path}")


class NeedsWeights(ForceModel):
    """Loads fine here, but its weights file does not exist where it is unpickled."""

    name = "needs-weights"

    def evaluate(self, positions):
        return morse_cluster(positions)

    def __reduce__(self):
        return _missing_weights, ("/nonexistent/weights.pt",)


def test_a_model_that_fails_to_load_reports_the_workers_message(executor):
    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, NeedsWeights(), PARAMS, executor=executor)
    with pytest.raises(ModelError, match=r"'needs-weights' could not be loaded on dask worker tcp://127\.0\.0\.1:\d+"
                                         r": FileNotFoundError: no checkpoint at /nonexistent/weights\.pt"):
        sampler.run(3)


def test_nan_forces_on_a_worker_name_model_step_and_worker(executor):
    def nan_forces(positions):
        energies, forces = morse_cluster(positions)
        return energies, forces * np.nan

    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, FunctionModel(nan_forces, name="nan"), PARAMS,
                                 executor=executor)
    with pytest.raises(ModelError, match=r"target model 'nan'.*NaN/inf.*step 0 \(on dask worker tcp://"):
        sampler.run(3)


# -- models on workers ------------------------------------------------------------------------------
def _counted_morse(log: str) -> FunctionModel:
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    return FunctionModel(morse_cluster, name="counted")


class CountsBuilds(ForceModel):
    """The Morse target; every unpickling (= a build on a worker) appends the worker's pid to ``log``."""

    name = "counted"

    def __init__(self, log: Path):
        self.log = str(log)

    def evaluate(self, positions):
        return morse_cluster(positions)

    def __reduce__(self):
        return _counted_morse, (self.log,)


def test_a_model_is_built_once_per_worker_and_reused_by_every_round_and_mode(client, tmp_path):
    model = CountsBuilds(tmp_path / "builds.log")
    with DaskExecutor(client=client) as ex:
        for mode in ("sync", "async"):
            SpeculativeSampler(start_atoms(), POOR_DRAFT, model, PARAMS, lookahead=3, seed=1, mode=mode,
                               executor=ex).run(40)
        jobs = ex.stats.jobs
    pids = (tmp_path / "builds.log").read_text().split()
    assert len(pids) == len(set(pids)) == len(client.nthreads()) == 2
    assert jobs > 20  # many calls, two builds


def test_registry_models_travel_as_their_recipe(executor):
    from ase.build import bulk

    from lsd_engine import models

    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    emt = models.create("emt", atoms)
    positions = atoms.positions[None] + np.random.default_rng(0).normal(scale=0.02, size=(5, len(atoms), 3))
    remote = executor.evaluate(emt, positions, role="target", first_step=0)
    local = LocalExecutor().evaluate(emt, positions, role="target", first_step=0)
    # ASE's EMT reuses its neighbour list between calls, so its last bits depend on the call history.
    np.testing.assert_allclose(remote[0], local[0], rtol=1e-12)
    np.testing.assert_allclose(remote[1], local[1], rtol=1e-12, atol=1e-12)


# -- a scheduler and a worker started as separate processes ------------------------------------------
def test_connects_to_a_separately_started_scheduler(tmp_path, in_process):
    scheduler_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)], stdout=log, stderr=log)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(subprocess.Popen(["dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], stdout=log, stderr=log))
        with DaskExecutor(address=address, worker_wait_s=60) as ex:
            assert ex.kind == "remote" and len(ex.workers) == 1
            for mode in ("sync", "async"):
                _assert_same(_run(ex, mode, True), in_process[mode, True])
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


# -- statistical exactness of the asynchronous mode, through the cluster ----------------------------
# 1000 runs through the cluster (~20-40 s on 2 cores); test_async.py runs the full 2000 in process, with the
# planted bugs. Here the sample is also checked bit for bit against the in-process synchronous sampler.
N_RUNS, N_MD_RUNS, N_STEPS, LOOKAHEAD, MD_SEED0 = 1000, 2000, 10, 3, 10**6


def _run_many_threaded(make_sampler, n_runs: int, n_steps: int, first_seed: int, threads: int = 16):
    """``exactness.run_many``, with the independent runs spread over threads (they share the executor)."""
    positions = np.empty((n_runs,) + start_atoms().positions.shape)
    momenta = np.empty_like(positions)

    def one(r: int) -> None:
        sampler = make_sampler(first_seed + r)
        sampler.run(n_steps, stride=n_steps)
        positions[r], momenta[r] = sampler.positions, sampler.momenta

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n_runs)))
    return positions, momenta


def test_async_mode_on_the_cluster_is_exact(executor):
    make = lsd_factory(partial(SpeculativeSampler, mode="async", executor=executor), lookahead=LOOKAHEAD)
    lsd = _run_many_threaded(make, N_RUNS, N_STEPS, 0)
    result = compare(lsd, run_many(md_factory(PARAMS), N_MD_RUNS, N_STEPS, MD_SEED0))
    assert not result.rejects(), (f"async LSD on dask differs from target MD (min p={result.min_p:.2e}, "
                                  f"threshold {FAMILY_ALPHA / len(result.p_values):.1e})")
    # And it is the in-process synchronous sample, bit for bit:
    first = run_many(lsd_factory(lookahead=LOOKAHEAD), 200, N_STEPS, 0)
    np.testing.assert_array_equal(lsd[0][:200], first[0])
    np.testing.assert_array_equal(lsd[1][:200], first[1])


# -- GPUs -----------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(visible_gpus() == 0, reason="needs a CUDA GPU")
def test_dask_cuda_cluster_gives_the_in_process_trajectory(in_process):
    pytest.importorskip("dask_cuda")
    with DaskExecutor(gpu=True) as ex:
        assert ex.kind == "cuda" and len(ex.workers) == visible_gpus()
        for mode, ec in CASES:
            _assert_same(_run(ex, mode, ec), in_process[mode, ec])
