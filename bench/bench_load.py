"""Prediction latency while the projection queue is full: 6 distinct 10,000-point projections asked at once and 4
sessions predicting, in threads of one process as in the app. Prints p50/p95 and the load average; stops by itself."""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from collections.abc import Callable

# As app.py does before anything loads OpenMP: the app's waiting OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

from bench.bench_predict import canvas_from
from core import paths
from core.analysis import embeddings as E
from core.analysis import projections as P
from core.data.mnist import load_mnist
from core.model.device import thread_count
from core.predict import Predictor

# Six visitors, six different projections (encoder, method, parameters).
REQUESTS = [
    ("image", "tsne", dict(perplexity=30)),
    ("image", "umap", dict(neighbors=15)),
    ("fused", "tsne", dict(perplexity=30)),
    ("image", "tsne", dict(perplexity=50)),
    ("fused", "umap", dict(neighbors=30, min_dist=0.3)),
    ("image", "umap", dict(neighbors=50)),
]


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return "unknown CPU"


def load() -> str:
    return "load average " + " / ".join(f"{v:.1f}" for v in os.getloadavg())


def percentiles(ms: list[float]) -> str:
    if not ms:
        return "no predictions"
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  max {max(ms):.0f} ms  ({len(ms)} predictions)"


class Sessions:
    """Visitors on the draw page: each predicts a real MNIST drawing with a real FSDD recording, pauses, again."""

    def __init__(self, predictor: Predictor, inputs: list, count: int, think: float):
        self.predictor, self.inputs, self.count, self.think = predictor, inputs, count, think
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.errors: list[str] = []

    def _session(self, k: int) -> None:
        i = k
        while not self.stop.is_set():
            image, audio = self.inputs[i % len(self.inputs)]
            start = time.perf_counter()
            try:
                self.predictor.predict(image=image, audio=audio)
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.latencies.append((time.perf_counter() - start) * 1000)
            i += self.count
            self.stop.wait(self.think)

    def run_while(self, busy) -> list[float]:
        self.latencies, self.stop = [], threading.Event()
        threads = [threading.Thread(target=self._session, args=(k,), daemon=True) for k in range(self.count)]
        for t in threads:
            t.start()
        while busy():
            time.sleep(0.1)
        self.stop.set()
        for t in threads:
            t.join()
        return self.latencies


def queued(vectors: dict, deadline: float) -> tuple[list[threading.Thread], list[str], Callable[[], None]]:
    """Each request from its own session through one ProjectionQueue, polled as the page polls it."""
    queue = P.ProjectionQueue(P.QueueConfig.from_env())
    print(
        f"queue: {queue.config.workers} worker(s), {queue.config.job_threads} thread(s) per projection, "
        f"{thread_count()} cores for the app"
    )
    report = []

    def visitor(k: int, encoder: str, method: str, params: dict) -> None:
        request = P.Request((encoder, len(vectors[encoder])), method, **params)
        asked, started, status = time.perf_counter(), None, queue.submit(request, vectors[encoder], f"visitor-{k}")
        while status is not None and status.state not in ("done", "failed") and time.perf_counter() < deadline:
            if status.state == "running" and started is None:
                started = time.perf_counter()
            time.sleep(0.25)
            status = queue.status(request, f"visitor-{k}")
        end = time.perf_counter()
        state = status.state if status else "dropped"
        waited = (started or end) - asked
        report.append(
            f"  {encoder:>5} {request.describe():<46} {state:>7}: waited {waited:5.1f} s, "
            f"ran {end - (started or end):5.1f} s"
        )

    threads = [threading.Thread(target=visitor, args=(k, *r), daemon=True) for k, r in enumerate(REQUESTS)]
    for t in threads:
        t.start()
    return threads, report, queue.close


def direct(vectors: dict, deadline: float) -> tuple[list[threading.Thread], list[str], Callable[[], None]]:
    """The code before the queue: every visitor's projection at once, on every core, in its own thread."""
    report = []

    def visitor(encoder: str, method: str, params: dict) -> None:
        start = time.perf_counter()
        try:
            E.project(
                vectors[encoder],
                method,
                **{"n_neighbors" if k == "neighbors" else k: v for k, v in params.items()},
                cancelled=lambda: time.perf_counter() > deadline,
            )
            state = "done"
        except E.ProjectionCancelled:
            state = "stopped"
        request = P.Request((encoder,), method, **params)
        report.append(f"  {encoder:>5} {request.describe():<46} {state:>7}: ran {time.perf_counter() - start:5.1f} s")

    threads = [threading.Thread(target=visitor, args=r, daemon=True) for r in REQUESTS]
    for t in threads:
        t.start()
    print(f"direct: {len(threads)} projections at once, {thread_count()} thread(s) each")
    return threads, report, lambda: None


def cancel_latency(x: np.ndarray) -> None:
    """Seconds from Cancel to a free worker, for a t-SNE and a UMAP cancelled while they optimise."""
    for method, phase in (("tsne", "t-SNE: iteration"), ("umap", "UMAP: epoch")):
        queue, request, probe = (
            P.ProjectionQueue(P.QueueConfig.from_env()),
            P.Request(("x",), method),
            P.Request(("x",), "pca"),
        )
        try:
            status = queue.submit(request, x, "canceller")
            while status is not None and not status.message.startswith(phase):
                time.sleep(0.05)
                status = queue.status(request, "canceller")
            time.sleep(1.0)  # somewhere between two of its cancel checks
            start = time.perf_counter()
            queue.cancel(request, "canceller")
            queue.submit(probe, x[:50], "canceller")  # starts once the cancelled projection has let go of the worker
            queue.wait(probe, "canceller", timeout=120, poll=0.01)
            print(
                f"  cancel a {method} while it optimises: worker free after {time.perf_counter() - start:.2f} s"
                f"  ({load()})",
                flush=True,
            )
        finally:
            queue.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS))
    p.add_argument("--points", type=int, default=10_000, help="points per projection (default: 10,000)")
    p.add_argument("--sessions", type=int, default=4, help="visitors predicting (default: 4)")
    p.add_argument("--think", type=float, default=0.2, help="seconds each visitor pauses between predictions")
    p.add_argument("--max-seconds", type=float, default=600, help="stop and cancel what is left after this long")
    p.add_argument("--direct", action="store_true", help="no queue: the projections as the app ran them before")
    args = p.parse_args()
    print(f"{cpu_name()}, {os.cpu_count()} cores; {load()}")
    root = paths.data_dir()
    predictor = Predictor.load(args.weights)
    images, _ = load_mnist(root, "test")
    clips = sorted((root / "fsdd" / "recordings").glob("*.wav"))[::25][:40]
    inputs = [(canvas_from(images[i]), clip.read_bytes()) for i, clip in enumerate(clips)]
    model, _, split = E.load_split(args.weights, root, "test")
    vectors = {enc: E.compute(model, split, enc, n=args.points).vectors for enc in ("image", "fused")}
    print(f"{args.points} image and fused embeddings of {args.weights}; {len(inputs)} drawing + recording pairs")
    for method in ("tsne", "umap"):  # numba compiles UMAP on its first use in a process; warm both paths up
        E.project(vectors["image"][:600], method)
    for image, audio in inputs:  # and the predictor's lazy imports and first allocations
        predictor.predict(image=image, audio=audio)
    sessions = Sessions(predictor, inputs, args.sessions, args.think)
    quiet_until = time.perf_counter() + 10
    print(
        f"quiet, {args.sessions} sessions for 10 s: "
        f"{percentiles(sessions.run_while(lambda: time.perf_counter() < quiet_until))}"
        f"  ({load()})",
        flush=True,
    )
    start = time.perf_counter()
    deadline = start + args.max_seconds
    threads, report, close = (direct if args.direct else queued)(vectors, deadline)
    latencies = sessions.run_while(lambda: any(t.is_alive() for t in threads) and time.perf_counter() < deadline + 30)
    close()
    print("\n".join(report))
    print(
        f"busy, {args.sessions} sessions for {time.perf_counter() - start:.0f} s while the {len(REQUESTS)} projections "
        f"{'ran at once' if args.direct else 'were queued'}: {percentiles(latencies)}  ({load()})"
    )
    if sessions.errors:
        print(f"{len(sessions.errors)} predictions failed, first: {sessions.errors[0]}")
    if not args.direct:
        cancel_latency(vectors["image"])


if __name__ == "__main__":
    main()
