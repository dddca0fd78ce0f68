"""Fetch MNIST and FSDD from their public sources, verify them, and install them without touching user files."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path

from core.errors import DownloadError
from core.io import atomic_write

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
# FSDD at a fixed commit, not the moving master branch. GitHub builds commit archives on demand and
# does not promise the same bytes each time, so each recording is checked instead: against the sha256
# of every file at this commit (FSDD_MANIFEST, made from a copy of that commit with `sha256sum *.wav`).
FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URLS = (
    f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip",
    f"https://codeload.github.com/Jakobovski/free-spoken-digit-dataset/zip/{FSDD_COMMIT}",
)
FSDD_MANIFEST = Path(__file__).with_name("fsdd_recordings.sha256")
TIMEOUT_S = 30  # any one network wait
DEADLINE_S = 900  # a whole download: every mirror of every file
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024  # the FSDD archive is ~30 MB; a mirror sending more is not serving it
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})  (\d_[a-z]+_\d+\.wav)$")


def fetch(url: str, progress: bool = True, deadline: float | None = None, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """GET url into memory, whole or not at all: DownloadError for a cut-short, oversized or late response.

    deadline is a time.monotonic() instant (default DEADLINE_S from now); a stalled read is cut off
    after TIMEOUT_S or at the deadline, whichever comes first."""
    deadline = time.monotonic() + DEADLINE_S if deadline is None else deadline
    try:
        with urllib.request.urlopen(url, timeout=_wait(deadline, url)) as resp:
            declared = resp.headers.get("Content-Length")
            total = int(declared) if declared and declared.strip().isdigit() else None
            if total is not None and total > max_bytes:
                raise DownloadError(f"{url} is {total:,} bytes; no dataset file here is over {max_bytes:,}")
            from tqdm import tqdm

            buf = bytearray()
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                while chunk := resp.read1(1 << 16):  # what has arrived: a trickle cannot hide the deadline
                    buf += chunk
                    bar.update(len(chunk))
                    if len(buf) > max_bytes:
                        raise DownloadError(f"{url} sent over {max_bytes:,} bytes; no dataset file here is that large")
                    _wait(deadline, url)
            if total is not None and len(buf) != total:
                raise DownloadError(f"{url} was cut short: {len(buf):,} of {total:,} bytes arrived")
            return bytes(buf)
    except http.client.HTTPException as exc:  # IncompleteRead: the connection closed inside a chunk
        raise DownloadError(f"{url} was cut short: {exc!r}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc


def _wait(deadline: float, url: str) -> float:
    """Seconds a network wait may take now; DownloadError once the deadline has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise DownloadError(f"gave up on {url}: the download took longer than its deadline")
    return min(TIMEOUT_S, left)


@contextmanager
def _locked(folder: Path, deadline: float):
    """One download into folder at a time, across threads and processes (two clicks, two visitors)."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / ".download.lock", thread_local=False)
    try:
        lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
    except Timeout as exc:
        raise DownloadError(f"another download into {folder} is still running; try again when it has finished") from exc
    try:
        yield
    finally:
        lock.release()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def download_mnist(root: Path, mirrors=MNIST_MIRRORS, progress: bool = True, deadline_s: float = DEADLINE_S) -> Path:
    """Download the four MNIST files into root/mnist, trying each mirror, checking decompressed md5."""
    target = Path(root) / "mnist"
    deadline = time.monotonic() + deadline_s
    with _locked(target, deadline):
        for stem, expected in MNIST_MD5.items():
            dest = target / f"{stem}.gz"
            if dest.exists() and _mnist_md5(dest.read_bytes()) == expected:
                continue
            errors = []
            for mirror in mirrors:
                try:
                    blob = fetch(f"{mirror}{stem}.gz", progress, deadline)
                    got = _mnist_md5(blob)
                except DownloadError as exc:
                    errors.append(str(exc))
                    continue
                if got != expected:
                    errors.append(
                        f"{mirror}{stem}.gz: " + (f"md5 {got}, expected {expected}" if got else "not a whole gzip file")
                    )
                    continue
                _write_atomic(dest, blob)
                break
            else:
                raise DownloadError(
                    f"MNIST {stem}.gz could not be fetched ({'; '.join(errors)}). "
                    f"Put the four *-ubyte.gz files in {target} by hand, or set DIGITS_DATA_DIR."
                )
    return target


def _mnist_md5(blob: bytes) -> str | None:
    try:
        return md5(gzip.decompress(blob))
    except (OSError, EOFError):
        return None  # not gzip, or cut short


def fsdd_manifest(path: Path = FSDD_MANIFEST) -> dict[str, str]:
    """{recording name: sha256} for every FSDD recording at FSDD_COMMIT, read from the committed manifest."""
    manifest = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = _MANIFEST_LINE.match(line)
        if not match:
            raise DownloadError(f"{path}:{number} is not `<sha256>  <digit>_<speaker>_<take>.wav`")
        manifest[match[2]] = match[1]
    return manifest


def check_fsdd(target: Path, manifest: dict[str, str]) -> tuple[list[str], list[str]]:
    """(missing, different): manifest names absent from target, and those present with other content."""
    missing, different = [], []
    for name, expected in manifest.items():
        path = target / name
        if not path.is_file():
            missing.append(name)
        elif hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            different.append(name)
    return missing, different


def download_fsdd(
    root: Path,
    urls=FSDD_URLS,
    progress: bool = True,
    manifest: dict[str, str] | None = None,
    deadline_s: float = DEADLINE_S,
) -> Path:
    """Install the FSDD recordings in root/fsdd/recordings, each one checked against its sha256.

    Only missing recordings are added: nothing already in the folder is deleted or replaced (a file
    that differs from FSDD's is reported, and left as it is). Into an absent folder the recordings
    arrive in one rename, so a download that is cut off never leaves a folder that looks complete."""
    target = Path(root) / "fsdd" / "recordings"
    manifest = fsdd_manifest() if manifest is None else manifest
    deadline = time.monotonic() + deadline_s
    with _locked(target.parent, deadline):
        missing, different = check_fsdd(target, manifest)
        if missing:
            _install(target, _fetch_recordings(urls, progress, deadline, manifest, target), missing)
        if different:
            raise DownloadError(
                f"FSDD is in {target}, except {len(different)} file(s) there that differ from FSDD's "
                f"({', '.join(different[:5])}{', ...' if len(different) > 5 else ''}); they were left as they are. "
                "Move them away and download again to have FSDD's own."
            )
    return target


def _fetch_recordings(
    urls, progress: bool, deadline: float, manifest: dict[str, str], target: Path
) -> dict[str, bytes]:
    """Every manifest recording from the first mirror whose archive holds them all, verified."""
    errors = []
    for url in urls:
        try:
            return _recordings_in(fetch(url, progress, deadline), url, manifest)
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError(
        f"FSDD could not be fetched ({'; '.join(errors)}). "
        f"Put the FSDD recordings/*.wav in {target} by hand, or set DIGITS_DATA_DIR."
    )


def _recordings_in(blob: bytes, url: str, manifest: dict[str, str]) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        members = {
            Path(m.filename).name: m
            for m in archive.infolist()
            if "/recordings/" in f"/{m.filename}" and Path(m.filename).name in manifest
        }
        if len(members) < len(manifest):
            raise DownloadError(f"{url} holds {len(members)} of the {len(manifest)} FSDD recordings")
        if sum(m.file_size for m in members.values()) > MAX_DOWNLOAD_BYTES:
            raise DownloadError(f"{url}: the recordings would unpack to over {MAX_DOWNLOAD_BYTES:,} bytes")
        files = {name: archive.read(member) for name, member in members.items()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise DownloadError(f"{url} is not a readable zip archive ({exc})") from exc
    wrong = [name for name, data in files.items() if hashlib.sha256(data).hexdigest() != manifest[name]]
    if wrong:
        raise DownloadError(f"{url}: {len(wrong)} recording(s) do not match their sha256, e.g. {wrong[0]}")
    return files


def _install(target: Path, files: dict[str, bytes], names: list[str]) -> None:
    """Add names to target: all at once by renaming a finished folder when target is absent, else one by one."""
    for stale in target.parent.glob(".recordings.*"):  # staging of a download that was killed; ours, locked out now
        shutil.rmtree(stale, ignore_errors=True)
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=".recordings.", dir=target.parent))
        try:
            for name in names:
                (staging / name).write_bytes(files[name])
            staging.rename(target)
            return
        except OSError:
            pass  # target appeared meanwhile (made by hand): add to it instead
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for name in names:
        if not (target / name).exists():
            atomic_write(target / name, lambda f, data=files[name]: f.write(data))


def _write_atomic(dest: Path, blob: bytes) -> None:
    atomic_write(dest, lambda f: f.write(blob))
