"""Explore what the encoders learned: projections, k-means, cluster quality, with the leaderboard beside it."""

from __future__ import annotations

import streamlit as st

import ui
from core.analysis.embeddings import ENCODERS, MAX_POINTS
from core.errors import CheckpointError, DataNotFound, DigitsError
from core.runs.listing import list_runs
from ui import embed_view, tables, teach_voice

ui.page_setup()
st.title("Explore the embeddings")
st.caption(
    "Each point is one test input, placed by what its encoder computed. Tight, separate colours mean the "
    "encoder tells the digits apart without being told."
)
board, _ = tables.leaderboard()
main, side = st.columns([2.4, 1.2], gap="medium")
with side:
    tables.compact(board)
with main:
    if not tables.data_notice():
        st.stop()
    runs = ["default"] + [r.run_id for r in list_runs() if r.state == "finished"]
    # One form, so that a new projection starts on Apply only: each slider move used to start a t-SNE.
    with st.form("emb_settings", border=False):
        c = st.columns(4)
        model = c[0].selectbox(
            "Model", runs, format_func=lambda r: "Default weights" if r == "default" else r, key="emb_model"
        )
        encoder = c[1].selectbox(
            "Embedding", ENCODERS, key="emb_encoder", format_func=lambda e: f"{e} encoder" if e != "fused" else "fused"
        )
        split = c[2].selectbox("Split", ["test", "val", "train"], key="emb_split")
        n = c[3].number_input("Points", 100, MAX_POINTS, 2000, step=100, key="emb_n")
        c = st.columns(4)
        method = c[0].selectbox(
            "Projection",
            ["tsne", "umap", "pca"],
            key="emb_method",
            format_func={"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}.get,
        )
        params = {
            "perplexity": c[1].slider("Perplexity (t-SNE)", 5.0, 100.0, 30.0, 5.0, key="emb_perplexity"),
            "neighbors": c[2].slider("Neighbours (UMAP)", 2, 100, 15, key="emb_neighbors"),
            "min_dist": c[3].slider("Min distance (UMAP)", 0.0, 0.99, 0.1, 0.01, key="emb_min_dist"),
        }
        c = st.columns([1, 1, 2])
        dims = c[0].radio("View", [2, 3], format_func=lambda d: f"{d}D", horizontal=True, key="emb_dims")
        k = c[1].number_input("k-means clusters (k)", 2, 30, 10, key="emb_k")
        c[2].form_submit_button(
            "Apply",
            type="primary",
            help="Compute the projection with these settings; t-SNE "
            "and UMAP show their progress and a first picture at once.",
        )
    colour = st.radio(
        "Colour by",
        ["digit", "cluster", "correct"],
        horizontal=True,
        key="emb_colour",
        format_func={"digit": "true digit", "cluster": "k-means cluster", "correct": "correct / misclassified"}.get,
    )
    try:
        weights = embed_view.weights_for(model)
        embed_view.show(weights, encoder, split, int(n), method, int(dims), params, int(k), colour)
    except DataNotFound as exc:
        st.warning(str(exc))
    except (CheckpointError, DigitsError, ValueError) as exc:
        st.error(f"Cannot compute this embedding: {exc}")
    teach_voice.explore_section()
