"""Pair each image with a spoken clip of the same digit: fixed for testing, redrawn each training epoch."""

from __future__ import annotations

import numpy as np

# Fixed pairings, so every evaluation of a split pairs the same image with the same clip.
TEST_PAIRING_SEED = 1234
VAL_PAIRING_SEED = 99
LOSO_PAIRING_SEED = 7  # the test image paired with each held-out speaker's clip


def pair_by_label(image_labels: np.ndarray, clip_labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each image label, the index of a random clip with the same label (uniform within the label)."""
    image_labels = np.asarray(image_labels)
    clip_labels = np.asarray(clip_labels)
    out = np.empty(len(image_labels), dtype=np.int64)
    for digit in np.unique(image_labels):
        pool = np.flatnonzero(clip_labels == digit)
        if len(pool) == 0:
            raise ValueError(f"no clip of digit {digit} to pair with")
        where = np.flatnonzero(image_labels == digit)
        out[where] = pool[rng.integers(0, len(pool), len(where))]
    return out


def balanced_pairing(image_labels: np.ndarray, clip_labels: np.ndarray, seed: int = TEST_PAIRING_SEED) -> np.ndarray:
    """A fixed pairing that uses every clip of a digit about equally often (for test sets)."""
    rng = np.random.default_rng(seed)
    image_labels = np.asarray(image_labels)
    out = np.empty(len(image_labels), dtype=np.int64)
    for digit in np.unique(image_labels):
        pool = np.flatnonzero(np.asarray(clip_labels) == digit)
        if len(pool) == 0:
            raise ValueError(f"no clip of digit {digit} to pair with")
        where = np.flatnonzero(image_labels == digit)
        cycle = np.concatenate([rng.permutation(pool) for _ in range(len(where) // len(pool) + 1)])
        out[where] = cycle[: len(where)]
    return out
