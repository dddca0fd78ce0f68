"""The Leaderboard's details without a mouse: the board's display text, overlaid curves, a clicked cell's inputs."""

from __future__ import annotations

import time

import pandas as pd
from streamlit.testing.v1 import AppTest

from core.runs.leaderboard import entries
from ui import charts, tables


def test_the_board_shows_a_dash_for_nothing_measured_and_says_when_the_seed_reported_nothing():
    board = pd.DataFrame([e.row for e in entries()])
    html = tables.styled(board).to_html()
    ours = board.index[board["entry"] == "fused"][0]  # our recipe: no seed figure, not trained in a fresh clone
    seeds = board.index[board["entry"] == "try10"][0]
    assert "None" not in html and "nan" not in html
    assert "no seed figure" in html and "–" in html
    col = board.columns.get_loc("seed F1 (final)")
    assert f'row{ours}_col{col}" class="data row{ours} col{col}" >no seed figure<' in html
    assert f'row{seeds}_col{col}" class="data row{seeds} col{col}" >99.80<' in html
    shown = tables.styled(board).data  # sorting and selection still see the numbers
    assert shown.equals(board) and shown["seed F1 (final)"].dtype.kind == "f"


def test_overlaid_curves_have_one_line_per_run_with_its_epochs():
    curves = {
        "a": [
            {"epoch": 1, "loss": 2.0, "val_fused_accuracy": 50.0},
            {"epoch": 2, "loss": 1.0, "val_fused_accuracy": 80.0},
        ],
        "b": [{"epoch": 1, "loss": 3.0}],
    }
    fig = charts.overlay(curves, "val_fused_accuracy", "fused accuracy")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].y) == [50.0, 80.0] and list(fig.data[1].y) == []


def _section(weights: str, root: str, cell):
    from pathlib import Path

    import streamlit as st

    from ui import mistakes

    st.session_state["cell_image"] = cell
    mistakes.section(Path(weights), Path(root), "image", None, True)


def test_a_clicked_cell_shows_its_images_once_the_evaluation_is_done(tiny_run, data_root):
    from core.analysis.mistakes import answers_on_test_split
    from core.training.metrics import confusion

    answers, _ = answers_on_test_split(tiny_run / "final.pt", data_root)
    a = answers["image"]
    matrix = confusion(a.truth, a.predicted)
    wrong = matrix.copy()
    wrong[range(10), range(10)] = 0
    truth, predicted = divmod(int(wrong.argmax()), 10)
    at = AppTest.from_function(
        _section, args=(str(tiny_run / "final.pt"), str(data_root), (truth, predicted)), default_timeout=300
    )
    at.run()
    deadline = time.monotonic() + 300  # a hang guard: the evaluation runs off the script thread, the page polls it
    while not any(f"{truth} read as {predicted}" in m.value for m in at.markdown) and time.monotonic() < deadline:
        assert any("test split" in c.value for c in at.caption)  # the page says it is still working
        time.sleep(1)
        at.run()
    assert not at.exception
    assert any(f"{truth} read as {predicted}" in m.value for m in at.markdown)
    assert sum("% sure" in c.value for c in at.caption) == min(12, int(matrix[truth, predicted]))
