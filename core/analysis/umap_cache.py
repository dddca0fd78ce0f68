"""UMAP's numba kernels compiled once per installation: an on-disk cache that survives restarts."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from pathlib import Path

from core import paths

log = logging.getLogger(__name__)

# The modules whose kernels a UMAP of precomputed neighbours compiles. UMAP declares none of them cache=True, so
# each new process recompiled them all; enable_caching() is what numba's own cache=True calls on a dispatcher.
MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.sparse", "umap.distances")
_done: set[str] = set()
_lock = threading.Lock()


def cache_dir() -> Path:
    """$NUMBA_CACHE_DIR when set (numba reads it itself), else numba/ in the project's writable feature cache."""
    env = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    return Path(env) if env else paths.feature_cache_dir() / "numba"


def enable() -> int:
    """Turn on numba's disk cache for UMAP's kernels (idempotent); returns how many kernels it was turned on for.

    A cache that cannot be written only costs the compile again, so an unwritable directory is logged, not raised."""
    from numba.core import config
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    with _lock:
        if not config.CACHE_DIR:
            try:
                directory = cache_dir()
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("UMAP's compiled kernels are not cached (%s); each process compiles them again", exc)
                return 0
            config.CACHE_DIR = str(directory)  # what $NUMBA_CACHE_DIR sets; read when a cache is made, below
        count = 0
        for name in MODULES:
            if name in _done:
                continue
            module = importlib.import_module(name)
            for value in vars(module).values():
                # numba offers no public "is it cached" query; a NullCache is what cache=False leaves.
                if isinstance(value, Dispatcher) and isinstance(value._cache, NullCache):
                    value.enable_caching()
                    count += 1
            _done.add(name)
        return count
