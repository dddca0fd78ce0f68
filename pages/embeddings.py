"""Explore what the encoders learned: projections, k-means, cluster quality, with the leaderboard beside it."""
from __future__ import annotations

import streamlit as st

from core.analysis.embeddings import ENCODERS, MAX_POINTS
from core.errors import CheckpointError, DataNotFound, DigitsError
from core.runs.listing import list_runs
import ui
from ui import embed_view, tables, teach_voice

ui.page_setup()
st.title("Explore the embeddings")
st.caption("Each point is one test input, placed by what its encoder computed. Tight, separate colours mean the "
           "encoder tells the digits apart without being told.")
board, _ = tables.leaderboard()
main, side = st.columns([2.4, 1.2], gap="medium")
with side:
    tables.compact(board)
with main:
    if not tables.data_notice():
        st.stop()
    runs = ["default"] + [r.run_id for r in list_runs() if r.state == "finished"]
    c = st.columns(4)
    model = c[0].selectbox("Model", runs, format_func=lambda r: "Default weights" if r == "default" else r, key="emb_model")
    encoder = c[1].selectbox("Embedding", ENCODERS, format_func=lambda e: f"{e} encoder" if e != "fused" else "fused",
                             key="emb_encoder")
    split = c[2].selectbox("Split", ["test", "val", "train"], key="emb_split")
    n = c[3].number_input("Points", 100, MAX_POINTS, 2000, step=100, key="emb_n")
    c = st.columns(4)
    method = c[0].selectbox("Projection", ["tsne", "umap", "pca"], key="emb_method",
                            format_func={"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}.get)
    params = {"perplexity": 30.0, "neighbors": 15, "min_dist": 0.1}
    if method == "tsne":
        params["perplexity"] = c[1].slider("Perplexity", 5.0, 100.0, 30.0, 5.0, key="emb_perplexity")
    elif method == "umap":
        params["neighbors"] = c[1].slider("Neighbours", 2, 100, 15, key="emb_neighbors")
        params["min_dist"] = c[2].slider("Min distance", 0.0, 0.99, 0.1, 0.01, key="emb_min_dist")
    dims = c[3].radio("View", [2, 3], format_func=lambda d: f"{d}D", horizontal=True, key="emb_dims")
    c = st.columns([1, 3])
    k = c[0].number_input("k-means clusters (k)", 2, 30, 10, key="emb_k")
    colour = c[1].radio("Colour by", ["digit", "cluster", "correct"], horizontal=True, key="emb_colour",
                        format_func={"digit": "true digit", "cluster": "k-means cluster", "correct": "correct / misclassified"}.get)
    try:
        weights = embed_view.weights_for(model)
        embed_view.show(weights, encoder, split, int(n), method, int(dims), params, int(k), colour)
    except DataNotFound as exc:
        st.warning(str(exc))
    except (CheckpointError, DigitsError, ValueError) as exc:
        st.error(f"Cannot compute this embedding: {exc}")
    teach_voice.explore_section()
