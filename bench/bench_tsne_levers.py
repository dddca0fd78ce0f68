"""CPU seconds and exact KL of t-SNE schedules (phases of openTSNE's optimize) on 10,000 embeddings' fixed affinities.

Each schedule is JSON: {"name": ..., "phases": [...]}, a phase being openTSNE optimize() keywords plus "n" (its
iterations) and "chk" (iterations between reports of exact KL and 10-NN kept), or {"scale": s} to multiply the
embedding by s. Example, the app's schedule:
  python -m bench.bench_tsne_levers '{"name": "app", "phases": [
    {"n": 125, "exaggeration": 12, "momentum": 0.8, "negative_gradient_method": "fft", "min_num_intervals": 20},
    {"n": 50, "momentum": 0.95, "negative_gradient_method": "fft"},
    {"n": 200, "chk": 50, "momentum": 0.95, "theta": 0.7, "negative_gradient_method": "bh"}]}'
The CPU seconds are the PCA start and the gradient descent: not the affinities (timed once, first), nor the reports.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.bench_projection import kl_divergence, load, quality, reference_p
from core import paths
from core.analysis import embeddings


def run(schedule: dict, x: np.ndarray, affinities, ref, hi_nn: np.ndarray, labels: np.ndarray) -> None:
    """Run one schedule from openTSNE's PCA start, printing each report and the result."""
    from openTSNE import TSNE

    wall, start = time.perf_counter(), time.process_time()
    emb = TSNE(perplexity=30.0, random_state=0, n_jobs=1, verbose=False).prepare_initial(x, affinities)
    cpu = time.process_time() - start  # the PCA start and the optimize calls, not the reports
    for phase in schedule["phases"]:
        phase = dict(phase)
        if "scale" in phase:
            emb *= phase["scale"]
            continue
        n, done = phase.pop("n"), 0
        every = phase.pop("chk", n)
        while done < n:
            step = min(every, n - done)
            start = time.process_time()
            emb.optimize(step, inplace=True, n_jobs=1, **phase)
            spent, y, done = time.process_time() - start, np.asarray(emb), done + step
            cpu += spent
            line = f"  {phase.get('negative_gradient_method')} x{phase.get('exaggeration', 1)} it {done}: "
            line += f"{1000 * spent / step:.1f} ms/it, span {np.ptp(y, axis=0).max():.0f}, CPU so far {cpu:.2f} s"
            if phase.get("exaggeration", 1) == 1:
                line += f", KL {kl_divergence(ref, y):.4f}, kept {quality(hi_nn, labels, y)[0]:.4f}"
            print(line, flush=True)
    wall = time.perf_counter() - wall
    kept, acc = quality(hi_nn, labels, np.asarray(emb))
    print(
        f"{schedule.get('name')}: CPU {cpu:.2f} s, wall {wall:.1f} s ({load()}), "
        f"KL {kl_divergence(ref, np.asarray(emb)):.4f}, kept {kept:.4f}, 10-NN acc {acc:.4f}",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("schedules", nargs="+", help="JSON schedules, run one after the other")
    p.add_argument("--n", type=int, default=10_000)
    args = p.parse_args()
    from sklearn.neighbors import NearestNeighbors

    model, _, split = embeddings.load_split(str(paths.DEFAULT_WEIGHTS), paths.data_dir(), "test")
    e = embeddings.compute(model, split, "image", n=args.n)
    x, labels = e.vectors, e.meta["digit"].to_numpy()
    ref = reference_p(x)
    hi_nn = NearestNeighbors(n_neighbors=10).fit(x).kneighbors(return_distance=False)
    start = time.process_time()
    affinities = embeddings._tsne_affinities(x, 30.0, 1)
    print(f"{len(x)} image embeddings; affinities (exact kNN): CPU {time.process_time() - start:.2f} s ({load()})")
    for schedule in args.schedules:
        run(json.loads(schedule), x, affinities, ref, hi_nn, labels)


if __name__ == "__main__":
    main()
