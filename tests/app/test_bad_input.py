"""The app under bad uploads, bad weights and tampered run ids: a clear message, no exception, still serving."""

from __future__ import annotations

import io
import pickle
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import limits, paths
from core.predict import Predictor
from core.runs.listing import active_training

APP = str(paths.REPO_ROOT / "app.py")


@pytest.fixture
def served(monkeypatch, tmp_path, request) -> Path:
    """The app pointed at the weights users get (or the tiny test run), empty runs/ and no dataset."""
    weights = paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")
    for name in ("runs", "no-data"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("DIGITS_WEIGHTS", str(weights))
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "no-data"))
    return weights


def start(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def uploader(at: AppTest, words: str):
    return next(u for u in at.get("file_uploader") if words in u.label)


def shown(at: AppTest) -> dict[str, str]:
    assert not at.exception, [e.message for e in at.exception]
    return {m.label: m.value for m in at.metric}


def wav(samples, rate=8000, subtype=None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def bad_recordings(clip: np.ndarray) -> dict[str, tuple[bytes, str]]:
    nan = clip.copy()
    nan[100] = np.nan
    return {
        "empty.wav": (b"", "empty"),
        "notes.wav": (b"just some text\n" * 50, "Could not read this audio file"),
        "cut.wav": (wav(clip)[:30], "Could not read this audio file"),
        "nan.wav": (wav(nan, subtype="FLOAT"), "NaN or infinite"),
        "silence.wav": (wav(np.zeros(8000, np.float32)), "silent"),
        "short.wav": (wav(clip[:160]), "20 ms long"),
        "long.wav": (wav(np.tile(clip, 600 * 8000 // len(clip) + 1)[: 600 * 8000]), "600 s long"),
        "huge.wav": (b"RIFF" + bytes(limits.MAX_UPLOAD_BYTES), f"limit is {limits.MAX_UPLOAD_BYTES // limits.MB} MB"),
    }


def test_bad_uploads_get_a_clear_message_and_the_page_keeps_working(served, wav_path, mnist_test):
    clip, _ = sf.read(wav_path, dtype="float32")
    digit = (mnist_test[0][0] * 255).astype(np.uint8)
    at = start()
    bad_pictures = {
        "doc.png": (b"%PDF-1.4", "Could not read this file as a picture"),
        "dot.png": (png(np.full((1, 1), 255, np.uint8)), "1x1 pixels"),
        "white.png": (png(np.full((200, 200), 255, np.uint8)), "blank"),
    }
    for name, (data, message) in bad_pictures.items():
        uploader(at, "picture").set_value((name, data, "image/png")).run()
        assert not shown(at) and any(message in e.value for e in at.error), (name, [e.value for e in at.error])
    uploader(at, "picture").set_value(None).run()
    for name, (data, message) in bad_recordings(clip).items():
        uploader(at, "recording").set_value((name, data, "audio/wav")).run()
        assert not shown(at) and any(message in e.value for e in at.error), (name, [e.value for e in at.error])
    # The browser microphone's recording goes through the same checks.
    at.audio_input(key="mic").upload("mic.wav", wav(np.zeros(16000, np.float32), 16000)).run()
    assert not shown(at) and any("silent" in e.value for e in at.error)
    at.audio_input(key="mic").clear().run()

    # Still serving: a good picture and recording are predicted exactly as the served model predicts them.
    uploader(at, "picture").set_value(("seven.png", png(digit), "image/png"))
    uploader(at, "recording").set_value(("seven.wav", wav_path.read_bytes(), "audio/wav")).run()
    expected = Predictor.load(served).predict(image=png(digit), audio=wav_path.read_bytes()).digits
    assert shown(at) == {f"{h.capitalize()} prediction": str(expected[h]) for h in ("fused", "image", "audio")}
    assert not at.error


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bad_default_weights_say_what_is_wrong(served, monkeypatch, tmp_path):
    marker = tmp_path / "code-ran"
    cases = {
        "truncated.pt": (served.read_bytes()[:5000], "truncated or corrupt"),
        "code.pt": (pickle.dumps(Payload(marker)), "may carry code"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        monkeypatch.setenv("DIGITS_WEIGHTS", str(tmp_path / name))
        at = start()
        assert not shown(at) and any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_hostile_run_checkpoint_falls_back_to_the_default(served, tmp_path, mnist_test):
    marker = tmp_path / "code-ran"
    run = tmp_path / "runs" / "20260101-000000-fused-eeeeee"
    run.mkdir()
    (run / "status.json").write_text('{"state": "finished", "trial": "fused", "started": 1}')
    (run / "best.pt").write_bytes(pickle.dumps(Payload(marker)))
    at = start(example={"image": mnist_test[0][0], "audio": None})
    at.sidebar.selectbox(key="active_run").set_value(run.name).run()
    assert any("unusable" in e.value and "default weights" in e.value for e in at.error), [e.value for e in at.error]
    expected = Predictor.load(served).predict(image=mnist_test[0][0]).digits["image"]
    assert shown(at) == {"Image prediction": str(expected)} and not marker.exists()


@pytest.mark.parametrize("run_id", ["../../etc", "/etc/passwd", "..", "x/../../y"])
def test_tampered_run_ids_in_the_session_stay_inside_runs(served, mnist_test, run_id):
    # The app takes no run id from the URL (it reads no query parameters); the session is where one could be forged.
    at = AppTest.from_file(APP, default_timeout=240)
    for key in ("active_run", "watch_run"):
        at.session_state[key] = run_id
    at.session_state["example"] = {"image": mnist_test[0][0], "audio": None}
    at.run()
    expected = Predictor.load(served).predict(image=mnist_test[0][0]).digits["image"]
    assert shown(at) == {"Image prediction": str(expected)}
    assert at.session_state["active_run"] == "default"


def test_streamlit_upload_cap_matches_core():
    config = tomllib.loads((paths.REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * limits.MB == limits.MAX_UPLOAD_BYTES


def test_a_killed_training_shows_as_interrupted(served, tmp_path):
    import subprocess
    import sys
    import time

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs, as after kill -9
    run = tmp_path / "runs" / "20260101-000000-fused-ffffff"
    run.mkdir()
    (run / "status.json").write_text(
        f'{{"state": "running", "pid": {gone.pid}, "started": {time.time()}, "trial": "fused"}}'
    )
    (run / ".best.pt.x1y2.tmp").write_bytes(b"half a checkpoint")  # what a kill during a write leaves
    at = start(watch_run=run.name)
    shown(at)
    assert any("interrupted" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
    assert len(at.sidebar.selectbox(key="active_run").options) == 1  # only the default: it cannot be made active
    assert active_training() is None  # so a new training may start
