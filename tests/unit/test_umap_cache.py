"""core.analysis.umap_cache: a second process loads UMAP's compiled kernels from the disk cache instead of compiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core import paths

# A UMAP in a fresh process, then what numba says about its main kernel: compiled here, or loaded from the cache.
CODE = """
import json, numpy as np
from core.analysis import embeddings as E
x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
E.project(x, "umap", n_neighbors=10, threads=1)
from umap import layouts
stats = layouts._nb_optimize_layout_euclidean_single_epoch.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def fresh_umap(cache_dir) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    run = subprocess.run([sys.executable, "-c", CODE], cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_second_process_loads_umaps_kernels_from_the_disk_cache(tmp_path):
    first = fresh_umap(tmp_path)
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled, and written to the cache
    assert any(tmp_path.rglob("*layouts*.nbi")) and any(tmp_path.rglob("*layouts*.nbc"))
    second = fresh_umap(tmp_path)
    assert second["hits"] >= 1 and second["misses"] == 0  # loaded, not compiled again
