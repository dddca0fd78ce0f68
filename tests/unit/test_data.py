"""MNIST and FSDD loading, pairing, and the data-dir resolution order."""

import gzip

import numpy as np
import pytest

from core import paths
from core.data.fsdd import OFFICIAL_TEST_TAKES, SPEAKERS, list_clips
from core.data.mnist import IMAGE_MAGIC, load_mnist, parse_idx
from core.data.pairing import balanced_pairing, pair_by_label
from core.errors import CorruptData, DataNotFound


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_parse_idx_round_trip_and_errors():
    arr = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    raw = idx_bytes(arr, IMAGE_MAGIC)
    assert np.array_equal(parse_idx(raw, IMAGE_MAGIC), arr)
    with pytest.raises(CorruptData, match="magic"):
        parse_idx(raw, 2049)
    with pytest.raises(CorruptData, match="bytes of data"):
        parse_idx(raw[:-5], IMAGE_MAGIC)
    with pytest.raises(CorruptData, match="too short"):
        parse_idx(b"\x00\x00", IMAGE_MAGIC)


def test_load_mnist_test_split(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10000, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(10))


def test_mnist_raw_and_gzip_agree(tmp_path, data_root):
    (tmp_path / "mnist").mkdir()
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.decompress((data_root / "mnist" / f"{stem}.gz").read_bytes())
        (tmp_path / "mnist" / stem).write_bytes(raw)
    a, la = load_mnist(tmp_path, "test")
    b, lb = load_mnist(data_root, "test")
    assert np.array_equal(a, b) and np.array_equal(la, lb)


def test_mnist_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(DataNotFound, match=str(tmp_path / "mnist")):
        load_mnist(tmp_path, "train")
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(CorruptData, match="t10k-images"):
        load_mnist(tmp_path, "test")


def test_fsdd_clips_speakers_and_official_test_takes(data_root):
    clips = list_clips(data_root)
    assert len(clips) == 3000
    assert {c.speaker for c in clips} == set(SPEAKERS)
    assert sum(c.take in OFFICIAL_TEST_TAKES for c in clips) == 300
    assert sum(c.speaker == "theo" for c in clips) == 500
    with pytest.raises(DataNotFound, match="recordings"):
        list_clips(data_root / "nowhere")


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "env"))
    assert paths.data_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    assert paths.data_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv(paths.DATA_DIR_ENV)
    assert paths.data_dir() == paths.DATA_CACHE_DIR


def test_pairing_matches_labels_and_is_reproducible():
    img_labels = np.repeat(np.arange(10), 30)
    clip_labels = np.tile(np.arange(10), 5)
    fixed = balanced_pairing(img_labels, clip_labels, seed=7)
    assert np.array_equal(clip_labels[fixed], img_labels)
    assert np.array_equal(fixed, balanced_pairing(img_labels, clip_labels, seed=7))
    # balanced: each of the 5 clips of a digit serves 6 of its 30 images
    assert set(np.bincount(fixed, minlength=50)) == {6}
    a = pair_by_label(img_labels, clip_labels, np.random.default_rng(0))
    b = pair_by_label(img_labels, clip_labels, np.random.default_rng(1))
    assert np.array_equal(clip_labels[a], img_labels) and not np.array_equal(a, b)
