"""Whether the datasets are present, and a background download when they are not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core import paths
from core.data.fsdd import list_clips
from core.errors import DataNotFound


def missing(root: str | Path | None = None) -> str | None:
    """None when MNIST and FSDD are both in root; otherwise what is missing and how to get it."""
    root = paths.data_dir(root)
    mnist = [
        root / "mnist" / f"{s}-{k}-idx{3 if k == 'images' else 1}-ubyte{z}"
        for s in ("train", "t10k")
        for k in ("images", "labels")
        for z in ("", ".gz")
    ]
    problems = []
    if sum(p.exists() for p in mnist) < 4:
        problems.append(f"MNIST is not in {root / 'mnist'}")
    try:
        list_clips(root)
    except DataNotFound as exc:
        problems.append(str(exc).split(";")[0])
    return "; ".join(problems) or None


def start_download(root: str | Path | None = None) -> subprocess.Popen:
    """`python -m core.data download` in the background, logging to <root>/download.log."""
    root = paths.data_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "download.log", "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "core.data", "download", "--data-dir", str(root)],
        cwd=paths.REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
