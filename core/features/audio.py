"""Spoken-digit features: decode, clean up, place in a 1 s window, 39 frames x (12 MFCC + log energy)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import limits
from core.errors import InvalidInput

SAMPLE_RATE = 8000
WINDOW_SAMPLES = SAMPLE_RATE  # 1.0 s
FRAME_LENGTH = 400  # 50 ms
HOP_LENGTH = 200  # 25 ms
N_FRAMES = 1 + (WINDOW_SAMPLES - FRAME_LENGTH) // HOP_LENGTH  # 39, frames fully inside the window
N_COEFFS = 13  # 12 MFCC + log energy
FEATURE_DIM = N_FRAMES * N_COEFFS  # 507
MIN_SECONDS, MAX_SECONDS = limits.MIN_AUDIO_SECONDS, limits.MAX_AUDIO_SECONDS
PEAK = 0.5
# A real microphone never records digital zeros; a faint noise floor keeps log energy finite and
# makes FSDD's silence padding look like a quiet room.
NOISE_FLOOR = 1e-3
TRIM_TOP_DB = 30.0
VAD_MARGIN_DB = 8.0  # speech must rise this far above the quietest 100 ms (the room)
VAD_FLOOR_FRAMES = 16  # 16 hops of 6.25 ms: the 100 ms stretch that estimates the room's level
VAD_CAP_DB = 24.0  # ... but the threshold never rises above peak - VAD_CAP_DB: quiet consonants are speech
VAD_ROOM_S = 0.3  # this much audio near the floor means a room around the word, not a quiet tail
VAD_GAP_S = 0.15  # pauses inside a word ("six", "eight") are shorter than this
SAFE_PEAK = 1e6  # float samples beyond this are scaled down before any sum (a little over 1 is left as it is)
MIX_CANCELLED = 0.25  # a mix this much quieter than its loudest channel has cancelled, not faded
VAD_CLICK_S = 0.05  # a loud stretch shorter than this (a click, a pop) cannot anchor the word


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode the bytes of an audio file (WAV, FLAC, OGG, MP3, M4A, WebM) to (float32 samples, rate)."""
    if not data:
        raise InvalidInput("The audio file is empty (0 bytes).")
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            _check_header(f.frames, f.samplerate, f.channels)  # before decoding: a small FLAC can hold hours
            return f.read(dtype="float32", always_2d=False), int(f.samplerate)
    except InvalidInput:
        raise
    except Exception:
        pass
    return _decode_with_ffmpeg(data)


def _check_header(frames: int, rate: int, channels: int) -> None:
    """Refuse a recording from what its header says, before any of it is decoded."""
    if not limits.MIN_SAMPLE_RATE <= rate <= limits.MAX_SAMPLE_RATE:
        raise InvalidInput(f"Sample rate {rate} Hz is not a usable audio rate.")
    if channels > limits.MAX_AUDIO_CHANNELS:
        raise InvalidInput(f"The recording has {channels} channels; the limit is {limits.MAX_AUDIO_CHANNELS}.")
    if frames / rate > MAX_SECONDS:
        raise InvalidInput(
            f"The recording is {frames / rate:.0f} s long; the limit is {MAX_SECONDS:.0f} s for one digit."
        )
    if frames * channels > limits.MAX_AUDIO_SAMPLES:
        raise _too_many_samples(f"{frames * channels:,}", f"{frames / rate:.1f} s", rate, channels)


def _too_many_samples(count: str, seconds: str, rate: int, channels: int) -> InvalidInput:
    return InvalidInput(
        f"The recording holds {count} samples ({seconds} x {rate:,} Hz x {channels} channel"
        f"{'s' * (channels != 1)}); "
        f"the limit is {limits.MAX_AUDIO_SAMPLES:,}. Save it as mono at 48 kHz or less."
    )


def _decode_with_ffmpeg(data: bytes) -> tuple[np.ndarray, int]:
    """M4A (phones) and WebM (browsers) through ffprobe and ffmpeg, checked and bounded before decoding.

    Not audioread (librosa's fallback): it drains ffmpeg into an unbounded queue in a thread, so stopping
    early would not bound memory. Here ffmpeg itself stops just past the budget (-t): 30 s, or fewer when
    rate x channels would pass limits.MAX_AUDIO_SAMPLES first. A browser's WebM names no duration, so
    its length can only be judged this way."""
    import json
    import shutil
    import subprocess
    import tempfile

    unreadable = (
        "Could not read this audio file. Use WAV, FLAC, OGG, MP3, M4A or WebM holding a recording of one digit."
    )
    if not (shutil.which("ffprobe") and shutil.which("ffmpeg")):
        raise InvalidInput(unreadable[:-1] + "; M4A and WebM need ffmpeg, which is not installed here.")
    with tempfile.TemporaryDirectory(prefix="digits-audio-") as tmp:
        path = f"{tmp}/upload"  # ffmpeg needs a file it can seek in, not a pipe
        with open(path, "wb") as f:
            f.write(data)
        try:
            probe = subprocess.run(
                [
                    "ffprobe",
                    "-v",
                    "error",
                    "-select_streams",
                    "a:0",
                    "-of",
                    "json",
                    "-show_entries",
                    "stream=sample_rate,channels,duration:format=duration",
                    path,
                ],
                capture_output=True,
                timeout=limits.MAX_AUDIO_DECODE_S,
                stdin=subprocess.DEVNULL,
            )
            info = json.loads(probe.stdout or b"{}")
            stream = info["streams"][0]
            rate, channels = int(stream["sample_rate"]), int(stream["channels"])
            if channels < 1:
                raise ValueError("no audio channels")
        except subprocess.TimeoutExpired as exc:
            raise InvalidInput(
                f"Reading this audio file took over {limits.MAX_AUDIO_DECODE_S} s; it is refused."
            ) from exc
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise InvalidInput(unreadable) from exc
        # Matroska keeps the duration in the container; a browser's WebM has none at all.
        seconds = _number(stream.get("duration")) or _number(info.get("format", {}).get("duration"))
        _check_header(round(seconds * rate) if seconds else 0, rate, channels)
        budget = min(MAX_SECONDS, limits.MAX_AUDIO_SAMPLES / (rate * channels))  # seconds
        try:
            # Half a second more than the budget: codecs stop a frame short of -t; more than the budget is too long.
            out = subprocess.run(
                [
                    "ffmpeg",
                    "-nostdin",
                    "-v",
                    "error",
                    "-i",
                    path,
                    "-map",
                    "0:a:0",
                    "-t",
                    f"{budget + 0.5:.6f}",
                    "-f",
                    "s16le",
                    "-acodec",
                    "pcm_s16le",
                    "-",
                ],
                capture_output=True,
                timeout=limits.MAX_AUDIO_DECODE_S,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise InvalidInput(
                f"Decoding this audio file took over {limits.MAX_AUDIO_DECODE_S} s; it is refused."
            ) from exc
    pcm = np.frombuffer(out.stdout[: len(out.stdout) // (2 * channels) * 2 * channels], "<i2").reshape(-1, channels)
    if out.returncode != 0 and len(pcm) == 0:
        raise InvalidInput(unreadable)
    if len(pcm) > budget * rate:
        if budget < MAX_SECONDS:
            raise _too_many_samples(f"over {limits.MAX_AUDIO_SAMPLES:,}", f"over {budget:.1f} s", rate, channels)
        raise InvalidInput(
            f"The recording is longer than {MAX_SECONDS:.0f} s; the limit is {MAX_SECONDS:.0f} s for one digit."
        )
    samples = pcm.astype(np.float32) / 32768  # the scale librosa and soundfile use for 16-bit PCM
    return (samples[:, 0] if channels == 1 else samples), rate


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def _sample_rate(rate) -> int:
    """A rate as an int: 8000, 8000.0, np.int64(8000) and "8000" all work; anything else is InvalidInput."""
    try:
        value = float(rate)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"Sample rate {rate!r} is not a number of samples per second.") from None
    if not (np.isfinite(value) and value == round(value) and limits.MIN_SAMPLE_RATE <= value <= limits.MAX_SAMPLE_RATE):
        raise InvalidInput(f"Sample rate {rate} Hz is not a usable audio rate.")
    return int(value)


def to_mono_8k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Validate, mix to mono and resample to 8 kHz; raise InvalidInput for unusable signals."""
    samples = np.asarray(samples)
    if samples.dtype.kind not in "fiu":
        raise InvalidInput(f"Audio samples must be numbers, not {samples.dtype}.")
    rate = _sample_rate(rate)
    if samples.ndim not in (1, 2) or samples.size == 0:
        raise InvalidInput(f"Audio must be mono or multi-channel samples, not shape {samples.shape}.")
    # soundfile gives (frames, channels); treat the shorter axis as channels either way.
    if samples.ndim == 2 and samples.shape[1] > samples.shape[0]:
        samples = samples.T
    _check_header(len(samples), rate, 1 if samples.ndim == 1 else samples.shape[1])
    if samples.dtype.kind in "iu":
        info = np.iinfo(samples.dtype)
        samples = (samples.astype(np.float64) - (info.max + info.min + 1) / 2) / (info.max - info.min + 1) * 2
    if not np.isfinite(samples).all():
        raise InvalidInput("The audio holds NaN or infinite samples; it is corrupt.")
    peak = float(np.abs(samples).max())
    if peak > SAFE_PEAK:
        # Float formats do not clip, and the features only see the waveform's shape (place_in_window
        # normalises the peak): scale first, so float32 sums of samples like 1e35 stay finite.
        samples = samples / peak
    if samples.ndim == 2:
        samples = _mix_down(samples)
    seconds = len(samples) / rate
    if seconds < MIN_SECONDS:
        raise InvalidInput(
            f"The recording is {seconds * 1000:.0f} ms long; "
            f"the shortest usable recording is {MIN_SECONDS * 1000:.0f} ms."
        )
    samples = samples.astype(np.float32)
    if rate != SAMPLE_RATE:
        import librosa

        samples = librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    samples = samples - samples.mean()
    if np.abs(samples).max(initial=0) < 1e-4:
        raise InvalidInput("The recording is silent; check the microphone and say the digit louder.")
    return samples.astype(np.float32)


def _mix_down(channels: np.ndarray) -> np.ndarray:
    """(frames, channels) to mono: their average, or the loudest channel where averaging cancels the voice.

    A channel wired in opposite phase (L = -R) averages to silence although each channel holds the word."""
    mix = channels.mean(axis=1)
    levels = [_level(channels[:, c]) for c in range(channels.shape[1])]
    loudest = int(np.argmax(levels))
    if _level(mix) < MIX_CANCELLED * levels[loudest]:
        return channels[:, loudest]
    return mix


def _level(x: np.ndarray) -> float:
    """RMS around the mean, without a copy of x (a channel of 30 s at 96 kHz is 11 MB)."""
    mean = float(x.mean())
    return float(np.sqrt(max(float(np.dot(x, x)) / len(x) - mean * mean, 0.0)))


def trim_speech(samples: np.ndarray, top_db: float = TRIM_TOP_DB) -> np.ndarray:
    """The word: the run of loud frames around its loudest sustained stretch, at most 1 s.

    Behaves the same on FSDD's tightly cut clips and on a recording with seconds of room noise around
    the word: the threshold is top_db below the peak, raised to VAD_MARGIN_DB above the quietest
    100 ms when the room is louder than that; gaps up to VAD_GAP_S (the stop in "six") stay inside.
    A click or pop louder than the word is too short to anchor it (VAD_CLICK_S)."""
    hop, size = FRAME_LENGTH // 8, FRAME_LENGTH // 4
    padded = np.pad(samples, (0, max(0, size - len(samples))))
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]
    db = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    db -= db.max()
    loud = _loud_frames(db, top_db, hop)
    peak, gap = int(np.argmax(db)), int(VAD_GAP_S * SAMPLE_RATE / hop)
    anchor = _sustained_peak(db, int(VAD_CLICK_S * SAMPLE_RATE / hop))
    first, last = _extent(loud, anchor, gap)
    if first <= peak <= last or not loud[peak]:
        first, last = _extent(loud, peak, gap)  # the loudest frame is in the word: the walk from it, as always
    else:
        # The loudest frame is a click away from the word: judge loudness against the word's own peak.
        loud = _loud_frames(db - db[first : last + 1].max(), top_db, hop)
        first, last = _extent(loud, anchor, gap)
    start, end = first * hop, min(len(samples), last * hop + size)
    speech = samples[start:end]
    if len(speech) > WINDOW_SAMPLES:
        # Keep the one-second stretch holding the most energy.
        energy = np.convolve(speech.astype(np.float64) ** 2, np.ones(WINDOW_SAMPLES), mode="valid")
        best = int(np.argmax(energy))
        speech = speech[best : best + WINDOW_SAMPLES]
    return speech


def _loud_frames(db: np.ndarray, top_db: float, hop: int) -> np.ndarray:
    """Frames of db (0 at the reference peak) above a threshold set by that peak and the room's level."""
    smooth = (
        np.convolve(db, np.ones(VAD_FLOOR_FRAMES) / VAD_FLOOR_FRAMES, mode="valid")
        if len(db) > VAD_FLOOR_FRAMES
        else db
    )
    floor = float(smooth.min())
    threshold = max(-top_db, min(floor + VAD_MARGIN_DB, -VAD_CAP_DB))
    if (db < floor + VAD_MARGIN_DB / 2).sum() * hop >= VAD_ROOM_S * SAMPLE_RATE:
        threshold = max(threshold, floor + VAD_MARGIN_DB)  # a long stretch at the floor: that is the room
    return db > threshold


def _sustained_peak(db: np.ndarray, width: int) -> int:
    """The frame whose whole neighbourhood of width frames is loudest: a short click cannot be it."""
    half = width // 2
    quietest = np.lib.stride_tricks.sliding_window_view(np.pad(db, half, mode="edge"), 2 * half + 1).min(axis=1)
    return int(np.argmax(quietest))


def _extent(loud: np.ndarray, start: int, gap: int) -> tuple[int, int]:
    """First and last loud frame reached from start, stepping over quiet stretches of at most gap frames."""
    first = last = start
    while first > 0 and loud[max(0, first - gap) : first].any():
        first = max(0, first - gap) + int(np.flatnonzero(loud[max(0, first - gap) : first])[0])
    while last < len(loud) - 1 and loud[last + 1 : last + 1 + gap].any():
        last = last + 1 + int(np.flatnonzero(loud[last + 1 : last + 1 + gap])[-1])
    return first, last


def place_in_window(
    speech: np.ndarray, offset: int | None = None, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Peak-normalise speech and put it at offset (default: centred) in a 1 s window over a noise floor."""
    rng = rng or np.random.default_rng(0)
    speech = speech / max(np.abs(speech).max(), 1e-9) * PEAK
    room = WINDOW_SAMPLES - len(speech)
    offset = room // 2 if offset is None else int(np.clip(offset, 0, room))
    window = rng.normal(0.0, NOISE_FLOOR, WINDOW_SAMPLES).astype(np.float32)
    window[offset : offset + len(speech)] += speech
    return window


def mfcc_features(window: np.ndarray, warp: float = 1.0, pitch: float = 1.0) -> np.ndarray:
    """39 frames x 13: MFCC 1-12 and the log energy of each 50 ms frame (25 ms hop), float32.

    warp != 1 stretches the spectrum's frequency axis (vocal tract length perturbation): formants and
    pitch move together, as between a child, a woman and a man, while the timing stays. pitch != 1
    then moves the harmonics alone: each frame's log spectrum is split into its envelope (the low
    quefrencies) and the fine structure above it, and only the fine structure is stretched."""
    import librosa

    spec = (
        np.abs(librosa.stft(window, n_fft=FRAME_LENGTH, hop_length=HOP_LENGTH, win_length=FRAME_LENGTH, center=False))
        ** 2
    )
    if abs(warp - 1) > 1e-6:
        spec = _stretch(spec, warp)
    if abs(pitch - 1) > 1e-6:
        spec = _shift_harmonics(spec, pitch)
    mel = librosa.feature.melspectrogram(S=spec, sr=SAMPLE_RATE, n_fft=FRAME_LENGTH, n_mels=40, fmax=SAMPLE_RATE / 2)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_COEFFS)[1:]  # c0 duplicates the energy term
    frames = librosa.util.frame(window, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH)
    log_energy = np.log((frames.astype(np.float64) ** 2).sum(axis=0) + 1e-10)
    return np.concatenate([mfcc.T, log_energy[:, None]], axis=1).astype(np.float32)


def _stretch(spec: np.ndarray, factor: float) -> np.ndarray:
    """(bins, frames) with the frequency axis stretched by factor: content at f moves to f * factor."""
    bins = np.arange(spec.shape[0], dtype=np.float64)
    return np.stack([np.interp(bins / factor, bins, col) for col in spec.T], axis=1)


ENVELOPE_QUEFRENCIES = 12  # cepstral bins below a 1.5 ms lag (at 8 kHz): the vocal tract, not the pitch


def _shift_harmonics(spec: np.ndarray, factor: float) -> np.ndarray:
    """Move the pitch harmonics by factor and keep the spectral envelope (the formants) in place."""
    log_spec = np.log(spec + 1e-10)
    cepstrum = np.fft.irfft(log_spec, axis=0)
    cepstrum[ENVELOPE_QUEFRENCIES : -ENVELOPE_QUEFRENCIES + 1] = 0
    envelope = np.fft.rfft(cepstrum, axis=0).real[: spec.shape[0]]
    fine = _stretch(log_spec - envelope, factor)
    return np.exp(envelope + fine)


# Test-time vocal tract length normalisation: the audio head reads a recording at each of these warps and
# averages what it heard. Below 1 they compress the spectrum, moving a higher voice toward the range of
# the adult men it learned from.
TTA_WARPS = (0.72, 0.79, 0.86, 0.93, 1.0, 1.08)


def warped_features(window: np.ndarray, warps: tuple[float, ...] = TTA_WARPS) -> np.ndarray:
    """(W, 39, 13): mfcc_features of one window under each warp."""
    return np.stack([mfcc_features(window, warp=w) for w in warps])


def speech_of(samples: np.ndarray, rate: int, change: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """A recording as mono 8 kHz speech with the silence around it trimmed; change, if given, alters the mono 8 kHz
    signal before trimming (the evaluation's voice and room conditions)."""
    mono = to_mono_8k(samples, rate)
    return trim_speech(change(mono) if change else mono)


def serving_window(
    samples: np.ndarray, rate: int, change: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """The 1 s window of a recording that the audio encoder reads: one chain for serving, training and evaluation."""
    return place_in_window(speech_of(samples, rate, change))


@dataclass(frozen=True)
class Augmentation:
    """Random variation that makes FSDD's studio clips look like other voices and microphones."""

    speed: tuple[float, float] = (0.85, 1.15)  # resampling factor: tempo and pitch together
    gain_db: tuple[float, float] = (-12.0, 0.0)
    snr_db: tuple[float, float] = (10.0, 40.0)  # white-ish room noise over the whole window
    noise_probability: float = 0.7
    warp: tuple[float, float] = (1.0, 1.0)  # frequency-axis stretch (vocal tract length), see mfcc_features
    pitch: tuple[float, float] = (1.0, 1.0)  # harmonics alone moved by this factor, formants kept; log-uniform
    time_masks: int = 0  # SpecAugment: this many masks of up to max_time_mask frames each
    max_time_mask: int = 4
    coef_masks: int = 0  # ... and of up to max_coef_mask cepstral coefficients (never the energy)
    max_coef_mask: int = 2


# Named presets, so a FeatureConfig can pick one and each lever can be measured alone.
AUGMENTATIONS = {
    "basic": Augmentation(),
    "warp": Augmentation(speed=(0.8, 1.2), warp=(0.85, 1.15)),
    "voice": Augmentation(speed=(0.8, 1.2), warp=(0.85, 1.15), snr_db=(5.0, 40.0), time_masks=2, coef_masks=1),
    # Women's formants sit ~15-20 % and children's ~30-40 % above men's: warps up to 1.45 cover them.
    "wide": Augmentation(speed=(0.8, 1.2), warp=(0.85, 1.45), snr_db=(5.0, 40.0), time_masks=2, coef_masks=1),
    # ... and their pitch is up to 2.5x a man's, which a warp alone (harmonics and formants together) misses.
    "wide-pitch": Augmentation(
        speed=(0.8, 1.2), warp=(0.85, 1.45), pitch=(1.0, 2.5), snr_db=(5.0, 40.0), time_masks=2, coef_masks=1
    ),
}


def augmented_window(speech: np.ndarray, rng: np.random.Generator, aug: Augmentation = Augmentation()) -> np.ndarray:
    """One random view of trimmed speech: speed, time shift, gain and noise, in a 1 s window."""
    import librosa

    factor = rng.uniform(*aug.speed)
    if abs(factor - 1) > 1e-3:
        speech = librosa.resample(speech, orig_sr=SAMPLE_RATE, target_sr=int(SAMPLE_RATE / factor), res_type="soxr_hq")
    speech = speech[:WINDOW_SAMPLES]
    window = place_in_window(speech, offset=int(rng.integers(0, WINDOW_SAMPLES - len(speech) + 1)), rng=rng)
    window *= 10 ** (rng.uniform(*aug.gain_db) / 20)
    if rng.random() < aug.noise_probability:
        power = float(np.mean(speech**2)) * (PEAK / max(np.abs(speech).max(), 1e-9)) ** 2
        snr = rng.uniform(*aug.snr_db)
        noise = rng.normal(0.0, 1.0, WINDOW_SAMPLES)
        # Brown-ish tint: real rooms hum more than they hiss.
        noise = np.convolve(noise, np.ones(4) / 2, mode="same")
        window += (noise / noise.std() * np.sqrt(power / 10 ** (snr / 10))).astype(np.float32)
    return window.astype(np.float32)


def augmented_features(speech: np.ndarray, rng: np.random.Generator, aug: Augmentation = Augmentation()) -> np.ndarray:
    """One random (39, 13) view: augmented_window, a vocal tract warp, then SpecAugment-style masks."""
    window = augmented_window(speech, rng, aug)
    warp = float(rng.uniform(*aug.warp))
    # Drawn only when the preset asks, so the other presets' random streams (and cached banks) stay as they were.
    pitch = float(np.exp(rng.uniform(*np.log(aug.pitch)))) if aug.pitch != (1.0, 1.0) else 1.0
    features = mfcc_features(window, warp=warp, pitch=pitch)
    fill = features.mean(axis=0)  # masked cells get the utterance mean: zero after mean normalisation
    for _ in range(aug.time_masks):
        width = int(rng.integers(0, aug.max_time_mask + 1))
        start = int(rng.integers(0, N_FRAMES - width + 1))
        features[start : start + width] = fill
    for _ in range(aug.coef_masks):
        width = int(rng.integers(0, aug.max_coef_mask + 1))
        start = int(rng.integers(0, N_COEFFS - 1 - width + 1))
        features[:, start : start + width] = fill[start : start + width]
    return features


def standardize(features: np.ndarray, mean: np.ndarray, std: np.ndarray, utterance_norm: str = "none") -> np.ndarray:
    """(..., 39, 13) features -> model input: optional per-utterance CMVN, then global statistics."""
    x = np.asarray(features, dtype=np.float32)
    if utterance_norm in ("mean", "meanvar"):
        x = x - x.mean(axis=-2, keepdims=True)
        if utterance_norm == "meanvar":
            x = x / (x.std(axis=-2, keepdims=True) + 1e-5)
    elif utterance_norm != "none":
        raise ValueError(f"utterance_norm must be none, mean or meanvar, not {utterance_norm!r}")
    return ((x - mean) / std).astype(np.float32)
