"""The audio features: MFCC 1-12 and log energy per frame, the 1 s window, standardisation, serving = training."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from core import paths
from core.features import audio

RATE = audio.SAMPLE_RATE


@pytest.fixture(scope="module")
def window(wav_path) -> np.ndarray:
    samples, rate = sf.read(wav_path, dtype="float32")
    return audio.place_in_window(audio.trim_speech(audio.to_mono_8k(samples, rate)))


def test_features_are_mfcc_1_to_12_then_the_log_energy_of_39_frames(window):
    import librosa

    features = audio.mfcc_features(window)
    assert features.shape == (39, 13) and features.dtype == np.float32
    # librosa's own route from the waveform: 50 ms Hann frames every 25 ms, all inside the window, 40 mel bands.
    mfcc = librosa.feature.mfcc(
        y=window, sr=RATE, n_mfcc=13, n_fft=400, hop_length=200, win_length=400, center=False, n_mels=40, fmax=RATE / 2
    )
    assert np.allclose(features[:, :12], mfcc[1:].T, atol=1e-3)
    frames = np.stack([window[i * 200 : i * 200 + 400] for i in range(39)]).astype(np.float64)
    assert np.allclose(features[:, 12], np.log((frames**2).sum(axis=1) + 1e-10), atol=1e-4)


def test_the_word_is_peak_normalised_and_centred_over_a_faint_noise_floor():
    t = np.arange(int(0.3 * RATE)) / RATE
    word = (0.05 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    placed = audio.place_in_window(word)
    assert placed.shape == (RATE,)
    loud = np.flatnonzero(np.abs(placed) > 0.1)
    start = (RATE - len(word)) // 2
    assert abs(loud[0] - start) < 25 and abs(loud[-1] - (start + len(word))) < 25  # within a period of 200 Hz
    assert np.abs(placed).max() == pytest.approx(audio.PEAK, abs=5 * audio.NOISE_FLOOR)
    room = np.concatenate([placed[: start - 10], placed[start + len(word) + 10 :]])
    assert room.std() == pytest.approx(audio.NOISE_FLOOR, rel=0.1)


@pytest.mark.parametrize("norm", ["none", "mean", "meanvar"])
def test_standardise_applies_the_utterance_norm_then_the_global_statistics(norm):
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, (4, 39, 13)).astype(np.float32)
    mean, std = rng.normal(size=13).astype(np.float32), rng.uniform(0.5, 2, 13).astype(np.float32)
    expected = x.astype(np.float64)
    if norm != "none":
        expected = expected - expected.mean(axis=1, keepdims=True)
    if norm == "meanvar":
        expected = expected / (expected.std(axis=1, keepdims=True) + 1e-5)
    assert np.allclose(audio.standardize(x, mean, std, norm), (expected - mean) / std, atol=1e-4)
    with pytest.raises(ValueError, match="utterance_norm"):
        audio.standardize(x, mean, std, "cmvn")


@pytest.fixture(scope="module")
def served_weights(request):
    return paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")


def test_serving_feeds_the_model_what_evaluation_feeds_it(served_weights, data_root):
    """The app's path (file bytes -> Predictor) against the training bank's clean features and the run's statistics."""
    import torch

    from core.features.banks import load_fsdd_bank
    from core.predict import Predictor

    predictor = Predictor.load(served_weights)
    bank = load_fsdd_bank(data_root, 0)  # every bank's clean features; the evaluation splits use these
    norm = predictor.config.features.utterance_norm
    for i in range(0, len(bank), 300):  # ten clips, every speaker
        served = predictor.predict(audio=(data_root / "fsdd" / "recordings" / bank.names[i]).read_bytes())
        assert np.allclose(served.features, bank.clean[i], atol=1e-4), bank.names[i]
        x = audio.standardize(bank.clean[i][None, None], predictor.mean, predictor.std, norm)  # as core.dataset does
        temperature = predictor.calibration.get("temperature", {}).get("audio", 1.0)  # the checkpoint's calibration
        with torch.no_grad():
            probs = (predictor.model(audio=torch.from_numpy(x[:, 0]))["audio"] / temperature).softmax(-1)[0].numpy()
        assert np.allclose(served.probs["audio"], probs, atol=1e-5), bank.names[i]
