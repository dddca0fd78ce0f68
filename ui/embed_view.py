"""Cached embeddings, projections through the shared queue (PCA at once, then t-SNE's layouts as they improve), the
Explore page's plot with its selected point, and the downloads (CSV, TensorBoard Projector)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import embeddings as E
from core.analysis import projections as P
from core.analysis import projector_export
from core.runs.store import weights_of
from ui import charts, projection_queue, state


def weights_for(choice: str) -> tuple[str, float]:
    path = state.default_weights() if choice == "default" else weights_of(choice)
    if not Path(path).is_file():
        raise FileNotFoundError(state.NO_WEIGHTS.format(path=path))
    return str(path), Path(path).stat().st_mtime


POLL_S = 1.0
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embeddings")  # one pass of the encoders at a time


def _compute(weights: str, root: str, split: str, n: int) -> dict[str, E.Embedding]:
    """Every embedding the model has (image, audio, fused) of up to n points of split: the plot and the quality
    table read them, and one pass over the data serves both."""
    model, _, data = E.load_split(weights, root, split)
    encoders = (*model.modalities, *(("fused",) if len(model.modalities) == 2 else ()))
    return {enc: E.compute(model, data, enc, n) for enc in encoders}


@st.cache_resource(max_entries=4, show_spinner=False)
def _job(weights: str, mtime: float, root: str, split: str, n: int) -> Future:  # mtime: a rewritten file, anew
    return _POOL.submit(_compute, weights, root, split, n)


def embeddings(weights: str, mtime: float, root: str, split: str, n: int) -> dict[str, E.Embedding] | None:
    """The split's embeddings once the background pass is done, None while it runs; its error, raised here."""
    job = _job(weights, mtime, root, split, n)
    if not job.done():
        return None
    if job.exception() is not None:
        _job.clear()  # so the next run tries again
        raise job.exception()
    return job.result()


def embedding(weights: str, mtime: float, root: str, split: str, encoder: str, n: int) -> E.Embedding:
    """One encoder's embedding from a finished pass (show() waits for it first)."""
    found = _job(weights, mtime, root, split, n).result()
    if encoder not in found:
        raise ValueError(f"this model has no {encoder} embedding (it has {', '.join(found)})")
    return found[encoder]


def _waiting(job: Future) -> None:
    if job.done():
        st.rerun()  # the whole page draws the plot
    st.caption(":material/hourglass_top: Running the encoders over the split in the background…")


@st.cache_data(max_entries=48, show_spinner=False)
def pca(weights: str, mtime: float, root: str, split: str, encoder: str, n: int, dims: int) -> np.ndarray:
    """PCA takes milliseconds, so it skips the queue that t-SNE and UMAP wait in."""
    return E.project(embedding(weights, mtime, root, split, encoder, n).vectors, "pca", dims)


@st.cache_data(max_entries=48, show_spinner=False)
def clusters(weights: str, mtime: float, root: str, split: str, encoder: str, n: int, k: int) -> np.ndarray:
    return E.kmeans(embedding(weights, mtime, root, split, encoder, n).vectors, k)


@st.cache_data(max_entries=24, show_spinner="Measuring cluster quality…")
def quality(weights: str, mtime: float, root: str, split: str, n: int, k: int) -> pd.DataFrame:
    rows = {}
    for enc, e in _job(weights, mtime, root, split, n).result().items():
        rows[enc] = {**E.cluster_quality(e.vectors, e.meta["digit"].to_numpy(), k), "points": len(e.meta)}
    return pd.DataFrame(rows).T


def show(
    weights: tuple[str, float],
    encoder: str,
    split: str,
    n: int,
    method: str,
    dims: int,
    params: dict,
    k: int,
    colour: str,
) -> None:
    root = str(state.data_root())
    if embeddings(*weights, root, split, n) is None:  # the encoders' pass runs off the script thread
        st.fragment(_waiting, run_every=POLL_S)(_job(*weights, root, split, n))
        return
    emb = embedding(*weights, root, split, encoder, n)
    groups = clusters(*weights, root, split, encoder, n, k)
    shown = f"PCA in {dims}D of {len(emb.meta):,} {encoder} embeddings ({split} split)"
    if method == "pca":
        xy = pca(*weights, root, split, encoder, n, dims)
    else:
        request = P.Request(
            (*weights, root, split, encoder, n),
            method,
            dims,
            params["perplexity"],
            params["neighbors"],
            params["min_dist"],
        )
        name = request.describe().split(" ")[0]

        def preview(layout: np.ndarray | None) -> None:
            """PCA until the queue publishes a layout (t-SNE does every few iterations), then the latest one."""
            if layout is None:
                st.caption(f"PCA of the same points, drawn at once; the {name} replaces it when it is done.")
            # The page polls every second and a new layout comes every few: build each figure once per visitor.
            key = (request, colour, k, None if layout is None else layout[:64].tobytes())
            kept = st.session_state.get("emb_preview")
            if kept is None or kept[0] != key:
                xy = layout if layout is not None else pca(*weights, root, split, encoder, n, dims)
                kept = st.session_state["emb_preview"] = (key, figure(frame(emb, xy, groups), colour, dims))
            st.plotly_chart(kept[1], key="scatter_preview")

        xy = projection_queue.result_or_place(request, emb.vectors, _describe, preview)
        shown = _describe(request, len(emb.meta))
    if xy is not None:
        st.caption(shown)
        _plot(split, encoder, colour, emb, groups, xy, root)
    st.subheader("Cluster quality per embedding")
    q = quality(*weights, root, split, n, k)
    st.dataframe(q.style.format({"ARI": "{:.3f}", "NMI": "{:.3f}", "silhouette": "{:.3f}", "points": "{:.0f}"}))
    st.caption(
        f"k-means with k={k} on the raw embedding vectors. ARI and NMI: agreement of the clusters with the true "
        "digits (1 = identical). Silhouette: how far apart the true digits sit (-1 to 1). The seed said the "
        "image embedding separates digits and the audio one mixes them; this measures it."
    )


def _describe(request: P.Request, points: int) -> str:
    _, _, _, split, encoder, _ = request.source
    return f"{request.describe()} of {points:,} {encoder} embeddings ({split} split)"


def frame(emb: E.Embedding, xy: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """The plotted table: a row per point (metadata, cluster, x, y, z); callers may append rows for extra points."""
    return E.coordinates_table(emb.meta, xy, groups).assign(row=np.arange(len(emb.meta)))


def figure(df: pd.DataFrame, colour: str, dims: int):
    """The scatter of a frame() table, coloured by one of its columns."""
    return charts.embedding_scatter(df, colour, dims)


def _plot(
    split: str, encoder: str, colour: str, emb: E.Embedding, groups: np.ndarray, xy: np.ndarray, root: str
) -> None:
    df = frame(emb, xy, groups)
    dims = xy.shape[1]
    # Every rerun (a click on a point, a revisit) would build the 10,000-point figure again: once per plot instead.
    key = (split, encoder, colour, hash(xy.tobytes()), hash(groups.tobytes()))
    kept = st.session_state.get("emb_figure")
    if kept is None or kept[0] != key:
        kept = st.session_state["emb_figure"] = (key, figure(df, colour, dims))
    event = st.plotly_chart(kept[1], key=f"scatter_{dims}", on_select="rerun", selection_mode="points")
    _downloads(split, encoder, emb, groups, df)
    picked = [p.get("customdata", [None])[0] for p in (event.selection.points if event else [])]
    key = f"emb_point_{split}_{encoder}_{len(df)}"
    if picked and picked[0] is not None and picked != st.session_state.get("emb_last_pick"):
        st.session_state[key] = int(picked[0])  # a new click wins; typing a number afterwards still works
    st.session_state.emb_last_pick = picked
    _selected(df, emb, root, key)


def _downloads(split: str, encoder: str, emb: E.Embedding, groups: np.ndarray, df: pd.DataFrame) -> None:
    """The plotted coordinates as CSV, and the raw embedding for TensorBoard's Projector (built when clicked, in
    Streamlit's download thread: from these arrays, with no Streamlit call)."""
    cols = st.columns(2)
    stem = f"{encoder}_{split}_{len(df)}"
    cols[0].download_button(
        "Download coordinates (CSV)",
        lambda: df.drop(columns="row").to_csv(index=False).encode(),  # built when clicked, not on every run
        file_name=f"{stem}_coordinates.csv",
        mime="text/csv",
        on_click="ignore",
        key="emb_csv",
        help="One row per point: digit, prediction, speaker, clip, k-means cluster and the projected x, y (z).",
    )
    cols[1].download_button(
        "Export for TensorBoard Projector (zip)",
        lambda: projector_export.projector_zip(E.projector_files(emb, groups)),
        file_name=f"{stem}_projector.zip",
        mime="application/zip",
        on_click="ignore",
        key="emb_projector",
        help="tensors.tsv, metadata.tsv, projector_config.pbtxt and, for "
        "image and fused embeddings, a sprite of the digits: load them at "
        "projector.tensorflow.org, or put them in a TensorBoard log directory.",
    )


def _selected(df: pd.DataFrame, emb: E.Embedding, root: str, key: str) -> None:
    cols = st.columns([1, 1, 3])
    row = cols[0].number_input("Selected point", 0, len(df) - 1, key=key, help="Click a point (2D) or type its number.")
    p = df.iloc[int(row)]
    if emb.images is not None:
        cols[0].image(emb.images[int(row)], width=96)
    cols[1].markdown(
        f"**digit {p['digit']}**  \npredicted **{p['prediction']}**  \ncluster {p['cluster']}  \n"
        f"{p['speaker']}: `{p['clip']}`"
    )
    wav = Path(root) / "fsdd" / "recordings" / p["clip"]
    if wav.is_file():
        cols[1].audio(str(wav))
    idx, dist = E.neighbours(emb.vectors, int(row), 8)
    with cols[2]:
        st.markdown("**Nearest neighbours in embedding space**")
        if emb.images is not None:
            st.image([emb.images[i] for i in idx], width=44, caption=[f"{df.digit[i]}→{df.prediction[i]}" for i in idx])
        st.dataframe(
            df.iloc[idx][["row", "digit", "prediction", "cluster", "speaker"]].assign(distance=dist.round(3)),
            hide_index=True,
            height=180,
        )
