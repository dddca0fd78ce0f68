"""MNIST from its four IDX files (gzip-compressed or raw), validated before use."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from core.errors import CorruptData, DataNotFound

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
HOW_TO_GET = "run `python -m core.data download`, or set DIGITS_DATA_DIR to a folder holding mnist/ and fsdd/"


def parse_idx(raw: bytes, expected_magic: int, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX buffer of unsigned bytes; raise CorruptData naming source on any mismatch."""
    if len(raw) < 8:
        raise CorruptData(f"{source}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise CorruptData(f"{source}: magic number {magic}, expected {expected_magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptData(f"{source}: header promises {ndim} dimensions but the file ends early")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise CorruptData(f"{source}: shape {shape} needs {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read(folder: Path, stem: str) -> tuple[bytes, Path]:
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.exists():
            try:
                return (gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()), path
            except (OSError, EOFError) as exc:
                raise CorruptData(f"{path}: cannot decompress ({exc})") from exc
    raise DataNotFound(f"MNIST file {stem}(.gz) not found in {folder}; {HOW_TO_GET}")


def load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images float32 N×28×28 in [0,1], labels int64 N) for split 'train' or 'test'."""
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, not {split!r}")
    folder = Path(root) / "mnist"
    image_stem, label_stem = FILES[split]
    raw_images, image_path = _read(folder, image_stem)
    raw_labels, label_path = _read(folder, label_stem)
    images = parse_idx(raw_images, IMAGE_MAGIC, str(image_path))
    labels = parse_idx(raw_labels, LABEL_MAGIC, str(label_path))
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptData(f"{image_path}: images have shape {images.shape}, expected N×28×28")
    if labels.shape != (images.shape[0],):
        raise CorruptData(f"{label_path}: {labels.shape[0]} labels for {images.shape[0]} images")
    if labels.max(initial=0) > 9:
        raise CorruptData(f"{label_path}: label {labels.max()} is not a digit")
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)
