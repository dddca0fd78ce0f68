"""Where the project keeps data, weights and runs, independent of the current directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_CACHE_DIR = REPO_ROOT / "data"
WEIGHTS_DIR = REPO_ROOT / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.pt"
RESULTS_DIR = REPO_ROOT / "results"
DATA_DIR_ENV = "DIGITS_DATA_DIR"
RUNS_DIR_ENV = "DIGITS_RUNS_DIR"
CACHE_DIR_ENV = "DIGITS_CACHE_DIR"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The dataset root: an explicit argument, else $DIGITS_DATA_DIR, else the repo's data/ cache."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return DATA_CACHE_DIR


def runs_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where training runs live: an explicit argument, else $DIGITS_RUNS_DIR, else runs/ in the repo."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(RUNS_DIR_ENV)
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "runs"


def feature_cache_dir() -> Path:
    """Derived features are cached in $DIGITS_CACHE_DIR, else the git-ignored data/cache; never beside a
    read-only mirror."""
    env = os.environ.get(CACHE_DIR_ENV)
    path = Path(env).expanduser().resolve() if env else DATA_CACHE_DIR / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
