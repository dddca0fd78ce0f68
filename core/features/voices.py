"""Synthetic speakers for training: espeak-ng voices saying the ten digits, rendered to 8 kHz features."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from core import paths
from core.config import N_CLASSES
from core.errors import DigitsError
from core.features.banks import BANK_VERSION, ClipBank, assemble, cached_bank, file_features, map_jobs

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
# Human-sounding variants only: whispers, robots and croaks are not voices a user will have.
VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "Andy",
    "Annie",
    "adam",
    "Alex",
    "Alicia",
    "david",
    "ed",
    "edward",
    "john",
    "linda",
    "max",
    "Michael",
    "paul",
    "steph",
    "belinda",
    "robert",
    "quincy",
    "travis",
    "norbert",
    "iven",
    "Denis",
    "anika",
    "shelby",
    "Lee",
    "Mike",
    "zac",
    "rob",
    "aunty",
    "benjamin",
    "caleb",
    "victor",
    "Gene",
    "grandma",
)
N_VOICES = len(VARIANTS)
RENDITIONS = 2  # takes per voice and digit, each at its own speed and pitch
PITCH = (20, 80)  # espeak-ng's -p range (0-99, default 50) of the ordinary takes
RAISED_PITCH = (80, 100)  # ... and of the raised takes, toward women's and children's voices


class EspeakMissing(DigitsError, RuntimeError):
    """espeak-ng is not installed, so synthetic voices cannot be rendered."""


def voice_names(n: int = N_VOICES, accents: int = 1) -> list[str]:
    """n espeak-ng variants, each in `accents` accents taken in turn (accents=1: each variant once)."""
    step = max(1, len(ACCENTS) // max(1, accents))  # spread a variant's accents over the list
    return [
        f"{ACCENTS[(i + j * step) % len(ACCENTS)]}+{VARIANTS[i]}"
        for j in range(min(accents, len(ACCENTS)))
        for i in range(min(n, len(VARIANTS)))
    ]


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise EspeakMissing("espeak-ng is not installed; `apt-get install espeak-ng`, or set synthetic_voices=False")
    return exe


def render(voice: str, digit: int, take: int, folder: Path, pitch_range: tuple[int, int] = PITCH) -> Path:
    """A WAV of voice saying digit (cached in folder); speed and pitch are fixed by (voice, digit, take)."""
    raised = "_raised" if pitch_range != PITCH else ""
    path = folder / f"{digit}_{voice.replace('+', '_')}_{take}{raised}.wav"
    if not path.exists():
        rng = np.random.default_rng(int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16))
        speed, pitch = int(rng.integers(120, 200)), int(rng.integers(*pitch_range))
        tmp = path.with_suffix(".tmp.wav")
        subprocess.run(
            [_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(tmp), WORDS[digit]],
            check=True,
            capture_output=True,
            timeout=30,
        )
        tmp.replace(path)
    return path


def render_all(
    voices: list[str], renditions: int = RENDITIONS, folder: Path | None = None, raised: int = 0
) -> list[tuple[Path, int, str, int]]:
    """(path, digit, speaker, take) for every voice, digit and take, rendering what is not cached; the
    raised takes (numbered after the ordinary ones) are spoken at RAISED_PITCH."""
    folder = folder or paths.feature_cache_dir() / "voices"
    folder.mkdir(parents=True, exist_ok=True)
    return [
        (render(v, d, t, folder, RAISED_PITCH if t >= renditions else PITCH), d, f"espeak:{v}", t)
        for v in voices
        for d in range(N_CLASSES)
        for t in range(renditions + raised)
    ]


def voices_bank(
    n_views: int,
    augmentation: str = "basic",
    n_voices: int = N_VOICES,
    renditions: int = RENDITIONS,
    workers: int | None = None,
    raised: int = 0,
    accents: int = 1,
) -> ClipBank:
    """Features of the synthetic clips, computed with the FSDD pipeline and cached under data/cache."""
    voices = voice_names(n_voices, accents)
    spec = [BANK_VERSION, n_views, augmentation, voices, renditions] + ([raised, RAISED_PITCH] if raised else [])
    key = hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]

    def compute() -> ClipBank:
        clips = render_all(voices, renditions, raised=raised)
        jobs = [
            (str(p), n_views, int(hashlib.sha1(p.name.encode()).hexdigest()[:8], 16), augmentation) for p, *_ in clips
        ]
        results = map_jobs(file_features, jobs, workers, desc="espeak-ng voices' features")
        return assemble(results, [(digit, speaker, take, path.name) for path, digit, speaker, take in clips])

    return cached_bank(paths.feature_cache_dir() / f"voices_{key}.npz", compute)


def synthetic_bank(
    train_bank: ClipBank,
    n_views: int,
    augmentation: str = "basic",
    n_voices: int = N_VOICES,
    raised: int = 0,
    accents: int = 1,
) -> ClipBank:
    """train_bank followed by the synthetic voices' clips (training data only; FSDD stays the test set)."""
    return train_bank.concat(voices_bank(n_views, augmentation, n_voices, raised=raised, accents=accents))
