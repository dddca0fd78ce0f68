"""The projection queue publishes t-SNE's layouts while it runs: they appear, the last is the result, cancel works."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.analysis import embeddings as E
from core.analysis import projections as P

HANG_GUARD_S = 600  # waits end here only if the queue is broken (a first UMAP in a clean clone compiles numba's
# kernels for minutes on a loaded machine); no assertion is about time


def blobs(n_per=60, dim=12, k=4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + rng.normal(0, 0.5, (n_per, dim)) for c in rng.normal(0, 8, (k, dim))]).astype(np.float32)


class Recorder:
    """The queue's real runner, recording every layout it publishes and holding at the `hold`-th until released."""

    def __init__(self, hold: int = 0):
        self.layouts: list[np.ndarray] = []
        self.hold, self.held, self.go = hold, threading.Event(), threading.Event()

    def __call__(self, x, request, progress, cancelled, threads):
        def report(fraction, message, layout=None):
            progress(fraction, message, layout)
            if layout is not None:
                self.layouts.append(np.array(layout))
                if len(self.layouts) == self.hold:
                    self.held.set()
                    assert self.go.wait(HANG_GUARD_S)

        return P.project_request(x, request, report, cancelled, threads)


@pytest.fixture
def queue_with():
    queues = []

    def build(runner) -> P.ProjectionQueue:
        queues.append(P.ProjectionQueue(P.QueueConfig(workers=1, threads=1), run=runner))
        return queues[-1]

    yield build
    for q in queues:
        q.close()


def test_layouts_appear_while_tsne_runs_and_the_last_is_the_plain_result(queue_with):
    x, runner = blobs(), Recorder(hold=3)
    queue = queue_with(runner)
    request = P.Request(("blobs",), "tsne", perplexity=15)
    queue.submit(request, x, "alice")
    assert runner.held.wait(HANG_GUARD_S)
    status = queue.status(request, "alice")
    # Held at the third layout: the queue shows it to every visitor, read-only, with the progress beside it.
    assert status.state == "running" and status.layouts == 3 and status.layout.shape == (len(x), 2)
    assert np.array_equal(status.layout, runner.layouts[2]) and not status.layout.flags.writeable
    assert 0 < status.progress < 1 and status.message.startswith("t-SNE: iteration")
    runner.go.set()
    done = queue.wait(request, "alice", HANG_GUARD_S, poll=0.01)
    assert done.state == "done" and done.layout is None
    total = sum(E.TSNE_ITERS.values())
    assert len(runner.layouts) == 1 + total // E.TSNE_EVERY  # the PCA start, then one every TSNE_EVERY iterations
    assert not np.allclose(runner.layouts[0], runner.layouts[-1])  # they move
    plain = E.project(x, "tsne", perplexity=15, threads=1)
    assert np.array_equal(done.result, plain)  # publishing changes nothing of the result
    # openTSNE calls back just before its iteration's last step: the last layout is the result but for that step.
    assert np.allclose(runner.layouts[-1], plain, atol=0.01 * np.ptp(plain))


def test_umap_publishes_no_layout_and_still_finishes(queue_with):
    x, runner = blobs(), Recorder()
    queue = queue_with(runner)
    request = P.Request(("blobs",), "umap", neighbors=10)
    queue.submit(request, x, "bob")
    done = queue.wait(request, "bob", HANG_GUARD_S, poll=0.01)
    assert done.state == "done" and done.result.shape == (len(x), 2) and runner.layouts == []


def test_a_projection_publishing_layouts_can_still_be_cancelled(queue_with):
    x, runner = blobs(), Recorder(hold=2)
    queue = queue_with(runner)
    request = P.Request(("blobs",), "tsne", perplexity=15)
    queue.submit(request, x, "carol")
    assert runner.held.wait(HANG_GUARD_S)
    assert queue.status(request, "carol").layouts == 2
    assert queue.cancel(request, "carol")
    runner.go.set()
    with queue._lock:  # the worker stops at its next check and keeps no result
        assert queue._lock.wait_for(lambda: queue._running == 0, HANG_GUARD_S)
    assert queue.status(request) is None and len(runner.layouts) < 1 + sum(E.TSNE_ITERS.values()) // E.TSNE_EVERY
