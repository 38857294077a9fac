"""Target evaluation on a dask cluster: CPU worker processes, one worker per GPU, or a remote scheduler.

Each worker holds one :class:`ModelHost` actor. A model is pickled once
(registry models pickle as their recipe: name, system, options), shipped once to
each worker and built there into a worker-local cache keyed by the pickle's hash,
so weights stay loaded between rounds and across executors on the same cluster.
Per call only the positions travel: the synchronous sampler sends one chunk per
worker per round; the streaming scheduler sends one state per free worker.
Actor calls go straight to the worker (about 3 ms round trip on loopback, against
8-18 ms for a scheduled task).

Faults: a call that fails because its worker died (or cannot be reached) is
re-sent to another live worker, up to ``max_retries`` times per job, and counted
in ``retries`` (the sampler reports it as ``RunStats.retries``). A model that
fails to load raises :class:`ModelError` with the worker's address and message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import itertools
import logging
import os
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

try:
    import cloudpickle
    import distributed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("DaskExecutor needs dask.distributed: pip install 'lsd-engine[dask]'") from exc

from ..errors import LSDError, ModelError
from ..models.base import ForceModel, evaluate_checked
from ..models.devices import model_device
from .base import Executor, Job
from .gpus import gpu_inventory

log = logging.getLogger(__name__)

DEFAULT_CPU_WORKERS = 2
REFRESH_S = 2.0  # how often the live-worker list is re-read from the scheduler

# -- worker side ---------------------------------------------------------------------------------
_WORKER_MODELS: dict[str, ForceModel] = {}  # this worker process's models, keyed by pickle hash


class ModelHost:
    """Dask actor on one worker: builds each model once from its pickle and evaluates batches of it."""

    def load(self, key: str, payload: bytes) -> str | None:
        """Build model ``key`` unless this worker process already has it; returns the error text or None."""
        if key not in _WORKER_MODELS:
            try:
                _WORKER_MODELS[key] = cloudpickle.loads(payload)
            except Exception as exc:  # noqa: BLE001 - reported to the client with the worker's address
                where = traceback.extract_tb(exc.__traceback__)[-1]
                return f"{type(exc).__name__}: {exc} (in {os.path.basename(where.filename)}:{where.lineno})"
        return None

    def evaluate(self, key: str, positions: np.ndarray, role: str, first_step: int) -> tuple:
        """("ok", energies (B,) eV, forces (B, N, 3) eV/Å, seconds) | ("error", message, model, step) | ("missing",)."""
        model = _WORKER_MODELS.get(key)
        if model is None:
            return ("missing",)
        t0 = time.perf_counter()
        try:
            energies, forces = evaluate_checked(model, positions, role=role, first_step=first_step)
        except ModelError as exc:
            return ("error", str(exc), exc.model_name, exc.step)
        return ("ok", energies, forces, time.perf_counter() - t0)

    def describe(self, key: str) -> dict[str, Any] | None:
        """Where model ``key`` computes on this worker (None when it is not loaded here)."""
        model = _WORKER_MODELS.get(key)
        if model is None:
            return None
        return {**model_device(model), "pid": os.getpid(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


async def _call_host(host: Any, *args: Any) -> tuple:
    return await host.evaluate(*args)


# -- client side ---------------------------------------------------------------------------------
@dataclass
class DaskStats:
    """Client-side counters: batched calls (sync rounds), jobs sent, and where the time went (s)."""

    calls: int = 0  # evaluate() calls: one per synchronous round
    jobs: int = 0  # actor calls sent, re-sends included
    call_wall_s: float = 0.0  # wall time inside evaluate()
    call_compute_s: float = 0.0  # per evaluate(), the slowest chunk's model time on its worker, summed
    compute_s: float = 0.0  # model time on workers over all jobs

    @property
    def overhead_per_call_ms(self) -> float:
        """Dask cost per synchronous round: wall time minus the slowest worker's model time (ms)."""
        return 1e3 * (self.call_wall_s - self.call_compute_s) / self.calls if self.calls else float("nan")


class DaskExecutor(Executor):
    """Evaluate target batches on dask workers.

    ``DaskExecutor(n_workers=2)`` starts a local cluster on loopback (scheduler, workers
    and the scheduler's HTTP server bound to 127.0.0.1): ``LocalCUDACluster`` (one
    worker per GPU, ``CUDA_VISIBLE_DEVICES`` per worker, so a model with device "auto"
    or "cuda" computes on its worker's own GPU) when GPUs are visible and dask-cuda is
    installed, otherwise ``distributed.LocalCluster`` of CPU worker processes, whose
    GPUs are hidden (``CUDA_VISIBLE_DEVICES=""``: "auto" models compute on the CPU, a
    model asking for "cuda" fails to load, loudly). The reason for CPU workers is
    logged: a warning when GPUs were asked for or seem present (a broken NVML, dask-cuda
    missing, more workers asked for than GPUs), an info line on a GPU-less machine; it
    is also kept in ``note``. ``DaskExecutor(address="tcp://host:8786")`` connects to a
    running scheduler (multi-node clusters); ``DaskExecutor(client=client)`` uses your
    own ``distributed.Client``. ``describe(model)`` says where a model computes on the
    workers.

    gpu: None picks GPUs when visible (and ``n_workers`` does not exceed them); True
    asks for them (CPU workers with a warning if none can be used; an error when
    ``n_workers`` exceeds the GPU count); False always starts CPU workers. n_workers:
    local workers (default: one per visible GPU, else 2). threads_per_worker: dask threads per local worker (the
    model itself runs in the actor thread, one call at a time). jobs_per_worker:
    how many streaming jobs a worker may hold at once (1: dispatch to free workers
    only). max_retries: re-sends of one job after worker failures before giving up.
    worker_wait_s: how long to wait for a worker when none is alive.
    cluster_options: extra keyword arguments for the cluster class.

    Use it as a context manager, or call ``close()``: it shuts down what it started.
    Thread-safe: several samplers in threads may share one executor.
    """

    def __init__(self, n_workers: int | None = None, *, address: str | None = None,
                 client: "distributed.Client | None" = None, gpu: bool | None = None,
                 threads_per_worker: int = 1, jobs_per_worker: int = 1, connect_timeout_s: float = 20.0,
                 max_retries: int = 3, worker_wait_s: float = 60.0, cluster_options: dict[str, Any] | None = None):
        if address is not None and client is not None:
            raise ValueError("pass either address= or client=, not both")
        if n_workers is not None and (address is not None or client is not None):
            raise ValueError("n_workers applies only to a cluster the executor starts; "
                             "a running scheduler has the workers it has")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
            raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
        if not isinstance(jobs_per_worker, int) or jobs_per_worker < 1:
            raise ValueError(f"jobs_per_worker must be a positive integer, got {jobs_per_worker!r}")
        self.jobs_per_worker = jobs_per_worker
        self.max_retries = int(max_retries)
        self.worker_wait_s = float(worker_wait_s)
        self.retries = 0
        self.stats = DaskStats()
        self.cluster: Any = None
        self.kind = "remote"  # "cpu", "cuda" or "remote" (a scheduler or client given by the user)
        self.requested_workers = n_workers
        self.note: str | None = None  # why a local cluster has CPU workers when GPUs were wanted or present
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif address is not None:
            self.client = _connect(address, connect_timeout_s)
        else:
            self.cluster, self.kind, self.note = _start_cluster(n_workers, gpu, threads_per_worker,
                                                                cluster_options or {})
            self.client = distributed.Client(self.cluster, direct_to_workers=True)
        self._loop = self.client.loop.asyncio_loop
        self._hosts: dict[str, Any] = {}  # worker address -> ModelHost actor
        self._host_futures: list[distributed.Future] = []
        self._loaded: set[tuple[str, str]] = set()  # (worker, model key)
        self._models: dict[int, tuple[ForceModel, str, bytes]] = {}  # id(model) -> (model, key, payload)
        self._dead: set[str] = set()
        self._inflight: list[Job] = []
        self._rotation = itertools.count()
        self._workers: list[str] = []
        self._refreshed = 0.0
        self._lock = threading.RLock()
        try:
            self._wait_for_workers()
        except BaseException:
            self.close()
            raise

    # -- public ------------------------------------------------------------------------------
    @property
    def workers(self) -> list[str]:
        """Addresses of the live workers (refreshed from the scheduler every few seconds)."""
        if time.monotonic() - self._refreshed > REFRESH_S:
            self._refresh_workers()
        return list(self._workers)

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def capacity(self) -> int:
        return max(1, len(self._workers)) * self.jobs_per_worker

    @property
    def dashboard_link(self) -> str | None:
        return getattr(self.client, "dashboard_link", None)

    def evaluate(self, model: ForceModel, positions: np.ndarray, *, role: str,
                 first_step: int) -> tuple[np.ndarray, np.ndarray]:
        """One batch, split into one contiguous chunk per worker; rows come back in order."""
        t0 = time.perf_counter()
        with self._lock:
            self._prepare_model(model)
            batch = positions.shape[0]
            workers = self._pick_workers(min(batch, len(self.workers)))
            bounds = np.linspace(0, batch, len(workers) + 1).round().astype(int)
            jobs = [self._send(Job(self, None, model, np.array(positions[a:b], dtype=float), role,
                                   first_step + a, w)) for w, a, b in zip(workers, bounds[:-1], bounds[1:])]
        results = [job.result() for job in jobs]
        with self._lock:
            self.stats.calls += 1
            self.stats.call_wall_s += time.perf_counter() - t0
            self.stats.call_compute_s += max(job.compute_s for job in jobs)
        if len(results) == 1:
            return results[0]
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def submit(self, model: ForceModel, positions: np.ndarray, *, role: str, first_step: int) -> Job:
        """Send one job to the least busy live worker."""
        with self._lock:
            self._prepare_model(model)
            worker = self._pick_workers(1)[0]
            return self._send(Job(self, None, model, np.array(positions, dtype=float), role, first_step, worker))

    def wait_any(self, jobs: Sequence[Job], timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        jobs = list(jobs)
        while jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = cf.wait([job.future for job in jobs], timeout=left, return_when=cf.FIRST_COMPLETED)
            if not done:
                return
            failed = [job for job in jobs if job.future.done() and _failure(job.future) is not None]
            with self._lock:
                for job in failed:
                    self._resend(job, _failure(job.future))
            if len(failed) < len(done):
                return

    def describe(self, model: ForceModel) -> dict[str, Any]:
        """Where ``model`` computes: cluster kind, worker count and each worker's device (the model
        is loaded on the workers first if it is not yet)."""
        with self._lock:
            key = self._prepare_model(model)
            workers = list(self._workers)
            calls = {w: self._host(w).describe(key) for w in workers}
        per_worker = []
        for worker, call in calls.items():
            try:
                info = call.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker is reported, not fatal
                info = {"device": "unreachable", "error": f"{type(exc).__name__}: {exc}"}
            per_worker.append({"worker": worker, **(info or {"device": "not loaded"})})
        devices = sorted({w["device"] for w in per_worker})
        names = sorted({w["device_name"] for w in per_worker if "device_name" in w})
        return {"executor": "dask", "cluster": self.kind, "workers": len(workers),
                "requested_workers": self.requested_workers, "device": ", ".join(devices),
                "device_name": ", ".join(names), "worker_devices": per_worker, "note": self.note}

    def close(self) -> None:
        """Release the actors; close the client and cluster if this executor made them."""
        for future in getattr(self, "_host_futures", []):
            future.release()
        self._host_futures, self._hosts = [], {}
        client, cluster = getattr(self, "client", None), self.cluster
        if client is not None and self._own_client:
            client.close()
        if cluster is not None:
            cluster.close()
        self.cluster = None
        self._own_client = False

    # -- models on workers -------------------------------------------------------------------
    def _model_entry(self, model: ForceModel) -> tuple[ForceModel, str, bytes]:
        entry = self._models.get(id(model))
        if entry is not None and entry[0] is model:
            return entry
        try:
            payload = cloudpickle.dumps(model)
        except Exception as exc:
            raise LSDError(f"model {getattr(model, 'name', model)!r} cannot be sent to dask workers because it "
                           f"does not pickle ({type(exc).__name__}: {exc}). Models from lsd_engine.models.create "
                           "pickle as their recipe; a FunctionModel needs a picklable function.") from exc
        key = f"{getattr(model, 'name', 'model')}-{hashlib.sha256(payload).hexdigest()[:20]}"
        entry = (model, key, payload)
        self._models[id(model)] = entry
        return entry

    def _prepare_model(self, model: ForceModel) -> str:
        """Ship and build ``model`` on every live worker that lacks it (in parallel); returns its key."""
        _, key, _ = self._model_entry(model)
        missing = [w for w in self._workers if (w, key) not in self._loaded]
        if missing:
            self._load(model, missing)
        return key

    def _load(self, model: ForceModel, workers: list[str]) -> None:
        _, key, payload = self._model_entry(model)
        calls = {w: self._host(w).load(key, payload) for w in workers}
        for worker, call in calls.items():
            try:
                error = call.result()
            except Exception as exc:  # the worker died while loading: it is someone else's turn
                self._mark_dead(worker, exc)
                continue
            if error is not None:
                raise ModelError(f"model {model.name!r} could not be loaded on dask worker {worker}: {error}",
                                 model_name=model.name)
            self._loaded.add((worker, key))

    def _host(self, worker: str) -> Any:
        host = self._hosts.get(worker)
        if host is None:
            future = self.client.submit(ModelHost, workers=[worker], allow_other_workers=False, actor=True,
                                        pure=False, key=f"lsd-model-host-{uuid.uuid4().hex}")
            with self.client.as_current():
                host = future.result(timeout=self.worker_wait_s)
            self._host_futures.append(future)
            self._hosts[worker] = host
        return host

    # -- sending and re-sending --------------------------------------------------------------
    def _send(self, job: Job) -> Job:
        _, key, _ = self._model_entry(job.model)
        if (job.worker, key) not in self._loaded:
            self._load(job.model, [job.worker])
            if (job.worker, key) not in self._loaded:  # it died while loading
                return self._resend(job, RuntimeError(f"worker {job.worker} was lost while loading the model"))
        host = self._hosts[job.worker]
        job.future = asyncio.run_coroutine_threadsafe(
            _call_host(host, key, job.positions, job.role, job.first_step), self._loop)
        self._inflight.append(job)
        self.stats.jobs += 1
        return job

    def _resend(self, job: Job, error: BaseException) -> Job:
        """The job's worker failed: count a retry and send the work to another live worker."""
        if job.attempts > self.max_retries:
            raise LSDError(f"target evaluation at step {job.first_step} failed on {job.attempts} dask workers; "
                           f"last error: {type(error).__name__}: {error}") from error
        self._mark_dead(job.worker, error)
        self.retries += 1
        job.attempts += 1
        job.worker = self._pick_workers(1)[0]
        log.warning("re-sending the target evaluation at step %d to dask worker %s (attempt %d)",
                    job.first_step, job.worker, job.attempts)
        return self._send(job)

    def job_result(self, job: Job) -> tuple[np.ndarray, np.ndarray]:
        while True:
            try:
                out = job.future.result()
            except cf.CancelledError:
                raise
            except Exception as exc:  # the worker died or could not be reached
                with self._lock:
                    self._resend(job, exc)
                continue
            if out[0] == "ok":
                job.compute_s = out[3]
                with self._lock:
                    self.stats.compute_s += out[3]
                return out[1], out[2]
            if out[0] == "error":
                raise ModelError(f"{out[1]} (on dask worker {job.worker})", model_name=out[2], step=out[3])
            with self._lock:  # "missing": the worker restarted under the same address and lost its models
                self._loaded = {(w, k) for w, k in self._loaded if w != job.worker}
                self._hosts.pop(job.worker, None)
                self._send(job)

    def cancel_job(self, job: Job) -> None:
        job.cancelled = True  # an actor call cannot be recalled; the worker finishes it and we ignore it

    # -- workers -----------------------------------------------------------------------------
    def _refresh_workers(self, retry_failed: bool = False) -> None:
        alive = set(self.client.nthreads())
        self._dead &= alive  # forget workers the scheduler has forgotten too
        if retry_failed:  # every listed worker failed once, but the scheduler still lists them: try again
            self._dead.clear()
        self._workers = sorted(alive - self._dead)
        self._refreshed = time.monotonic()

    def _wait_for_workers(self) -> None:
        start = time.monotonic()
        deadline = start + self.worker_wait_s
        while True:
            # A killed worker stays listed for a moment; only after a few seconds give failed ones another go.
            self._refresh_workers(retry_failed=time.monotonic() - start > 5.0)
            if self._workers:
                return
            if time.monotonic() > deadline:
                raise LSDError(f"no dask worker is connected to the scheduler {self.client.scheduler.address} "
                               f"(waited {self.worker_wait_s:g} s); start some with `dask worker <address>`")
            time.sleep(0.1)

    def _mark_dead(self, worker: str, error: BaseException) -> None:
        if worker in self._dead:
            return
        log.warning("dask worker %s failed (%s: %s); its work goes to the other workers",
                    worker, type(error).__name__, error)
        self._dead.add(worker)
        self._hosts.pop(worker, None)
        self._loaded = {(w, k) for w, k in self._loaded if w != worker}
        self._workers = [w for w in self._workers if w != worker]
        if not self._workers:
            self._wait_for_workers()

    def _pick_workers(self, n: int) -> list[str]:
        """The ``n`` least busy live workers (jobs still running, stale ones included); ties rotate."""
        workers = self.workers
        if not workers:
            self._wait_for_workers()
            workers = list(self._workers)
        self._inflight = [job for job in self._inflight if not job.future.done()]
        busy = {w: 0 for w in workers}
        for job in self._inflight:
            if job.worker in busy:
                busy[job.worker] += 1
        start = next(self._rotation)
        order = sorted(range(len(workers)), key=lambda i: (busy[workers[i]], (i - start) % len(workers)))
        return [workers[order[i % len(order)]] for i in range(max(1, n))]


def _failure(future: cf.Future) -> BaseException | None:
    if future.cancelled():
        return None
    return future.exception()


def _connect(address: str, timeout_s: float) -> "distributed.Client":
    try:
        return distributed.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise LSDError(f"cannot reach the dask scheduler at {address!r} within {timeout_s:g} s "
                       f"({type(exc).__name__}: {exc}). Is `dask scheduler` running there, and is the "
                       "address (tcp://host:port) reachable from this machine?") from None


def visible_gpus() -> int:
    """Number of CUDA GPUs this process can see (0 when none, or when NVML cannot count them;
    :func:`lsd_engine.executors.gpus.gpu_inventory` says which)."""
    return gpu_inventory().count


def _start_cluster(n_workers: int | None, gpu: bool | None, threads_per_worker: int,
                   options: dict[str, Any]) -> tuple[Any, str, str | None]:
    """(cluster, kind, note): a LocalCUDACluster when GPUs are visible and wanted, else a
    LocalCluster of CPU processes; ``note`` says why CPU workers were started when GPUs were
    asked for or seem to be present (None otherwise)."""
    options = {"host": "127.0.0.1", **options}
    if "dashboard_address" not in options:  # no dashboard; its HTTP server (health routes) on a loopback port
        options["dashboard_address"] = None
        options["scheduler_kwargs"] = {"dashboard_address": "127.0.0.1:0", **options.get("scheduler_kwargs", {})}
    reason, loud = None, False
    if gpu is not False:
        n_gpus = visible_gpus()
        if n_gpus == 0:
            error = gpu_inventory().error
            reason, loud = error or "no CUDA GPU is visible", bool(gpu) or error is not None
        elif n_workers is not None and n_workers > n_gpus:
            if gpu:
                raise LSDError(f"{n_workers} GPU dask workers were asked for but {n_gpus} GPU(s) are visible; "
                               f"dask-cuda runs one worker per GPU: ask for at most {n_gpus}, or for CPU workers")
            reason, loud = (f"{n_workers} workers were asked for but {n_gpus} GPU(s) are visible (dask-cuda runs one "
                            f"worker per GPU; ask for at most {n_gpus} workers, or none, to get GPU workers)"), True
        else:
            try:
                from dask_cuda import LocalCUDACluster
            except ImportError as exc:
                reason, loud = (f"{n_gpus} GPU(s) are visible but dask-cuda is not importable ({exc}; "
                                "pip install 'lsd-engine[gpu]', README GPUs)"), True
            else:
                want = n_workers or n_gpus
                try:
                    cluster = LocalCUDACluster(n_workers=want, threads_per_worker=threads_per_worker, **options)
                except Exception as exc:  # noqa: BLE001 - NVML/driver trouble: CPU workers, with a warning
                    reason, loud = f"LocalCUDACluster failed ({type(exc).__name__}: {exc})", True
                else:
                    started = len(cluster.workers)
                    note = None
                    if started != want:  # dask-cuda caps the count at CUDA_VISIBLE_DEVICES without a word
                        note = f"LocalCUDACluster started {started} GPU worker(s), not the {want} asked for"
                        log.warning(note)
                    log.info("started a LocalCUDACluster with %d GPU worker(s)", started)
                    return cluster, "cuda", note
    n = n_workers or DEFAULT_CPU_WORKERS
    note = None
    if reason is not None:
        note = f"{reason}; starting {n} CPU dask worker process(es) instead"
        (log.warning if loud else log.info)(note)
        note = note if loud else None
    env = {"CUDA_VISIBLE_DEVICES": "", **options.pop("env", {})}  # CPU workers compute on the CPU
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True,
                                       env=env, **options)
    return cluster, "cpu", note
