"""Broken and hostile audio and images: valid ones are predicted, the rest raise InvalidInput with a clear message."""
import io
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from core import limits, paths
from core.errors import InvalidInput
from core.predict import Predictor, prepare_audio, prepare_image


@pytest.fixture(scope="module")
def predictor(request):
    # The weights the app serves; a tiny trained run where they are not built yet.
    path = paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")
    return Predictor.load(path)


@pytest.fixture(scope="module")
def clip(wav_path):
    return sf.read(wav_path, dtype="float32")


@pytest.fixture(scope="module")
def digit(mnist_test):
    return (mnist_test[0][0] * 255).astype(np.uint8)


def encode(samples, rate, fmt="WAV", subtype=None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def mp3(samples, rate, tmp_path) -> bytes:
    if "MP3" in sf.available_formats():
        return encode(samples, rate, "MP3", "MPEG_LAYER_III")
    src, dst = tmp_path / "in.wav", tmp_path / "out.mp3"
    sf.write(src, samples, rate)
    for tool, argv in (("ffmpeg", ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), str(dst)]),
                       ("sox", ["sox", str(src), str(dst)])):
        if shutil.which(tool) and subprocess.run(argv).returncode == 0:
            return dst.read_bytes()
    pytest.skip("no MP3 encoder: this libsndfile lacks MP3 and neither ffmpeg nor sox is installed")


def ffmpeg(samples, rate, tmp_path, suffix: str) -> bytes:
    """What phones (M4A) and browsers (WebM) record, made with ffmpeg from the WAV."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed (scripts/setup --dev installs it)")
    src, dst = tmp_path / "in.wav", tmp_path / f"out.{suffix}"
    sf.write(src, samples, rate)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), str(dst)], check=True)
    return dst.read_bytes()


def png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def resample(x, rate, to):
    import librosa

    return librosa.resample(x, orig_sr=rate, target_sr=to)


def assert_predicted(result, head):
    p = np.asarray(result.probs[head])
    assert result.head == head and np.isfinite(p).all() and p.sum() == pytest.approx(1, abs=1e-4)
    assert result.digit == int(np.argmax(p))


# Lossless or mild conversions of a real FSDD clip: the features must still describe the same word.
SIMILAR = {
    "ogg_vorbis": lambda x, r, tmp: encode(x, r, "OGG", "VORBIS"),
    "mp3": lambda x, r, tmp: mp3(x, r, tmp),
    "96khz_stereo_24bit": lambda x, r, tmp: encode(np.stack([resample(x, r, 96000)] * 2, 1), 96000, "WAV", "PCM_24"),
    "8bit_unsigned": lambda x, r, tmp: encode(x, r, "WAV", "PCM_U8"),
    "m4a_aac": lambda x, r, tmp: ffmpeg(x, r, tmp, "m4a"),
    "webm_opus": lambda x, r, tmp: ffmpeg(x, r, tmp, "webm"),
}


@pytest.mark.parametrize("name", list(SIMILAR))
def test_audio_formats_are_predicted_like_the_original(predictor, clip, tmp_path, name):
    x, rate = clip
    _, reference = prepare_audio(encode(x, rate))
    data = SIMILAR[name](x, rate, tmp_path)
    result = predictor.predict(audio=data)
    assert_predicted(result, "audio")
    assert np.corrcoef(result.features.ravel(), reference.ravel())[0, 1] > 0.98
    assert result.digit == predictor.predict(audio=encode(x, rate)).digit


def test_flac_is_bit_identical_to_wav(predictor, clip):
    x, rate = clip
    a, b = predictor.predict(audio=encode(x, rate)), predictor.predict(audio=encode(x, rate, "FLAC"))
    assert a.probs == b.probs


def test_clipping_and_a_cut_off_wav_are_still_predicted(predictor, clip):
    x, rate = clip
    whole = encode(x, rate)
    clean = predictor.predict(audio=whole).digit
    overdriven = predictor.predict(audio=encode(np.clip(x / np.abs(x).max() * 4, -1, 1), rate))  # 12 dB over full scale
    assert_predicted(overdriven, "audio")
    assert overdriven.digit == clean
    cut = predictor.predict(audio=whole[: len(whole) // 2])  # header intact, data cut short
    assert_predicted(cut, "audio")
    assert cut.digit == clean
    # Clipped 26 dB over full scale (almost a square wave): still read, not refused; the digit may change.
    assert_predicted(predictor.predict(audio=encode(np.clip(x * 50, -1, 1), rate)), "audio")


def _ten_minutes(x, rate):
    return np.tile(x, int(600 * rate / len(x)) + 1)[: 600 * rate]


BAD_AUDIO = {
    "empty": (lambda x, r: b"", "empty"),
    "truncated_header": (lambda x, r: encode(x, r)[:30], "Could not read this audio file"),
    "text_named_wav": (lambda x, r: b"this is a text file, not a recording\n" * 20, "Could not read this audio file"),
    "float_nan": (lambda x, r: encode(np.where(np.arange(len(x)) == 500, np.nan, x), r, "WAV", "FLOAT"), "NaN or infinite"),
    "float_inf": (lambda x, r: encode(np.where(np.arange(len(x)) == 500, np.inf, x), r, "WAV", "FLOAT"), "NaN or infinite"),
    "digital_silence": (lambda x, r: encode(np.zeros(r, np.float32), r, "WAV", "PCM_16"), "silent"),
    "dc_only": (lambda x, r: encode(np.full(r, 0.4, np.float32), r, "WAV", "PCM_16"), "silent"),
    "20_ms": (lambda x, r: encode(x[: r // 50], r), "20 ms long; the shortest usable"),
    "10_minutes": (lambda x, r: encode(_ten_minutes(x, r), r), "600 s long; the limit is 30 s"),
    # A few kB of FLAC that would decode to 10 minutes: refused from its header, before decoding.
    "10_minute_flac": (lambda x, r: encode(np.zeros(16000 * 600, np.int16), 16000, "FLAC"), "600 s long"),
    "over_upload_limit": (lambda x, r: encode(np.zeros((limits.MAX_UPLOAD_BYTES // 4 + 1, 2), np.int16), 44100),
                          f"limit is {limits.MAX_UPLOAD_BYTES // limits.MB} MB"),
}


@pytest.mark.parametrize("name", list(BAD_AUDIO))
def test_bad_audio_is_refused_with_a_clear_message(predictor, clip, name):
    make, message = BAD_AUDIO[name]
    with pytest.raises(InvalidInput, match=message):
        predictor.predict(audio=make(*clip))


def test_bad_sample_arrays_are_refused(predictor, clip):
    x, rate = clip
    with pytest.raises(InvalidInput, match="600 s long"):
        predictor.predict(audio=(_ten_minutes(x, rate), rate))
    with pytest.raises(InvalidInput, match="Sample rate 10 Hz"):
        predictor.predict(audio=(x, 10))
    with pytest.raises(InvalidInput, match="9 channels"):
        predictor.predict(audio=encode(np.stack([x] * 9, 1), rate))


def test_image_cases_that_are_predicted(predictor, digit):
    reference = predictor.predict(image=png(np.asarray(Image.fromarray(digit).resize((280, 280), Image.NEAREST))))
    assert_predicted(reference, "image")
    huge = predictor.predict(image=png(np.asarray(Image.fromarray(digit).resize((8000, 8000), Image.NEAREST))))
    assert huge.digit == reference.digit and np.allclose(huge.image, reference.image, atol=0.05)
    # Transparent RGBA: black strokes on nothing, the digit only in the alpha channel.
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.asarray(Image.fromarray(digit).resize((280, 280), Image.NEAREST))
    transparent = predictor.predict(image=png(rgba))
    assert transparent.digit == reference.digit and np.allclose(transparent.image, reference.image, atol=1e-3)


def _truncated_png(digit):
    data = png(np.asarray(Image.fromarray(digit).resize((280, 280))))
    return data[: len(data) // 2]


BAD_IMAGES = {
    "not_an_image": (lambda d: b"%PDF-1.4 a document, not a picture", "Could not read this file as a picture"),
    "truncated_png": (_truncated_png, "Could not read this file as a picture"),
    "1x1": (lambda d: png(np.full((1, 1), 255, np.uint8)), "1x1 pixels; a digit needs at least 8x8"),
    "all_white": (lambda d: png(np.full((300, 300, 3), 255, np.uint8)), "blank"),
    "all_black": (lambda d: png(np.zeros((300, 300, 3), np.uint8)), "blank"),
    "blank_canvas": (lambda d: np.zeros((280, 280, 4), np.uint8), "blank"),  # st_canvas before any stroke
    "black_canvas": (lambda d: np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]), "blank"),
    "over_pixel_limit": (lambda d: _bomb(10_001, 10_001), f"limit is {limits.MAX_IMAGE_PIXELS:,} pixels"),
    "decompression_bomb": (lambda d: _bomb(50_000, 50_000), f"limit is {limits.MAX_IMAGE_PIXELS:,} pixels"),
    "over_upload_limit": (lambda d: b"\x89PNG" + bytes(limits.MAX_UPLOAD_BYTES),
                          f"limit is {limits.MAX_UPLOAD_BYTES // limits.MB} MB"),
}


def _bomb(width: int, height: int) -> bytes:
    """A PNG that declares width x height (would decode to that many pixels) but holds almost nothing."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_images_are_refused_with_a_clear_message(predictor, digit, name):
    make, message = BAD_IMAGES[name]
    with pytest.raises(InvalidInput, match=message):
        predictor.predict(image=make(digit))


def test_predictor_keeps_working_after_bad_inputs(predictor, clip, digit):
    x, rate = clip
    before = predictor.predict(image=digit, audio=(x, rate))
    for bad in (b"", b"garbage", encode(np.zeros(rate, np.float32), rate)):
        with pytest.raises(InvalidInput):
            predictor.predict(image=digit, audio=bad)
    with pytest.raises(InvalidInput):
        predictor.predict(image=np.zeros((280, 280, 4), np.uint8), audio=(x, rate))
    after = predictor.predict(image=digit, audio=(x, rate))
    assert after.probs == before.probs and after.head == "fused"
    assert prepare_image(digit).shape == (28, 28)


def test_readme_states_the_limits():
    readme = (paths.REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    number = lambda v: str(v) if isinstance(v, int) else f"{v:g}"  # noqa: E731
    expected = [f"{limits.MAX_UPLOAD_BYTES // limits.MB} MB", f"{limits.MIN_AUDIO_SECONDS * 1000:.0f} ms to "
                f"{limits.MAX_AUDIO_SECONDS:.0f} s", f"{limits.MAX_SAMPLE_RATE // 1000} kHz",
                f"up to {limits.MAX_AUDIO_CHANNELS} channels", f"{limits.MIN_IMAGE_SIDE}x{limits.MIN_IMAGE_SIDE}",
                f"{limits.MAX_IMAGE_PIXELS:,} pixels"]
    expected += [f"{number(lo)}–{number(hi)}" for lo, hi in limits.TRAIN_BOUNDS.values()]
    assert [e for e in expected if e not in " ".join(section.split())] == []
