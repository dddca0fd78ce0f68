"""core.projections: the shared queue's order, sharing, places, cancel, bounds, cache and threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.analysis import embeddings as E
from core.analysis import projections as P

HANG_GUARD_S = 120  # waits end here only if the queue is broken; no assertion is about time


class Gate:
    """A runner that starts jobs when the queue says, records the order, and holds each until released."""

    def __init__(self):
        self.started: list[P.Request] = []
        self.stopped: list[P.Request] = []
        self.threads: list[int] = []
        self.released: set[P.Request] = set()
        self.cond = threading.Condition()
        self.ignore_cancel = False  # as a UMAP would, were it past its last cancel check

    def __call__(self, x, request, progress, cancelled, threads):
        with self.cond:
            self.started.append(request)
            self.threads.append(threads)
            self.cond.notify_all()
            while request not in self.released:
                if cancelled() and not self.ignore_cancel:
                    self.stopped.append(request)
                    raise E.ProjectionCancelled("stopped")
                progress(0.5, "half way")
                self.cond.wait(0.01)
        return x[:, : request.dims] * request.perplexity  # each request's own answer

    def release(self, *requests):
        with self.cond:
            self.released.update(requests)
            self.cond.notify_all()

    def wait_started(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, HANG_GUARD_S), self.started


def req(name: str, **params) -> P.Request:
    return P.Request((name,), "tsne", **params)


X = np.arange(40, dtype=np.float32).reshape(10, 4)


def settle(queue: P.ProjectionQueue, request: P.Request, session: str) -> P.Status:
    status = queue.wait(request, session, HANG_GUARD_S, poll=0.01)
    assert status is not None and status.state in ("done", "failed"), status
    return status


@pytest.fixture
def gate():
    return Gate()


@pytest.fixture
def make(gate):
    queues = []

    def build(**config) -> P.ProjectionQueue:
        queues.append(P.ProjectionQueue(P.QueueConfig(**config), run=gate))
        return queues[-1]

    yield build
    for q in queues:
        q.close()


def test_jobs_start_first_come_first_served_and_report_their_place(make, gate):
    queue = make(workers=1)
    a, b, c = req("a"), req("b"), req("c")
    for r in (a, b, c):
        queue.submit(r, X, session=f"visitor-{r.source[0]}")
    gate.wait_started(1)
    assert queue.status(a).state == "running" and queue.status(a).progress == 0.5
    assert [(queue.status(r).state, queue.status(r).place, queue.status(r).running) for r in (b, c)] == [
        ("queued", 1, 1),
        ("queued", 2, 1),
    ]
    gate.release(a)
    gate.wait_started(2)
    assert queue.status(c).place == 1
    gate.release(b, c)
    for r in (a, b, c):
        assert np.array_equal(settle(queue, r, f"visitor-{r.source[0]}").result, X[:, :2] * 30)
    assert gate.started == [a, b, c]


def test_two_workers_run_two_jobs_and_the_third_waits(make, gate):
    queue = make(workers=2)
    for name in "abc":
        queue.submit(req(name), X, "s")
    gate.wait_started(2)
    assert [queue.status(req(n)).state for n in "abc"] == ["running", "running", "queued"]
    assert queue.status(req("c")).place == 1 and queue.status(req("c")).running == 2
    gate.release(req("a"), req("b"), req("c"))
    settle(queue, req("c"), "s")


def test_identical_requests_share_one_job(make, gate):
    queue = make(workers=1)
    queue.submit(req("busy"), X, "someone")
    gate.wait_started(1)
    queue.submit(req("a"), X, "alice")
    same = queue.submit(req("a", min_dist=0.7, neighbors=40), X, "bob")  # t-SNE ignores the UMAP settings
    assert (same.state, same.place, same.wanted_by) == ("queued", 1, 2)
    gate.release(req("busy"), req("a"))
    assert settle(queue, req("a"), "alice").result is settle(queue, req("a"), "bob").result
    assert gate.started == [req("busy"), req("a")]
    assert queue.submit(req("a"), X, "carol").state == "done" and len(gate.started) == 2  # kept: no new job


def test_finished_results_are_kept_up_to_the_bound(make, gate):
    queue = make(workers=1, keep=2)
    for name in "abc":
        gate.release(req(name))
        queue.submit(req(name), X, "s")
        settle(queue, req(name), "s")
    assert queue.status(req("a")) is None  # the oldest went
    assert queue.status(req("b")).state == queue.status(req("c")).state == "done"
    queue.submit(req("a"), X, "s")
    settle(queue, req("a"), "s")
    assert gate.started == [req("a"), req("b"), req("c"), req("a")]


def test_cancelling_a_queued_job_takes_it_out_of_line(make, gate):
    queue = make(workers=1)
    for name in "abc":
        queue.submit(req(name), X, name)
    gate.wait_started(1)
    assert queue.cancel(req("b"), "b")
    assert queue.status(req("b")) is None and queue.status(req("c")).place == 1
    assert not queue.cancel(req("b"), "b") and not queue.cancel(req("c"), "somebody else")
    gate.release(req("a"), req("c"))
    settle(queue, req("c"), "c")
    assert gate.started == [req("a"), req("c")]


def test_cancelling_a_running_job_stops_it_and_drops_it(make, gate):
    queue = make(workers=1)
    queue.submit(req("a"), X, "alice")
    queue.submit(req("b"), X, "bob")
    gate.wait_started(1)
    assert queue.cancel(req("a"), "alice")
    gate.wait_started(2)  # the worker moved on
    assert gate.stopped == [req("a")] and queue.status(req("a")) is None
    gate.release(req("b"))
    settle(queue, req("b"), "bob")
    assert queue.status(req("a")) is None  # nothing kept for the cancelled job


def test_a_result_that_arrives_after_its_cancel_is_dropped(make, gate):
    queue = make(workers=1)
    gate.ignore_cancel = True
    queue.submit(req("a"), X, "alice")
    gate.wait_started(1)
    assert queue.cancel(req("a"), "alice") and queue.status(req("a")) is None
    queue.submit(req("b"), X, "bob")
    assert queue.status(req("b")).place == 1 and queue.status(req("b")).running == 1  # "a" still holds the worker
    gate.release(req("a"), req("b"))
    settle(queue, req("b"), "bob")
    assert gate.started == [req("a"), req("b")] and queue.status(req("a")) is None


def test_a_job_stays_while_another_visitor_still_wants_it(make, gate):
    queue = make(workers=1)
    queue.submit(req("a"), X, "alice")
    queue.submit(req("a"), X, "bob")
    gate.wait_started(1)
    assert queue.cancel(req("a"), "alice")
    assert queue.status(req("a"), "bob").wanted_by == 1
    gate.release(req("a"))
    assert settle(queue, req("a"), "bob").state == "done" and gate.stopped == []


def test_queue_bounds_per_visitor_and_overall(make, gate):
    queue = make(workers=1, max_jobs=3, per_session=2)
    queue.submit(req("a"), X, "alice")
    queue.submit(req("b"), X, "alice")
    with pytest.raises(P.QueueFull, match="most one visitor may queue") as full:
        queue.submit(req("c"), X, "alice")
    assert full.value.scope == "session"
    assert queue.submit(req("b"), X, "alice").state in ("queued", "running")  # asking again is not a new place
    queue.submit(req("c"), X, "bob")
    with pytest.raises(P.QueueFull, match="queue is full") as full:
        queue.submit(req("d"), X, "bob")
    assert full.value.scope == "server"
    assert queue.submit(req("a"), X, "bob").wanted_by == 2  # joining a job takes no new place in the queue
    gate.release(req("a"))
    settle(queue, req("a"), "bob")
    assert queue.submit(req("d"), X, "carol").state == "queued"  # a finished job made room


def test_jobs_nobody_asks_about_are_dropped(gate):
    now = [0.0]
    queue = P.ProjectionQueue(P.QueueConfig(workers=1, abandon_after=60), run=gate, clock=lambda: now[0])
    try:
        queue.submit(req("a"), X, "gone")
        queue.submit(req("b"), X, "gone")
        queue.submit(req("c"), X, "here")
        gate.wait_started(1)
        now[0] = 30.0
        queue.status(req("c"), "here")  # "here" keeps asking; "gone" closed the tab
        now[0] = 61.0
        gate.wait_started(2)  # the running job notices it is unwanted and stops
        assert gate.stopped == [req("a")] and gate.started == [req("a"), req("c")]
        assert queue.status(req("b")) is None
        gate.release(req("c"))
        assert settle(queue, req("c"), "here").state == "done"
    finally:
        queue.close()


def test_a_failed_projection_says_why_and_the_worker_carries_on():
    queue = P.ProjectionQueue(P.QueueConfig(workers=1, threads=1))
    try:
        two_columns = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
        bad = P.Request(("flat",), "pca", dims=3)  # three components from two columns
        queue.submit(bad, two_columns, "s")
        failed = settle(queue, bad, "s")
        assert failed.state == "failed" and "n_components" in failed.error
        good = P.Request(("flat",), "pca", dims=2)
        queue.submit(good, two_columns, "s")
        assert settle(queue, good, "s").state == "done"
    finally:
        queue.close()


def test_a_real_tsne_through_the_queue_matches_a_direct_one():
    rng = np.random.default_rng(0)
    x = np.concatenate([c + rng.normal(0, 0.5, (60, 8)) for c in rng.normal(0, 10, (3, 8))]).astype(np.float32)
    queue = P.ProjectionQueue(P.QueueConfig(workers=1, threads=1))
    try:
        request = P.Request(("blobs",), "tsne", perplexity=20)
        queue.submit(request, x, "s")
        done = settle(queue, request, "s")
    finally:
        queue.close()
    assert done.state == "done" and not done.result.flags.writeable
    np.testing.assert_allclose(done.result, E.project(x, "tsne", perplexity=20, threads=1), rtol=1e-5, atol=1e-5)


def test_each_projection_gets_the_queues_share_of_the_threads(make, gate, monkeypatch):
    monkeypatch.setenv("DIGITS_THREADS", "2")
    assert P.QueueConfig(workers=1).job_threads == 1  # one core stays for predictions
    monkeypatch.setenv("DIGITS_THREADS", "8")
    assert P.QueueConfig(workers=2).job_threads == 3
    assert P.QueueConfig(workers=1, threads=2).job_threads == 2
    queue = make(workers=2)
    gate.release(req("a"))
    queue.submit(req("a"), X, "s")
    settle(queue, req("a"), "s")
    assert gate.threads == [3]


def test_configuration_from_the_environment(monkeypatch):
    monkeypatch.setenv(P.WORKERS_ENV, "2")
    monkeypatch.setenv(P.QUEUE_ENV, "20")
    monkeypatch.setenv(P.PER_SESSION_ENV, "4")
    assert P.QueueConfig.from_env() == P.QueueConfig(workers=2, max_jobs=20, per_session=4)
    monkeypatch.setenv(P.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="DIGITS_PROJECTION_WORKERS must be a whole number"):
        P.QueueConfig.from_env()
    monkeypatch.setenv(P.WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        P.QueueConfig.from_env()


def test_bad_requests_are_refused_before_they_take_a_place(make):
    queue = make()
    with pytest.raises(ValueError, match="method"):
        P.Request(("x",), "lda")
    with pytest.raises(ValueError, match="perplexity"):
        P.Request(("x",), "tsne", perplexity=0)
    with pytest.raises(ValueError, match="at least 5 points"):
        queue.submit(req("a"), X[:4], "s")
    assert queue.jobs_of("s") == []
