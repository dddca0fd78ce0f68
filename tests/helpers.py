"""Helpers the tests share: speech-like audio, a loopback Streamlit server, AppTest runs, the browser tests' parts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent


def speech_like(seconds: float = 0.5, rate: int = 8000, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voiced, vowel-like test signal: harmonics of f0 under a smooth envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12) if f0 * k < rate / 2)
    envelope = np.sin(np.pi * t / seconds) ** 2
    return (0.3 * tone * envelope + 0.003 * rng.normal(size=len(t))).astype(np.float32)


@contextmanager
def streamlit_server(
    env: dict, ready_path: str = "", poll_s: float = 0.5, timeout_s: float = 90, options: dict | None = None
):
    """`streamlit run app.py` on a free loopback port with env added to the environment; yields its URL once it
    accepts connections (with ready_path, once GET ready_path answers 200), polling every poll_s seconds.
    options: `--name value` flags of streamlit's, over the defaults below. TimeoutError when it does not answer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flags = {
        "server.headless": "true",
        "server.port": str(port),
        "server.address": "127.0.0.1",
        "browser.gatherUsageStats": "false",
        "server.fileWatcherType": "none",
        **(options or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", *(a for k, v in flags.items() for a in (f"--{k}", v))],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(port, ready_path):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"streamlit did not answer within {timeout_s:g} s")
            time.sleep(poll_s)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _answers(port: int, ready_path: str) -> bool:
    """Whether 127.0.0.1:port accepts a connection, or with ready_path, answers GET ready_path with 200."""
    try:
        if not ready_path:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def run_module(module: str, *args) -> subprocess.CompletedProcess:
    """`python -m module args...` from the repo root (args as strings), its output captured as text."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, capture_output=True, text=True)


def app_after_run(page: str, timeout: float = 240, **state):
    """AppTest of app.py after a run of page, with state set first. Always switched to explicitly: AppTest's first
    run has no page URL, and widget clicks on that run's default page do not reach the script (its page id
    changes between runs). timeout guards against a hang; nothing asserts how long a run takes."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(page)
    at.run()
    settle(at, timeout)
    assert not at.exception, [e.message for e in at.exception]
    return at


BACKGROUND = ("Running the encoders over the split",)  # what a page shows while its background pass runs


def settle(at, timeout: float = 240):
    """Rerun at (as the page's polling fragment would) until no background pass it waits for is running."""
    deadline = time.monotonic() + timeout
    while any(b in c.value for c in at.caption for b in BACKGROUND) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    return at


# The browser tests' shared parts: Debian's chromium through Playwright, the fake microphone, the page's readers.
CHROMIUM = "/usr/bin/chromium"


def require_chromium(sox: bool = False) -> None:
    """Fail (not skip) when chromium, or sox with sox=True, is missing: scripts/setup --dev installs them."""
    if not Path(CHROMIUM).exists() or (sox and not shutil.which("sox")):
        pytest.fail(
            "the browser test needs /usr/bin/chromium and sox (scripts/setup --dev installs them)"
            if sox
            else "the browser test needs /usr/bin/chromium (scripts/setup --dev installs it)"
        )


def launch_chromium(playwright, fake_mic: Path | None = None):
    """Headless chromium; with fake_mic, microphone allowed and fed by that WAV, played once from when a recording
    opens the device (chromium reads the file afresh each time)."""
    args = ["--no-sandbox", "--disable-gpu"]
    if fake_mic is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic}%noloop",
            "--disable-background-networking",
            "--disable-component-update",
        ]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*args, "--no-first-run"])


def fake_mic_wav(source: Path, out: Path, pad_before: float, pad_after: float) -> float:
    """source written to out as the fake microphone's file (16 kHz, 16-bit mono, by sox), with pad_before and
    pad_after seconds of silence around it; its duration in seconds."""
    subprocess.run(
        ["sox", str(source), "-r", "16000", "-b", "16", "-c", "1", str(out), "pad", str(pad_before), str(pad_after)],
        check=True,
    )
    return sf.info(out).duration


def metric(page, label: str, timeout: float = 60_000) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label)
    box.wait_for(timeout=timeout)
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def card(page, head: str) -> tuple[str, str]:
    """(digit, "NN% sure") as a prediction card shows them."""
    box = page.locator('[data-testid="stMetric"]', has_text=f"{head.capitalize()} prediction")
    return (
        box.locator('[data-testid="stMetricValue"]').inner_text().strip(),
        box.locator('[data-testid="stMetricDelta"]').inner_text().strip(),
    )


def microphone(page):
    """The page's own recorder: the first audio input ("Teach it your voice" has another, further down)."""
    return page.locator('[data-testid="stAudioInput"]').first


def wait_until(condition, message: str, timeout_s: float = 60) -> None:
    """Poll condition (a hang guard, not a speed limit)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
