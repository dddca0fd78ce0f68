"""The Explore page with the shared projection queue (AppTest): place in line, cancel, a full queue, then the plot."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analysis import embeddings as E
from core.analysis import projections as P
from tests.helpers import app_after_run

PAGE = "pages/embeddings.py"
HANG_GUARD_S = 240  # a broken queue would wait forever; nothing asserts how long it takes


class HeldBack:
    """The real projection runner, except that the job named "busy" holds its worker until released."""

    def __init__(self):
        self.free = threading.Event()

    def __call__(self, x, request, progress, cancelled, threads):
        if request.source == ("busy",):
            while not self.free.wait(0.02):
                if cancelled():
                    raise E.ProjectionCancelled("stopped")
        return P.project_request(x, request, progress, cancelled, threads)


@pytest.fixture
def queue(monkeypatch, tmp_path, tiny_weights, data_root):
    """The page on the tiny weights and the dataset, its shared queue busy with another visitor's projection."""
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("DIGITS_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    runner, built = HeldBack(), []

    def build(**config) -> P.ProjectionQueue:
        q = P.ProjectionQueue(P.QueueConfig(**config), run=runner)
        q.release = runner.free.set
        built.append(q)
        monkeypatch.setattr(P, "_shared", q)
        q.submit(P.Request(("busy",), "tsne"), np.random.default_rng(0).normal(size=(50, 4)), "another visitor")
        return q

    yield build
    runner.free.set()
    for q in built:
        q.close()


def explore(**state) -> AppTest:
    return app_after_run(PAGE, HANG_GUARD_S, **state)


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def plots(at: AppTest) -> list[str]:
    """The page's plots by key: scatter_preview while a projection runs, scatter_2 (2D) once it is done."""
    return [p.key for p in at.get("plotly_chart")]


def test_the_page_shows_its_place_can_cancel_and_draws_the_plot_when_done(queue):
    q = queue(workers=1)
    at = explore(emb_n=300, emb_method="tsne", emb_split="test")
    assert any("1st in line" in t and "1 running now" in t for t in texts(at.info)), texts(at.info)
    assert plots(at) == ["scatter_preview"] and not at.error  # PCA while it waits
    assert any("ARI" in d.value.columns for d in at.dataframe)  # the cluster-quality table does not wait
    session = at.session_state["projection_session"]
    [(request, status)] = q.jobs_of(session)
    assert (request.method, request.perplexity, status.place) == ("tsne", 30.0, 1)

    next(b for b in at.button if b.label == "Cancel").click().run()
    assert any(t.startswith("Cancelled: t-SNE (perplexity 30) in 2D of 300 image embeddings") for t in texts(at.info))
    assert q.jobs_of(session) == [] and q.status(request) is None

    next(b for b in at.button if b.label == "Project again").click().run()
    assert any("1st in line" in t for t in texts(at.info)) and q.jobs_of(session)

    q.release()  # the other visitor's projection finishes; ours runs next
    deadline = time.monotonic() + HANG_GUARD_S
    while plots(at) != ["scatter_2"] and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()  # what the page's polling fragment does once a second
    assert not at.exception and not at.error, texts(at.error)
    assert plots(at) == ["scatter_2"] and not any("in line" in t for t in texts(at.info))
    neighbours = next(d.value for d in at.dataframe if "distance" in d.value.columns)
    assert len(neighbours) == 8


def test_a_full_queue_says_so_and_the_page_keeps_working(queue):
    queue(workers=1, max_jobs=1)
    at = explore(emb_n=300, emb_method="umap", emb_split="test")
    assert any("The projection queue is full" in t for t in texts(at.warning)), texts(at.warning)
    assert any(b.label == "Try again" for b in at.button)
    assert not plots(at) and not at.error
    at.session_state["emb_method"] = "pca"  # PCA needs no queue
    at.run()
    assert plots(at) == ["scatter_2"] and not at.warning


def test_a_visitor_at_their_bound_can_cancel_their_other_projections(queue):
    q = queue(workers=1, per_session=2)
    at = explore(emb_n=300, emb_method="tsne", emb_split="test")
    for perplexity in (20.0, 40.0):
        at.session_state["emb_perplexity"] = perplexity
        at.run()
    assert any("most one visitor may queue" in t for t in texts(at.warning)), texts(at.warning)
    session = at.session_state["projection_session"]
    assert [r.perplexity for r, _ in q.jobs_of(session)] == [30.0, 20.0]
    assert any(
        "t-SNE (perplexity 30) in 2D of 300 image embeddings (test split): 1st in line" in c.value for c in at.caption
    )
    cancels = [b for b in at.button if b.label == "Cancel"]
    assert len(cancels) == 2  # one per waiting projection of this visitor
    cancels[0].click().run()
    assert [r.perplexity for r, _ in q.jobs_of(session)] == [20.0, 40.0]  # room made: perplexity 40 joined the line


def test_settings_wait_for_apply_and_a_running_tsne_shows_a_picture(queue):
    q = queue(workers=1)
    at = explore(emb_n=300, emb_method="tsne", emb_split="test")
    session = at.session_state["projection_session"]
    assert [r.perplexity for r, _ in q.jobs_of(session)] == [30.0]
    # While it waits, the page already shows a picture (PCA of the same points), not an empty space.
    assert plots(at) == ["scatter_preview"] and any("PCA of the same points" in c.value for c in at.caption)
    at.slider(key="emb_perplexity").set_value(50.0)
    at.selectbox(key="emb_method").set_value("umap")
    at.run()
    assert [r.perplexity for r, _ in q.jobs_of(session)] == [30.0]  # moved, not applied: no new projection
    at.slider(key="emb_perplexity").set_value(50.0)  # AppTest drops staged values at each run; the browser keeps them
    at.selectbox(key="emb_method").set_value("umap")
    next(b for b in at.button if b.label == "Apply").click().run()
    assert [(r.method, r.perplexity) for r, _ in q.jobs_of(session)] == [("tsne", 30.0), ("umap", 30.0)]
    assert at.slider(key="emb_perplexity").value == 50.0
