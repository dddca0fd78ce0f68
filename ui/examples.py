"""Example inputs from the test sets, and whether the visitor sits at this computer."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf
import streamlit as st

from core.data import status as datastatus
from core.data.fsdd import OFFICIAL_TEST_TAKES, list_clips
from core.data.mnist import load_mnist
from ui import state

# Set by a reverse proxy: the visitor is elsewhere even though the connection comes from this machine.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def _loopback(host: str | None) -> bool:
    """Whether a Host value (name or address, with or without a port) names this machine."""
    if host is None:
        return True  # not given (AppTest sends no headers); a browser always sends Host
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8501
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_is_local(headers: Mapping[str, str], ip: str | None, url: str | None = None) -> bool:
    """True only when nothing says the visitor is elsewhere: a loopback connection (ip None), no proxy headers, and
    a loopback Host header and page URL. Behind a proxy on this machine the connection alone looks local."""
    names = {k.lower(): v for k, v in headers.items()}
    if ip is not None or any(h in names for h in PROXY_HEADERS):
        return False
    return _loopback(names.get("host")) and _loopback(urlsplit(url).hostname if url else None)


def is_local_client() -> bool:
    """True when the browser runs on this machine (so sounddevice records the visitor's own microphone)."""
    return client_is_local(dict(st.context.headers), st.context.ip_address, st.context.url)


def available() -> bool:
    return _has_data(str(state.data_root()))


@st.cache_data(ttl=30, max_entries=4, show_spinner=False)
def _has_data(root: str) -> bool:
    """Cached: listing the 3,000 clips on every stroke delayed each prediction (docs/results.md, issue 13)."""
    return datastatus.missing(root) is None


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
    st.session_state.example = {
        "image": images[i],
        "audio": (samples, rate),
        "digit": int(labels[i]),
        "clip": clip.path.name,
    }
