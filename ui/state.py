"""The weights the app serves (default or a finished run the user picked) and the cached Predictor."""

from __future__ import annotations

import os
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core import paths
from core.errors import CheckpointError, DigitsError, InvalidInput
from core.runs.store import weights_of

if TYPE_CHECKING:  # core.predict imports torch (seconds): the preload thread pays for it, not the page
    from core.predict import Predictor

WEIGHTS_ENV = "DIGITS_WEIGHTS"  # overrides weights/default.pt (tests, deployments)
NO_WEIGHTS = (
    "No model weights at `{path}`. Train a model first, e.g. "
    "`python -m core.train --trial fused --epochs 10`, then copy its `runs/<run id>/best.pt` to `weights/default.pt` "
    "(or set `DIGITS_WEIGHTS`), or start a training from the sidebar and make the finished run active."
)


def session_token() -> str:
    """A random token for this browser session, kept on the server: the runs it starts are its own to cancel."""
    if "session_token" not in st.session_state:
        st.session_state.session_token = secrets.token_hex(16)
    return st.session_state.session_token


def default_weights() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or paths.DEFAULT_WEIGHTS)


def data_root() -> Path:
    return paths.data_dir()


# The default model loads in a background thread (torch, the weights and librosa's lazy imports: seconds on this
# 2-core machine), queued by the first page but held back until that page has been sent: importing torch holds the
# GIL for long stretches, which slowed the page's own first run and the server sending it.
_preloader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-preload")
_preloads: dict[tuple[str, float], Future] = {}
_page_sent = threading.Event()
HOLD_BACK_S = 10.0  # at most: a page run outside app.py (an AppTest of a bare page) never releases the load


def release_preload() -> None:
    """Let the queued background load start (app.py calls it once the page has run)."""
    _page_sent.set()


def _preload(path: str) -> Predictor:
    _page_sent.wait(HOLD_BACK_S)
    return _load_and_warm(path)


def _load_and_warm(path: str) -> Predictor:
    from core.predict import Predictor

    predictor = Predictor.load(path)
    _warm_up(predictor)
    return predictor


def preload_default() -> None:
    """Start loading the default weights in the background (once per file version)."""
    path = default_weights()
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return
    if key not in _preloads:
        _preloads[key] = _preloader.submit(_preload, key[0])


def is_ready() -> bool:
    """Whether the active model can be had without waiting for a background load."""
    path, _ = active_weights()
    try:
        future = _preloads.get((str(path), path.stat().st_mtime))
    except OSError:
        return True  # nothing to wait for: predictor() reports the missing file
    return future is None or future.done()


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load(path: str, mtime: float) -> Predictor:  # mtime: a rewritten file is loaded again
    future = _preloads.get((path, mtime))
    if future is None:
        return _load_and_warm(path)
    release_preload()  # the page waits for the model now: nothing left to hold the load back for
    return future.result()


def _warm_up(predictor: Predictor) -> None:
    """One throw-away prediction, so librosa's lazy imports happen now and not on the visitor's first word."""
    t = np.arange(8000) / 16000
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(np.pi * t / 0.5) ** 2).astype(np.float32)
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 12:16] = 1.0
    inputs = {"image": bar, "audio": (voice, 16000)}
    try:
        predictor.predict(**{m: inputs[m] for m in predictor.modalities})
    except InvalidInput:
        pass


def active_weights() -> tuple[Path, str]:
    """(path, label) of the weights in use: the run picked in the sidebar, else the default."""
    run = st.session_state.get("active_run")
    if run and run != "default":
        try:
            return weights_of(run), f"run {run}"
        except DigitsError as exc:
            st.error(f"Run {run} cannot be used ({exc}); serving the default weights.")
            st.session_state.active_run = "default"
    return default_weights(), "default weights"


def predictor(show_errors: bool = True) -> Predictor | None:
    """The loaded active model; on a bad or missing file, a clear message and the default (or None)."""
    path, label = active_weights()
    try:
        return _load(str(path), path.stat().st_mtime)
    except (CheckpointError, OSError) as exc:
        if label != "default weights":
            if show_errors:
                st.error(f"The weights of {label} are unusable ({exc}); serving the default weights instead.")
            path = default_weights()
            try:
                return _load(str(path), path.stat().st_mtime)
            except (CheckpointError, OSError) as exc2:
                exc = exc2
        if show_errors:
            if isinstance(exc, FileNotFoundError) or not path.exists():
                st.error(NO_WEIGHTS.format(path=path))
            else:
                st.error(f"The weights file `{path}` is unusable: {exc}")
        return None
