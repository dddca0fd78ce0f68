"""core.embeddings: eval-mode embeddings of a split, projections, k-means, cluster quality and the CLI."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.analysis import embeddings as E
from tests.helpers import REPO, run_module


def blobs(n_per=40, dim=16, seed=0, k=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, dim))
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(k), n_per)


@pytest.fixture(scope="module")
def split(tiny_weights, data_root):
    return E.load_split(tiny_weights, data_root, "test")


@pytest.mark.parametrize("encoder", E.ENCODERS)
def test_compute_gives_deterministic_eval_mode_vectors(split, encoder):
    model, _, data = split
    model.train()  # compute() must switch dropout off itself
    a = E.compute(model, data, encoder, n=120, seed=1)
    b = E.compute(model, data, encoder, n=120, seed=1)
    assert np.array_equal(a.vectors, b.vectors)
    assert a.vectors.shape == (120, 128 if encoder == "fused" else 64) and len(a.meta) == 120
    assert set(a.meta.columns) >= {"digit", "prediction", "correct", "speaker", "clip"}
    assert (a.meta["correct"] == (a.meta["digit"] == a.meta["prediction"])).all()
    assert (a.images is None) == (encoder == "audio")
    if encoder == "audio":  # unique clips: no repeated clip names, at most the split's clip count
        assert a.meta["clip"].is_unique


def test_audio_points_are_capped_by_the_clips_in_the_split(split):
    model, _, data = split
    e = E.compute(model, data, "audio", n=E.MAX_POINTS)
    assert len(e.meta) == len(data.clip_labels)


@pytest.mark.parametrize("method,dims", [("pca", 2), ("pca", 3), ("tsne", 2), ("tsne", 3), ("umap", 2)])
def test_projections_keep_separated_clusters_separated(method, dims):
    x, labels = blobs()
    seen = []
    xy = E.project(x, method, dims, perplexity=15, n_neighbors=10, progress=lambda f, m: seen.append(f))
    assert xy.shape == (len(x), dims) and np.isfinite(xy).all()
    q = E.cluster_quality(xy, labels, k=5)
    assert q["ARI"] > 0.9 and q["silhouette"] > 0.5
    if method != "pca":  # t-SNE reports its iterations, UMAP its epochs
        assert seen and all(0 <= f <= 1 for f in seen) and seen == sorted(seen) and seen[-1] > 0.9


def test_tsne_progress_counts_all_its_iterations():
    x, _ = blobs()
    seen = []
    E.project(x, "tsne", perplexity=15, progress=lambda f, m: seen.append((f, m)))
    total = sum(E.TSNE_ITERS.values())
    assert len(seen) == total // E.TSNE_EVERY and seen[0][1] == f"t-SNE: iteration {E.TSNE_EVERY} of {total}"
    assert seen[-1][1] == f"t-SNE: iteration {total} of {total}"
    assert all(0 < f <= 0.99 for f, _ in seen)


# t-SNE above 5,000 points in 2-D takes FFT gradients early and Barnes-Hut after; UMAP above 4,096 points
# would search neighbours with NN-descent, and gets exact ones instead.
@pytest.mark.parametrize("method, n_per, seed", [("tsne", 510, 3), ("umap", 420, 4)])
def test_large_projections_keep_ten_clusters_apart(method, n_per, seed):
    x, labels = blobs(n_per=n_per, dim=64, seed=seed, k=10)
    xy = E.project(x, method)
    assert xy.shape == (len(x), 2) and np.isfinite(xy).all()
    q = E.cluster_quality(xy, labels, k=10)
    assert q["ARI"] > 0.9 and q["silhouette"] > 0.5


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_a_cancelled_projection_stops_part_way(method):
    x, _ = blobs(n_per=100)
    seen = []
    with pytest.raises(E.ProjectionCancelled):  # cancelled once the optimisation has begun
        E.project(
            x, method, progress=lambda f, m: seen.append((f, m)), cancelled=lambda: any(f >= 0.2 for f, _ in seen)
        )
    assert seen and max(f for f, _ in seen) < 0.5, seen
    with pytest.raises(E.ProjectionCancelled):  # cancelled before it starts
        E.project(x, method, progress=lambda f, m: seen.append((f, m)), cancelled=lambda: True)


def test_a_projection_caps_openmp_threads_in_its_own_thread_only():
    from threadpoolctl import threadpool_info, threadpool_limits

    def omp() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"}

    inside = []
    with threadpool_limits(limits=2, user_api="openmp"):
        E.project(blobs()[0], "tsne", perplexity=15, threads=1, progress=lambda f, m: inside.append(omp()))
        assert omp() == {2}
    assert inside and all(t == {1} for t in inside)


def test_tsne_of_the_fewest_points_in_3d():
    xyz = E.project(blobs(n_per=1)[0], "tsne", dims=3)
    assert xyz.shape == (5, 3) and np.isfinite(xyz).all()


def test_tsne_never_loads_numba():
    # numba's start-up (pynndescent) cost the first t-SNE of a process tens of seconds; exact kNN avoids it.
    code = (
        "import sys, numpy as np; from core import embeddings as E\n"
        "E.project(np.random.default_rng(0).normal(size=(1200, 16)).astype('float32'), 'tsne')\n"
        "print(sorted({'numba', 'pynndescent'} & set(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_explore_page_constants_come_without_torch():
    # pages/embeddings.py imports ENCODERS and MAX_POINTS before it has a model: no torch import (~1 s) for that.
    code = "import sys; from core.analysis.embeddings import ENCODERS, MAX_POINTS; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_cluster_quality_tells_structure_from_noise():
    x, labels = blobs()
    good = E.cluster_quality(x, labels, k=5)
    noise = E.cluster_quality(np.random.default_rng(1).normal(size=x.shape), labels, k=5)
    assert good["ARI"] > 0.95 and good["NMI"] > 0.95
    assert noise["ARI"] < 0.1 and noise["silhouette"] < 0.1


def test_neighbours_match_brute_force():
    x = np.random.default_rng(2).normal(size=(50, 4))
    idx, dist = E.neighbours(x, 7, k=5)
    brute = np.argsort(np.linalg.norm(x - x[7], axis=1))[1:6]
    assert list(idx) == list(brute) and 7 not in idx and np.all(np.diff(dist) >= 0)


def test_bad_parameters_are_refused():
    x, _ = blobs()
    with pytest.raises(ValueError, match="method"):
        E.project(x, "lda")
    with pytest.raises(ValueError, match="dims"):
        E.project(x, "pca", dims=4)


def test_cli_help_and_csv_export(embeddings_cli, tmp_path):
    help_ = run_module("core.embeddings", "--help")
    assert help_.returncode == 0 and "--method" in help_.stdout
    out = tmp_path / "proj.csv"
    run = embeddings_cli("--encoder", "fused", "--n", 150, "--method", "pca", "--dims", 3, "--out", out)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out)
    assert len(table) == 150 and {"x", "y", "z", "cluster", "digit", "prediction"} <= set(table.columns)


def test_cli_reports_a_missing_dataset(tiny_weights, tmp_path):
    run = run_module("core.embeddings", "--weights", tiny_weights, "--data-dir", tmp_path)
    assert run.returncode == 1 and "error:" in run.stderr and "Traceback" not in run.stderr
