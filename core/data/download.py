"""Fetch MNIST and FSDD from their public sources, verify them, and install them atomically."""
from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from core.errors import DownloadError

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# md5 of the decompressed IDX content, so a re-compressed copy verifies as well as the original.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
FSDD_CLIPS = 3000
TIMEOUT_S = 30


def fetch(url: str, progress: bool = True) -> bytes:
    """GET url into memory with a progress bar; raise DownloadError with the place to put files by hand."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            from tqdm import tqdm

            buf = io.BytesIO()
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                      disable=not progress, file=sys.stderr) as bar:
                while chunk := resp.read(1 << 16):
                    buf.write(chunk)
                    bar.update(len(chunk))
            return buf.getvalue()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def download_mnist(root: Path, mirrors=MNIST_MIRRORS, progress: bool = True) -> Path:
    """Download the four MNIST files into root/mnist, trying each mirror, checking decompressed md5."""
    target = Path(root) / "mnist"
    target.mkdir(parents=True, exist_ok=True)
    for stem, expected in MNIST_MD5.items():
        dest = target / f"{stem}.gz"
        if dest.exists() and md5(gzip.decompress(dest.read_bytes())) == expected:
            continue
        errors = []
        for mirror in mirrors:
            try:
                blob = fetch(f"{mirror}{stem}.gz", progress)
                got = md5(gzip.decompress(blob))
            except (DownloadError, OSError, EOFError) as exc:
                errors.append(str(exc))
                continue
            if got != expected:
                errors.append(f"{mirror}{stem}.gz: md5 {got}, expected {expected}")
                continue
            _write_atomic(dest, blob)
            break
        else:
            raise DownloadError(
                f"MNIST {stem}.gz could not be fetched ({'; '.join(errors)}). "
                f"Put the four *-ubyte.gz files in {target} by hand, or set DIGITS_DATA_DIR."
            )
    return target


def download_fsdd(root: Path, url: str = FSDD_URL, progress: bool = True, expected_clips: int = FSDD_CLIPS) -> Path:
    """Download the FSDD archive and extract its recordings into root/fsdd/recordings."""
    target = Path(root) / "fsdd" / "recordings"
    if target.is_dir() and len(list(target.glob("*.wav"))) >= expected_clips:
        return target
    try:
        blob = fetch(url, progress)
    except DownloadError as exc:
        raise DownloadError(f"{exc}. Put the FSDD recordings/*.wav in {target} by hand, or set DIGITS_DATA_DIR.") from exc
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{url} is not a zip archive ({exc})") from exc
    members = [m for m in archive.namelist() if "/recordings/" in m and m.endswith(".wav")]
    if len(members) < expected_clips:
        raise DownloadError(f"{url} holds {len(members)} recordings, expected {expected_clips}")
    # Extract beside the target and rename, so an interrupted download never looks complete.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".recordings.", dir=target.parent))
    try:
        for name in members:
            (staging / Path(name).name).write_bytes(archive.read(name))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_atomic(dest: Path, blob: bytes) -> None:
    from core.io import atomic_write

    atomic_write(dest, lambda f: f.write(blob))
