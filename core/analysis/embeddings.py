"""Encoder embeddings of a split, 2D/3D projections (t-SNE, UMAP, PCA), k-means and cluster quality."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DigitsError
from core.model.device import thread_count

ENCODERS = ("image", "audio", "fused")
METHODS = ("tsne", "umap", "pca")
MAX_POINTS = 10_000
Progress = Callable[[float, str], None]
Layout = Callable[[np.ndarray], None]  # receives the coordinates so far, while a t-SNE optimises
Cancelled = Callable[[], bool]
# t-SNE's phases, each a multiple of TSNE_EVERY: early exaggeration, then the points spreading out, then settling.
# With momentum 0.95 after the exaggeration, these reach openTSNE's default KL and neighbour preservation on
# 10,000 embeddings in half of its 750 iterations (docs/results.md, Explore).
TSNE_ITERS = {"early": 125, "spread": 50, "settle": 200}
TSNE_EVERY = 25  # iterations between progress reports (and published layouts)


class ProjectionCancelled(DigitsError):
    """A projection stopped part-way because its cancelled() check said so."""


@dataclass
class Embedding:
    """Vectors of one encoder over sampled points, with a row of metadata per point."""

    encoder: str
    vectors: np.ndarray  # (n, d) float32, computed in eval mode
    meta: pd.DataFrame  # digit, prediction, correct, speaker, clip, image_index
    images: np.ndarray | None  # (n, 28, 28) uint8 for image and fused points, None for audio


def load_split(weights: str | Path, root: str | Path, split: str = "test"):
    """(model, checkpoint, Split) for a checkpoint, with the split standardised by its own feature stats."""
    from core.model.checkpoint import feature_stats, load
    from core.training.dataset import load_eval_data

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, not {split!r}")
    model, ckpt = load(Path(weights))
    config = ckpt["run_config"]
    stats = feature_stats(ckpt)
    data = load_eval_data(config, Path(root), stats)
    return model, ckpt, getattr(data, split)


def compute(model, data, encoder: str, n: int = 2000, seed: int = 0, batch: int = 1000) -> Embedding:
    """Embeddings of up to n points: images (image), unique clips (audio) or image+clip pairs (fused)."""
    import torch  # here: the Explore page imports this module for its constants, before it has a model

    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, not {encoder!r}")
    needed = ("image", "audio") if encoder == "fused" else (encoder,)
    if any(m not in model.modalities for m in needed):
        raise ValueError(f"this model has no {encoder} embedding (it was trained on {' and '.join(model.modalities)})")
    model.eval()
    rng = np.random.default_rng(seed)
    n = int(min(max(1, n), MAX_POINTS))
    if encoder == "audio":
        rows = np.sort(rng.permutation(len(data.clip_labels))[:n])
        clips, images = rows, None
    else:
        rows = np.sort(rng.permutation(len(data.labels))[:n])
        clips, images = data.pairing[rows], rows
    vecs, preds = [], []
    for start in range(0, len(rows), batch):
        img = torch.from_numpy(data.images[images[start : start + batch]]) if images is not None else None
        aud = torch.from_numpy(data.clips[clips[start : start + batch], 0]) if encoder != "image" else None
        with torch.inference_mode():
            vecs.append(model.embeddings(image=img, audio=aud)[encoder].float().numpy())
            logits = model(image=img, audio=aud)
        head = logits.get(encoder, logits.get("fused"))  # a model without per-modality heads predicts nothing alone
        preds.append(head.argmax(1).numpy() if head is not None else np.full(len(vecs[-1]), -1))
    labels = data.clip_labels[clips] if encoder == "audio" else data.labels[rows]
    pred = np.concatenate(preds)
    meta = pd.DataFrame(
        {
            "digit": labels.astype(int),
            "prediction": pred.astype(int),
            "correct": labels == pred,
            "speaker": data.clip_speakers[clips],
            "clip": data.clip_names[clips],
            "image_index": rows if images is not None else -1,
        }
    )
    pics = (np.clip(data.images[rows], 0, 1) * 255).astype(np.uint8) if images is not None else None
    return Embedding(encoder, np.concatenate(vecs).astype(np.float32), meta, pics)


def project(
    x: np.ndarray,
    method: str = "tsne",
    dims: int = 2,
    perplexity: float = 30.0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    progress: Progress | None = None,
    threads: int | None = None,
    cancelled: Cancelled | None = None,
    layout: Layout | None = None,
) -> np.ndarray:
    """(n, dims) coordinates on at most `threads` threads (default: thread_count()); progress(fraction, message) is
    called while t-SNE or UMAP optimises, layout(coordinates) with t-SNE's start and every TSNE_EVERY iterations,
    and ProjectionCancelled is raised soon after cancelled() turns true."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if dims not in (2, 3):
        raise ValueError("dims must be 2 or 3")
    x = np.asarray(x, dtype=np.float32)
    if len(x) < 5:
        raise ValueError("need at least 5 points to project")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(np.float32)
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads or thread_count()))
    stop = _Stop(cancelled or (lambda: False))
    stop.check()
    # OpenMP's thread count is per calling thread, so this caps scikit-learn's neighbour search here without
    # touching predictions running in the app's other threads.
    with threadpool_limits(limits=threads, user_api="openmp"):
        if method == "umap":
            return _umap(x, dims, n_neighbors, min_dist, seed, progress, stop)
        return _tsne(x, dims, perplexity, seed, progress, threads, stop, layout)


class _Stop:
    """The cancelled() check, raising ProjectionCancelled."""

    def __init__(self, cancelled: Cancelled):
        self.cancelled = cancelled

    def check(self) -> None:
        if self.cancelled():
            raise ProjectionCancelled("the projection was cancelled")


class _UmapEpochs(io.TextIOBase):
    """UMAP's epoch progress bar written here (UMAP has no callback): reports progress and stops when cancelled.

    UMAP's tqdm bar renders as "n/total" (bar_format below) between epochs; raising from its write ends the epoch loop,
    the one long stretch of a UMAP. It raises once: tqdm writes again as it closes and would raise a second time."""

    def __init__(self, progress: Progress | None, stop: _Stop):
        self.progress, self.stop, self.raised = progress, stop, False

    def write(self, text: str) -> int:
        done, _, total = text.strip().partition("/")
        if self.progress and done.isdigit() and total.isdigit() and int(total):
            self.progress(0.2 + 0.79 * int(done) / int(total), f"UMAP: epoch {done} of {total}")
        if not self.raised and self.stop.cancelled():
            self.raised = True
            self.stop.check()
        return len(text)


def _umap(
    x: np.ndarray, dims: int, n_neighbors: int, min_dist: float, seed: int, progress: Progress | None, stop: _Stop
) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    from core.analysis import umap_cache

    umap_cache.enable()  # before UMAP's first compile: later processes load the kernels instead of compiling them
    import umap

    if progress:
        progress(0.1, "UMAP: building the neighbour graph")
    k = int(min(n_neighbors, len(x) - 1))
    # Exact neighbours (~1 s for 10,000 x 64) spare the first UMAP above 4,096 points numba's compilation of
    # NN-descent. UMAP lists each point as its own nearest neighbour and takes the first non-zero distance as
    # the point's radius, so the self-distance must be 0, not BLAS round-off (that kept 0.22 of 10-NN, not 0.24).
    dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    dist[:, 0] = 0
    stop.check()
    epochs = {"disable": False, "file": _UmapEpochs(progress, stop), "bar_format": "{n}/{total}", "mininterval": 0.25}
    model = umap.UMAP(
        n_components=dims,
        n_neighbors=k,
        min_dist=min_dist,
        random_state=seed,
        tqdm_kwds=epochs,
        n_jobs=1,
        precomputed_knn=(idx, dist.astype(np.float32)),
    )  # a fixed random_state makes UMAP serial anyway
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"precomputed_knn\[2\]"
        )  # no search index: only transform() needs one
        try:
            return model.fit_transform(x).astype(np.float32)
        except ProjectionCancelled:
            _release_tqdm_lock()
            raise


def _release_tqdm_lock() -> None:
    """Undo the acquisitions of tqdm's lock this thread left behind: tqdm's refresh() holds it while writing and does
    not release it when the write raises (our cancel, above), and every later bar in the process would wait on it."""
    from tqdm import tqdm

    lock = tqdm.get_lock()
    for _ in range(100):  # an RLock held more than once is released as often; release() fails once it is not ours
        try:
            lock.release()
        except (RuntimeError, ValueError, AssertionError):
            return


def _tsne(
    x: np.ndarray,
    dims: int,
    perplexity: float,
    seed: int,
    progress: Progress | None,
    jobs: int,
    stop: _Stop,
    layout: Layout | None = None,
) -> np.ndarray:
    from openTSNE import TSNE
    from openTSNE.tsne import OptimizationInterrupt

    iters = TSNE_ITERS
    total = sum(iters.values())
    perplexity = float(min(perplexity, (len(x) - 1) / 3))
    done = {"n": 0}

    def callback(iteration, error, embedding):
        done["n"] += TSNE_EVERY
        if progress:
            progress(min(0.99, done["n"] / total), f"t-SNE: iteration {done['n']} of {total}")
        if layout:
            layout(np.array(embedding, dtype=np.float32))
        return stop.cancelled()  # True makes openTSNE raise OptimizationInterrupt

    tsne = TSNE(
        n_components=dims,
        perplexity=perplexity,
        random_state=seed,
        n_jobs=jobs,
        callbacks=callback,
        callbacks_every_iters=TSNE_EVERY,
        verbose=False,
        # Barnes-Hut's 0.7 costs less per iteration than its default 0.5 and converged as far in as many iterations.
        theta=0.7,
        # FFT's grid has a box per unit of the embedding's span, and at least this many: openTSNE's 50 made the
        # compact exaggerated phase pay for a finer grid than the spread-out one gets. Coarser boxes (its
        # ints_in_interval > 1) are cheaper but bias the repulsion, and the layout stops spreading short of the KL.
        min_num_intervals=20,
    )
    affinities = _tsne_affinities(x, perplexity, jobs)
    stop.check()
    embedding = tsne.prepare_initial(x, affinities)  # PCA, scaled down: the first layout a visitor sees move
    if layout:
        layout(np.array(embedding, dtype=np.float32))
    # Each phase with the faster gradient: FFT's cost grows with the embedding's area, BH's barely does, so FFT wins
    # while the points are compact (exaggerated, then spreading out) and BH once they have spread. Momentum 0.95 (not
    # openTSNE's 0.8) after the exaggeration spreads and settles the points in fewer iterations; 0.98 overshot.
    fft = "fft" if dims == 2 and len(x) > 5000 else "bh"
    phases = (
        (iters["early"], {"exaggeration": 12, "momentum": 0.8, "negative_gradient_method": fft}),
        (iters["spread"], {"momentum": 0.95, "negative_gradient_method": fft}),
        (iters["settle"], {"momentum": 0.95, "negative_gradient_method": "bh"}),
    )
    try:
        for n_iter, params in phases:
            embedding.optimize(n_iter, inplace=True, propagate_exception=True, **params)
    except OptimizationInterrupt:  # only our callback stops it, when cancelled() said so
        raise ProjectionCancelled("the projection was cancelled") from None
    return np.asarray(embedding, dtype=np.float32)


def _tsne_affinities(x: np.ndarray, perplexity: float, jobs: int):
    from openTSNE import affinity, nearest_neighbors

    # Exact neighbours by brute force take ~1 s for 10,000 x 64, and passing them in keeps openTSNE from
    # importing pynndescent (numba), a start-up the first t-SNE of a process paid even when it used Annoy.
    knn = nearest_neighbors.Sklearn(x, k=min(len(x) - 1, int(3 * perplexity)), n_jobs=jobs)
    return affinity.PerplexityBasedNN(knn_index=knn, perplexity=perplexity, n_jobs=jobs)


def coordinates_table(meta: pd.DataFrame, xy: np.ndarray, clusters: np.ndarray) -> pd.DataFrame:
    """One row per point: its metadata, k-means cluster and projected coordinates x, y (and z in 3D)."""
    xy = np.asarray(xy)
    if xy.ndim != 2 or len(xy) != len(meta) or len(clusters) != len(meta) or xy.shape[1] not in (2, 3):
        raise ValueError(
            f"{len(meta)} points need (n, 2 or 3) coordinates and n clusters, not {xy.shape} and {len(clusters)}"
        )
    table = meta.assign(cluster=np.asarray(clusters, dtype=int))
    for i, axis in enumerate("xyz"[: xy.shape[1]]):
        table[axis] = xy[:, i]
    return table


def projector_files(e: Embedding, clusters: np.ndarray | None = None) -> dict[str, bytes]:
    """The embedding in TensorBoard Projector's format (core.analysis.projector_export), the digits' images as its
    sprite."""
    from core.analysis import projector_export

    meta = e.meta[["digit", "prediction", "correct", "speaker", "clip"]]
    if clusters is not None:
        meta = meta.assign(cluster=np.asarray(clusters, dtype=int))
    return projector_export.projector_files(e.vectors, meta, e.images, name=f"{e.encoder} embedding")


def kmeans(x: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=int(min(k, len(x))), n_init=4, random_state=seed).fit_predict(x).astype(int)


def cluster_quality(x: np.ndarray, labels: np.ndarray, k: int = 10, seed: int = 0) -> dict[str, float]:
    """How well k-means on the embedding recovers the digits (ARI, NMI) and how separated they are (silhouette)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    clusters = kmeans(x, k, seed)
    sample = min(len(x), 3000)
    sil = silhouette_score(x, labels, sample_size=sample, random_state=seed) if len(set(labels)) > 1 else float("nan")
    return {
        "ARI": float(adjusted_rand_score(labels, clusters)),
        "NMI": float(normalized_mutual_info_score(labels, clusters)),
        "silhouette": float(sil),
    }


def neighbours(x: np.ndarray, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the k nearest other points to x[index], nearest first."""
    d = np.linalg.norm(x - x[index], axis=1)
    d[index] = np.inf
    order = np.argsort(d)[: min(k, len(x) - 1)]
    return order, d[order]
