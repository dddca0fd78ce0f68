"""Plotly figures for the pages: what the model sees, embeddings, curves, confusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.config import N_CLASSES

DIGITS = [str(d) for d in range(N_CLASSES)]
HEAD_COLOURS = {"fused": "#7c3aed", "image": "#0ea5e9", "audio": "#f97316"}
SMALL = dict(margin=dict(l=10, r=10, t=36, b=10))


def image28(img: np.ndarray) -> go.Figure:
    fig = px.imshow(img, color_continuous_scale="gray", zmin=0, zmax=1)
    fig.update_layout(title="28×28 input", height=240, coloraxis_showscale=False, **SMALL)
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return fig


def waveform(samples: np.ndarray, rate: int = 8000) -> go.Figure:
    t = np.arange(len(samples)) / rate
    step = max(1, len(samples) // 2000)
    fig = go.Figure(
        go.Scatter(x=t[::step], y=samples[::step], mode="lines", line=dict(width=1, color=HEAD_COLOURS["audio"]))
    )
    fig.update_layout(title="1 s window at 8 kHz", height=200, xaxis_title="seconds", **SMALL)
    return fig


def mfcc(features: np.ndarray) -> go.Figure:
    labels = [f"MFCC {i}" for i in range(1, 13)] + ["log energy"]
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(features).T,
            y=labels,
            x=list(range(features.shape[0])),
            colorscale="Viridis",
            colorbar=dict(thickness=10),
        )
    )
    fig.update_layout(title="39 frames × 13 features", height=240, xaxis_title="frame (25 ms hop)", **SMALL)
    return fig


def embedding_scatter(df: pd.DataFrame, colour: str, dims: int) -> go.Figure:
    df = (
        df.assign(**{colour: df[colour].astype(str)})
        if colour != "correct"
        else df.assign(correct=np.where(df["correct"], "correct", "misclassified"))
    )
    hover = {"digit": True, "prediction": True, "cluster": True, "row": True, "x": False, "y": False}
    order = {colour: sorted(df[colour].unique(), key=lambda v: (len(v), v))}
    common = dict(
        color=colour,
        hover_data=hover,
        custom_data=["row"],
        category_orders=order,
        color_discrete_sequence=px.colors.qualitative.T10 if colour != "correct" else ["#16a34a", "#dc2626"],
    )
    if dims == 3:
        fig = px.scatter_3d(df, x="x", y="y", z="z", **{**common, "hover_data": {**hover, "z": False}})
        fig.update_traces(marker=dict(size=2.5))
    else:
        fig = px.scatter(df, x="x", y="y", **common)
        fig.update_traces(marker=dict(size=5, opacity=0.8))
        fig.update_xaxes(showticklabels=False, title=None).update_yaxes(showticklabels=False, title=None)
    fig.update_layout(height=600, legend_title_text=colour, margin=dict(l=0, r=0, t=10, b=0))
    return fig


def learning_curves(history: list[dict]) -> go.Figure:
    h = pd.DataFrame(history)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=h["epoch"], y=h["loss"], name="training loss", yaxis="y2", line=dict(dash="dot", color="#64748b"))
    )
    for head, colour in HEAD_COLOURS.items():
        col = f"val_{head}_accuracy"
        if col in h:
            fig.add_trace(
                go.Scatter(
                    x=h["epoch"], y=h[col], name=f"val accuracy {head}", mode="lines+markers", line=dict(color=colour)
                )
            )
    fig.update_layout(
        height=320,
        xaxis_title="epoch",
        yaxis=dict(title="validation accuracy (%)"),
        yaxis2=dict(title="loss", overlaying="y", side="right"),
        legend=dict(orientation="h", y=-0.25),
        **SMALL,
    )
    return fig


def confusion(matrix: list[list[int]], head: str) -> go.Figure:
    """Counts per (true, predicted) cell as squares, so a click selects a cell (heatmaps report no selections)."""
    m = np.asarray(matrix)
    true, pred = np.divmod(np.arange(m.size), m.shape[1])
    counts = m.reshape(-1)
    shade = np.log1p(counts) / max(np.log1p(counts.max()), 1e-9)
    fig = go.Figure(
        go.Scatter(
            x=pred,
            y=true,
            mode="markers+text",
            text=[str(c) if c else "" for c in counts],
            textfont=dict(size=11),
            marker=dict(
                symbol="square",
                size=30,
                color=shade,
                colorscale="Blues",
                cmin=0,
                cmax=1,
                line=dict(width=1, color="#e2e8f0"),
            ),
            customdata=counts,
            hovertemplate="true %{y}, predicted %{x}: %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(title=f"Confusion, {head} head (test split)", height=440, **SMALL)
    fig.update_xaxes(
        title="predicted",
        tickmode="array",
        tickvals=list(range(N_CLASSES)),
        range=[-0.6, 9.6],
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(
        title="true",
        tickmode="array",
        tickvals=list(range(N_CLASSES)),
        range=[9.6, -0.6],
        showgrid=False,
        zeroline=False,
    )
    return fig


def overlay(curves: dict[str, list[dict]], column: str, label: str) -> go.Figure:
    """One line per run of a per-epoch column, for comparing runs."""
    fig = go.Figure()
    for name, history in curves.items():
        rows = [r for r in history if isinstance(r.get(column), (int, float))]
        fig.add_trace(
            go.Scatter(x=[r["epoch"] for r in rows], y=[r[column] for r in rows], name=name, mode="lines+markers")
        )
    fig.update_layout(height=360, xaxis_title="epoch", yaxis_title=label, legend=dict(orientation="h", y=-0.3), **SMALL)
    return fig


def reliability(bins: dict, head: str, where: str = "test split") -> go.Figure:
    """Accuracy against confidence per bin; the diagonal is perfect calibration."""
    conf = [c for c in bins["confidence"] if c is not None]
    acc = [100 * a for a in bins["accuracy"] if a is not None]
    count = [n for n in bins["count"] if n]
    fig = go.Figure(
        [
            go.Scatter(
                x=[0, 100],
                y=[0, 100],
                mode="lines",
                line=dict(dash="dot", color="#94a3b8"),
                name="perfectly calibrated",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=[100 * c for c in conf],
                y=acc,
                mode="lines+markers",
                name=f"{head} head",
                marker=dict(size=[6 + 14 * (n / max(count)) ** 0.5 for n in count], color=HEAD_COLOURS[head]),
                customdata=count,
                hovertemplate="confidence %{x:.0f}%: right %{y:.1f}% of %{customdata}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        title=f"Reliability, {head} head ({where})",
        height=320,
        xaxis=dict(title="confidence (%)", range=[0, 101]),
        yaxis=dict(title="accuracy (%)", range=[0, 101]),
        legend=dict(orientation="h", y=-0.3),
        **SMALL,
    )
    return fig


def voice_in_embedding(coords: dict, test_digits: np.ndarray, your_digits: np.ndarray, title: str) -> go.Figure:
    """Test clips as small points coloured by digit, the user's recordings as large labelled markers."""
    colours = px.colors.qualitative.T10  # the embedding scatter's digit colours
    fig = go.Figure()
    for d in range(10):
        m = test_digits == d
        fig.add_trace(
            go.Scatter(
                x=coords["test"][m, 0],
                y=coords["test"][m, 1],
                mode="markers",
                name=str(d),
                marker={"size": 5, "opacity": 0.45, "color": colours[d]},
                legendgroup=str(d),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=coords["yours"][:, 0],
            y=coords["yours"][:, 1],
            mode="markers+text",
            name="yours",
            text=[str(int(d)) for d in your_digits],
            textposition="top center",
            marker={
                "size": 13,
                "symbol": "star",
                "color": [colours[int(d)] for d in your_digits],
                "line": {"width": 1.5, "color": "black"},
            },
        )
    )
    fig.update_layout(title=title, height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
