"""A clickable confusion matrix: the test inputs behind a cell, computed off the script thread, with image and clip."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import streamlit as st

from core.analysis.mistakes import answers_on_test_split, mistakes
from core.errors import DigitsError
from core.training.metrics import confusion
from ui import charts

POLL_S = 1.0
SHOWN = 12  # inputs shown per cell, surest first
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mistakes")  # one evaluation at a time, shared


@st.cache_resource(max_entries=4, show_spinner=False)
def _job(weights: str, mtime: float, root: str) -> Future:  # mtime: a rewritten file is evaluated again
    return _POOL.submit(answers_on_test_split, weights, root)


def _answers(job: Future):
    """(answers per head, split) once evaluated; None while the evaluation runs."""
    if not job.done():
        return None
    if job.exception() is not None:
        _job.clear()  # so "Try again" evaluates afresh
    return job.result()


def _waiting(job: Future) -> None:
    if job.done():
        st.rerun()  # the whole page draws what the evaluation found
    st.caption(":material/hourglass_top: Running the model over the test split to find the inputs it got wrong…")


def section(weights: Path | None, root: Path, head: str, stored: list[list[int]] | None, data_ready: bool) -> None:
    """The confusion matrix of head (stored, or measured from weights), and the inputs behind the clicked cell."""
    answers = split = None
    wanted = weights is not None and data_ready and (stored is None or st.session_state.get(f"cell_{head}"))
    if wanted:
        try:
            job = _job(str(weights), weights.stat().st_mtime, str(root))
            found = _answers(job)
        except (DigitsError, OSError, ValueError) as exc:
            st.error(f"Could not evaluate these weights on the test split: {exc}")
            st.button("Try again", key=f"mistakes_retry_{head}")
            return
        if found is None:
            st.fragment(_waiting, run_every=POLL_S)(job)
        else:
            answers, split = found[0].get(head), found[1]
    matrix = (
        stored
        if stored is not None
        else None
        if answers is None
        else confusion(answers.truth, answers.predicted).tolist()
    )
    if matrix is None:
        if weights is None or not data_ready:
            st.info("No confusion matrix yet: it is measured on the test split when a training finishes.")
        return
    event = st.plotly_chart(
        charts.confusion(matrix, head), key=f"confusion_{head}", on_select="rerun", selection_mode="points"
    )
    points = (event.selection.get("points") if event else None) or []
    if points:
        st.session_state[f"cell_{head}"] = (int(points[0]["y"]), int(points[0]["x"]))
    cell = st.session_state.get(f"cell_{head}")
    if weights is None:
        st.caption(
            "Clicking a cell shows its test inputs for runs trained here and for the shipped weights; this "
            "entry's weights are not on this server."
        )
        return
    if not data_ready:
        st.caption("Clicking a cell shows its test inputs once the datasets are here.")
        return
    if not cell:
        st.caption("Click a cell off the diagonal to see the test inputs behind it.")
        return
    truth, predicted = cell
    if truth == predicted:
        st.caption(f"That cell holds the {matrix[truth][truth]} right answers for {truth}; click one off the diagonal.")
        return
    if answers is None:
        if not wanted:
            st.rerun()  # the cell was clicked in this run: the next one starts the evaluation and shows it running
        return  # still evaluating: the hourglass above says so
    _show(mistakes(answers, split, head, truth, predicted, SHOWN), root, head, truth, predicted)


def _show(found: list, root: Path, head: str, truth: int, predicted: int) -> None:
    if not found:
        st.caption(f"No test input of {truth} was read as {predicted} by the {head} head.")
        return
    st.markdown(f"**{truth} read as {predicted}** by the {head} head: the {len(found)} surest of these mistakes")
    cols = st.columns(4)
    for n, m in enumerate(found):
        with cols[n % 4]:
            if m.image is not None:
                st.image(np.clip(m.image, 0, 1), width=84, clamp=True)
            if m.clip is not None:
                path = root / "fsdd" / "recordings" / m.clip
                if path.is_file():
                    st.audio(path.read_bytes(), format="audio/wav")
            st.caption(f"#{m.index} · {m.confidence:.0%} sure" + (f" · {m.clip}" if m.clip else ""))
