"""The seed course's pre-extracted arrays and the original database of Khacef et al."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.errors import CorruptData, DataNotFound

IMAGE_DIM, AUDIO_DIM = 784, 507


def _load_array(path: Path, width: int | None) -> np.ndarray:
    if not path.exists():
        raise DataNotFound(f"{path} not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CorruptData(f"{path}: not a numeric .npy file ({exc})") from exc
    if width is not None:
        if arr.ndim == 1 or arr[0].size != width:
            raise CorruptData(f"{path}: rows have {arr[0].size if arr.ndim > 1 else 1} values, expected {width}")
        arr = arr.reshape(len(arr), width)
    return arr.astype(np.float32)


def _images(arr: np.ndarray) -> np.ndarray:
    """The course ships [0,1] floats, some copies raw bytes: scale the latter so both look like MNIST."""
    images = arr.reshape(-1, 28, 28)
    return images / 255.0 if images.max(initial=0) > 1.0 else images


def _labels_csv(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataNotFound(f"{path} not found")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "label" not in rows[0]:
        raise CorruptData(f"{path}: expected a CSV with columns row_id,label")
    try:
        return np.array([int(r["label"]) for r in rows], dtype=np.int64)
    except ValueError as exc:
        raise CorruptData(f"{path}: a label is not an integer ({exc})") from exc


def _check(images: np.ndarray, audio: np.ndarray, labels: np.ndarray | None, where: Path) -> None:
    n = len(images)
    if len(audio) != n or (labels is not None and len(labels) != n):
        sizes = (n, len(audio), None if labels is None else len(labels))
        raise CorruptData(f"{where}: image, audio and label counts differ: {sizes}")
    if labels is not None and ((labels < 0) | (labels > 9)).any():
        raise CorruptData(f"{where}: labels outside 0-9")


def load_course(folder: Path, split: str) -> dict:
    """Load x_{split}_wr.npy, x_{split}_sp.npy and (train only) y_train.csv from the course format.

    Returns images (N×28×28 in [0,1]), mfcc (N×507, as the course extracted it) and labels (or None:
    the course keeps its test labels private)."""
    folder = Path(folder)
    images = _images(_load_array(folder / f"x_{split}_wr.npy", IMAGE_DIM))
    audio = _load_array(folder / f"x_{split}_sp.npy", AUDIO_DIM)
    label_file = folder / f"y_{split}.csv"
    labels = _labels_csv(label_file) if label_file.exists() or split == "train" else None
    _check(images, audio, labels, folder)
    return {"images": images, "mfcc": audio, "labels": labels}


def load_khacef(folder: Path, split: str) -> dict:
    """Load data_wr_{split}.npy, data_sp_{split}.npy and labels_{split}.npy (Khacef et al., 2019)."""
    folder = Path(folder)
    images = _images(_load_array(folder / f"data_wr_{split}.npy", IMAGE_DIM))
    audio = _load_array(folder / f"data_sp_{split}.npy", AUDIO_DIM)
    labels = _load_array(folder / f"labels_{split}.npy", None).reshape(-1).astype(np.int64)
    _check(images, audio, labels, folder)
    return {"images": images, "mfcc": audio, "labels": labels}
