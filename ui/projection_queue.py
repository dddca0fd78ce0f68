"""The Explore page's view of the shared projection queue: the result, or the layout so far with the place in line
or the progress, and a Cancel button."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np
import streamlit as st

from core.analysis import projections as P

POLL_S = 1.0  # how often a waiting page asks the queue again
Describe = Callable[[P.Request, int], str]  # (request, points) -> "t-SNE (perplexity 30) in 2D of 2,000 …"
Preview = Callable[[np.ndarray | None], None]  # draws the layout so far (None: none published yet)


def session_id() -> str:
    """This browser session's name in the projection queue."""
    if "projection_session" not in st.session_state:
        st.session_state.projection_session = uuid.uuid4().hex
    return st.session_state.projection_session


def ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def result_or_place(
    request: P.Request, vectors: np.ndarray, describe: Describe, preview: Preview | None = None
) -> np.ndarray | None:
    """The coordinates if they are ready; otherwise None, and the page shows where the request stands, with
    preview() drawing the layout so far, until they are."""
    session = session_id()
    if st.session_state.get("emb_cancelled") == request:
        st.info(
            f"Cancelled: {describe(request, len(vectors))}. Change a setting and press Apply to ask for another "
            "projection."
        )
        if st.button("Project again", key="emb_again"):
            del st.session_state["emb_cancelled"]
            st.rerun()
        return None
    try:
        status = P.shared().submit(request, vectors, session)
    except P.QueueFull as exc:
        st.warning(str(exc))
        st.button("Try again", key="emb_retry")  # a click reruns the page, which asks again
        _other_jobs(session, request, describe)
        return None
    if status.state == "done":
        return status.result
    if status.state == "failed":
        st.error(f"Cannot project these points: {status.error}")
        return None
    st.fragment(_waiting, run_every=POLL_S)(request, session, describe, preview)
    return None


def _waiting(request: P.Request, session: str, describe: Describe, preview: Preview | None) -> None:
    status = P.shared().status(request, session)
    if status is None or status.state in ("done", "failed"):
        st.rerun()  # the whole page draws the result, or asks again for a job the queue dropped
    what = describe(request, status.points)
    if status.state == "queued":
        running = f"; {status.running} running now" if status.running else ""
        st.info(f"Waiting for the {what}: **{ordinal(status.place)} in line**{running}.")
        st.caption(
            "Projections run one after another on this server, so drawing and speaking stay quick for "
            "everyone. This page updates by itself."
        )
    else:
        st.progress(status.progress, text=f"{what}: {status.message or 'starting'}")
    if status.wanted_by > 1:
        st.caption(f"{status.wanted_by - 1} other visitor(s) asked for the same projection; it runs once for all.")
    if st.button("Cancel", key="emb_cancel"):
        P.shared().cancel(request, session)
        st.session_state.emb_cancelled = request
        st.rerun()
    if preview is not None:
        preview(status.layout)
    _other_jobs(session, request, describe)


def _other_jobs(session: str, current: P.Request, describe: Describe) -> None:
    """The visitor's other waiting projections, each with a Cancel button (the way out of their per-visitor bound)."""
    others = [(r, s) for r, s in P.shared().jobs_of(session) if r != current]
    if not others:
        return
    st.markdown("**Your other projections in the queue**")
    for request, status in others:
        cols = st.columns([5, 1])
        where = f"{ordinal(status.place)} in line" if status.state == "queued" else f"running, {status.progress:.0%}"
        cols[0].caption(f"{describe(request, status.points)}: {where}")
        if cols[1].button("Cancel", key=f"emb_cancel_{abs(hash(request))}"):
            P.shared().cancel(request, session)
            st.rerun()
