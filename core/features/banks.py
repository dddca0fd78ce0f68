"""FSDD features computed once and cached: clean features plus random augmented views per clip."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from core import paths
from core.data.fsdd import Clip, list_clips
from core.features import audio
from core.io import atomic_write

BANK_VERSION = 4  # bump when the feature or augmentation code changes, so stale caches are ignored


@dataclass
class ClipBank:
    """Features of every clip: clean (N, 39, 13) and views (N, V, 39, 13), with their metadata."""

    clean: np.ndarray
    views: np.ndarray
    digits: np.ndarray
    speakers: np.ndarray
    takes: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.digits)

    def subset(self, mask: np.ndarray) -> ClipBank:
        return ClipBank(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    def concat(self, other: ClipBank) -> ClipBank:
        return ClipBank(
            **{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)}
        )


def assemble(results: list[tuple[np.ndarray, np.ndarray]], meta: list[tuple[int, str, int, str]]) -> ClipBank:
    """A ClipBank from per-clip (clean, views) results and their (digit, speaker, take, file name), in order."""
    digits, speakers, takes, names = zip(*meta) if meta else ((), (), (), ())
    return ClipBank(
        clean=np.stack([r[0] for r in results]),
        views=np.stack([r[1] for r in results]),
        digits=np.array(digits, dtype=np.int64),
        speakers=np.array(speakers),
        takes=np.array(takes, dtype=np.int64),
        names=np.array(names),
    )


def clip_features(samples: np.ndarray, rate: int, n_views: int, seed: int, augmentation: str = "basic"):
    """Clean (39, 13) features of one recording and n_views augmented views (n_views, 39, 13)."""
    speech = audio.speech_of(samples, rate)
    clean = audio.mfcc_features(audio.place_in_window(speech))
    rng, aug = np.random.default_rng(seed), audio.AUGMENTATIONS[augmentation]
    views = [audio.augmented_features(speech, rng, aug) for _ in range(n_views)]
    return clean, np.stack(views) if views else np.zeros((0, audio.N_FRAMES, audio.N_COEFFS), np.float32)


def file_features(args: tuple[str, int, int, str]) -> tuple[np.ndarray, np.ndarray]:
    """clip_features of an audio file: (path, n_views, seed, augmentation), picklable for a process pool."""
    path, n_views, seed, augmentation = args
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    return clip_features(samples, rate, n_views, seed, augmentation)


def _key(clips: list[Clip], n_views: int, augmentation: str) -> str:
    h = hashlib.sha1(json.dumps([BANK_VERSION, n_views, augmentation]).encode())
    for c in clips:
        h.update(f"{c.path.name}:{c.path.stat().st_size}".encode())
    return h.hexdigest()[:16]


def map_jobs(fn, jobs: list, workers: int | None, progress=None, desc: str = "clips") -> list:
    """[fn(job) for job in jobs], in a process pool when there are many; a terminal shows a progress bar."""
    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(jobs) <= 50:
        return [fn(j) for j in jobs]
    results = []
    with (
        ProcessPoolExecutor(workers) as pool,
        tqdm(total=len(jobs), desc=desc, unit="clip", disable=None, file=sys.stderr) as bar,
    ):
        for i, r in enumerate(pool.map(fn, jobs, chunksize=32)):
            results.append(r)
            bar.update()
            if progress and i % 100 == 0:
                progress(i, len(jobs))
    return results


def compute_bank(
    clips: list[Clip], n_views: int, workers: int | None = None, progress=None, augmentation: str = "basic"
) -> ClipBank:
    """Features for clips; progress(done, total) is called as clips finish."""
    jobs = [
        (str(c.path), n_views, int(hashlib.sha1(c.path.name.encode()).hexdigest()[:8], 16), augmentation) for c in clips
    ]
    results = map_jobs(file_features, jobs, workers, progress, desc=f"FSDD features ({augmentation}, {n_views} views)")
    return assemble(results, [(c.digit, c.speaker, c.take, c.path.name) for c in clips])


def _stored_bank(cache: Path) -> ClipBank | None:
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return ClipBank(**{k: z[k] for k in z.files})
        except (OSError, ValueError, KeyError):
            cache.unlink(missing_ok=True)
    return None


def cached_bank(cache: Path, compute) -> ClipBank:
    """The ClipBank stored at cache, else compute() it and store it there. Concurrent callers (a sweep's trials)
    build it once: the first holds a file lock while the others wait for it, then read what it stored."""
    bank = _stored_bank(cache)
    if bank is not None:
        return bank
    with FileLock(f"{cache}.lock"):
        bank = _stored_bank(cache)
        if bank is None:
            bank = compute()
            atomic_write(cache, lambda f: np.savez(f, **bank.__dict__))
    return bank


def load_fsdd_bank(root: Path, n_views: int, progress=None, augmentation: str = "basic") -> ClipBank:
    """The cached bank for root's FSDD recordings, computing and caching it on first use."""
    clips = list_clips(root)
    cache = paths.feature_cache_dir() / f"fsdd_{_key(clips, n_views, augmentation)}.npz"
    return cached_bank(cache, lambda: compute_bank(clips, n_views, progress=progress, augmentation=augmentation))
