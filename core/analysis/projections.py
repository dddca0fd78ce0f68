"""The process-wide bounded queue of t-SNE/UMAP projections: fixed workers, shared requests, cached results."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from core.analysis import embeddings as E
from core.errors import DigitsError
from core.model.device import thread_count

log = logging.getLogger(__name__)

WORKERS_ENV = "DIGITS_PROJECTION_WORKERS"  # projections running at once
QUEUE_ENV = "DIGITS_PROJECTION_QUEUE"  # projections waiting or running, all visitors together
PER_SESSION_ENV = "DIGITS_PROJECTION_PER_SESSION"  # of those, wanted by one visitor
# A runner: (vectors, request, progress, cancelled, threads) -> coordinates. Its progress(fraction, message,
# layout=None) also takes the coordinates so far, which the queue shows visitors until the result is there.
Runner = Callable[[np.ndarray, "Request", Callable[..., None], E.Cancelled, int], np.ndarray]


class QueueFull(DigitsError):
    """The queue, or one visitor's share of it, holds as many projections as it may; `scope` says which."""

    def __init__(self, message: str, scope: str):
        super().__init__(message)
        self.scope = scope  # "server" or "session"


@dataclass(frozen=True)
class QueueConfig:
    """How many projections run at once, how many may wait, on how many threads, and how long results stay."""

    workers: int = 1
    max_jobs: int = 12  # waiting or running, all visitors together
    per_session: int = 3  # waiting or running, wanted by one visitor
    keep: int = 32  # finished results kept (10,000 points in 3D: 120 KB each)
    threads: int = 0  # per running projection; 0: the queue's share of thread_count(), split over the workers
    abandon_after: float = 300.0  # seconds; a job nobody has asked about for this long is dropped (a closed tab)

    def __post_init__(self):
        for name in ("workers", "max_jobs", "per_session", "keep"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"the projection queue's {name} must be at least 1, not {getattr(self, name)}")
        if self.threads < 0 or self.abandon_after <= 0:
            raise ValueError("the projection queue's threads must be >= 0 and abandon_after > 0")

    @property
    def job_threads(self) -> int:
        """Threads for one projection: one core stays free for predictions, the rest is split over the workers."""
        return self.threads or max(1, (thread_count() - 1) // self.workers)

    @classmethod
    def from_env(cls) -> QueueConfig:
        values = {}
        for name, env in (("workers", WORKERS_ENV), ("max_jobs", QUEUE_ENV), ("per_session", PER_SESSION_ENV)):
            raw = os.environ.get(env, "").strip()
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"${env} must be a whole number, not {raw!r}") from None
        return cls(**values)


@dataclass(frozen=True)
class Request:
    """One projection: `source` names the vectors (hashable, e.g. weights, split, encoder, n), the rest its parameters.

    Parameters the method ignores are reset to their defaults, so a t-SNE asked with another UMAP setting is the
    same job."""

    source: Hashable
    method: str
    dims: int = 2
    perplexity: float = 30.0
    neighbors: int = 15
    min_dist: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name, kind in (
            ("dims", int),
            ("perplexity", float),
            ("neighbors", int),
            ("min_dist", float),
            ("seed", int),
        ):
            object.__setattr__(self, name, kind(getattr(self, name)))
        if self.method not in E.METHODS:
            raise ValueError(f"method must be one of {E.METHODS}, not {self.method!r}")
        if self.dims not in (2, 3):
            raise ValueError("dims must be 2 or 3")
        if not 0 < self.perplexity <= 1000 or not 2 <= self.neighbors <= 1000 or not 0 <= self.min_dist <= 1:
            raise ValueError("perplexity must be in (0, 1000], neighbours in [2, 1000] and min-dist in [0, 1]")
        unused = {
            "tsne": ("neighbors", "min_dist"),
            "umap": ("perplexity",),
            "pca": ("perplexity", "neighbors", "min_dist"),
        }
        for name in unused[self.method]:
            object.__setattr__(self, name, Request.__dataclass_fields__[name].default)

    def describe(self) -> str:
        name = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}[self.method]
        detail = {
            "tsne": f" (perplexity {self.perplexity:g})",
            "umap": f" ({self.neighbors} neighbours, min-dist {self.min_dist:g})",
            "pca": "",
        }[self.method]
        return f"{name}{detail} in {self.dims}D"


@dataclass(frozen=True, eq=False)
class Status:
    """Where a request stands. place: 1 for the next to start (queued only); running: projections running now."""

    state: str  # "queued", "running", "done" or "failed"
    place: int = 0
    running: int = 0
    progress: float = 0.0
    message: str = ""
    result: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None
    wanted_by: int = 0  # visitors waiting for it
    points: int = 0
    layout: np.ndarray | None = field(default=None, repr=False)  # running: the latest coordinates published, read-only
    layouts: int = 0  # how many have been published: a page redraws only when this moves


class _Job:
    """A queued or running projection and the visitors who want it (session -> when they last asked)."""

    def __init__(self, request: Request, x: np.ndarray):
        self.request, self.x, self.points = request, x, len(x)
        self.wanted: dict[str, float] = {}
        self.running = False
        self.stop = threading.Event()
        self.progress, self.message = 0.0, ""
        self.layout, self.layouts = None, 0

    def report(self, fraction: float, message: str, layout: np.ndarray | None = None) -> None:
        if layout is not None:
            layout = np.array(layout, dtype=np.float32)  # a copy the runner cannot change, shared by every visitor
            layout.setflags(write=False)
            self.layout, self.layouts = layout, self.layouts + 1
        self.progress, self.message = float(fraction), message


def project_request(
    x: np.ndarray, request: Request, progress: E.Progress, cancelled: E.Cancelled, threads: int
) -> np.ndarray:
    """The queue's default runner: embeddings.project with the request's parameters, publishing t-SNE's layouts."""
    latest = [0.0, "starting from PCA"]

    def report(fraction: float, message: str) -> None:
        latest[:] = fraction, message
        progress(fraction, message)

    return E.project(
        x,
        request.method,
        request.dims,
        request.perplexity,
        request.neighbors,
        request.min_dist,
        request.seed,
        progress=report,
        threads=threads,
        cancelled=cancelled,
        layout=lambda xy: progress(*latest, xy),
    )


class ProjectionQueue:
    """First come, first served on `config.workers` threads; one job per distinct request, however many ask for it."""

    def __init__(self, config: QueueConfig | None = None, run: Runner = project_request, clock=time.monotonic):
        self.config = config or QueueConfig()
        self._run, self._clock = run, clock
        self._lock = threading.Condition()
        self._jobs: dict[Request, _Job] = {}  # waiting or running, in order of arrival
        self._done: OrderedDict[Request, Status] = OrderedDict()  # finished or failed, least recently asked first
        self._running = 0
        self._workers: list[threading.Thread] = []
        self._closed = False

    # -- what the pages call --------------------------------------------------------------------------------------

    def submit(self, request: Request, x: np.ndarray, session: str) -> Status:
        """Ask for a projection of x (a finished one is returned at once); QueueFull when no place is left."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) < 5:
            raise ValueError("need at least 5 points, as rows of a 2-D array, to project")
        with self._lock:
            if self._closed:
                raise RuntimeError("the projection queue is closed")
            if request in self._done:
                self._done.move_to_end(request)
                return self._done[request]
            self._drop_abandoned()
            job = self._jobs.get(request)
            if job is None or session not in job.wanted:
                mine = sum(session in j.wanted for j in self._jobs.values())
                if mine >= self.config.per_session:
                    raise QueueFull(
                        f"You already have {mine} projections waiting or running, the most one visitor may "
                        "queue. Cancel one, or wait for one to finish.",
                        "session",
                    )
                if job is None and len(self._jobs) >= self.config.max_jobs:
                    raise QueueFull(
                        f"The projection queue is full: {len(self._jobs)} projections are waiting or "
                        "running, the most this server takes. Try again in a minute, or pick PCA, which "
                        "needs no queue.",
                        "server",
                    )
            if job is None:
                job = self._jobs[request] = _Job(request, x)
                self._start_workers()
                self._lock.notify()
            job.wanted[session] = self._clock()
            return self._status(job)

    def status(self, request: Request, session: str | None = None) -> Status | None:
        """Where the request stands (None: not queued, running or kept); asking keeps the session's interest alive."""
        with self._lock:
            if request in self._done:
                self._done.move_to_end(request)
                return self._done[request]
            job = self._jobs.get(request)
            if job is None:
                return None
            if session in job.wanted:
                job.wanted[session] = self._clock()
            return self._status(job)

    def cancel(self, request: Request, session: str) -> bool:
        """Withdraw the session's interest; a job nobody else wants leaves the queue, or stops if it runs."""
        with self._lock:
            job = self._jobs.get(request)
            if job is None or job.wanted.pop(session, None) is None:
                return False
            if not job.wanted:
                self._drop(job)
            return True

    def jobs_of(self, session: str) -> list[tuple[Request, Status]]:
        """The session's projections still waiting or running, in order of arrival."""
        with self._lock:
            return [(r, self._status(j)) for r, j in self._jobs.items() if session in j.wanted]

    def wait(self, request: Request, session: str, timeout: float, poll: float = 0.25) -> Status | None:
        """Poll until the request is done or failed (or gone, or timeout seconds passed); for scripts and benchmarks."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(request, session)
            if status is None or status.state in ("done", "failed") or time.monotonic() >= deadline:
                return status
            time.sleep(poll)

    def close(self, timeout: float = 30.0) -> None:
        """Stop every job and the workers (tests, shutdown)."""
        with self._lock:
            self._closed = True
            for job in list(self._jobs.values()):
                self._drop(job)
            self._lock.notify_all()
        for worker in self._workers:
            worker.join(timeout)

    # -- inside, with the lock held -------------------------------------------------------------------------------

    def _status(self, job: _Job) -> Status:
        if job.running:
            return Status(
                "running",
                0,
                self._running,
                job.progress,
                job.message,
                wanted_by=len(job.wanted),
                points=job.points,
                layout=job.layout,
                layouts=job.layouts,
            )
        waiting = [j for j in self._jobs.values() if not j.running]
        return Status("queued", waiting.index(job) + 1, self._running, wanted_by=len(job.wanted), points=job.points)

    def _drop(self, job: _Job) -> None:
        """Forget a job: it leaves the line, or (running) is told to stop and its result will be dropped."""
        self._jobs.pop(job.request, None)
        job.stop.set()

    def _drop_abandoned(self) -> None:
        cutoff = self._clock() - self.config.abandon_after
        for job in list(self._jobs.values()):
            for session in [s for s, seen in job.wanted.items() if seen < cutoff]:
                del job.wanted[session]
            if not job.wanted:
                log.info(
                    "dropping %s: nobody has asked for it for %.0f s", job.request.describe(), self.config.abandon_after
                )
                self._drop(job)

    def _start_workers(self) -> None:
        while len(self._workers) < self.config.workers:
            worker = threading.Thread(target=self._work, name=f"projection-{len(self._workers)}", daemon=True)
            self._workers.append(worker)
            worker.start()

    # -- the workers ----------------------------------------------------------------------------------------------

    def _next(self) -> _Job | None:
        with self._lock:
            while True:
                if self._closed:
                    return None
                self._drop_abandoned()
                job = next((j for j in self._jobs.values() if not j.running), None)
                if job is not None:
                    job.running = True
                    self._running += 1
                    return job
                self._lock.wait()

    def _cancelled(self, job: _Job) -> bool:
        if not job.stop.is_set():
            with self._lock:
                self._drop_abandoned()
        return job.stop.is_set()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            outcome = None
            try:
                xy = np.asarray(
                    self._run(job.x, job.request, job.report, lambda: self._cancelled(job), self.config.job_threads),
                    dtype=np.float32,
                )
                xy.setflags(write=False)  # shared by every visitor who asked
                outcome = Status("done", progress=1.0, result=xy, points=job.points)
            except E.ProjectionCancelled:
                pass
            except (DigitsError, ValueError) as exc:
                outcome = Status("failed", error=str(exc), points=job.points)
            except Exception as exc:
                log.exception("projection %s failed", job.request.describe())
                outcome = Status("failed", error=f"{type(exc).__name__}: {exc}", points=job.points)
            with self._lock:
                self._running -= 1
                if self._jobs.get(job.request) is job:
                    del self._jobs[job.request]
                if outcome is not None and not job.stop.is_set():  # a result nobody wants any more is dropped
                    self._done[job.request] = outcome
                    while len(self._done) > self.config.keep:
                        self._done.popitem(last=False)
                job.x, job.layout = None, None
                self._lock.notify_all()


_shared: ProjectionQueue | None = None
_shared_lock = threading.Lock()


def shared() -> ProjectionQueue:
    """The process's one queue, configured from the environment on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ProjectionQueue(QueueConfig.from_env())
        return _shared
