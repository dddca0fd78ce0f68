"""Audio and image preprocessing: shapes, invariances the app relies on, and clear errors."""

import io

import numpy as np
import pytest
import soundfile as sf

from core.errors import InvalidInput
from core.features import audio, image
from tests.helpers import speech_like


def test_features_shape_and_frames(wav_path):
    samples, rate = sf.read(wav_path, dtype="float32")
    feats = audio.mfcc_features(audio.serving_window(samples, rate))
    assert feats.shape == (39, 13) and audio.FEATURE_DIM == 507
    assert np.isfinite(feats).all()


def test_resampled_stereo_matches_mono_8k(wav_path):
    import librosa

    samples, rate = sf.read(wav_path, dtype="float32")
    up = librosa.resample(samples, orig_sr=rate, target_sr=44100)
    stereo = np.stack([up, up], axis=1)
    a = audio.mfcc_features(audio.serving_window(samples, rate))
    b = audio.mfcc_features(audio.serving_window(stereo, 44100))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_room_noise_around_the_word_is_trimmed(wav_path):
    samples, rate = sf.read(wav_path, dtype="float32")
    rng = np.random.default_rng(0)
    padded = np.concatenate([np.zeros(rate), samples, np.zeros(rate)]) + rng.normal(0, 0.002, len(samples) + 2 * rate)
    clean = audio.trim_speech(audio.to_mono_8k(samples, rate))
    noisy = audio.trim_speech(audio.to_mono_8k(padded.astype(np.float32), rate))
    assert abs(len(noisy) - len(clean)) < 0.15 * rate


@pytest.mark.parametrize(
    "signal, message",
    [
        (np.zeros(8000, np.float32), "silent"),
        (np.full(8000, 0.5, np.float32), "silent"),  # DC only
        (np.full(8000, np.nan, np.float32), "NaN"),
        (np.ones(100, np.float32), "ms long"),
        (np.ones(8000 * 31, np.float32), "limit"),
    ],
)
def test_unusable_audio_is_invalid_input(signal, message):
    with pytest.raises(InvalidInput, match=message):
        audio.mfcc_features(audio.serving_window(signal, 8000))


def test_decode_formats_and_garbage():
    signal = speech_like()
    for fmt in ("WAV", "FLAC", "OGG"):
        buf = io.BytesIO()
        sf.write(buf, signal, 8000, format=fmt)
        samples, rate = audio.decode(buf.getvalue())
        assert rate == 8000 and abs(len(samples) - len(signal)) < 200
    with pytest.raises(InvalidInput, match="empty"):
        audio.decode(b"")
    with pytest.raises(InvalidInput, match="Could not read"):
        audio.decode(b"this is a text file, not audio" * 10)


def test_utterance_norm_removes_a_channel_offset():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(39, 13)).astype(np.float32)
    shifted = feats + rng.normal(size=13).astype(np.float32)  # a constant per-coefficient channel tilt
    zero, one = np.zeros(13), np.ones(13)
    assert np.allclose(
        audio.standardize(feats, zero, one, "mean"), audio.standardize(shifted, zero, one, "mean"), atol=1e-5
    )
    assert not np.allclose(audio.standardize(feats, zero, one), audio.standardize(shifted, zero, one))


def _drawing(size=280, box=(60, 60, 200, 200), thickness=14) -> np.ndarray:
    """An RGBA canvas (white ink on black) with a '7' drawn inside box."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    d.line([(x0, y0), (x1, y0), (x0 + (x1 - x0) // 3, y1)], fill=(255, 255, 255, 255), width=thickness)
    return np.asarray(img)


def test_image_is_cropped_scaled_and_centred_by_mass():
    centred = image.preprocess(_drawing())
    small_corner = image.preprocess(_drawing(box=(5, 5, 45, 45), thickness=4))
    assert centred.shape == (28, 28) and centred.dtype == np.float32
    ys, xs = np.indices((28, 28))
    for img in (centred, small_corner):
        assert abs((ys * img).sum() / img.sum() - 14) < 1 and abs((xs * img).sum() / img.sum() - 14) < 1
        rows, cols = np.nonzero(img > 0.15)
        assert max(rows.max() - rows.min(), cols.max() - cols.min()) in range(17, 22)
    assert np.corrcoef(centred.ravel(), small_corner.ravel())[0, 1] > 0.8


def test_polarity_and_transparency_give_the_same_digit():
    rgba = _drawing()
    black_on_white = 255 - rgba[..., :3]
    transparent = np.zeros_like(rgba)
    transparent[..., 3] = rgba[..., 0]  # black ink on a transparent background
    base = image.preprocess(rgba)
    assert np.allclose(image.preprocess(black_on_white), base, atol=0.05)
    assert np.corrcoef(image.preprocess(transparent).ravel(), base.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("arr", [np.zeros((280, 280, 4), np.uint8), np.full((50, 50), 255, np.uint8), np.zeros((1, 1))])
def test_blank_images_are_invalid_input(arr):
    with pytest.raises(InvalidInput, match="blank|a digit needs at least"):  # 1x1: too small to hold a digit
        image.preprocess(arr)


def test_image_decode_rejects_non_images():
    with pytest.raises(InvalidInput, match="picture"):
        image.decode(b"GIF89a but not really")
