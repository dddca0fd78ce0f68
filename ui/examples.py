"""Example inputs from the test sets, and whether the visitor sits at this computer."""
from __future__ import annotations

import numpy as np
import soundfile as sf
import streamlit as st

from core import datastatus
from core.data.fsdd import OFFICIAL_TEST_TAKES, list_clips
from core.data.mnist import load_mnist
from ui import state


def is_local_client() -> bool:
    """True when the browser connects from this machine (so sounddevice records the visitor's own microphone)."""
    return st.context.ip_address is None and "x-forwarded-for" not in {k.lower() for k in st.context.headers.keys()}


def available() -> bool:
    return datastatus.missing(state.data_root()) is None


@st.cache_resource(show_spinner=False)
def _mnist_test(root: str) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist(root, "test")


def pick() -> None:
    """Put a random MNIST test digit and an FSDD test clip of the same digit into session_state.example."""
    root = state.data_root()
    images, labels = _mnist_test(str(root))
    rng = np.random.default_rng()
    i = int(rng.integers(len(images)))
    clips = [c for c in list_clips(root) if c.digit == int(labels[i]) and c.take in OFFICIAL_TEST_TAKES]
    clip = clips[int(rng.integers(len(clips)))]
    samples, rate = sf.read(clip.path, dtype="float32")
    st.session_state.example = {"image": images[i], "audio": (samples, rate), "digit": int(labels[i]), "clip": clip.path.name}
