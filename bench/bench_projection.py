"""Seconds and quality of projecting 10,000 embeddings (t-SNE, UMAP, PCA) and clustering them (k-means)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core import paths
from core.analysis import embeddings
from core.model.device import thread_count

REPO = Path(__file__).resolve().parent.parent


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def cpu_timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds of this process (all its threads) and the result. On a shared machine the CPU
    seconds are the steadier measure of the work; the wall seconds are what a visitor waits."""
    cpu_start = time.process_time()
    wall, out = timed(fn, *args, **kwargs)
    return wall, time.process_time() - cpu_start, out


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def cpu() -> str:
    """The CPU's model name, as lscpu gives it (Linux), else the platform's."""
    import platform

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        return platform.processor() or platform.machine()


def baseline_tsne(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The t-SNE core used before: one openTSNE call, its own kNN (Annoy), FFT gradients for all 750 iterations."""
    from openTSNE import TSNE

    tsne = TSNE(
        perplexity=30.0,
        random_state=seed,
        n_jobs=thread_count(),
        early_exaggeration_iter=250,
        n_iter=500,
        negative_gradient_method="fft",
        verbose=False,
    )
    return np.asarray(tsne.fit(x), dtype=np.float32)


def opentsne_defaults(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """What a user would otherwise run: openTSNE with every default (Annoy kNN, 250 + 500 iterations, one job)."""
    from openTSNE import TSNE

    return np.asarray(TSNE(random_state=seed).fit(x), dtype=np.float32)


def baseline_umap(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The UMAP core used before: its own neighbours (NN-descent above 4,096 points, compiled by numba on first use)."""
    import umap

    return umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1).fit_transform(x).astype(np.float32)


# Each projection by name, as timed here and (first use) in a fresh process.
RUNNERS = {
    "t-SNE": lambda x: embeddings.project(x, "tsne"),
    "t-SNE 2 threads": lambda x: embeddings.project(x, "tsne", threads=2),
    "openTSNE": opentsne_defaults,
    "t-SNE old": baseline_tsne,
    "UMAP": lambda x: embeddings.project(x, "umap"),
    "UMAP old": baseline_umap,
    "PCA": lambda x: embeddings.project(x, "pca"),
}


def reference_p(x: np.ndarray, perplexity: float = 30.0):
    """Perplexity-30 affinities on exact neighbours: the one target every t-SNE run's KL is measured against."""
    from openTSNE import affinity, nearest_neighbors

    knn = nearest_neighbors.Sklearn(x, k=min(len(x) - 1, int(3 * perplexity)), n_jobs=thread_count())
    p = affinity.PerplexityBasedNN(knn_index=knn, perplexity=perplexity, n_jobs=thread_count()).P.tocoo()
    return p.row, p.col, p.data / p.data.sum()


def kl_divergence(p, y: np.ndarray, chunk: int = 1000) -> float:
    """Exact KL(P || Q) with Q's normaliser summed over all pairs (no BH or FFT approximation)."""
    rows, cols, pij = p
    y = y.astype(np.float64)
    sq = (y**2).sum(1)
    z = 0.0
    for s in range(0, len(y), chunk):
        w = 1 / (1 + np.maximum(sq[s : s + chunk, None] + sq[None] - 2 * y[s : s + chunk] @ y.T, 0))
        z += w.sum() - len(w)  # minus the diagonal, where w is 1
    q = 1 / (1 + ((y[rows] - y[cols]) ** 2).sum(1)) / z
    return float(np.sum(pij * np.log(pij / q)))


def quality(hi_nn: np.ndarray, labels: np.ndarray, y: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Share of each point's k nearest neighbours in the embedding kept in y, and leave-one-out k-NN accuracy in y."""
    from sklearn.neighbors import NearestNeighbors

    lo_nn = NearestNeighbors(n_neighbors=k).fit(y).kneighbors(return_distance=False)
    kept = np.mean([len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(hi_nn, lo_nn)]) / k
    votes = np.array([np.bincount(row, minlength=labels.max() + 1).argmax() for row in labels[lo_nn]])
    return float(kept), float(np.mean(votes == labels))


def first_use(
    x: np.ndarray, name: str, numba_cache: str | None = None, disk_cache: bool = True, cpu_too: bool = False
) -> float | tuple[float, float]:
    """Seconds of the first projection in a fresh process: lazy imports and numba compilation included (and, with
    cpu_too, the CPU seconds the process spent on it).

    numba_cache: the directory of UMAP's compiled kernels (core.analysis.umap_cache); disk_cache=False: without
    that cache, as every process compiled them before."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        code = (
            "import time, numpy as np\n"
            "from bench import bench_projection\n"
            + ("" if disk_cache else "import core.analysis.umap_cache as c; c.enable = lambda: 0\n")
            + f"x = np.load({tmp + '/x.npy'!r}); start, cpu = time.perf_counter(), time.process_time()\n"
            f"bench_projection.RUNNERS[{name!r}](x)\n"
            "print(time.perf_counter() - start, time.process_time() - cpu)"
        )
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        if numba_cache and disk_cache:  # without it, numba's own cache=True kernels stay where they were, as before
            env["NUMBA_CACHE_DIR"] = numba_cache
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env=env
        )
    wall, cpu = (float(v) for v in run.stdout.split()[-2:])
    return (wall, cpu) if cpu_too else wall


def umap_first_use(x: np.ndarray) -> None:
    """The first UMAP in a fresh process: without the disk cache, with it empty (once per installation), filled."""
    with tempfile.TemporaryDirectory() as cache:
        for label, disk in (
            ("no disk cache (each process compiles)", False),
            ("disk cache empty (first ever)", True),
            ("disk cache filled (every later process)", True),
        ):
            wall, cpu_seconds = first_use(x, "UMAP", cache, disk, cpu_too=True)
            print(
                f"  first UMAP in a fresh process, {label}: {wall:.1f} s, CPU {cpu_seconds:.1f} s  ({load()})",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS), help="checkpoint whose embeddings are projected")
    p.add_argument("--encoder", default="image", choices=embeddings.ENCODERS)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--quick", action="store_true", help="2,000 points")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also the former settings (t-SNE: Annoy kNN, FFT throughout; UMAP: NN-descent)",
    )
    p.add_argument("--first-use", action="store_true", help="also time each first projection in a fresh process")
    p.add_argument(
        "--umap-first-use",
        action="store_true",
        help="only the first UMAP in a fresh process, without and with the disk cache of its compiled kernels",
    )
    p.add_argument("--tsne-only", action="store_true", help="only our t-SNE and openTSNE's defaults, side by side")
    args = p.parse_args()
    n = 2000 if args.quick else args.n
    model, _, split = embeddings.load_split(args.weights, paths.data_dir(), "test")
    e = embeddings.compute(model, split, args.encoder, n=n)
    x, labels = e.vectors, e.meta["digit"].to_numpy()
    print(
        f"{len(x)} {args.encoder} embeddings of {x.shape[1]} dims from {args.weights}; {thread_count()} threads; "
        f"{cpu()}; {load()}"
    )
    if args.umap_first_use:
        return umap_first_use(x)
    runs = [name for name in RUNNERS if args.baseline or not name.endswith((" old", "threads"))]
    if args.tsne_only:
        runs = ["t-SNE", "t-SNE 2 threads", "openTSNE"]
    if args.first_use:
        for name in runs[:-1]:
            print(f"  first use {name} in a fresh process: {first_use(x, name):.1f} s  ({load()})", flush=True)
    # Warm-up: numba compiles UMAP's kernels on first use in a process (and the old UMAP's NN-descent above 4,096
    # points); above 5,000 points t-SNE takes FFT gradients early on: warm those paths too. t-SNE's gradients are
    # compiled C, so t-SNE alone needs only its imports warmed.
    size = 1000 if args.tsne_only else 5001
    warm = x[np.random.default_rng(0).permutation(len(x))[:size]] if len(x) > size else x
    for name in [name for name in runs if name != "PCA"]:
        print(f"  warm-up {name} ({len(warm)} points): {timed(RUNNERS[name], warm)[0]:.1f} s  ({load()})", flush=True)
    from sklearn.neighbors import NearestNeighbors

    hi_nn = NearestNeighbors(n_neighbors=10).fit(x).kneighbors(return_distance=False)
    ref = reference_p(x)
    print(
        "quality: KL(P||Q) exact against perplexity-30 P on exact neighbours (t-SNE only); share of the 10 nearest"
        " neighbours kept; 10-NN leave-one-out digit accuracy in the projection"
    )
    seconds, cpu_seconds = {}, {}
    for name in runs:
        seconds[name], cpu_seconds[name], y = cpu_timed(RUNNERS[name], x)
        kl = f"KL {kl_divergence(ref, y):.3f}  " if "SNE" in name else ""
        kept, acc = quality(hi_nn, labels, y)
        print(
            f"{name:>10}: {seconds[name]:6.1f} s, CPU {cpu_seconds[name]:6.1f} s  ({load()})  {kl}"
            f"kNN kept {kept:.3f}  10-NN acc {acc:.4f}",
            flush=True,
        )
    for name in ("t-SNE", "t-SNE 2 threads"):
        if name in seconds and "openTSNE" in seconds:
            print(
                f"{name} against openTSNE's defaults: {seconds['openTSNE'] / seconds[name]:.2f}x faster in wall "
                f"time, {cpu_seconds['openTSNE'] / cpu_seconds[name]:.2f}x in CPU time"
            )
    if not args.tsne_only:
        print(f"{'k-means':>10}: {timed(embeddings.kmeans, x, 10)[0]:6.1f} s  ({load()})")


if __name__ == "__main__":
    main()
