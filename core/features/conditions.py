"""Test clips as voices and rooms FSDD does not have: women's and children's voice ranges, reverberant rooms.

Evaluation only: these transforms never make training data, so a score under them is a score on something
the model never saw. The voice shifts use Praat's "Change gender" (PSOLA resynthesis through
praat-parselmouth), which raises the pitch and the formants together without changing the duration; the
training augmentation warps the spectrum in the MFCC front end instead, a different method on purpose."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core import paths
from core.data.fsdd import list_clips
from core.errors import DigitsError
from core.features import audio
from core.features.banks import BANK_VERSION, ClipBank, assemble, cached_bank, map_jobs


class ConditionUnavailable(DigitsError, RuntimeError):
    """praat-parselmouth, which renders the shifted voices, is not installed."""


@dataclass(frozen=True)
class VoiceShift:
    """Praat Change gender: formants scaled by formant_ratio, the median pitch moved to pitch_hz."""

    formant_ratio: float
    pitch_hz: float


@dataclass(frozen=True)
class Room:
    """A reverberant room: exponentially decaying noise as the impulse response, then pink noise."""

    rt60_s: float
    snr_db: float


# FSDD's six speakers are adult men (median pitch ~100-130 Hz). Hillenbrand et al. (1995) measured women's
# formants ~15-20 % and children's ~30-40 % above men's, with median pitch ~220 Hz and ~240-300 Hz.
SHIFTS: dict[str, VoiceShift] = {
    "woman-low": VoiceShift(1.10, 180.0),
    "woman": VoiceShift(1.17, 220.0),
    "child": VoiceShift(1.30, 260.0),
    "young-child": VoiceShift(1.38, 300.0),
}
ROOMS: dict[str, Room] = {
    "room": Room(rt60_s=0.3, snr_db=20.0),  # a quiet office, laptop microphone at arm's length
    "noisy-room": Room(rt60_s=0.5, snr_db=10.0),  # a kitchen or a classroom
}
CONDITIONS = (*SHIFTS, *ROOMS)
CLEAN = "clean"  # the recordings as they are: the bank of reference for the conditions' warped views


def shift_voice(samples: np.ndarray, rate: int, shift: VoiceShift) -> np.ndarray:
    """The recording resynthesised with raised formants and pitch, same duration."""
    try:
        import parselmouth
        from parselmouth.praat import call
    except ImportError as exc:
        raise ConditionUnavailable(
            "shifted voices need praat-parselmouth: pip install -r requirements-dev.txt"
        ) from exc
    sound = parselmouth.Sound(np.asarray(samples, dtype=np.float64), sampling_frequency=rate)
    with warnings.catch_warnings():
        # A clip with no voiced frame (rare: a whispered take) keeps its pitch; Praat warns about it.
        warnings.simplefilter("ignore", parselmouth.PraatWarning)
        # pitch floor 75 Hz and ceiling 600 Hz bound the analysis; pitch range factor and duration stay 1.
        out = call(sound, "Change gender", 75.0, 600.0, shift.formant_ratio, shift.pitch_hz, 1.0, 1.0)
    return np.nan_to_num(out.values[0]).astype(np.float32)


def in_room(samples: np.ndarray, rate: int, room: Room, rng: np.random.Generator) -> np.ndarray:
    """The recording as heard in room: convolved with a synthetic impulse response, plus pink noise."""
    n = int(room.rt60_s * rate)
    t = np.arange(n) / rate
    rir = rng.normal(0, 1, n) * 10 ** (-3 * t / room.rt60_s)  # -60 dB at rt60
    rir[0] = 0
    rir = np.concatenate([[1.0], 0.5 * rir / np.sqrt((rir**2).sum())])  # direct path 6 dB above the reverb
    wet = np.convolve(samples.astype(np.float64), rir)[: len(samples) + n // 2]
    spectrum = np.fft.rfft(rng.normal(0, 1, len(wet)))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))  # 1/f power: pink
    noise = np.fft.irfft(spectrum, len(wet))
    power = float(np.mean(wet**2))
    wet += noise / noise.std() * np.sqrt(power / 10 ** (room.snr_db / 10))
    return wet.astype(np.float32)


def apply(samples: np.ndarray, rate: int, condition: str, seed: int = 0) -> np.ndarray:
    """samples under a named condition (a key of SHIFTS or ROOMS)."""
    if condition in SHIFTS:
        return shift_voice(samples, rate, SHIFTS[condition])
    if condition in ROOMS:
        return in_room(samples, rate, ROOMS[condition], np.random.default_rng(seed))
    if condition == CLEAN:
        return samples
    raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, not {condition!r}")


def clip_features(args: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(39, 13) features of one FSDD file under a condition, through the serving chain, and the same window
    under each of audio.TTA_WARPS (W, 39, 13)."""
    path, condition = args
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    seed = int(hashlib.sha1(f"{Path(path).name}:{condition}".encode()).hexdigest()[:8], 16)
    window = audio.serving_window(samples, rate, lambda mono: apply(mono, audio.SAMPLE_RATE, condition, seed))
    return audio.mfcc_features(window), audio.warped_features(window)


def condition_bank(root, condition: str, workers: int | None = None) -> ClipBank:
    """Every FSDD clip under condition: its features, and as views the same window under each test-time
    warp (audio.TTA_WARPS); cached under data/cache."""
    if condition not in (CLEAN, *CONDITIONS):
        raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, not {condition!r}")
    clips = list_clips(root)
    spec = asdict(SHIFTS[condition]) if condition in SHIFTS else asdict(ROOMS[condition]) if condition in ROOMS else {}
    key = hashlib.sha1(json.dumps([BANK_VERSION, condition, spec, len(clips), audio.TTA_WARPS]).encode()).hexdigest()[
        :16
    ]

    def compute() -> ClipBank:
        results = map_jobs(
            clip_features, [(str(c.path), condition) for c in clips], workers, desc=f"FSDD as {condition}"
        )
        return assemble(results, [(c.digit, c.speaker, c.take, c.path.name) for c in clips])

    return cached_bank(paths.feature_cache_dir() / f"condition_{condition}_{key}.npz", compute)
