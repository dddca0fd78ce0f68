"""Serving it to others: the deployment setting (TOML and environment), trainings per hour, who may cancel,
runs/ retention, and a proxied visitor never offered the server's microphone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import deployment, paths
from core.deployment import Deployment, DeploymentError
from core.runs.listing import list_runs, run_info
from core.runs.retention import prune, size_of
from core.runs.store import (
    STARTS_FILE,
    NotYourRun,
    TrainingLimit,
    TrainingOff,
    TrainRequest,
    cancel,
    owner_hash,
    pid_alive,
    start_training,
)
from core.runs.sweep import SWEEPS_DIR
from ui.examples import client_is_local

APP = str(paths.REPO_ROOT / "app.py")
TINY = TrainRequest(trial="fused", epochs=1, train_fraction=0.01)
SETTINGS_ENV = list(deployment.ENV.values()) + [deployment.CONFIG_ENV]


@pytest.fixture(autouse=True)
def no_setting_from_outside(monkeypatch):
    for var in SETTINGS_ENV:
        monkeypatch.delenv(var, raising=False)


def test_the_committed_setting_is_the_local_default():
    assert deployment.load() == Deployment()


def test_the_toml_file_then_the_environment(tmp_path):
    toml = tmp_path / "digits.toml"
    toml.write_text(
        "[digits]\ntraining = false\ntrainings_per_hour = 4\ncancel_any_run = true\nkeep_runs = 7\nkeep_runs_mb = 100\n"
    )
    assert deployment.load(toml, {}) == Deployment(False, 4, True, 7, 100)
    env = {"DIGITS_TRAINING": "on", "DIGITS_TRAININGS_PER_HOUR": "unlimited", "DIGITS_KEEP_RUNS_MB": "5"}
    assert deployment.load(toml, env) == Deployment(True, None, True, 7, 5)
    assert deployment.load(tmp_path / "absent.toml", {"DIGITS_CANCEL_ANY_RUN": "yes"}) == Deployment(
        cancel_any_run=True
    )
    assert deployment.load(None, {deployment.CONFIG_ENV: str(toml)}).keep_runs == 7


@pytest.mark.parametrize(
    "toml, env, message",
    [
        ("[digits]\ntraining = 'no'\n", {}, "training must be true or false"),
        ("[digits]\nkeep_runs = 0\n", {}, "at least 1"),
        ("[digits]\ntrainings_per_hr = 3\n", {}, "unknown setting 'trainings_per_hr'"),
        ("[digits\n", {}, "cannot be read"),
        ("digits = 3\n", {}, "must be a table"),
        ("", {"DIGITS_TRAININGS_PER_HOUR": "three"}, "whole number"),
        ("", {"DIGITS_TRAINING": "maybe"}, "true or false"),
        ("", {"DIGITS_KEEP_RUNS_MB": "-5"}, "at least 1"),
    ],
)
def test_a_bad_setting_is_a_clear_error(tmp_path, toml, env, message):
    path = tmp_path / "digits.toml"
    path.write_text(toml)
    with pytest.raises(DeploymentError, match=message):
        deployment.load(path, env)


def test_training_off_starts_nothing(tmp_path):
    with pytest.raises(TrainingOff, match="turned off"):
        start_training(TINY, runs_root=tmp_path, settings=Deployment(training=False))
    assert list(tmp_path.iterdir()) == []


def _stop(run_id: str, root: Path) -> None:
    pid = json.loads((root / run_id / "status.json").read_text())["pid"]
    cancel(run_id, root)
    deadline = time.monotonic() + 120  # a guard against hanging, not a timing assertion
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_trainings_per_hour_are_counted_across_visitors(tmp_path, data_root):
    settings = Deployment(trainings_per_hour=2)
    for visitor in ("a", "b"):
        _stop(
            start_training(TINY, runs_root=tmp_path, data_dir=str(data_root), session=visitor, settings=settings),
            tmp_path,
        )
    with pytest.raises(TrainingLimit, match=r"2 trainings started in the last hour.*next can start in (59|60) min"):
        start_training(TINY, runs_root=tmp_path, data_dir=str(data_root), session="c", settings=settings)
    assert len(list_runs(tmp_path)) == 2
    # An hour later the oldest start no longer counts.
    ledger = json.loads((tmp_path / STARTS_FILE).read_text())
    (tmp_path / STARTS_FILE).write_text(json.dumps({"starts": [ledger["starts"][0] - 3600, ledger["starts"][1]]}))
    _stop(start_training(TINY, runs_root=tmp_path, data_dir=str(data_root), session="c", settings=settings), tmp_path)
    assert len(list_runs(tmp_path)) == 3


@pytest.fixture
def running(tmp_path):
    """A live stand-in training of a run in tmp_path/runs that session "owner" started; killed at the end."""
    run_id = "20260101-000000-fused-aaaaaa"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(300)",
            "-m",
            "core.train",
            "--run-id",
            run_id,
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    run = tmp_path / "runs" / run_id
    run.mkdir(parents=True)
    (run / "launch.json").write_text(json.dumps({"requested": time.time(), "owner": owner_hash("owner")}))
    (run / "status.json").write_text(
        json.dumps({"state": "running", "pid": proc.pid, "started": time.time(), "trial": "fused", "phase": "training"})
    )
    (run / "config.json").write_text(json.dumps({"name": "fused", "train": {"epochs": 3}}))
    yield run, proc
    proc.kill()
    proc.wait()


def test_a_visitor_cancels_only_their_own_run(running):
    run, proc = running
    with pytest.raises(NotYourRun, match="another browser session"):
        cancel(run.name, run.parent, session="someone else", settings=Deployment())
    assert proc.poll() is None and not (run / "cancel.json").exists()
    assert cancel(run.name, run.parent, session="someone else", settings=Deployment(cancel_any_run=True))
    assert proc.wait(timeout=60) != 0


def test_the_owner_cancels_their_run(running):
    run, proc = running
    assert cancel(run.name, run.parent, session="owner", settings=Deployment())
    assert proc.wait(timeout=60) != 0 and run_info(run.name, run.parent).state == "cancelled"


def _app(runs: Path, monkeypatch, **state) -> AppTest:
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(runs))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(runs.parent / "no-data"))
    at = AppTest.from_file(APP, default_timeout=240)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_the_sidebar_offers_cancel_to_the_session_that_started_the_run(running, monkeypatch):
    run, proc = running
    at = _app(run.parent, monkeypatch)  # another session
    assert not [b for b in at.sidebar.button if b.key == "cancel_training"]
    assert any("only that session can cancel it" in c.value for c in at.sidebar.caption)
    at = _app(run.parent, monkeypatch, session_token="owner")
    at.sidebar.button(key="cancel_training").click().run()
    assert any("Cancelling" in i.value for i in at.sidebar.info)
    assert proc.wait(timeout=60) != 0 and (run / "cancel.json").is_file()


def test_the_setting_may_let_any_visitor_cancel(running, monkeypatch):
    run, _ = running
    monkeypatch.setenv("DIGITS_CANCEL_ANY_RUN", "true")
    assert [b for b in _app(run.parent, monkeypatch).sidebar.button if b.key == "cancel_training"]


def test_the_sidebar_follows_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_TRAINING", "false")
    at = _app(tmp_path, monkeypatch)
    assert not [b for b in at.sidebar.button if b.key == "start_training"]
    assert any("Training is turned off" in i.value for i in at.sidebar.info)

    monkeypatch.setenv("DIGITS_TRAINING", "true")
    monkeypatch.setenv("DIGITS_TRAININGS_PER_HOUR", "2")
    (tmp_path / STARTS_FILE).write_text(json.dumps({"starts": [time.time() - 60, time.time() - 30]}))
    at = _app(tmp_path, monkeypatch)
    assert any("2 trainings per hour; 0 left now" in c.value for c in at.sidebar.caption)
    at.sidebar.button(key="start_training").click().run()
    # (No datasets here: the form says so before it would ask for a training.)
    assert any("needs the datasets" in e.value for e in at.sidebar.error)

    monkeypatch.setenv("DIGITS_KEEP_RUNS", "many")
    at = _app(tmp_path, monkeypatch)
    assert any("deployment setting is invalid" in e.value and "DIGITS_KEEP_RUNS" in e.value for e in at.sidebar.error)
    assert not [b for b in at.sidebar.button if b.key == "start_training"]


def test_the_form_reports_the_hourly_limit(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("DIGITS_TRAININGS_PER_HOUR", "1")
    (tmp_path / STARTS_FILE).write_text(json.dumps({"starts": [time.time() - 60]}))
    at = _app(tmp_path, monkeypatch)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    at.sidebar.button(key="start_training").click().run()
    assert any("the most this server allows (1)" in w.value for w in at.sidebar.warning), [
        w.value for w in at.sidebar.warning
    ]
    assert list_runs(tmp_path) == []


def _ended(root: Path, run_id: str, started: float, state: str = "finished", size: int = 0, **status) -> Path:
    run = root / run_id
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": state, "started": started, "trial": "fused", **status}))
    (run / "best.pt").write_bytes(b"\0" * size)
    return run


def test_retention_deletes_the_oldest_ended_runs_first_and_spares_the_rest(tmp_path, running):
    run, _ = running  # a live training: never deleted
    root = run.parent
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        _ended(root, "cited", 100)  # the run a committed result was made from
        _ended(root, "old-finished", 200)
        _ended(root, "old-failed", 300, "failed", error="boom")
        _ended(root, "cancelled", 400, "cancelled")
        _ended(root, "unchecked", 50, "running", pid=sleeper.pid)  # a live pid we cannot check: left alone
        (_ended(root, "unreadable", 10) / "status.json").write_text("{")
        results = tmp_path / "results"
        (results / "trials").mkdir(parents=True)
        (results / "trials" / "x.json").write_text(json.dumps({"entry": "x", "run_id": "cited"}))

        assert prune(root, keep_runs=5, keep_bytes=10**9, results_dir=results) == ["old-finished", "old-failed"]
        assert prune(root, keep_runs=1, keep_bytes=10**9, results_dir=results) == ["cancelled"]
        left = {r.run_id for r in list_runs(root)}
        assert left == {run.name, "cited", "unchecked", "unreadable"}
    finally:
        sleeper.kill()
        sleeper.wait()


def test_retention_spares_the_runs_of_a_sweep_until_its_plan_is_deleted(tmp_path):
    root = tmp_path / "runs"
    for i in range(3):
        run = _ended(root, f"sw-try1-s{i}", 100 + i)
        (run / "sweep.json").write_text(json.dumps({"sweep_id": "sw", "trial": "try1", "seed": i}))
    _ended(root, "by-hand", 50)
    (root / SWEEPS_DIR).mkdir()
    plan = root / SWEEPS_DIR / "sw.json"
    plan.write_text("{}")  # only its presence counts here
    assert prune(root, keep_runs=1, keep_bytes=10**9, results_dir=tmp_path / "none") == ["by-hand"]
    plan.unlink()
    assert prune(root, keep_runs=1, keep_bytes=10**9, results_dir=tmp_path / "none") == ["sw-try1-s0", "sw-try1-s1"]


def test_retention_by_bytes(tmp_path):
    for i in range(4):
        _ended(tmp_path, f"run{i}", 100 + i, size=1000)
    total = sum(size_of(p) for p in tmp_path.iterdir())
    assert prune(tmp_path, keep_runs=100, keep_bytes=total - 1, results_dir=tmp_path / "none") == ["run0"]
    assert prune(tmp_path, keep_runs=100, keep_bytes=1500, results_dir=tmp_path / "none") == ["run1", "run2"]
    assert [r.run_id for r in list_runs(tmp_path)] == ["run3"]


def test_a_start_makes_room_within_the_limit(tmp_path, data_root):
    for i in range(3):
        _ended(tmp_path, f"20260101-00000{i}-fused-aaaaaa", 100 + i)
    run_id = start_training(TINY, runs_root=tmp_path, data_dir=str(data_root), settings=Deployment(keep_runs=3))
    _stop(run_id, tmp_path)
    assert sorted(r.run_id for r in list_runs(tmp_path)) == [
        "20260101-000001-fused-aaaaaa",
        "20260101-000002-fused-aaaaaa",
        run_id,
    ]


@pytest.mark.parametrize(
    "headers, ip, url, local",
    [
        ({}, None, None, True),  # AppTest: nothing says otherwise
        ({"Host": "localhost:8501"}, None, "http://localhost:8501/", True),
        ({"Host": "127.0.0.1:8501"}, None, None, True),
        ({"Host": "[::1]:8501"}, None, None, True),
        ({"Host": "digits.example.org"}, None, None, False),  # a proxy on this machine that passes the Host on
        ({"Host": "localhost:8501", "X-Forwarded-For": "203.0.113.7"}, None, None, False),
        ({"host": "localhost", "forwarded": "for=203.0.113.7;proto=https"}, None, None, False),
        ({"Host": "localhost", "X-Real-IP": "203.0.113.7"}, None, None, False),
        ({"Host": "localhost", "X-Forwarded-Host": "digits.example.org"}, None, None, False),
        ({}, None, "https://digits.example.org/", False),  # the page the browser shows is not on this machine
        ({}, "192.168.1.20", None, False),  # a direct connection from another machine
        ({"Host": "192.168.1.5:8501"}, None, None, False),
    ],
)
def test_who_counts_as_sitting_at_this_computer(headers, ip, url, local):
    assert client_is_local(headers, ip, url) is local


def _draw_page(monkeypatch, tmp_path, headers: dict | None = None, url: str | None = None) -> AppTest:
    from streamlit.runtime.context import ContextProxy

    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "no-data"))
    # The connection comes from this machine (a reverse proxy's does too); AppTest cannot set either, nor headers.
    monkeypatch.setattr(ContextProxy, "ip_address", property(lambda self: None))
    if headers is not None:
        monkeypatch.setattr(ContextProxy, "headers", property(lambda self: headers))
    at = AppTest.from_file(APP, default_timeout=240)
    if url:
        at.context = {"url": url}
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return next(e for e in at.expander if "this computer" in e.label)


@pytest.mark.parametrize(
    "headers, url",
    [
        ({"Host": "localhost:8501", "X-Forwarded-For": "203.0.113.7"}, None),
        ({"Host": "digits.example.org"}, None),
        (None, "https://digits.example.org/"),
    ],
)
def test_a_proxied_visitor_is_not_offered_the_servers_microphone(monkeypatch, tmp_path, headers, url):
    expander = _draw_page(monkeypatch, tmp_path, headers, url)
    assert any("runs on a server" in i.value for i in expander.info) and not expander.button


def test_a_local_visitor_gets_the_microphone_or_the_local_reason(monkeypatch, tmp_path):
    expander = _draw_page(monkeypatch, tmp_path, {"Host": "localhost:8501"}, "http://localhost:8501/")
    assert expander.button or (expander.info and not any("runs on a server" in i.value for i in expander.info))
