"""File writes that land whole or not at all, and bounded reads that trust nothing they read back."""

from __future__ import annotations

import glob
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from core.errors import DigitsError


class UnreadableRecord(DigitsError, ValueError):
    """A record file that cannot be trusted: not a plain file, too large, not UTF-8 or JSON, or against its schema."""


class CutWrite(DigitsError, OSError):
    """An append that did not land whole (a full disk), or a file that already ends in a cut line."""


def process_alive(pid: int) -> bool:
    """A live, non-zombie process (psutil: the same on Linux, macOS and Windows)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OverflowError, ValueError):
        return False


def _remove_orphans(path: Path) -> None:
    """Delete temporaries of path left by writers that were killed (their pid is in the name)."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call write(fileobj) on a temporary file beside path, fsync it, then rename it over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.chmod(tmp, 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_safe(obj: Any) -> Any:
    """obj with NaN and infinities as null: strict JSON has no spelling for them (a diverged loss is NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(
        path, lambda f: json.dump(json_safe(obj), f, indent=2, sort_keys=True, allow_nan=False), mode="w"
    )


_write = os.write  # the one system call an append makes; a test stands in a short write for a full disk


def append_jsonl(path: str | os.PathLike, obj: Any) -> None:
    """Append one line, verified: refuse a file that ends in a cut line, and undo and report a short write.

    Without the check, a line cut short by a full disk would merge with the next one appended."""
    path = Path(path)
    line = (json.dumps(json_safe(obj), sort_keys=True, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                raise CutWrite(f"{path.name} ends in a cut line (an earlier write stopped short); not appending to it")
        try:
            written = _write(fd, line)
        except OSError as exc:
            written, reason = 0, exc.strerror or str(exc)
        else:
            reason = f"only {written} of {len(line)} bytes were written (is the disk full?)"
        if written == len(line):
            os.lseek(fd, size, os.SEEK_SET)
            if os.read(fd, len(line)) == line:
                os.fsync(fd)
                return
            reason = "the line did not read back as written"
        try:
            os.ftruncate(fd, size)  # leave whole lines behind, so the run stays readable up to here
        except OSError:
            pass
        raise CutWrite(f"{path.name}: {reason}")
    finally:
        os.close(fd)


def lstat_record(path: Path) -> os.stat_result | None:
    """The record's own lstat (not a link's target); None if it does not exist; else UnreadableRecord."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableRecord(f"{path.name}: {exc.strerror or exc}") from None


def read_small_text(path: str | os.PathLike, max_bytes: int) -> str | None:
    """The UTF-8 text of a plain file of at most max_bytes; None if it does not exist; else UnreadableRecord.

    Symlinks, folders, FIFOs and devices are refused before opening (a FIFO would block the page for ever)."""
    path = Path(path)
    name = path.name
    st = lstat_record(path)
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UnreadableRecord(f"{name} is a symlink, not a file")
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableRecord(f"{name} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableRecord(f"{name} is not a regular file")
    if st.st_size > max_bytes:
        raise UnreadableRecord(f"{name} is {st.st_size:,} bytes, more than the {max_bytes:,} a record may take")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableRecord(f"{name}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in after the check above
            raise UnreadableRecord(f"{name} is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableRecord(f"{name} is more than the {max_bytes:,} bytes a record may take")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableRecord(f"{name} is not UTF-8 text (byte {exc.start})") from None


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def parse_json(text: str, name: str) -> Any:
    """Strict JSON: NaN, Infinity and numbers too large for a float read as null; every failure is UnreadableRecord."""
    try:
        return json.loads(text, parse_constant=lambda _: None, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise UnreadableRecord(
            f"{name} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4,300 digits; nesting deeper than the stack
        raise UnreadableRecord(f"{name} is not usable JSON ({type(exc).__name__}: {str(exc)[:80]})") from None


def parse_jsonl(text: str, name: str, cut_tail_ok: bool = False) -> list:
    """One JSON value per line. A last line without its newline was cut short: an error, or skipped if cut_tail_ok
    (a live writer may be half-way through it)."""
    lines = text.split("\n")
    tail = lines.pop()  # "" when the text ends in a newline
    if tail and not cut_tail_ok:
        raise UnreadableRecord(f"{name} ends in a cut line (a write that stopped short, e.g. on a full disk)")
    return [parse_json(line, f"{name} line {i}") for i, line in enumerate(lines, 1)]
