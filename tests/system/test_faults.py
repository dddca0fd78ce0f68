"""Faults: kill -9 mid-training and mid-write, run ids that try to leave runs/, and a second training at once."""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from core import paths
from core.errors import CheckpointError, DigitsError
from core.io import atomic_write
from core.limits import TRAIN_BOUNDS
from core.model import checkpoint
from core.runs.listing import InvalidRunId, active_training, list_runs, run_info, safe_run_dir
from core.runs.store import (
    TRAINING_WAIT_POLICY_ENV,
    InvalidTrainRequest,
    TrainingBusy,
    TrainRequest,
    cancel,
    pid_alive,
    start_training,
    weights_of,
)
from tests.helpers import REPO

# The smallest training the form allows: 1% of MNIST (550 pairs); 30 epochs so it cannot finish before the kill.
TINY = TrainRequest(trial="fused", epochs=30, batch_size=64, train_fraction=0.01)
BAD_IDS = [
    "../x",
    "..",
    ".",
    "",
    "/etc",
    "/etc/passwd",
    "a/b",
    "..\\x",
    "x/../..",
    "~root",
    " x",
    "x\n",
    "x\0",
    "-rf",
    ".hidden",
    "a" * 97,
    None,
    5,
]


def _served_weights() -> dict[str, str]:
    """Hashes of the weights files the app may serve: weights/ and $DIGITS_WEIGHTS."""
    files = list(paths.WEIGHTS_DIR.glob("*.pt")) + [Path(p) for p in [os.environ.get("DIGITS_WEIGHTS")] if p]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def _pid(run_dir: Path) -> int:
    return int(json.loads((run_dir / "status.json").read_text())["pid"])


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _wait(condition, what: str, timeout: float = 900.0) -> None:
    # A guard against hanging forever on a loaded machine, not a timing assertion.
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {timeout:.0f} s for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_mid_epoch_leaves_a_clean_interrupted_run(tmp_path, data_root):
    served = _served_weights()
    run_id = start_training(TINY, runs_root=tmp_path, data_dir=str(data_root))
    run_dir = safe_run_dir(run_id, tmp_path)
    try:
        with pytest.raises(TrainingBusy, match="already running"):
            start_training(TINY, runs_root=tmp_path, data_dir=str(data_root))
        # Epoch 1 written (best.pt saved): the kill lands inside epoch 2.
        # (metrics.jsonl exists, empty, from the start: the run claims its id with it.)
        _wait(lambda: _size(run_dir / "metrics.jsonl") > 0 or not pid_alive(_pid(run_dir)), "the first epoch")
        assert pid_alive(_pid(run_dir)), (run_dir / "train.log").read_text()[-2000:]
        os.kill(_pid(run_dir), signal.SIGKILL)
        _wait(lambda: not pid_alive(_pid(run_dir)), "the killed process to go")
    finally:
        if pid_alive(_pid(run_dir)):
            os.kill(_pid(run_dir), signal.SIGKILL)

    info = run_info(run_id, tmp_path)
    assert info.state == "interrupted" and 1 <= info.epochs_done < info.epochs_total
    assert active_training(tmp_path) is None and [r.state for r in list_runs(tmp_path)] == ["interrupted"]
    with pytest.raises(DigitsError, match="interrupted, not finished"):
        weights_of(run_id, tmp_path)  # the sidebar cannot make a killed run active
    assert not (run_dir / "final.pt").exists()
    for pt in run_dir.glob("*.pt"):  # what a loader could pick up loads whole; temp files never end in .pt
        checkpoint.load(pt)
    assert _served_weights() == served

    again = start_training(TINY, runs_root=tmp_path, data_dir=str(data_root))
    again_dir = safe_run_dir(again, tmp_path)
    assert again != run_id and run_info(again, tmp_path).state == "running"
    cancel(again, tmp_path)
    _wait(lambda: not pid_alive(_pid(again_dir)), "the second training to stop", timeout=300)
    assert run_info(again, tmp_path).state in ("cancelled", "interrupted")  # SIGTERM before its handler: killed


def test_kill_9_during_a_checkpoint_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "best.pt"
    target.write_bytes(b"old weights")
    child = f"""
import sys, time
from core.io import atomic_write
from core.limits import TRAIN_BOUNDS
def write(f):
    f.write(b"x" * 1_000_000); f.flush(); print("writing", flush=True); time.sleep(600)
atomic_write({str(target)!r}, write)
"""
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert target.read_bytes() == b"old weights"
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".best.pt.{proc.pid}.") and leftovers[0].endswith(".tmp")
    with pytest.raises(CheckpointError):
        checkpoint.load(target)
    # The next write of the same file clears what the killed writer left.
    atomic_write(target, lambda f: f.write(b"new weights"))
    assert target.read_bytes() == b"new weights" and [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_a_write_leaves_the_temporary_of_a_live_writer_alone(tmp_path):
    target = tmp_path / "status.json"
    child = f"""
import time
from core.io import atomic_write
from core.limits import TRAIN_BOUNDS
def write(f):
    print("writing", flush=True); time.sleep(600)
atomic_write({str(target)!r}, write)
"""
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        atomic_write(target, lambda f: f.write(b"{}"))
        assert sorted(p.name for p in tmp_path.iterdir())[0].startswith(f".status.json.{proc.pid}.")
        assert len(list(tmp_path.iterdir())) == 2 and target.read_bytes() == b"{}"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_run_ids_cannot_leave_runs(tmp_path, bad):
    for call in (safe_run_dir, run_info, cancel, weights_of):
        with pytest.raises(InvalidRunId):
            call(bad, tmp_path)


def test_a_symlinked_run_cannot_point_outside(tmp_path):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    runs.mkdir()
    outside.mkdir()
    (runs / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidRunId, match="outside"):
        safe_run_dir("escape", runs)
    assert list_runs(runs) == []  # the sidebar's list skips it instead of failing for everyone


@pytest.mark.parametrize(
    "field,value",
    [
        ("trial", "../../etc"),
        ("epochs", 0),
        ("epochs", 31),
        ("lr", float("nan")),
        ("batch_size", 10**6),
        ("train_fraction", 0.0),
        ("dropout", 1.0),
    ],
)
def test_form_values_outside_the_bounds_are_refused(tmp_path, field, value):
    from dataclasses import replace

    with pytest.raises(ValueError, match=rf"\b{field}\b"):  # the message names the field
        start_training(replace(TINY, **{field: value}), runs_root=tmp_path)
    assert list_runs(tmp_path) == []


@pytest.mark.parametrize("field", list(TRAIN_BOUNDS))
def test_the_exact_bounds_are_accepted_and_the_next_value_out_refused(field):
    from dataclasses import replace

    lo, hi = TRAIN_BOUNDS[field]
    for value in (lo, hi):
        assert getattr(replace(TINY, **{field: value}).validate(), field) == value
    outside = (lo - 1, hi + 1) if isinstance(lo, int) else (math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf))
    kind = "a whole number" if isinstance(lo, int) else "a number"
    for value in outside:
        with pytest.raises(InvalidTrainRequest, match=f"^{field} must be {kind} between {lo} and {hi}, not {value!r}$"):
            replace(TINY, **{field: value}).validate()


@pytest.mark.parametrize(
    "field,value", [("epochs", 2.5), ("epochs", True), ("seed", 1.5), ("lr", True), ("dropout", "0.3")]
)
def test_a_value_of_the_wrong_kind_is_refused_even_inside_the_bounds(field, value):
    from dataclasses import replace

    with pytest.raises(InvalidTrainRequest, match=rf"^{field} must be"):
        replace(TINY, **{field: value}).validate()


def test_two_simultaneous_starts_launch_one_training(tmp_path, data_root):
    outcomes, barrier = [], threading.Barrier(2)

    def submit():
        barrier.wait()
        try:
            outcomes.append(start_training(TINY, runs_root=tmp_path, data_dir=str(data_root)))
        except TrainingBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [o for o in outcomes if isinstance(o, str)]
    try:
        assert len(started) == 1 and sum(isinstance(o, TrainingBusy) for o in outcomes) == 1
    finally:
        for run_id in started:
            pid = _pid(safe_run_dir(run_id, tmp_path))
            os.kill(pid, signal.SIGKILL)
            _wait(lambda: not pid_alive(pid), "the training to stop", timeout=60)


@pytest.mark.parametrize("callers_policy, expected", [("", None), ("ACTIVE", "ACTIVE"), (None, "PASSIVE")])
def test_a_training_gets_the_openmp_wait_policy_the_user_chose(
    tmp_path, data_root, monkeypatch, callers_policy, expected
):
    # scripts/app makes the app's own OpenMP threads sleep while they wait and records the caller's policy; a
    # training the app starts gets the caller's policy back (OpenMP's default when none: spinning trains faster).
    # Without scripts/app (None), the policy in the environment is the user's own and is kept.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    if callers_policy is None:
        monkeypatch.delenv(TRAINING_WAIT_POLICY_ENV, raising=False)
    else:
        monkeypatch.setenv(TRAINING_WAIT_POLICY_ENV, callers_policy)
    run_id = start_training(TINY, runs_root=tmp_path, data_dir=str(data_root))
    pid = _pid(safe_run_dir(run_id, tmp_path))
    try:
        environ = psutil.Process(pid).environ()
        assert environ.get("OMP_WAIT_POLICY") == expected and TRAINING_WAIT_POLICY_ENV not in environ
    finally:
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not pid_alive(pid), "the training to stop", timeout=60)
