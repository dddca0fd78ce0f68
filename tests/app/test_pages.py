"""AppTest of every page, with and without the datasets, asserting what each page shows."""

from __future__ import annotations

import importlib.abc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.analysis import embeddings as E
from core.io import write_json
from core.model import checkpoint
from core.predict import Predictor
from core.trials import TRIALS
from tests.helpers import REPO, app_after_run, speech_like

APP = str(REPO / "app.py")
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
    """The app after a run of page (the draw page unless named), with state set first."""
    return app_after_run(page, **state)


def drawn_digit() -> np.ndarray:
    """A white '1'-like stroke on black, as the canvas would send it (RGBA)."""
    img = np.zeros((280, 280, 4), np.uint8)
    img[..., 3] = 255
    img[60:220, 130:150, :3] = 255
    return img


def frame(at, column: str):
    """The first dataframe on the page that has this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def bars(at, head: str) -> list[float]:
    """The probabilities a card's bar chart shows (its bars carry them as data-probability)."""
    chart = next(h.proto.body for h in at.get("html") if f'aria-label="{head} probabilities"' in h.proto.body)
    return [float(v) for v in re.findall(r'data-probability="([0-9.]+)"', chart)]


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
    for h in heads:  # each card's bars are the predictor's probabilities, the top one in the head's colour
        assert bars(at, h.lower()) == pytest.approx(expected.probs[h.lower()], abs=1e-6)
    assert not at.get("plotly_chart")  # "What the model sees" is built only once its expander is opened
    at.session_state["model_sees"] = True
    at.run()
    assert len(at.get("plotly_chart")) == (1 if image is not None else 0) + (2 if audio is not None else 0)
    disagree = [w.value for w in at.warning if "disagree" in w.value]
    assert bool(disagree) == (given == "both" and expected.disagreement)
    if disagree:  # the note says which input the fused head followed
        d = expected.digits
        side = "image" if d["fused"] == d["image"] else "audio" if d["fused"] == d["audio"] else None
        assert (f"went with the {side}: {d['fused']}." if side else f"chose {d['fused']}, neither") in disagree[0]
    elif given == "both":
        assert [s.value for s in at.success] == [f"Image and audio agree on {expected.digits['fused']}."]


def test_clear_drawing_also_drops_an_examples_digit(env, tiny_weights):
    env(None)
    image, audio = drawn_digit(), (speech_like(0.6, seed=3), 8000)
    at = app(example={"image": image, "audio": audio})
    assert set(metrics(at)) == {"Fused prediction", "Image prediction", "Audio prediction"}
    next(b for b in at.button if b.label == "Clear drawing").click().run()
    expected = Predictor.load(tiny_weights).predict(audio=audio).digits["audio"]
    assert metrics(at) == {"Audio prediction": str(expected)}  # the voice stays; no digit comes back


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


class NoPortAudio(importlib.abc.MetaPathFinder):
    """Imports sounddevice the way a machine without libportaudio2 does: OSError."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def client_ip(monkeypatch, ip: str | None) -> None:
    """Streamlit gives None for a browser on this computer (localhost); AppTest's own value is a mock, never None."""
    import streamlit as st

    monkeypatch.setattr(type(st.context), "ip_address", property(lambda self: ip))


def no_input_device(monkeypatch):
    import sounddevice

    client_ip(monkeypatch, None)

    monkeypatch.setattr(
        sounddevice, "query_devices", lambda: [{"name": "speakers", "max_input_channels": 0, "max_output_channels": 2}]
    )


def no_audio_system(monkeypatch):
    import sounddevice

    client_ip(monkeypatch, None)

    def refuse():
        raise sounddevice.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sounddevice, "query_devices", refuse)


def no_portaudio(monkeypatch):
    client_ip(monkeypatch, None)
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])


def remote_visitor(monkeypatch):
    client_ip(monkeypatch, "203.0.113.9")


def visitor_behind_a_proxy(monkeypatch):
    import streamlit as st

    client_ip(monkeypatch, None)  # the proxy runs on this computer; the visitor does not
    monkeypatch.setattr(type(st.context), "headers", property(lambda self: {"X-Forwarded-For": "203.0.113.9"}))


REMOTE = (
    "The app runs on a server, not on your computer: its microphone is not yours. "
    "Use the browser recorder above instead."
)


@pytest.mark.parametrize(
    "case, message",
    [
        (remote_visitor, REMOTE),
        (visitor_behind_a_proxy, REMOTE),
        (
            no_portaudio,
            "sounddevice cannot load PortAudio on this computer (PortAudio library not found); install libportaudio2.",
        ),
        (no_audio_system, "PortAudio found no audio system (Error querying device -1)."),
        (no_input_device, "This computer has no microphone (no audio input device)."),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_local_microphone_option_says_why_it_cannot_record(env, monkeypatch, case, message):
    env(None)
    case(monkeypatch)
    at = app()
    expander = next(e for e in at.expander if "this computer" in e.label)
    assert [i.value.strip() for i in expander.info] == [message]
    assert not expander.button


def test_local_microphone_records_and_predicts(env, monkeypatch, tiny_weights):
    import sounddevice

    env(None)
    client_ip(monkeypatch, None)
    voice = np.zeros((24000, 1), np.float32)  # 1.5 s at 16 kHz, the word in the middle
    voice[4000:14000, 0] = speech_like(0.625, rate=16000, seed=5)
    asked = []
    monkeypatch.setattr(sounddevice, "query_devices", lambda: [{"name": "mic", "max_input_channels": 1}])
    monkeypatch.setattr(
        sounddevice,
        "rec",
        lambda frames, samplerate, channels, dtype: asked.append((frames, samplerate, channels, dtype)) or voice,
    )
    monkeypatch.setattr(sounddevice, "wait", lambda: None)
    at = app()
    expander = next(e for e in at.expander if "this computer" in e.label)
    assert not expander.info
    expander.button[0].click().run()
    assert asked == [(24000, 16000, 1, "float32")]
    expected = Predictor.load(tiny_weights).predict(audio=(voice[:, 0], 16000))
    assert metrics(at) == {"Audio prediction": str(expected.digits["audio"])}


def test_embeddings_page_without_data_offers_the_download(env):
    env(None)
    at = app(PAGES[1])
    assert any("needs the MNIST and FSDD datasets" in w.value for w in at.warning)
    assert any(b.label == "Download the datasets" for b in at.button)
    assert any("DIGITS_DATA_DIR" in m.value for m in at.markdown)
    board = frame(at, "entry")
    assert set(TRIALS) <= set(board["entry"])  # the compact leaderboard stands beside it anyway


@pytest.fixture(scope="module")
def tiny_test_split(tiny_weights, data_root):
    return E.load_split(tiny_weights, data_root, "test")


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_page_projects_and_measures(env, data_root, tiny_test_split, method):
    env(data_root)
    at = app(PAGES[1], emb_n=300, emb_method=method, emb_split="test")
    for _ in range(240):  # t-SNE waits in the projection queue; the page polls it (a hang guard, not a time limit)
        if [p.key for p in at.get("plotly_chart")] == ["scatter_2"]:  # the result, not the preview while it runs
            break
        time.sleep(0.5)
        at.run()
    assert not at.error and [p.key for p in at.get("plotly_chart")] == ["scatter_2"]
    quality = frame(at, "ARI")
    assert list(quality.index) == ["image", "audio", "fused"]
    model, _, data = tiny_test_split
    for encoder in quality.index:  # what core measures on the same 300 points
        points = E.compute(model, data, encoder, n=300)
        expected = E.cluster_quality(points.vectors, points.meta["digit"].to_numpy(), k=10)
        assert quality.loc[encoder, "points"] == len(points.meta) == 300
        for measure, value in expected.items():
            # The page's float32 embeddings come from another thread count than these: the last digits differ.
            assert quality.loc[encoder, measure] == pytest.approx(value, rel=1e-5, abs=1e-6), (encoder, measure)
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
    assert row["status"] == "finished" and row["F1 fused"] == pytest.approx(
        summary["final"]["fused"]["macro_f1"], abs=0.01
    )
    assert board.set_index("entry").loc["try10", "seed F1 (final)"] == 99.8
    table2 = frame(at, "accuracy (%)")
    assert len(table2) == 8 and table2["accuracy (%)"].max() == 99.76
    assert any("image-only" in c.value for c in at.caption)


def test_training_form_refuses_a_second_training(env, data_root):
    runs = env(data_root)
    busy = runs / "20260101-000000-fused-bbbbbb"
    busy.mkdir()
    # A stand-in for a live training process: core.runs looks for `-m core.train --run-id <run>` on its command line.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "-m", "core.train", "--run-id", busy.name]
    )
    try:
        write_json(
            busy / "status.json", {"state": "running", "pid": proc.pid, "started": time.time(), "trial": "fused"}
        )
        write_json(busy / "config.json", {"name": "fused", "train": {"epochs": 4}})
        at = app()
        assert any("Training fused: epoch 0 of 4" in p.proto.text for p in at.get("progress"))
        at.button(key="start_training").click().run()
        assert any("already running" in w.value for w in at.sidebar.warning)
        assert [p.name for p in runs.iterdir() if p.is_dir()] == [busy.name]  # nothing new was started
    finally:
        proc.kill()
        proc.wait()


def sigterm_handled(pid: int) -> bool:
    """Whether the process has installed its SIGTERM handler yet (before that, SIGTERM kills it outright)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        caught = next(line for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def wait_for(condition, what: str, timeout: float = 600.0) -> None:
    """A guard against hanging on a loaded machine, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {timeout:.0f} s for {what}")
        time.sleep(0.1)


def test_training_form_starts_what_it_shows_and_cancel_ends_it(env, data_root):
    from core.runs.listing import run_info
    from core.runs.store import pid_alive

    runs = env(data_root)
    at = app()
    # Every field away from its default, and lr and dropout both valid in either's place.
    form = {
        "trial": "try9",
        "epochs": 30,
        "batch_size": 128,
        "lr": 0.002,
        "dropout": 0.05,
        "train_fraction": 0.05,
        "seed": 7,
    }
    labels = {
        "epochs": "Epochs",
        "batch_size": "Batch size",
        "lr": "Learning rate",
        "dropout": "Dropout",
        "train_fraction": "Fraction of the training data",
        "seed": "Seed",
    }
    widgets = [*at.sidebar.number_input, *at.sidebar.select_slider, *at.sidebar.slider]
    at.sidebar.selectbox(key="train_trial").set_value(form["trial"])
    for field, label in labels.items():
        next(w for w in widgets if w.label == label).set_value(form[field])
    at.button(key="start_training").click().run()
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    assert any(s.value == f"Started {run_dir.name}." for s in at.sidebar.success), [e.value for e in at.sidebar.error]
    pid = json.loads((run_dir / "status.json").read_text())["pid"]
    try:
        wait_for(lambda: sigterm_handled(pid) or not pid_alive(pid), "the training to start")
        config = json.loads((run_dir / "config.json").read_text())  # what the spawned training really runs
        assert config["name"] == form["trial"] and config["model"]["dropout"] == form["dropout"]
        assert {k: config["train"][k] for k in ("epochs", "batch_size", "lr", "train_fraction", "seed")} == {
            k: form[k] for k in ("epochs", "batch_size", "lr", "train_fraction", "seed")
        }
        assert run_info(run_dir.name).state == "running", (run_dir / "train.log").read_text()[-2000:]
        at.button(key="cancel_training").click().run()
        assert any(i.value == "Cancelling…" for i in at.sidebar.info)
        wait_for(lambda: not pid_alive(pid), "the cancelled training to stop")
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert run_info(run_dir.name).state == "cancelled", (run_dir / "train.log").read_text()[-2000:]
    at.run()
    assert any(w.value == f"Last training {run_dir.name}: cancelled" for w in at.sidebar.warning)


def test_training_form_needs_the_dataset(env):
    runs = env(None)
    at = app()
    at.button(key="start_training").click().run()
    assert any("needs the datasets" in e.value for e in at.sidebar.error)
    assert not list(runs.iterdir())


def shifted_weights(source: Path, dest: Path) -> Path:
    """source's model with every head's output rows rolled by one: each head names the next digit."""
    model, ckpt = checkpoint.load(source)
    heads = [model.fusion.net[-1], *model.aux.values()]
    with torch.no_grad():
        for layer in heads:
            layer.weight.copy_(layer.weight.roll(1, dims=0))
            layer.bias.copy_(layer.bias.roll(1))
    stats = ckpt["feature_stats"]
    return checkpoint.save(dest, model, ckpt["run_config"], stats["mean"].numpy(), stats["std"].numpy())


def test_active_model_switch_and_corrupt_weights_fall_back(env, tiny_run, tiny_weights):
    runs = env(None)
    other = finished_run(runs, tiny_run, "20260101-000000-fused-cccccc")
    shifted_weights(tiny_weights, other / "best.pt")
    bad = finished_run(runs, tiny_run, "20260101-000001-fused-dddddd")
    (bad / "best.pt").write_bytes(b"not a checkpoint")
    image, audio = drawn_digit(), (speech_like(0.6, seed=3), 8000)
    default = Predictor.load(tiny_weights).predict(image=image, audio=audio).digits
    switched = Predictor.load(other / "best.pt").predict(image=image, audio=audio).digits
    assert all(switched[h] != default[h] for h in default)  # so a switch that does nothing cannot pass
    cards = lambda digits: {f"{h.capitalize()} prediction": str(d) for h, d in digits.items()}  # noqa: E731

    at = app(example={"image": image, "audio": audio})
    assert metrics(at) == cards(default)
    box = at.sidebar.selectbox(key="active_run")
    assert box.options[0].startswith("Default weights")
    assert sorted(o.split()[0] for o in box.options[1:]) == [other.name, bad.name]
    box.set_value(other.name).run()
    assert not at.error and metrics(at) == cards(switched)
    assert any(c.value == "Loaded: fused · image + audio" for c in at.sidebar.caption)
    at.sidebar.selectbox(key="active_run").set_value(bad.name).run()
    assert any("unusable" in e.value and "default weights" in e.value for e in at.error)
    assert metrics(at) == cards(default)  # still served, by the default weights


def test_an_unsure_voice_shows_its_two_best_guesses(env, monkeypatch, tiny_weights, tmp_path):
    from core.model.checkpoint import load, save

    model, ckpt = load(tiny_weights)
    unsure = tmp_path / "unsure.pt"  # a threshold no reading reaches: every voice is unclear to this model
    save(
        unsure,
        model,
        ckpt["run_config"],
        ckpt["feature_stats"]["mean"],
        ckpt["feature_stats"]["std"],
        calibration={"audio_unsure_below": 1.0},
    )
    monkeypatch.setenv("DIGITS_WEIGHTS", str(unsure))
    env(None)
    audio = (speech_like(0.6, seed=3), 8000)
    at = app(example={"image": None, "audio": audio})
    expected = Predictor.load(unsure).predict(audio=audio)
    (first, p1), (second, p2) = expected.top("audio")
    assert expected.audio_unsure
    assert metrics(at) == {"Audio prediction": f"{first} or {second}"}
    assert [m.delta for m in at.metric] == [f"{p1:.0%} / {p2:.0%}, unsure"]
    assert any(f"unclear to the model: {first} ({p1:.0%}) or {second} ({p2:.0%})" in i.value for i in at.info)
    assert any("**Teach it your voice** below" in i.value for i in at.info)
    # Already adapted to this voice: the note stays, without sending the user to adapt again.
    from core.model.adapt import AdaptConfig, adapt
    from core.predict import prepare_audio

    predictor = Predictor.load(unsure)
    features = np.stack([prepare_audio((speech_like(0.6, seed=d), 8000))[1] for d in range(10)])
    profile = adapt(predictor, features, list(range(10)), AdaptConfig(steps=0))
    at = app(example={"image": None, "audio": audio}, voice_profile=profile)
    assert any("unclear to the model" in i.value for i in at.info)
    assert not any("Teach it your voice" in i.value for i in at.info)
