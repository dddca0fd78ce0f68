"""Seconds for core.embeddings to project 10,000 embeddings (t-SNE, UMAP, PCA) and cluster them (k-means)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import embeddings, paths  # noqa: E402


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS), help="checkpoint whose embeddings are projected")
    p.add_argument("--encoder", default="image", choices=embeddings.ENCODERS)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--quick", action="store_true", help="2,000 points")
    args = p.parse_args()
    n = 2000 if args.quick else args.n
    model, _, split = embeddings.load_split(args.weights, paths.data_dir(), "test")
    x = embeddings.compute(model, split, args.encoder, n=n).vectors
    print(f"{len(x)} {args.encoder} embeddings of {x.shape[1]} dims from {args.weights}; load average {os.getloadavg()[0]:.1f}")
    # Warm-up: numba compiles UMAP's and openTSNE's kernels on first use in a process. Above 4,096
    # points UMAP switches to NN-descent and above 5,000 t-SNE to FFT gradients: warm those paths too.
    warm = x[np.random.default_rng(0).permutation(len(x))[:5001]] if len(x) > 5001 else x
    for method in ("umap", "tsne"):
        print(f"  warm-up {method} ({len(warm)} points): {timed(embeddings.project, warm, method):.1f} s", flush=True)
    for name, fn in (("t-SNE", lambda: embeddings.project(x, "tsne")), ("UMAP", lambda: embeddings.project(x, "umap")),
                     ("PCA", lambda: embeddings.project(x, "pca")), ("k-means", lambda: embeddings.kmeans(x, 10))):
        print(f"{name:>8}: {timed(fn):6.1f} s  (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
