"""The weights the app serves (default or a finished run the user picked) and the cached Predictor."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from core import paths
from core.errors import CheckpointError, DigitsError, InvalidInput
from core.predict import Predictor
from core.runs import weights_of

WEIGHTS_ENV = "DIGITS_WEIGHTS"  # overrides weights/default.pt (tests, deployments)
NO_WEIGHTS = (
    "No model weights at `{path}`. Train a model first, e.g. "
    "`python -m core.train --trial fused --epochs 10`, then copy its `runs/<run id>/best.pt` to `weights/default.pt` "
    "(or set `DIGITS_WEIGHTS`), or start a training from the sidebar and make the finished run active."
)


def default_weights() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or paths.DEFAULT_WEIGHTS)


def data_root() -> Path:
    return paths.data_dir()


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load(path: str, mtime: float) -> Predictor:  # mtime: a rewritten file is loaded again
    predictor = Predictor.load(path)
    _warm_up(predictor)
    return predictor


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


def weights_key() -> tuple[str, float] | None:
    """(path, mtime) of the active weights, a plain cache key for embeddings."""
    p = predictor(show_errors=False)
    if p is None:
        return None
    path = Path(p.source)
    return str(path), path.stat().st_mtime
