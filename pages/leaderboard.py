"""Every trial and run: the seed's reported F1 beside what we measured, with curves and confusion per row."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from core.data import status as datastatus
from core.runs.leaderboard import LOSO_MEAN, LOSO_WORST, SEED_TABLE2
from ui import charts, mistakes, state, tables

ui.page_setup()
st.title("Leaderboard")
st.caption(
    "One row per seed trial (try1–try13), per our own entries, per leave-one-speaker-out result and per training "
    "run. Click a column header to sort; select a row to see its learning curves and confusion matrix (click a "
    "cell for the test inputs behind it), or several rows to overlay their learning curves."
)
board, rows = tables.leaderboard()
first = [
    "entry",
    "status",
    "seed F1 (best epoch)",
    "seed F1 (final)",
    "F1 fused (best epoch)",
    "F1 fused",
    "F1 image",
    "F1 audio",
    "acc fused",
    "acc image",
    "acc audio",
    LOSO_MEAN,
    LOSO_WORST,
    "train time (s)",
    "epochs",
]
order = [c for c in first if c in board] + [c for c in board if c not in first]
event = st.dataframe(
    tables.styled(board, {"lr": "{:.0e}", "train time (s)": "{:.0f}"}),
    hide_index=True,
    column_order=order,
    height=330,
    on_select="rerun",
    selection_mode="multi-row",
    key="board",
    column_config={"description": st.column_config.TextColumn("description", width="medium")},
)
picked = event.selection.rows if event else []
if len(picked) > 1:
    chosen = [rows[i] for i in picked]
    curves = {e.row["entry"]: e.history for e in chosen if e.history}
    st.subheader(f"{len(chosen)} entries side by side")
    columns = sorted({k for h in curves.values() for r in h for k in r if k.startswith("val_")} | {"loss"})
    if curves:
        column = st.selectbox(
            "Per epoch",
            columns,
            index=columns.index("val_fused_accuracy") if "val_fused_accuracy" in columns else 0,
            key="overlay_column",
            format_func=lambda c: (
                c.removeprefix("val_").replace("_", " ") + (" (validation)" if c != "loss" else " (training)")
            ),
        )
        st.plotly_chart(charts.overlay(curves, column, column.removeprefix("val_").replace("_", " ")), key="overlay")
    missing = [e.row["entry"] for e in chosen if not e.history]
    if missing:
        st.caption(
            "No learning curves for " + ", ".join(missing) + " (not trained here, or only reported by the seed)."
        )
elif picked:
    entry = rows[picked[0]]
    st.subheader(f"{entry.row['entry']} · {entry.row['status']}")
    if entry.run_id and entry.row["status"] == "finished":
        st.button(
            "Make this the active model",
            key="make_active",
            on_click=st.session_state.__setitem__,
            args=("active_run", entry.run_id),
        )
    left, right = st.columns(2)
    with left:
        if entry.history:
            st.plotly_chart(charts.learning_curves(entry.history), key="curves")
        else:
            st.info(
                "No learning curves: this entry has not been trained here (only the seed's reported numbers)."
                if entry.row.get("kind") != "shipped"
                else "The shipped weights keep their test figures, not "
                "their learning curves (weights/README.md says how they were trained)."
            )
    with right:
        heads = [
            h
            for h in ("fused", "image", "audio")
            if h in entry.confusion or h in entry.reliability or (entry.weights is not None and f"F1 {h}" in entry.row)
        ]
        head = st.radio("Head", heads, horizontal=True, key="detail_head") if len(heads) > 1 else (heads or [None])[0]
        if entry.per_speaker:
            st.dataframe(
                pd.DataFrame(
                    {
                        "held-out speaker": list(entry.per_speaker),
                        "audio accuracy (%)": list(entry.per_speaker.values()),
                    }
                ),
                hide_index=True,
                key="per_speaker",
            )
            st.caption("Each speaker's clips tested on an audio encoder trained on the other speakers only.")
        elif head is not None:
            mistakes.section(
                entry.weights,
                state.data_root(),
                head,
                entry.confusion.get(head),
                not datastatus.missing(state.data_root()),
            )
        else:
            st.info("No confusion matrix yet: it is measured on the test split when a training finishes.")
        if head in entry.reliability:
            where = "held-out speakers" if entry.per_speaker else "test split"
            st.plotly_chart(charts.reliability(entry.reliability[head], head, where), key="reliability")
            st.caption(
                "How often the head is right at each confidence (dot size: how many answers). On the diagonal, "
                "a confidence of 80 % means right 8 times in 10."
                + (" Held-out speakers, after calibration." if entry.per_speaker else "")
            )
else:
    st.info("Select a row to see its learning curves and confusion matrix, or several rows to overlay their curves.")

st.subheader("Trials over seeds")
tables.seed_spread()

st.subheader("The seed's Table 2, as reported")
st.dataframe(pd.DataFrame(SEED_TABLE2, columns=["model", "accuracy (%)"]), hide_index=True, key="table2")
st.caption(
    "What it compares: the seed's fused model sees each MNIST digit *and* a spoken FSDD clip of the same digit; "
    "the others are published image-only MNIST classifiers. The audio gives the fused model a second, "
    "independent clue, so the rows are not a like-for-like comparison of architectures. Numbers are copied "
    "from the seed report, not measured here; our own measured accuracies are in the table above."
)
