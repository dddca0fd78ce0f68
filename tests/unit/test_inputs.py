"""Broken and hostile audio and images: valid ones are predicted, the rest raise InvalidInput with a clear message."""

import base64
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
from core.features.audio import trim_speech
from core.features.image import decode_data_url
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
    for tool, argv in (
        ("ffmpeg", ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), str(dst)]),
        ("sox", ["sox", str(src), str(dst)]),
    ):
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
    "float_nan": (
        lambda x, r: encode(np.where(np.arange(len(x)) == 500, np.nan, x), r, "WAV", "FLOAT"),
        "NaN or infinite",
    ),
    "float_inf": (
        lambda x, r: encode(np.where(np.arange(len(x)) == 500, np.inf, x), r, "WAV", "FLOAT"),
        "NaN or infinite",
    ),
    "digital_silence": (lambda x, r: encode(np.zeros(r, np.float32), r, "WAV", "PCM_16"), "silent"),
    "dc_only": (lambda x, r: encode(np.full(r, 0.4, np.float32), r, "WAV", "PCM_16"), "silent"),
    "20_ms": (lambda x, r: encode(x[: r // 50], r), "20 ms long; the shortest usable"),
    "10_minutes": (lambda x, r: encode(_ten_minutes(x, r), r), "600 s long; the limit is 30 s"),
    # A few kB of FLAC that would decode to 10 minutes: refused from its header, before decoding.
    "10_minute_flac": (lambda x, r: encode(np.zeros(16000 * 600, np.int16), 16000, "FLAC"), "600 s long"),
    "over_upload_limit": (
        lambda x, r: encode(np.zeros((limits.MAX_UPLOAD_BYTES // 4 + 1, 2), np.int16), 44100),
        f"limit is {limits.MAX_UPLOAD_BYTES // limits.MB} MB",
    ),
    # 99 KB, every header field within its limit, but 92 M samples (369 MB as float32): refused from its header.
    "flac_30s_384khz_8ch": (
        lambda x, r: _flac_30s_384khz_8ch(),
        r"holds 92,160,000 samples \(30.0 s x 384,000 Hz x 8 channels\); the limit is 6,000,000",
    ),
}


def _flac_30s_384khz_8ch() -> bytes:
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=384_000, channels=8, format="FLAC", subtype="PCM_16") as f:
        for _ in range(30):  # a second at a time: the test itself never holds the 92 M samples
            f.write(np.zeros((384_000, 8), np.int16))
    return buf.getvalue()


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


def _lavfi(tmp_path, source: str, *options: str, suffix: str = "mka") -> bytes:
    """A file ffmpeg makes from one of its generated sources, written through a pipe unless a duration is wanted."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed (scripts/setup --dev installs it)")
    dst = tmp_path / f"out.{suffix}"
    argv = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, *options]
    if suffix == "webm":  # as a browser's MediaRecorder writes it: streamed, so no duration in the header
        dst.write_bytes(subprocess.run([*argv, "-f", "webm", "pipe:1"], check=True, capture_output=True).stdout)
    else:
        subprocess.run([*argv, str(dst)], check=True)
    return dst.read_bytes()


# What only ffmpeg reads (Matroska, WebM): channels, rate and length are judged before decoding, or
# decoding stops at the budget, and the message names the limit.
FFMPEG_BAD_AUDIO = {
    "mka_flac_384khz_8ch": (
        ("anoisesrc=r=384000:a=0.1:d=2.5", "-ac", "8", "-c:a", "flac"),
        "mka",
        r"holds 7,680,000 samples \(2.5 s x 384,000 Hz x 8 channels\); the limit is 6,000,000",
    ),
    "webm_8ch_without_duration": (
        ("anoisesrc=r=48000:a=0.1:d=20", "-ac", "8", "-c:a", "libopus", "-mapping_family", "1"),
        "webm",
        r"holds over 6,000,000 samples \(over 15.6 s x 48,000 Hz x 8 channels\)",
    ),
    "webm_40s_without_duration": (
        ("sine=f=300:r=48000:d=40", "-c:a", "libopus"),
        "webm",
        "longer than 30 s; the limit is 30 s",
    ),
    "mka_9_channels": (
        ("aevalsrc=exprs=" + "|".join(["0.1*sin(2*PI*300*t)"] * 9) + ":s=8000:d=1", "-c:a", "pcm_s16le"),
        "mka",
        "has 9 channels; the limit is 8",
    ),
    "mka_500khz": (("sine=f=300:r=500000:d=1", "-c:a", "pcm_s16le"), "mka", "Sample rate 500000 Hz is not a usable"),
}


@pytest.mark.parametrize("name", list(FFMPEG_BAD_AUDIO))
def test_ffmpeg_audio_is_bounded_before_decoding(predictor, tmp_path, name):
    args, suffix, message = FFMPEG_BAD_AUDIO[name]
    data = _lavfi(tmp_path, args[0], *args[1:], suffix=suffix)
    with pytest.raises(InvalidInput, match=message):
        predictor.predict(audio=data)


def test_huge_finite_samples_are_read_as_the_waveform_they_draw(predictor, clip):
    # A float WAV does not clip: samples of 1e35 are a (badly scaled) waveform, but a float32 sum of
    # them overflows to inf (the DC offset makes sure it does) and librosa raised a traceback.
    x, rate = clip
    padded = np.concatenate([np.zeros(rate // 2, np.float32), x, np.zeros(rate // 2, np.float32)])
    reference = predictor.predict(audio=encode(padded, rate, "WAV", "FLOAT"))
    loud = predictor.predict(audio=encode((padded + 0.5) * 1e35, rate, "WAV", "FLOAT"))
    assert_predicted(loud, "audio")
    assert loud.digit == reference.digit
    assert np.corrcoef(loud.features.ravel(), reference.features.ravel())[0, 1] > 0.999


def test_stereo_in_opposite_phase_is_the_voice_not_silence(predictor, clip):
    # A channel wired the wrong way round (L = -R) averages to nothing; each channel still holds the word.
    x, rate = clip
    reference = predictor.predict(audio=(x, rate))
    for stereo in (np.stack([x, -x], 1), np.stack([-x, 0.5 * x], 1)):
        result = predictor.predict(audio=encode(stereo, rate))
        assert result.digit == reference.digit
        assert np.corrcoef(result.features.ravel(), reference.features.ravel())[0, 1] > 0.99
    assert (
        predictor.predict(audio=encode(np.stack([x, x], 1), rate)).probs
        == predictor.predict(audio=encode(x, rate)).probs
    )


def test_a_sample_rate_given_as_text(predictor, clip):
    x, rate = clip
    assert predictor.predict(audio=(x, str(rate))).probs == predictor.predict(audio=(x, rate)).probs
    for bad in ("fast", None, [rate]):
        with pytest.raises(InvalidInput, match="is not a number of samples per second"):
            predictor.predict(audio=(x, bad))
    with pytest.raises(InvalidInput, match="Sample rate 8000.5 Hz is not a usable audio rate"):
        predictor.predict(audio=(x, 8000.5))


@pytest.mark.parametrize("click_at", ["after", "before"])
def test_a_click_louder_than_the_word_is_not_what_is_kept(predictor, clip, click_at):
    x, rate = clip  # 8 kHz
    rng = np.random.default_rng(0)
    quiet = np.zeros(int(0.6 * rate), np.float32)
    click = quiet.copy()
    click[len(click) // 2 : len(click) // 2 + 16] = 0.99  # 2 ms, far louder than the word's loudest 12.5 ms
    parts = [quiet, x, click] if click_at == "after" else [click, x, quiet]
    room = rng.normal(0, 1e-3, sum(map(len, parts))).astype(np.float32)
    with_click, without = np.concatenate(parts) + room, np.concatenate([quiet, x, quiet]) + room
    assert np.abs(with_click).max() > 2 * np.abs(x).max()
    kept, expected = trim_speech(with_click), trim_speech(without)
    assert abs(len(kept) - len(expected)) <= 0.01 * rate and np.abs(kept).max() < 0.9
    a, b = predictor.predict(audio=(with_click, rate)), predictor.predict(audio=(without, rate))
    assert a.digit == b.digit and np.corrcoef(a.features.ravel(), b.features.ravel())[0, 1] > 0.99


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
    "blank_canvas": (lambda d: np.zeros((280, 280, 4), np.uint8), "blank"),  # transparent, nothing drawn
    "black_canvas": (
        lambda d: np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),
        "blank",
    ),
    "over_pixel_limit": (lambda d: _bomb(10_001, 10_001), f"limit is {limits.MAX_IMAGE_PIXELS:,} pixels"),
    "decompression_bomb": (lambda d: _bomb(50_000, 50_000), f"limit is {limits.MAX_IMAGE_PIXELS:,} pixels"),
    # Within the pixel limit, but 400 MB once decoded (Pillow keeps RGB in four bytes a pixel): refused first.
    "white_10000x10000_png": (
        lambda d: _white_png(10_000, 10_000),
        f"10000x10000 and would take 381 MB to decode; the limit is {limits.MAX_DECODED_IMAGE_BYTES // limits.MB} MB",
    ),
    "over_upload_limit": (
        lambda d: b"\x89PNG" + bytes(limits.MAX_UPLOAD_BYTES),
        f"limit is {limits.MAX_UPLOAD_BYTES // limits.MB} MB",
    ),
}


def _bomb(width: int, height: int) -> bytes:
    """A PNG that declares width x height (would decode to that many pixels) but holds almost nothing."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def _white_png(width: int, height: int) -> bytes:
    """A real, all-white RGB PNG, compressed a row at a time (the pixels never exist in memory here)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    pack, row = zlib.compressobj(1), b"\0" + b"\xff" * (3 * width)
    idat = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_images_are_refused_with_a_clear_message(predictor, digit, name):
    make, message = BAD_IMAGES[name]
    with pytest.raises(InvalidInput, match=message):
        predictor.predict(image=make(digit))


def test_the_drawing_pads_png_reads_as_the_drawing(predictor, digit):
    """The pad sends a data URL of white ink on opaque black; it decodes to the same pixels and prediction."""
    canvas = np.dstack(
        [np.asarray(Image.fromarray(digit).resize((260, 260)))] * 3 + [np.full((260, 260), 255, np.uint8)]
    )
    decoded = decode_data_url("data:image/png;base64," + base64.b64encode(png(canvas)).decode())
    assert np.array_equal(decoded, canvas)
    assert predictor.predict(image=decoded).probs == predictor.predict(image=canvas).probs


@pytest.mark.parametrize(
    "url, message",
    [
        ("data:image/jpeg;base64,/9j/4AAQ", "did not arrive as a PNG"),
        ("data:image/png;base64,not base64!", "did not arrive as a PNG"),
        ("data:image/png;base64," + base64.b64encode(b"%PDF-1.4").decode(), "Could not read this file as a picture"),
        ("data:image/png;base64," + "A" * (limits.MAX_UPLOAD_BYTES * 4 // 3 + 8), "larger than 20 MB"),
        (None, "did not arrive as a PNG"),
    ],
    ids=["jpeg", "not_base64", "not_a_png", "oversized", "none"],
)
def test_a_bad_drawing_is_refused_with_a_clear_message(url, message):
    with pytest.raises(InvalidInput, match=message):
        decode_data_url(url)


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
    expected = [
        f"{limits.MAX_UPLOAD_BYTES // limits.MB} MB",
        f"{limits.MIN_AUDIO_SECONDS * 1000:.0f} ms to {limits.MAX_AUDIO_SECONDS:.0f} s",
        f"{limits.MAX_SAMPLE_RATE // 1000} kHz",
        f"up to {limits.MAX_AUDIO_CHANNELS} channels",
        f"{limits.MAX_AUDIO_SAMPLES:,} samples",
        f"{limits.MIN_IMAGE_SIDE}x{limits.MIN_IMAGE_SIDE}",
        f"{limits.MAX_IMAGE_PIXELS:,} pixels",
        f"{limits.MAX_DECODED_IMAGE_BYTES // limits.MB} MB once decoded",
    ]
    expected += [f"{number(lo)}–{number(hi)}" for lo, hi in limits.TRAIN_BOUNDS.values()]
    assert [e for e in expected if e not in " ".join(section.split())] == []
