"""The audio augmentations do what their names say: speed, shift, gain, noise at an SNR, warp and mean-filled masks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.features import audio

RATE = audio.SAMPLE_RATE
# Every lever off: each test turns on the one it measures.
STILL = audio.Augmentation(speed=(1.0, 1.0), gain_db=(0.0, 0.0), noise_probability=0.0, warp=(1.0, 1.0))


def tone(freq: float = 180.0, seconds: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def extent(window: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    """First and last sample of the tone in a window (the noise floor stays far below level)."""
    loud = np.flatnonzero(np.abs(window) > level)
    return int(loud[0]), int(loud[-1])


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[np.argmax(spectrum)])


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_speed_changes_tempo_and_pitch_together(factor):
    speech = tone()
    window = audio.augmented_window(speech, np.random.default_rng(0), replace(STILL, speed=(factor, factor)))
    first, last = extent(window)
    assert abs((last - first) - len(speech) / factor) < 50  # 50 samples: a tone period and the resampler's edges
    assert peak_hz(window[first:last]) == pytest.approx(180 * factor, abs=5)


def test_the_time_shift_moves_the_whole_word_inside_the_window():
    speech = tone()
    starts = set()
    for seed in range(8):
        window = audio.augmented_window(speech, np.random.default_rng(seed), STILL)
        first, last = extent(window)
        assert abs((last - first) - len(speech)) < 50  # the whole word, nothing cut off
        starts.add(first)
    assert len(starts) >= 6 and max(starts) - min(starts) > 0.2 * RATE


def test_gain_scales_the_window_by_its_decibels():
    speech = tone()
    loud = audio.augmented_window(speech, np.random.default_rng(1), STILL)
    quiet = audio.augmented_window(speech, np.random.default_rng(1), replace(STILL, gain_db=(-6.0, -6.0)))
    assert np.allclose(quiet, loud * 10 ** (-6 / 20), atol=1e-7)
    assert np.abs(loud).max() == pytest.approx(audio.PEAK, abs=0.01)


@pytest.mark.parametrize("snr_db", [10.0, 25.0])
def test_noise_is_added_at_the_drawn_snr_and_hums_more_than_it_hisses(snr_db):
    speech = tone()
    aug = replace(STILL, snr_db=(snr_db, snr_db))
    clean = audio.augmented_window(speech, np.random.default_rng(2), aug)  # noise_probability 0: no noise
    noisy = audio.augmented_window(speech, np.random.default_rng(2), replace(aug, noise_probability=1.0))
    noise = (noisy - clean).astype(np.float64)
    speech_power = np.mean((speech / np.abs(speech).max() * audio.PEAK).astype(np.float64) ** 2)
    assert 10 * np.log10(speech_power / np.mean(noise**2)) == pytest.approx(snr_db, abs=0.1)
    power = np.abs(np.fft.rfft(noise)) ** 2
    assert power[: len(power) // 2].sum() > 2 * power[len(power) // 2 :].sum()


@pytest.mark.parametrize("warp", [0.9, 1.1])
def test_warp_stretches_the_spectrum(monkeypatch, warp):
    import librosa

    spectra = []
    real = librosa.feature.melspectrogram
    monkeypatch.setattr(librosa.feature, "melspectrogram", lambda S, **kw: spectra.append(S) or real(S=S, **kw))
    window = audio.place_in_window(tone(1000.0))
    audio.mfcc_features(window)
    audio.mfcc_features(window, warp=warp)
    hz = np.fft.rfftfreq(audio.FRAME_LENGTH, 1 / RATE)
    plain, warped = (hz[np.argmax(s.sum(axis=1))] for s in spectra)
    assert plain == 1000 and warped == pytest.approx(1000 * warp, abs=10)  # bins are 20 Hz apart
    # augmented_features applies the warp it draws
    aug = replace(STILL, warp=(warp, warp))
    expected = audio.mfcc_features(audio.augmented_window(tone(), np.random.default_rng(3), aug), warp=warp)
    assert np.array_equal(audio.augmented_features(tone(), np.random.default_rng(3), aug), expected)


def masked_and_plain(aug: audio.Augmentation, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A view with aug's masks and the same view without them (the masks are drawn last)."""
    speech = tone()
    masked = audio.augmented_features(speech, np.random.default_rng(seed), aug)
    plain = audio.augmented_features(speech, np.random.default_rng(seed), replace(aug, time_masks=0, coef_masks=0))
    return masked, plain


def test_time_masks_fill_whole_frames_with_the_utterance_mean():
    aug = replace(STILL, noise_probability=1.0, time_masks=2, max_time_mask=5)
    masked_frames = 0
    for seed in range(6):
        masked, plain = masked_and_plain(aug, seed)
        changed = np.flatnonzero((masked != plain).any(axis=1))
        assert len(changed) <= aug.time_masks * aug.max_time_mask
        for frame in changed:
            assert np.allclose(masked[frame], plain.mean(axis=0), atol=1e-5), (seed, frame)
        masked_frames += len(changed)
    assert masked_frames > 0


def test_coefficient_masks_fill_with_the_mean_and_never_touch_the_energy():
    aug = replace(STILL, noise_probability=1.0, coef_masks=2, max_coef_mask=3)
    masked_coefs = 0
    for seed in range(6):
        masked, plain = masked_and_plain(aug, seed)
        changed = np.flatnonzero((masked != plain).any(axis=0))
        assert audio.N_COEFFS - 1 not in changed  # the log energy, last
        for c in changed:
            assert np.allclose(masked[:, c], plain[:, c].mean(), atol=1e-5), (seed, c)
        masked_coefs += len(changed)
    assert masked_coefs > 0
