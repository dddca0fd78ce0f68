"""AppTest of the Draw page's "Teach it your voice": an adapted audio card beside the unadapted answer, reset, a
profile made with another model left unused, and several takes of a digit."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from core.model.adapt import AdaptConfig, adapt
from core.predict import Predictor
from tests.helpers import app_after_run

SPEAKER = "nicolas"


@pytest.fixture
def env(monkeypatch, tmp_path, tiny_weights, data_root):
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("DIGITS_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))


def _recordings(data_root, take: int) -> list[tuple[np.ndarray, int]]:
    return [
        sf.read(str(data_root / "fsdd" / "recordings" / f"{d}_{SPEAKER}_{take}.wav"), dtype="float32")
        for d in range(10)
    ]


def _profile(predictor: Predictor, data_root):
    from core.predict import prepare_audio

    features = np.stack([prepare_audio(r)[1] for r in _recordings(data_root, 7)])
    return adapt(
        predictor, features, list(range(10)), AdaptConfig(steps=0)
    )  # templates only: quick, and a real profile


def _audio_card(at) -> str:
    return next(m.value for m in at.metric if m.label == "Audio prediction")


def test_an_adapted_card_shows_the_unadapted_answer_and_reset_restores_it(env, tiny_weights, data_root):
    predictor = Predictor.load(tiny_weights)
    profile = _profile(predictor, data_root)
    # The clip whose answer the profile changes most clearly, so the page must show both answers apart.
    clips = _recordings(data_root, 30)
    results = [(predictor.predict(audio=c, profile=profile), predictor.predict(audio=c), c) for c in clips]
    adapted, plain, clip = max(results, key=lambda r: r[0].digits["audio"] != r[1].digits["audio"])
    at = app_after_run("pages/draw_and_speak.py", voice_profile=profile, example={"image": None, "audio": clip})
    assert any("Adapted to your voice (10 recordings)" in s.value for s in at.success)
    assert _audio_card(at) == str(adapted.digits["audio"])
    digit, p = adapted.unadapted_top("audio")
    assert digit == plain.digits["audio"]
    assert any(f"Adapted to your voice. Unadapted: **{digit}** ({p:.0%} sure)." in c.value for c in at.caption)
    at.button(key="teach_reset").click().run()
    assert _audio_card(at) == str(plain.digits["audio"])
    assert not any("Unadapted:" in c.value for c in at.caption)


def test_a_profile_of_another_model_is_not_used(env, tiny_weights, data_root):
    shipped = Predictor.load()
    profile = _profile(shipped, data_root)
    clip = _recordings(data_root, 30)[4]
    at = app_after_run("pages/draw_and_speak.py", voice_profile=profile, example={"image": None, "audio": clip})
    assert any("made with another model" in w.value for w in at.warning)
    assert _audio_card(at) == str(Predictor.load(tiny_weights).predict(audio=clip).digits["audio"])
    assert not any("Unadapted:" in c.value for c in at.caption)


def test_explore_shows_your_recordings_in_the_audio_embedding(env, tiny_weights, data_root):
    predictor = Predictor.load(tiny_weights)
    profile = _profile(predictor, data_root)
    plain = app_after_run("pages/embeddings.py", emb_method="pca", emb_n=100)
    at = app_after_run("pages/embeddings.py", voice_profile=profile, emb_method="pca", emb_n=100)
    assert "Your voice in the audio embedding" in [e.label for e in at.expander]
    assert "Your voice in the audio embedding" not in [e.label for e in plain.expander]
    assert len(at.get("plotly_chart")) == len(plain.get("plotly_chart")) + 2  # before and after


def _takes(predictor: Predictor, data_root, per_digit: dict[int, int]) -> dict:
    """The page's store of takes: FSDD takes 30, 31, ... of each digit, checked as the page checks a recording."""
    from core.model.adapt import enroll

    takes = {}
    for d in range(10):
        for take in range(30, 30 + per_digit.get(d, 1)):
            clip = sf.read(str(data_root / "fsdd" / "recordings" / f"{d}_{SPEAKER}_{take}.wav"), dtype="float32")
            takes.setdefault(d, []).append({"bytes": b"", "enrollment": enroll(predictor, d, clip), "confirmed": True})
    return takes


def test_several_takes_of_a_digit_all_teach_the_profile(env, tiny_weights, data_root):
    predictor = Predictor.load(tiny_weights)
    store = {"takes": _takes(predictor, data_root, {3: 3}), "version": dict.fromkeys(range(10), 0), "digit": 3}
    at = app_after_run("pages/draw_and_speak.py", teach_voice=store)
    assert any("10 of 10 digits recorded (12 recordings)" in c.value for c in at.caption)
    assert not [a for a in at.get("audio_input") if "once more" in a.label]  # three takes: no room for a fourth
    at.button(key="teach_again_3_2").click().run()  # "Drop take 3"
    assert any("10 of 10 digits recorded (11 recordings)" in c.value for c in at.caption)
    assert [a.label for a in at.get("audio_input") if "once more" in a.label] == [
        "Say “3” once more (optional: take 3 of 3)"
    ]
    at.button(key="teach_adapt").click().run()
    deadline = time.monotonic() + 240
    while "voice_profile" not in at.session_state:
        assert time.monotonic() < deadline, "the adaptation did not finish"
        time.sleep(0.5)
        at.run()
    assert at.session_state["voice_profile"].counts == (1, 1, 1, 2, 1, 1, 1, 1, 1, 1)
    assert any("Adapted to your voice (11 recordings)" in s.value for s in at.success)
