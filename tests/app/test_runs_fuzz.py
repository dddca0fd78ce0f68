"""Fuzz: 520 malformed run folders in one runs/; every page and the sidebar render with zero exceptions, each bad run
is listed once as "unreadable (why)", and no pid read from them is ever signalled."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from streamlit.testing.v1 import AppTest

from core import limits, paths
from core.runs.listing import list_runs
from core.runs.store import cancel

APP = str(paths.REPO_ROOT / "app.py")
PAGES = ["pages/draw_and_speak.py", "pages/embeddings.py", "pages/leaderboard.py"]
N_MALFORMED = 520
FILES = ("status.json", "config.json", "summary.json", "metrics.jsonl", "launch.json")

HEAD = {
    "accuracy": 91.5,
    "macro_f1": 90.25,
    "n": 300,
    "confusion": [[3 if i == j else 0 for j in range(10)] for i in range(10)],
}
GOOD = {
    "status.json": {
        "state": "finished",
        "pid": 4242,
        "started": 1.7e9,
        "ended": 1.7e9 + 60,
        "trial": "fused",
        "phase": "training",
    },
    "config.json": {
        "name": "fused",
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.001, "seed": 0, "train_fraction": 0.1},
        "model": {"dropout": 0.3},
    },
    "summary.json": {
        "epochs": 2,
        "best_epoch": 2,
        "train_seconds": 12.5,
        "parameters": 1000,
        "device": "cpu",
        "final": {"fused": HEAD, "image": HEAD, "audio": HEAD},
        "best": {"fused": HEAD},
    },
    "metrics.jsonl": [
        {"epoch": 1, "loss": 1.5, "seconds": 6.0, "val_fused_macro_f1": 80.0},
        {"epoch": 2, "loss": 0.7, "seconds": 6.1, "val_fused_macro_f1": 90.0},
    ],
    "launch.json": {"requested": 1.7e9, "owner": "0" * 64},
}
# (file, path inside it, values that break it); None as the last path part: delete that key.
BAD_FIELDS = [
    ("status.json", ["state"], ["done", 1, None, [], "interrupted", {"a": 1}]),
    ("status.json", ["pid"], ["123", 1.5, 2**64, -1, 0, 1, True, [], {}, "-1"]),
    ("status.json", ["started"], ["yesterday", None, [], -5, 1e12, True, "1.7e9"]),
    ("status.json", ["ended"], ["x", -1, []]),
    ("status.json", ["trial"], [["fused"], 5, {"a": 1}, True]),
    ("status.json", ["error"], [5, ["x"], {}, None, False]),
    ("status.json", ["phase"], [5, "x" * 100, []]),
    ("status.json", ["state", None], [None]),
    ("status.json", ["started", None], [None]),
    ("config.json", ["name"], [None, 5, [], "x" * 300]),
    ("config.json", ["train"], [[], "x", None, 5]),
    ("config.json", ["train", "epochs"], ["3", 0, -1, 1.5, None, 10**400]),
    ("config.json", ["train", "lr"], [0, -1, "x", None]),
    ("config.json", ["train", "train_fraction"], [0, 2, "x"]),
    ("config.json", ["model"], [[], "x", 5]),
    ("config.json", ["model", "dropout"], [2, -1, "x"]),
    ("config.json", ["train", None], [None]),
    ("summary.json", ["final"], [[], "x", 5, None]),
    ("summary.json", ["final", "fused"], [[], 5, "x", None]),
    ("summary.json", ["final", "fused", "macro_f1"], [None, "99", 101, -1, []]),
    ("summary.json", ["final", "image", "accuracy"], [None, "x", 1000]),
    (
        "summary.json",
        ["final", "audio", "confusion"],
        [[[1]], "x", [[0] * 10] * 9, [["a"] * 10] * 10, [[-1] * 10] * 10],
    ),
    ("summary.json", ["best", "fused"], ["x", []]),
    ("summary.json", ["train_seconds"], ["x", -1, []]),
    ("summary.json", ["final", "fused", "macro_f1", None], [None]),
    ("launch.json", ["owner"], ["abc", 5, "G" * 64, []]),
    ("launch.json", ["requested"], ["x", None, -3]),
]
BAD_ROWS = [
    [],
    "x",
    5,
    None,
    {"epoch": "1", "loss": 1.0},
    {"epoch": 0, "loss": 1.0},
    {"loss": 1.0},
    {"epoch": 1},
    {"epoch": 1, "loss": "x"},
    {"epoch": 1, "loss": 1.0, "val_x": "y"},
]


def _text(name: str, data) -> str:
    if name.endswith(".jsonl"):
        return "".join(json.dumps(row) + "\n" for row in data)
    return json.dumps(data)


def _set(data, path: list, value):
    *parents, last = path
    if last is None:  # delete the key before
        *parents, last = parents
        target = data
        for p in parents:
            target = target[p]
        del target[last]
        return
    target = data
    for p in parents:
        target = target[p]
    target[last] = value


def _corrupt(rng: random.Random, run: Path, fifo_ok: bool) -> str:
    """Break one file of a good run in one of many ways; returns that file's name (the reason must name it)."""
    name = rng.choice(FILES)
    path = run / name
    path.unlink()  # every way below makes the file anew
    kind = rng.choice(
        [
            "field",
            "field",
            "field",
            "type",
            "truncate",
            "encoding",
            "folder",
            "symlink",
            "huge",
            "nested",
            "bigint",
            "nan",
            "empty",
            "missing",
            "rows",
        ]
    )
    good = _text(name, GOOD[name])
    if kind == "field":
        name, where, values = rng.choice(BAD_FIELDS)
        data = copy.deepcopy(GOOD[name])
        _set(data, where, rng.choice(values))
        path.write_text(_text(path.name, GOOD[path.name]))  # the file chosen first stays good
        path = run / name
        path.write_text(_text(name, data))
    elif kind == "type":
        path.write_text(
            json.dumps(rng.choice(["x", 5, 1.5, [1, 2], None, True, [], ""])) + ("\n" if name.endswith("l") else "")
        )
        if name.endswith(".jsonl"):  # a line that is a value but not a row
            path.write_text('"x"\n5\n')
    elif kind == "truncate":
        cut = rng.randrange(1, len(good) - 2)
        path.write_text(good[:cut] if not good[:cut].endswith("\n") else good[: cut - 1])  # whole lines would be valid
    elif kind == "encoding":
        raw = rng.choice(
            [
                good.encode("utf-16"),
                good.encode() + b"\xff\xfe",
                b"\x80" + good.encode(),
                good.replace('"', '"\xe9', 1).encode("latin-1"),
            ]
        )
        path.write_bytes(raw)
    elif kind == "folder":
        path.mkdir()
    elif kind == "symlink":
        target = rng.choice(["/etc/passwd", "/dev/zero", str(run / "nowhere"), str(path), str(run.parent / "fifo")])
        if target.endswith("fifo") and not fifo_ok:
            target = "/dev/zero"
        path.symlink_to(target)
    elif kind == "huge":
        if fifo_ok and rng.random() < 0.3:
            os.mkfifo(path)  # reading it would block the page for ever
        else:
            with open(path, "wb") as f:  # sparse: no disk used
                f.truncate(limits.MAX_RECORD_BYTES + 1)
    elif kind == "nested":
        path.write_text("[" * 50_000 + "]" * 50_000 + ("\n" if name.endswith("l") else ""))
    elif kind == "bigint":  # the first number gets 5,000 digits: too many for Python's int(), too large for a float
        path.write_text(re.sub(r"(?<=: )\d+", "9" * 5000, good, count=1))
    elif kind == "nan":
        path.write_text(good)
        name = "status.json"
        (run / name).write_text(
            _text(name, GOOD[name]).replace("1700000000.0", rng.choice(["NaN", "Infinity", "1e999"]), 1)
        )
    elif kind == "empty":
        path.write_text("" if not name.endswith(".jsonl") else "\n")
    elif kind == "missing":
        path.write_text(good)
        name = "status.json"
        (run / name).unlink()
    elif kind == "rows":
        path.write_text(good)
        name = "metrics.jsonl"
        rows = copy.deepcopy(GOOD[name])
        how = rng.choice(["bad", "merged", "cut", "blank"])
        text = _text(name, rows)
        if how == "bad":
            rows.insert(rng.randrange(3), rng.choice(BAD_ROWS))
            text = _text(name, rows)
        elif how == "merged":  # a short write on a full disk, then the next line appended to it
            first = json.dumps(rows[0])
            text = first[: len(first) // 2] + json.dumps(rows[1]) + "\n"
        elif how == "cut":
            text = text[:-5]
        else:
            text = text.replace("\n", "\n\n", 1)
        (run / name).write_text(text)
    return name


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory):
    """runs/ with N_MALFORMED broken runs, two good ones, live foreign pids in valid records, and junk entries."""
    rng = random.Random(14)
    root = tmp_path_factory.mktemp("fuzz") / "runs"
    root.mkdir()
    fifo_ok = hasattr(os, "mkfifo")
    if fifo_ok:
        os.mkfifo(root.parent / "fifo")
    broken = {}
    for i in range(N_MALFORMED + 2):
        run = root / f"20260102-{i:06d}-fused-{i:06x}"
        run.mkdir()
        for name, data in GOOD.items():
            (run / name).write_text(_text(name, data))
        if i < N_MALFORMED:
            broken[run.name] = _corrupt(rng, run, fifo_ok)
    # Valid records whose pid is alive but no training of theirs: this test, init, and an unrelated child.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    foreign = {}
    for pid in (p for p in (os.getpid(), 2, sleeper.pid, os.getppid()) if psutil.pid_exists(p)):
        run = root / f"20260103-000000-fused-p{pid}"
        run.mkdir()
        (run / "status.json").write_text(
            json.dumps({"state": "running", "pid": pid, "started": time.time(), "trial": "fused"})
        )
        foreign[run.name] = pid
    # Not runs at all: skipped without a row.
    (root / "20260104-a-file").write_text("{}")
    (root / "20260104-link").symlink_to(root.parent, target_is_directory=True)
    (root / ".hidden-run").mkdir()
    (root / ".starts.json").write_text("[not json")
    yield root, broken, foreign
    sleeper.kill()
    sleeper.wait()


def test_every_malformed_run_is_one_unreadable_entry(fuzz_runs):
    root, broken, foreign = fuzz_runs
    runs = {r.run_id: r for r in list_runs(root)}
    assert len(broken) == N_MALFORMED and len(runs) == N_MALFORMED + 2 + len(foreign)
    for run_id, name in broken.items():
        assert runs[run_id].state == "unreadable", (run_id, name, runs[run_id])
        assert name in runs[run_id].error, (run_id, name, runs[run_id].error)
    assert [r.state for r in runs.values() if r.run_id not in broken and r.run_id not in foreign] == ["finished"] * 2
    assert {runs[r].state for r in foreign} == {"interrupted"}  # a live pid, but no training of that run


def test_no_pid_from_a_file_is_ever_signalled(fuzz_runs, monkeypatch):
    root, broken, foreign = fuzz_runs
    calls = []
    for owner, name in (
        (psutil.Process, "send_signal"),
        (psutil.Process, "terminate"),
        (psutil.Process, "kill"),
        (os, "kill"),
        (os, "waitpid"),
    ):
        monkeypatch.setattr(owner, name, lambda *a, _n=name, **k: calls.append((_n, a)))
    for run in list_runs(root):
        assert cancel(run.run_id, root) is False
    assert calls == []
    assert all(psutil.pid_exists(pid) for pid in foreign.values())


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_every_page_renders(fuzz_runs, monkeypatch, tmp_path, data_root):
    root, broken, _ = fuzz_runs
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(root))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["watch_run"] = next(iter(broken))  # the sidebar follows a broken run
    at.session_state["emb_method"], at.session_state["emb_n"] = "pca", 100
    at.run()
    for page in PAGES:
        _page(at, page)
        assert any("unreadable" in e.value for e in at.sidebar.error)
        finished = at.sidebar.selectbox(key="active_run").options
        assert len(finished) == 3  # the default weights and the two good runs, none of the broken ones
    board = next(d.value for d in at.dataframe if "status" in d.value.columns)
    runs = board[board["kind"] == "run"].set_index("entry")
    assert len(runs) == len(runs.index.unique())  # each run once
    unreadable = runs[runs["status"].str.startswith("unreadable (")]
    assert set(unreadable.index) == set(broken)
    good = runs[runs["status"] == "finished"]
    assert len(good) == 2 and (good["F1 fused"] == round(HEAD["macro_f1"], 2)).all()
    for row in (unreadable.index[0], good.index[0]):  # the detail view of a broken and of a good run
        at.session_state["board"] = {"selection": {"rows": [int(board.index[board["entry"] == row][0])], "columns": []}}
        _page(at, PAGES[2])
        assert any(row in h.value for h in at.subheader)
