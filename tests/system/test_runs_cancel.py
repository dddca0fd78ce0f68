"""Cancel acts in every phase of a real background training: loading the data, training, evaluating.

Each training is frozen (SIGSTOP) the moment it is seen in the phase, cancelled, then let go, so the cancel lands in
that phase however fast the machine is. How quickly it acts is measured by bench/bench_cancel.py, not here."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from core.deployment import Deployment
from core.runs.listing import run_info
from core.runs.store import TrainRequest, cancel, pid_alive, start_training

# Tiny, but long enough in each phase to be seen there: 2,000 pairs in batches of 8 (250 steps), one epoch.
REQUEST = TrainRequest(trial="fused", epochs=1, batch_size=8, train_fraction=1.0, limit=2000)


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def _epochs(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


PHASES = {
    "loading data": lambda d: _status(d).get("phase") == "loading data",
    "training": lambda d: _status(d).get("phase") == "training" and _epochs(d) == 0,
    "evaluating": lambda d: _epochs(d) == 1 and not (d / "summary.json").exists(),  # the test split, after epoch 1
}


def _wait(condition, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout  # a guard against hanging, not a timing assertion
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {timeout:.0f} s for {what}")
        time.sleep(0.02)


def _cancel_in(phase: str, runs: Path, data_root: Path) -> Path:
    """Start a training, freeze it once it is in phase, cancel it, let it go; returns its folder once it has exited."""
    in_phase = PHASES[phase]
    for _ in range(3):  # the phase can pass between two looks; then try again
        run_id = start_training(REQUEST, runs_root=runs, data_dir=str(data_root), settings=Deployment())
        run_dir = runs / run_id
        pid = _status(run_dir)["pid"]
        _wait(lambda: in_phase(run_dir) or not pid_alive(pid), phase)
        proc = psutil.Process(pid)
        proc.suspend()
        try:
            caught = pid_alive(pid) and in_phase(run_dir)
            if caught:
                assert cancel(run_id, runs) is True
            else:
                proc.kill()
        finally:
            proc.resume()
        _wait(lambda: not pid_alive(pid), "the training to exit")
        if caught:
            return run_dir
    pytest.fail(f"never caught the training while {phase}")


@pytest.mark.parametrize("phase", PHASES)
def test_cancel_stops_a_real_training_in_every_phase(tmp_path, data_root, phase):
    run_dir = _cancel_in(phase, tmp_path, data_root)
    status = _status(run_dir)
    # The training itself wrote "cancelled": its handler acted in this phase (it was not just killed).
    assert status["state"] == "cancelled", (run_dir / "train.log").read_text()[-2000:]
    assert status["phase"] == ("loading data" if phase == "loading data" else "training")
    assert _epochs(run_dir) == (1 if phase == "evaluating" else 0)
    assert not (run_dir / "summary.json").exists()
    assert run_info(run_dir.name, tmp_path).state == "cancelled"
