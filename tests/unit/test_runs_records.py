"""Run records that stay true: checked on read, pids that must prove they are ours, reused ids, cut JSONL lines, and
the LOSO results as their own leaderboard rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from core import paths
from core.io import CutWrite, append_jsonl, write_json
from core.runs.leaderboard import LOSO_MEAN, LOSO_WORST, entries
from core.runs.listing import RunIdTaken, claim_run_dir, run_info
from core.runs.store import cancel

REPO = paths.REPO_ROOT
STATUS = {"state": "finished", "started": 1.7e9, "ended": 1.7e9 + 9, "trial": "fused"}
HEAD = {"accuracy": 90.0, "macro_f1": 89.5, "n": 300}


def make_run(root: Path, run_id: str, **files) -> Path:
    """A run folder with these files (dicts and lists as JSON, lists of rows for .jsonl, bytes as they are)."""
    run = root / run_id
    run.mkdir(parents=True)
    files.setdefault("status.json", STATUS)
    for name, content in files.items():
        path = run / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif name.endswith(".jsonl"):
            path.write_text("".join(json.dumps(r) + "\n" for r in content))
        else:
            path.write_text(json.dumps(content))
    return run


# Each kind of bad run file a shared server meets, plus the pids that must never be signalled or waited on.
ISSUE_CASES = {
    "string pid": {"status.json": {**STATUS, "state": "running", "pid": "1234"}},
    "float pid": {"status.json": {**STATUS, "state": "running", "pid": 1234.5}},
    "huge pid": {"status.json": {**STATUS, "state": "running", "pid": 2**70}},
    "pid -1": {"status.json": {**STATUS, "state": "running", "pid": -1}},
    "pid 0": {"status.json": {**STATUS, "state": "running", "pid": 0}},
    "pid 1": {"status.json": {**STATUS, "state": "running", "pid": 1}},
    "string started": {"status.json": {**STATUS, "started": "2026-01-01"}},
    "non-UTF-8 status": {"status.json": b'{"state": "finished", "started": 1, "trial": "f\xe9"}'},
    "non-UTF-8 summary": {"summary.json": b'{"final": {"fused": "\xff"}}'},
    "non-UTF-8 metrics": {"metrics.jsonl": b'{"epoch": 1, "loss": "\xfe"}\n'},
    "metrics a folder": {"metrics.jsonl/": None},
    "head without macro_f1": {"summary.json": {"final": {"fused": {"accuracy": 90.0}}}},
    "macro_f1 null": {"summary.json": {"final": {"fused": {"accuracy": 90.0, "macro_f1": None}}}},
    "config.train a list": {"config.json": {"name": "fused", "train": [1, 2]}},
    "error not a string": {"status.json": {**STATUS, "state": "failed", "error": {"code": 1}}},
    "trial a list": {"status.json": {**STATUS, "trial": ["fused"]}},
}


@pytest.mark.parametrize("case", ISSUE_CASES, ids=str)
def test_each_bad_file_of_the_issue_makes_one_unreadable_row(tmp_path, monkeypatch, case):
    files = dict(ISSUE_CASES[case])
    folder = [n for n in files if n.endswith("/")]
    run = make_run(tmp_path, "20260101-000000-fused-aaaaaa", **{n: v for n, v in files.items() if not n.endswith("/")})
    for name in folder:
        (run / name.rstrip("/")).mkdir()
    bad_file = next(iter(files)).rstrip("/")
    signalled = []
    for owner, name in ((psutil.Process, "send_signal"), (psutil.Process, "terminate"), (os, "kill"), (os, "waitpid")):
        monkeypatch.setattr(owner, name, lambda *a, _n=name, **k: signalled.append((_n, a)))

    info = run_info(run.name, tmp_path)
    assert info.state == "unreadable" and bad_file in info.error, info
    assert cancel(run.name, tmp_path) is False and signalled == []
    rows = [e.row for e in entries(runs_root=tmp_path) if e.row["entry"] == run.name]
    assert len(rows) == 1 and rows[0]["status"] == f"unreadable ({info.error})"


@pytest.fixture
def stand_in(tmp_path):
    """Start a process whose command line is given; killed at the end."""
    procs = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *args])
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _running(root: Path, run_id: str, pid: int, started: float | None = None) -> Path:
    return make_run(
        root,
        run_id,
        **{
            "status.json": {
                "state": "running",
                "pid": pid,
                "trial": "fused",
                "started": time.time() if started is None else started,
            }
        },
    )


@pytest.mark.parametrize("how", ["not a training", "another run's training", "another runs folder", "pid reused"])
def test_a_live_pid_that_is_not_this_runs_training_is_never_signalled(tmp_path, stand_in, how):
    run_id = "20260101-000000-fused-bbbbbb"
    args = {
        "not a training": [],
        "another run's training": ["-m", "core.train", "--run-id", "other"],
        "another runs folder": ["-m", "core.train", "--run-id", run_id, "--out", str(tmp_path / "elsewhere")],
        "pid reused": ["-m", "core.train", "--run-id", run_id, "--out", str(tmp_path)],
    }[how]
    proc = stand_in(*args)
    # "pid reused": the status was written long before this process started, by a training that is gone.
    _running(tmp_path, run_id, proc.pid, started=time.time() - 3600 if how == "pid reused" else None)
    assert run_info(run_id, tmp_path).state == "interrupted"
    assert cancel(run_id, tmp_path) is False
    time.sleep(0.2)
    assert proc.poll() is None  # still alive: nothing was sent to it


def test_cancel_reaches_the_real_training_and_records_the_request(tmp_path, stand_in):
    run_id = "20260101-000000-fused-cccccc"
    proc = stand_in("-m", "core.train", "--run-id", run_id, "--out", str(tmp_path))
    run = _running(tmp_path, run_id, proc.pid)
    assert run_info(run_id, tmp_path).state == "running"
    assert cancel(run_id, tmp_path) is True
    assert proc.wait(timeout=60) == -signal.SIGTERM  # the stand-in has no handler: SIGTERM ends it
    assert (run / "cancel.json").is_file()
    assert run_info(run_id, tmp_path).state == "cancelled"  # it died before it could say so


def test_a_reused_run_id_is_refused_and_the_old_run_kept(tmp_path):
    old = make_run(
        tmp_path,
        "try10",
        **{"config.json": {"name": "try10", "train": {"epochs": 1}}, "metrics.jsonl": [{"epoch": 1, "loss": 1.0}]},
    )
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with pytest.raises(RunIdTaken, match="'try10' is taken"):
        claim_run_dir(old)
    # The command line says so and exits 1 before training (bench/reproduce.py --only try10 twice used to mix runs).
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.train",
            "--trial",
            "try10",
            "--epochs",
            "1",
            "--run-id",
            "try10",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1 and "is taken" in done.stderr, done.stderr
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before


def test_two_runs_claiming_one_new_id_one_wins(tmp_path):
    claim_run_dir(tmp_path / "fresh")
    with pytest.raises(RunIdTaken, match="metrics.jsonl"):
        claim_run_dir(tmp_path / "fresh")


def test_an_append_refuses_a_file_that_ends_in_a_cut_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "lo')
    with pytest.raises(CutWrite, match="ends in a cut line"):
        append_jsonl(path, {"epoch": 3, "loss": 0.5})
    assert path.read_text().endswith('"lo')  # nothing merged into it


@pytest.mark.skipif(os.name == "nt", reason="RLIMIT_FSIZE is POSIX")
def test_a_short_write_is_undone_and_reported(tmp_path):
    # A real short write: the kernel stops a write at the file-size limit the way a full disk does.
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 1.0}\n')
    size = path.stat().st_size
    child = textwrap.dedent(f"""
        import resource, signal
        from core.io import CutWrite, append_jsonl
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 10}, resource.RLIM_INFINITY))
        try:
            append_jsonl({str(path)!r}, {{"epoch": 2, "loss": 0.5}})
        except CutWrite as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "only 10 of" in done.stdout and "disk full" in done.stdout, (done.stdout, done.stderr)
    assert path.read_text() == '{"epoch": 1, "loss": 1.0}\n'  # whole lines only: the cut one was removed
    append_jsonl(path, {"epoch": 2, "loss": 0.5})  # and the next append lands on its own line
    assert [json.loads(x)["epoch"] for x in path.read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "lo{"epoch": 3, "loss": 0.5}\n', "line 2 is not valid JSON"),
        ('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "lo', "ends in a cut line"),
    ],
)
def test_a_merged_or_cut_line_makes_an_ended_run_unreadable(tmp_path, text, reason):
    run = make_run(tmp_path, "20260101-000000-fused-dddddd")
    (run / "metrics.jsonl").write_text(text)
    info = run_info(run.name, tmp_path)
    assert info.state == "unreadable" and reason in info.error


def test_a_live_training_half_way_through_a_line_is_still_running(tmp_path, stand_in):
    run_id = "20260101-000000-fused-eeeeee"
    proc = stand_in("-m", "core.train", "--run-id", run_id)
    run = _running(tmp_path, run_id, proc.pid)
    (run / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "lo')
    info = run_info(run_id, tmp_path)
    assert info.state == "running" and info.epochs_done == 1


@pytest.mark.slow
def test_a_short_write_fails_the_run_with_a_message(tmp_path, data_root, monkeypatch):
    from core import io
    from core.training.loop import build_config, run

    def short(fd, data):  # a full disk: the epoch's line lands half-way
        return os.write(fd, data[: len(data) // 2])

    monkeypatch.setattr(io, "_write", short)
    with pytest.raises(CutWrite):
        run(
            build_config("fused", epochs=1, limit=64, batch_size=32),
            data_root,
            tmp_path,
            run_id="full-disk",
            progress=False,
        )
    status = json.loads((tmp_path / "full-disk" / "status.json").read_text())
    assert status["state"] == "failed" and "metrics.jsonl" in status["error"] and "disk full" in status["error"]
    assert (tmp_path / "full-disk" / "metrics.jsonl").read_text() == ""  # the cut line was taken back
    assert run_info("full-disk", tmp_path).state == "failed"


def test_records_write_non_finite_numbers_as_null_and_read_them_back(tmp_path):
    run = make_run(tmp_path, "20260101-000000-fused-ffffff")
    append_jsonl(run / "metrics.jsonl", {"epoch": 1, "loss": float("nan"), "val_fused_accuracy": float("inf")})
    write_json(run / "summary.json", {"final": {"fused": HEAD}, "train_seconds": 3.0})
    info = run_info(run.name, tmp_path)
    assert info.state == "finished" and info.history == [{"epoch": 1, "loss": None, "val_fused_accuracy": None}]


def _results(tmp_path: Path, files: dict) -> Path:
    root = tmp_path / "results"
    for rel, record in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(record))
    return root


def test_loso_results_are_their_own_labelled_rows(tmp_path):
    committed = json.loads((paths.RESULTS_DIR / "loso" / "fused.json").read_text())  # conditions, calibration ...
    today = {k: committed[k] for k in ("epochs", "mean", "min", "per_speaker", "seconds")} | {
        "recipe": "voice"
    }  # the older, plain form
    extended = {**committed, "recipe": "fused", "shifted": {"mean": 50.0}, "heads": ["audio"]}
    bad = {k: v for k, v in today.items() if k != "min"} | {"recipe": "broken"}
    results = _results(
        tmp_path,
        {
            "loso/voice.json": today,
            "loso/fused.json": extended,
            "loso/broken.json": bad,
            "trials/try10.json": json.loads((paths.RESULTS_DIR / "trials" / "try10.json").read_text()),
        },
    )
    (tmp_path / "runs").mkdir()
    board = {e.row["entry"]: e for e in entries(results, tmp_path / "runs")}
    for recipe, record in (("voice", today), ("fused", extended)):
        entry = board[f"{recipe}, leave-one-speaker-out (audio)"]
        assert (
            entry.row["kind"] == "loso"
            and entry.row[LOSO_MEAN] == record["mean"]
            and entry.row[LOSO_WORST] == record["min"]
        )
        assert entry.per_speaker == record["per_speaker"]
        # The trial of the same name is not given the LOSO file (it used to be, with empty F1).
        assert board[recipe].row["status"] == "not run here" and "F1 fused" not in board[recipe].row
    assert (
        board["broken"].row["status"].startswith("unreadable (")
        and "'min' is a required property" in board["broken"].row["status"]
    )
    assert board["try10"].row["status"] == "result" and board["try10"].row["F1 fused"] > 0


def test_the_leaderboard_page_shows_the_committed_loso_figures(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIGITS_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "no-data"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/leaderboard.py").run()
    board = next(d.value for d in at.dataframe if "status" in d.value.columns).set_index("entry")
    for path in sorted((paths.RESULTS_DIR / "loso").glob("*.json")):
        record = json.loads(path.read_text())
        row = board.loc[f"{record['recipe']}, leave-one-speaker-out (audio)"]
        assert row[LOSO_MEAN] == record["mean"] and row[LOSO_WORST] == record["min"]
    picked = list(board.index).index(f"{record['recipe']}, leave-one-speaker-out (audio)")
    at.session_state["board"] = {"selection": {"rows": [picked], "columns": []}}
    at.run()
    assert not at.exception
    per_speaker = next(d.value for d in at.dataframe if "held-out speaker" in d.value.columns)
    assert dict(zip(per_speaker["held-out speaker"], per_speaker["audio accuracy (%)"])) == record["per_speaker"]
