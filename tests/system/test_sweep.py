"""Sweeps of tiny trials: Ray against the serial backend, a Ray head joined by address, a killed worker, a killed
driver resumed, and the local-process fallback when Ray cannot be imported."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from core.runs.sweep import Engine, load_plan, make_plan, run_sweep

REPO = Path(__file__).resolve().parents[2]
# Two tiny trials of different designs: 40 training pairs, 1 epoch, 100 validation and test images.
BUDGET = {"epochs": 1, "limit": 40, "eval_limit": 100}
TRIALS = ["try1", "try9"]
TIMING = ("seconds", "samples_per_s")  # per-epoch figures that differ from run to run


def comparable(run_dir: Path) -> dict:
    """A run's records without what no two runs share (wall times)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("train_seconds")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "config": json.loads((run_dir / "config.json").read_text()),
        "summary": summary,
        "metrics": [{k: v for k, v in row.items() if k not in TIMING} for row in rows],
    }


def records_of(runs: Path, sweep_id: str) -> dict[str, dict]:
    """(trial, seed) -> comparable records, for every run of the sweep."""
    out = {}
    for run_dir in sorted(runs.glob(f"{sweep_id}-*")):
        label = json.loads((run_dir / "sweep.json").read_text())
        out[(label["trial"], label["seed"])] = comparable(run_dir)
    return out


def sweep(runs: Path, data_root: Path, engine: Engine, trials=TRIALS, lines: list | None = None) -> tuple[str, list]:
    plan = make_plan(trials, [0], BUDGET, {})
    results = run_sweep(plan, runs, engine, str(data_root), out=(lines.append if lines is not None else print))
    return plan.sweep_id, results


@pytest.fixture(scope="module")
def serial(data_root, tmp_path_factory) -> dict:
    """The two trials one after another in local processes: the reference records."""
    runs = tmp_path_factory.mktemp("serial")
    sweep_id, results = sweep(runs, data_root, Engine("local", workers=1))
    assert [r["state"] for r in results] == ["finished", "finished"]
    return records_of(runs, sweep_id)


def _span(run_dir: Path) -> tuple[float, float]:
    status = json.loads((run_dir / "status.json").read_text())
    return status["started"], status["ended"]


@pytest.mark.ray
def test_ray_gives_the_serial_records_and_runs_trials_at_once(serial, data_root, tmp_path):
    runs = tmp_path / "runs"
    lines = []
    sweep_id, results = sweep(runs, data_root, Engine("ray", workers=2), lines=lines)
    assert sorted(r["state"] for r in results) == ["finished", "finished"]
    assert records_of(runs, sweep_id) == serial
    (a0, a1), (b0, b1) = (_span(d) for d in sorted(runs.glob(f"{sweep_id}-*")))
    assert max(a0, b0) < min(a1, b1), "the two trials did not run at the same time"
    assert any("on Ray (local)" in line for line in lines)
    assert sum("done," in line for line in lines) == 2 and any("[2/2 done, 0 failed]" in line for line in lines)
    for d in runs.glob(f"{sweep_id}-*"):
        assert json.loads((d / "sweep.json").read_text())["ray_node"]


def test_without_ray_the_same_command_runs_local_processes(serial, data_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    runs = tmp_path / "runs"
    lines = []
    sweep_id, results = sweep(runs, data_root, Engine("auto", workers=2), lines=lines)
    assert any("Ray is not installed" in line and "local processes" in line for line in lines)
    assert sorted(r["state"] for r in results) == ["finished", "finished"]
    assert records_of(runs, sweep_id) == serial


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(head: subprocess.Popen, temp: Path) -> None:
    """Stop this head only (`ray stop` would stop every Ray on the machine): its process group, then any of its
    processes that left it, found by the head's own temp dir on their command line."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, sig)
        try:
            head.wait(20)
            break
        except subprocess.TimeoutExpired:
            continue
    for proc in psutil.process_iter(["cmdline"]):
        if str(temp) in " ".join(proc.info["cmdline"] or []):
            proc.kill()


@pytest.fixture
def ray_head():
    """A Ray head on 127.0.0.1 with 2 CPUs and its own token, started for the test and stopped after it."""
    port = _free_port()
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # Ray's socket paths must stay short: not tmp_path
    head = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            str(temp),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait(lambda: _listening(port) or head.poll() is not None, "the Ray head to listen", 180)
        assert head.poll() is None, "ray start --head exited"
        yield f"127.0.0.1:{port}", env
    finally:
        _stop(head, temp)
        shutil.rmtree(temp, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _head_node_id(address: str, env: dict) -> str:
    code = f"import ray; ray.init(address={address!r}, log_to_driver=False); print(ray.nodes()[0]['NodeID'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.ray
def test_sweep_joins_a_ray_head_by_address(ray_head, data_root, tmp_path):
    address, env = ray_head
    runs = tmp_path / "runs"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.sweep",
            "--trials",
            "try1",
            "--seeds",
            "3",
            "--epochs",
            "1",
            "--limit",
            "40",
            "--eval-limit",
            "100",
            "--address",
            address,
            "--out",
            str(runs),
            "--data-dir",
            str(data_root),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"on Ray at {address}" in out.stdout
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir() and not d.name.startswith(".")]
    label = json.loads((run_dir / "sweep.json").read_text())
    assert label["seed"] == 3 and json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert label["ray_node"] == _head_node_id(address, env)  # the trial ran on the head this test started


def _wait(condition, what: str, timeout: float = 300.0):
    deadline = time.monotonic() + timeout  # a guard against hanging, not a timing assertion
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {timeout:.0f} s for {what}")
        time.sleep(0.05)
    return found


def _training_pid(runs: Path):
    """The pid of a sweep's core.train process once it has started loading data, else None."""
    for status in runs.glob("sweep-*/status.json"):
        try:
            data = json.loads(status.read_text())
        except (OSError, ValueError):
            continue
        if data.get("state") == "running" and data.get("phase") in ("loading data", "training"):
            return data["pid"]
    return None


@pytest.mark.ray
def test_a_worker_killed_mid_trial_is_retried_and_the_sweep_completes(data_root, tmp_path):
    runs = tmp_path / "runs"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.sweep",
            "--trials",
            "try1",
            "--epochs",
            "1",
            "--limit",
            "40",
            "--eval-limit",
            "100",
            "--workers",
            "1",
            "--out",
            str(runs),
            "--data-dir",
            str(data_root),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid = _wait(lambda: _training_pid(runs), "the trial's training to start")
        worker = psutil.Process(pid).parent()
        assert "core.train" not in " ".join(worker.cmdline())  # the Ray worker watching it, not the training
        worker.kill()
        out, err = driver.communicate(timeout=600)
    finally:
        driver.kill()
    assert driver.returncode == 0, err[-2000:]
    assert "failed, retrying" in out and "[1/1 done, 0 failed]" in out
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # died with its worker


def test_a_killed_driver_is_resumed_without_redoing_finished_trials(data_root, tmp_path):
    runs = tmp_path / "runs"
    argv = [
        sys.executable,
        "-m",
        "core.sweep",
        "--engine",
        "local",
        "--workers",
        "1",
        "--out",
        str(runs),
        "--data-dir",
        str(data_root),
    ]
    driver = subprocess.Popen(
        [*argv, "--trials", *TRIALS, "--epochs", "1", "--limit", "40", "--eval-limit", "100"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        first = driver.stdout.readline()
        sweep_id = first.split()[1].rstrip(":")
        done = _wait(lambda: (line := driver.stdout.readline()) and "[1/2 done" in line and line, "a first trial")
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the training it runs, at once
    finally:
        driver.kill()
        driver.wait()
    finished = done.split()[4]
    before = {p.name: p.stat().st_mtime_ns for p in (runs / finished).iterdir()}
    plan = load_plan(runs, sweep_id)
    assert plan.trials == tuple(TRIALS)
    out = subprocess.run(
        [*argv, "--resume", sweep_id], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 trials, 1 finished already, 1 to run" in out.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (runs / finished).iterdir()} == before  # not trained again
    states = {d.name: json.loads((d / "status.json").read_text())["state"] for d in runs.glob(f"{sweep_id}-*")}
    assert sorted(states.values()) == ["finished", "finished"] and len(states) == 2
