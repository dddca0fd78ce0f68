"""AppTest of every page, with and without the datasets, asserting what each page shows."""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.io import write_json
from core.predict import Predictor
from core.trials import TRIALS
from tests.conftest import speech_like

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["pages/draw_and_speak.py", "pages/embeddings.py", "pages/leaderboard.py"]


@pytest.fixture
def env(monkeypatch, tmp_path, tiny_weights):
    """Point the app at the tiny weights and an empty runs folder; returns a function choosing the data dir."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(runs))
    monkeypatch.setenv("DIGITS_WEIGHTS", str(tiny_weights))

    def use(data_dir: Path | None):
        empty = tmp_path / "no-data"
        empty.mkdir(exist_ok=True)
        monkeypatch.setenv("DIGITS_DATA_DIR", str(data_dir or empty))
        return runs

    return use


def app(page: str = PAGES[0], **state) -> AppTest:
    """The app after a run of page. Always switched to explicitly: AppTest's first run has no page URL, and widget
    clicks on that run's default page do not reach the script (its page id changes between runs)."""
    at = AppTest.from_file(APP, default_timeout=240)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def drawn_digit() -> np.ndarray:
    """A white '1'-like stroke on black, as the canvas would send it (RGBA)."""
    img = np.zeros((280, 280, 4), np.uint8)
    img[..., 3] = 255
    img[60:220, 130:150, :3] = 255
    return img


def frame(at, column: str):
    """The first dataframe on the page that has this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("with_data", [False, True])
def test_every_page_renders(env, data_root, with_data):
    env(data_root if with_data else None)
    at = app()
    assert at.title[0].value == "Draw a digit, say it"
    assert any("Draw a digit or record one" in i.value for i in at.info)
    for page in PAGES[1:]:
        at.switch_page(page)
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Leaderboard"


def test_sidebar_names_the_model_loaded_in_the_background_after_a_page_that_never_asks_for_it(env, monkeypatch):
    """The load is held back while the first page runs; app.py releases it even when the page (the leaderboard)
    never asks for the model, so the sidebar soon names it."""
    from ui import state

    env(None)
    monkeypatch.setattr(state, "_page_sent", threading.Event())  # as on a fresh server
    monkeypatch.setattr(state, "_preloads", {})
    monkeypatch.setattr(state, "HOLD_BACK_S", 3600)  # so only the release lets the load start
    at = AppTest.from_file(APP, default_timeout=240)
    at.switch_page(PAGES[2])
    try:
        at.run()
        assert at.title[0].value == "Leaderboard"
        assert any("Loading the model in the background" in c.value for c in at.sidebar.caption)
        [load] = state._preloads.values()
        load.result(timeout=300)  # a hang guard, not a speed limit: without the release this waits an hour
        at.run()
        assert any(c.value.startswith("Loaded: ") for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    finally:
        state.release_preload()


def test_missing_weights_say_how_to_train(env, monkeypatch, tmp_path):
    env(None)
    monkeypatch.setenv("DIGITS_WEIGHTS", str(tmp_path / "absent.pt"))
    at = app()
    assert any("No model weights" in e.value and "core.train" in e.value for e in at.error)
    assert not at.metric


@pytest.mark.parametrize("given", ["both", "image", "audio"])
def test_draw_page_shows_each_head_like_the_predictor(env, tiny_weights, given):
    env(None)
    image = drawn_digit() if given != "audio" else None
    audio = (speech_like(0.6, seed=3), 8000) if given != "image" else None
    at = app(example={"image": image, "audio": audio})
    expected = Predictor.load(tiny_weights).predict(image=image, audio=audio)
    shown = metrics(at)
    heads = {"both": ["Fused", "Image", "Audio"], "image": ["Image"], "audio": ["Audio"]}[given]
    assert set(shown) == {f"{h} prediction" for h in heads}
    for h in heads:
        assert shown[f"{h} prediction"] == str(expected.digits[h.lower()])
    assert len(at.get("plotly_chart")) == len(heads) + (1 if image is not None else 0) + (2 if audio is not None else 0)
    disagree = [w.value for w in at.warning if "disagree" in w.value]
    assert bool(disagree) == (given == "both" and expected.disagreement)


def test_draw_page_explains_unreadable_input(env):
    env(None)
    at = app(example={"image": np.zeros((280, 280, 4), np.uint8), "audio": None})
    assert any("Cannot read this input" in e.value and "blank" in e.value for e in at.error)
    assert not at.metric


def test_example_button_needs_the_dataset(env, data_root, tiny_weights):
    env(None)
    assert not [b for b in app().button if "example" in b.label]
    env(data_root)
    at = app()
    next(b for b in at.button if "example" in b.label).click().run()
    ex = at.session_state["example"]
    expected = Predictor.load(tiny_weights).predict(image=ex["image"], audio=ex["audio"]).digits
    assert metrics(at) == {f"{h.capitalize()} prediction": str(expected[h]) for h in ("fused", "image", "audio")}


def test_local_microphone_option_explains_itself(env):
    env(None)
    at = app()
    expander = next(e for e in at.expander if "this computer" in e.label)
    assert expander.info or expander.button  # a reason (server, no PortAudio, no device) or the record button


def test_embeddings_page_without_data_offers_the_download(env):
    env(None)
    at = app(PAGES[1])
    assert any("needs the MNIST and FSDD datasets" in w.value for w in at.warning)
    assert any(b.label == "Download the datasets" for b in at.button)
    assert any("DIGITS_DATA_DIR" in m.value for m in at.markdown)
    board = frame(at, "entry")
    assert set(TRIALS) <= set(board["entry"])  # the compact leaderboard stands beside it anyway


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_page_projects_and_measures(env, data_root, method):
    env(data_root)
    at = app(PAGES[1], emb_n=300, emb_method=method, emb_split="test")
    for _ in range(240):  # t-SNE waits in the projection queue; the page polls it (a hang guard, not a time limit)
        if at.get("plotly_chart"):
            break
        time.sleep(0.5)
        at.run()
    assert not at.error and len(at.get("plotly_chart")) == 1
    quality = frame(at, "ARI")
    assert list(quality.index) == ["image", "audio", "fused"]
    assert quality["ARI"].between(-1, 1).all() and quality["NMI"].between(0, 1).all()
    assert quality.loc["image", "points"] == 300
    neighbours = frame(at, "distance")
    assert len(neighbours) == 8 and (neighbours["distance"].diff().dropna() >= 0).all()


def finished_run(runs: Path, tiny_run: Path, name: str = "20260101-000000-fused-aaaaaa") -> Path:
    dest = runs / name
    shutil.copytree(tiny_run, dest)
    return dest


def test_leaderboard_rows_and_table2(env, data_root, tiny_run):
    runs = env(data_root)
    run = finished_run(runs, tiny_run)
    at = app(PAGES[2])
    board = frame(at, "entry")
    assert set(TRIALS) | {run.name} <= set(board["entry"])
    row = board.set_index("entry").loc[run.name]
    import json

    summary = json.loads((run / "summary.json").read_text())
    assert row["status"] == "finished" and row["F1 fused"] == pytest.approx(summary["final"]["fused"]["macro_f1"], abs=0.01)
    assert board.set_index("entry").loc["try10", "seed F1 (final)"] == 99.8
    table2 = frame(at, "accuracy (%)")
    assert len(table2) == 8 and table2["accuracy (%)"].max() == 99.76
    assert any("image-only" in c.value for c in at.caption)


def test_training_form_refuses_a_second_training(env, data_root):
    runs = env(data_root)
    busy = runs / "20260101-000000-fused-bbbbbb"
    busy.mkdir()
    # A stand-in for a live training process: core.runs looks for `-m core.train --run-id <run>` on its command line.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "core.train", "--run-id", busy.name])
    try:
        write_json(busy / "status.json", {"state": "running", "pid": proc.pid, "started": time.time(), "trial": "fused"})
        write_json(busy / "config.json", {"name": "fused", "train": {"epochs": 4}})
        at = app()
        assert any("Training fused: epoch 0 of 4" in p.proto.text for p in at.get("progress"))
        at.button(key="start_training").click().run()
        assert any("already running" in w.value for w in at.sidebar.warning)
        assert [p.name for p in runs.iterdir() if p.is_dir()] == [busy.name]  # nothing new was started
    finally:
        proc.kill()
        proc.wait()


def test_training_form_needs_the_dataset(env):
    runs = env(None)
    at = app()
    at.button(key="start_training").click().run()
    assert any("needs the datasets" in e.value for e in at.sidebar.error)
    assert not list(runs.iterdir())


def test_active_model_switch_and_corrupt_weights_fall_back(env, tiny_run):
    runs = env(None)
    good = finished_run(runs, tiny_run, "20260101-000000-fused-cccccc")
    bad = finished_run(runs, tiny_run, "20260101-000001-fused-dddddd")
    (bad / "best.pt").write_bytes(b"not a checkpoint")
    at = app(example={"image": drawn_digit(), "audio": None})
    box = at.sidebar.selectbox(key="active_run")
    assert set(box.options) >= {good.name, bad.name} or len(box.options) == 3
    box.set_value(good.name).run()
    assert not at.error and "Image prediction" in metrics(at)
    at.sidebar.selectbox(key="active_run").set_value(bad.name).run()
    assert any("unusable" in e.value and "default weights" in e.value for e in at.error)
    assert "Image prediction" in metrics(at)  # still served, by the default weights
