"""Evaluation conditions: voices shifted toward women's and children's ranges, rooms; the serving path
without training tools; a browser recording read as the same clip read directly."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.features import audio, conditions
from tests.helpers import REPO


@pytest.fixture(scope="module")
def default_predictor(request):
    from core import paths
    from core.predict import Predictor

    weights = paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")
    return Predictor.load(weights)


def _median_pitch(samples: np.ndarray, rate: int) -> float:
    import parselmouth

    pitch = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=rate).to_pitch(
        pitch_floor=60, pitch_ceiling=600
    )
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


@pytest.mark.parametrize("name", ["woman", "young-child"])
def test_voice_shift_raises_pitch_to_its_target_and_keeps_the_duration(wav_path, name):
    samples, rate = sf.read(wav_path, dtype="float32")
    shift = conditions.SHIFTS[name]
    shifted = conditions.apply(samples, rate, name)
    assert abs(len(shifted) - len(samples)) <= rate * 0.01  # a vocoder, not a resample: same length
    before, after = _median_pitch(samples, rate), _median_pitch(shifted, rate)
    assert before < 160  # FSDD's jackson: an adult man
    assert after == pytest.approx(shift.pitch_hz, rel=0.15)
    # Formants move up too: the spectral centroid of the shifted voice is higher.
    centroid = [
        float(
            (np.abs(np.fft.rfft(x)) * np.arange(len(x) // 2 + 1)).sum() / np.abs(np.fft.rfft(x)).sum() / len(x) * rate
        )
        for x in (samples, shifted)
    ]
    assert centroid[1] > centroid[0] * (1 + (shift.formant_ratio - 1) / 2)


def test_room_adds_a_reverberant_tail_and_noise_at_its_snr(wav_path):
    samples, rate = sf.read(wav_path, dtype="float32")
    room = conditions.ROOMS["noisy-room"]
    wet = conditions.apply(samples, rate, "noisy-room", seed=3)
    assert len(wet) > len(samples)  # the tail rings on after the word
    tail = wet[len(samples) :]
    assert np.sqrt(np.mean(tail**2)) > 0.01 * np.sqrt(np.mean(samples**2))
    again = conditions.apply(samples, rate, "noisy-room", seed=3)
    assert np.array_equal(wet, again)  # seeded: every evaluation hears the same room
    # Noise at the room's SNR: before the word starts, the recording holds only the room's noise.
    lead = int(np.argmax(np.abs(samples) > 0.05 * np.abs(samples).max()))
    noise_db = 10 * np.log10(
        np.mean(wet[: max(lead, 200)].astype(np.float64) ** 2) / np.mean(wet.astype(np.float64) ** 2)
    )
    assert -room.snr_db - 6 < noise_db < -room.snr_db + 3


def test_unknown_condition_is_refused(wav_path):
    samples, rate = sf.read(wav_path, dtype="float32")
    with pytest.raises(ValueError, match="condition must be one of"):
        conditions.apply(samples, rate, "underwater")


def test_condition_features_go_through_the_serving_chain(wav_path):
    clean, warped = conditions.clip_features((str(wav_path), "room"))
    assert clean.shape == (audio.N_FRAMES, audio.N_COEFFS) and np.isfinite(clean).all()
    assert warped.shape == (len(audio.TTA_WARPS), audio.N_FRAMES, audio.N_COEFFS)
    assert np.array_equal(warped[audio.TTA_WARPS.index(1.0)], clean)  # warp 1 is the plain reading


def test_evaluation_embeddings_and_prediction_need_no_espeak(tiny_weights, data_root, tmp_path):
    """With no espeak-ng on PATH and an empty feature cache, nothing on the serving path needs training data."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ffmpeg", "ffprobe"):  # keep the decoders the app may use, nothing else
        found = next((Path(p) / tool for p in os.environ["PATH"].split(os.pathsep) if (Path(p) / tool).exists()), None)
        if found:
            (bin_dir / tool).symlink_to(found)
    cache = tmp_path / "cache"
    cache.mkdir()
    from core import paths

    for bank in paths.feature_cache_dir().glob("fsdd_*.npz"):  # FSDD's own features may be reused; voices may not
        (cache / bank.name).symlink_to(bank)
    env = {
        **os.environ,
        "PATH": str(bin_dir),
        "DIGITS_CACHE_DIR": str(cache),
        "DIGITS_DATA_DIR": str(data_root),
        "DIGITS_THREADS": "1",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import shutil; print(shutil.which('espeak-ng'))"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "None"
    commands = [
        ["-m", "core.evaluate", "--weights", str(tiny_weights), "--conditions", "--json"],
        [
            "-m",
            "core.embeddings",
            "--weights",
            str(tiny_weights),
            "--encoder",
            "audio",
            "--method",
            "pca",
            "--n",
            "200",
            "--out",
            str(tmp_path / "audio.csv"),
        ],
        [
            "-c",
            f"from core.predict import Predictor; p = Predictor.load({str(tiny_weights)!r}); "
            f"print(p.predict(audio=open({str(data_root / 'fsdd/recordings/3_theo_2.wav')!r}, 'rb').read()).digit)",
        ],
    ]
    for args in commands:
        done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert not list(cache.glob("voices*")), "synthetic voices were built on the serving path"


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("rate", [16000, 48000])
def test_a_browser_recording_reads_as_the_clip_itself(default_predictor, data_root, rate):
    """The browser sends 16 or 48 kHz WAV with room noise before and after the word: same digit as the clip."""
    import librosa

    rng = np.random.default_rng(rate)
    clips = sorted((data_root / "fsdd" / "recordings").glob("*_[0-4].wav"))[::15]
    for path in clips:
        samples, sr = sf.read(path, dtype="float32")
        direct = default_predictor.predict(audio=(samples, sr))
        up = librosa.resample(samples, orig_sr=sr, target_sr=rate)
        room = lambda n: rng.normal(0, 0.004, n).astype(np.float32)  # noqa: E731 - a quiet room's hiss
        recording = np.concatenate([room(int(0.7 * rate)), up + room(len(up)), room(int(0.9 * rate))])
        browser = default_predictor.predict(audio=_wav_bytes(np.clip(recording, -1, 1), rate))
        assert browser.digit == direct.digit, path.name
