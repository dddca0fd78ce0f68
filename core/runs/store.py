"""Training runs as background processes: start one at a time, list, follow, cancel; ids stay inside runs/."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from core import deployment, paths
from core.errors import DigitsError
from core.io import UnreadableRecord, write_json
from core.limits import TRAIN_BOUNDS
from core.runs import records
from core.runs.listing import RunInfo, active_training, run_info, safe_run_dir
from core.runs.processes import CLOCK_SLACK_S, children, pid_alive, training_process  # noqa: F401 - pid_alive: tests
from core.runs.retention import prune
from core.trials import TRIALS

START_LOCK_TIMEOUT_S = 30.0
HOUR_S = 3600.0
STARTS_FILE = ".starts.json"  # when trainings were started, for the hourly limit (runs/ retention may delete runs)


class InvalidTrainRequest(DigitsError, ValueError):
    """A training request outside the bounds a visitor may ask for."""


class TrainingBusy(DigitsError, RuntimeError):
    """Another training is already running."""


class TrainingOff(DigitsError, PermissionError):
    """The deployment setting turns training off."""


class TrainingLimit(DigitsError, RuntimeError):
    """The deployment setting's trainings per hour are used up."""


class NotYourRun(DigitsError, PermissionError):
    """A visitor asked to cancel a run another browser session started."""


@dataclass(frozen=True)
class TrainRequest:
    """What the sidebar form may ask for, with the bounds an anonymous visitor gets (limit: command line only)."""

    trial: str = "fused"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    dropout: float = 0.3
    train_fraction: float = 0.2
    seed: int = 0
    limit: int | None = None  # at most this many training pairs

    BOUNDS = TRAIN_BOUNDS

    def validate(self) -> TrainRequest:
        if self.trial not in TRIALS:
            raise InvalidTrainRequest(f"unknown trial {self.trial!r}")
        for name, (lo, hi) in self.BOUNDS.items():
            value = getattr(self, name)
            whole = isinstance(lo, int) and isinstance(hi, int)  # epochs, batch_size, seed: no 2.5 epochs
            kinds = (int,) if whole else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
                kind = "a whole number" if whole else "a number"
                raise InvalidTrainRequest(f"{name} must be {kind} between {lo} and {hi}, not {value!r}")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 2
        ):
            raise InvalidTrainRequest(f"limit must be a whole number of at least 2, not {self.limit!r}")
        return self

    def argv(self) -> list[str]:
        return [
            "--trial",
            self.trial,
            "--epochs",
            str(self.epochs),
            "--batch-size",
            str(self.batch_size),
            "--lr",
            repr(self.lr),
            "--dropout",
            repr(self.dropout),
            "--train-fraction",
            repr(self.train_fraction),
            "--seed",
            str(self.seed),
            *(["--limit", str(self.limit)] if self.limit is not None else []),
        ]


# Set by scripts/app to the OpenMP wait policy the caller had before it made the app's own threads sleep
# (OMP_WAIT_POLICY=PASSIVE): trainings get the caller's policy back, since spinning threads train faster.
TRAINING_WAIT_POLICY_ENV = "DIGITS_TRAINING_OMP_WAIT_POLICY"


def training_env(data_dir: str | None = None, base: dict | None = None) -> dict:
    """The environment of a training process: base (default os.environ) with the caller's OpenMP policy and data dir."""
    env = dict(os.environ if base is None else base)
    if TRAINING_WAIT_POLICY_ENV in env:
        policy = env.pop(TRAINING_WAIT_POLICY_ENV)
        env.pop("OMP_WAIT_POLICY", None)
        if policy:
            env["OMP_WAIT_POLICY"] = policy
    if data_dir:
        env[paths.DATA_DIR_ENV] = str(data_dir)
    return env


def owner_hash(session: str | None) -> str | None:
    return hashlib.sha256(session.encode()).hexdigest() if session else None


def recent_starts(runs_root: Path | None = None, now: float | None = None) -> list[float]:
    """When trainings were started in the last hour, oldest first."""
    now = time.time() if now is None else now
    try:
        ledger = records.read_json(paths.runs_dir(runs_root) / STARTS_FILE, records.STARTS) or {"starts": []}
    except UnreadableRecord:
        ledger = {"starts": []}  # rewritten by the next start; only someone with disk access can spoil it
    return sorted(t for t in ledger["starts"] if now - HOUR_S < t <= now + CLOCK_SLACK_S)


def _detached() -> dict:
    """Popen options that let a training outlive the Streamlit session (and the server) that started it."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def start_training(
    request: TrainRequest,
    runs_root: Path | None = None,
    data_dir: str | None = None,
    session: str | None = None,
    settings: deployment.Deployment | None = None,
) -> str:
    """Validate, then spawn `python -m core.train` detached from this process; returns the run id.

    session: the visitor's session token (the app's), recorded so only that session may cancel the run."""
    request.validate()
    settings = settings or deployment.load()
    if not settings.training:
        raise TrainingOff("training is turned off on this server (deployment setting `training`)")
    root = paths.runs_dir(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(root / ".start.lock", timeout=START_LOCK_TIMEOUT_S)
        lock.acquire()
    except Timeout:
        raise TrainingBusy("another training is being started right now; try again in a moment") from None
    try:  # two submits at once: the second sees the first's run
        return _start(request, root, data_dir, session, settings)
    finally:
        lock.release()


def _start(request: TrainRequest, root: Path, data_dir, session, settings) -> str:
    busy = active_training(root)
    if busy:
        raise TrainingBusy(f"a training is already running ({busy.run_id}); wait for it or cancel it")
    now = time.time()
    starts = recent_starts(root, now)
    if settings.trainings_per_hour is not None and len(starts) >= settings.trainings_per_hour:
        wait = math.ceil((starts[0] + HOUR_S - now) / 60) if starts else 60
        raise TrainingLimit(
            f"{len(starts)} trainings started in the last hour, the most this server allows "
            f"({settings.trainings_per_hour}); the next can start in {wait} min"
        )
    prune(root, keep_runs=max(0, settings.keep_runs - 1), keep_bytes=settings.keep_bytes)  # room for this one
    run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{request.trial}-{os.urandom(3).hex()}"
    run_dir = safe_run_dir(run_id, root)
    run_dir.mkdir()
    write_json(run_dir / "launch.json", {"requested": now, "owner": owner_hash(session), "request": asdict(request)})
    env = training_env(data_dir)
    with open(run_dir / "train.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "core.train",
                *request.argv(),
                "--run-id",
                run_id,
                "--out",
                str(root),
                "--no-progress",
            ],
            cwd=paths.REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **_detached(),
        )
    children[proc.pid] = proc
    # Written before the child gets going, so a page reload right now already sees the run.
    write_json(
        run_dir / "status.json",
        {"state": "running", "pid": proc.pid, "started": time.time(), "trial": request.trial, "phase": "starting"},
    )
    write_json(root / STARTS_FILE, {"starts": [*starts, now]})
    return run_id


def may_cancel(run: RunInfo, session: str | None, settings: deployment.Deployment | None = None) -> bool:
    """A visitor (session given) may cancel the runs their session started, or any if the setting says so;
    the operator (no session: the command line, tests) any."""
    if session is None:
        return True
    return (settings or deployment.load()).cancel_any_run or (
        run.owner is not None and run.owner == owner_hash(session)
    )


def cancel(
    run_id: str,
    runs_root: Path | None = None,
    session: str | None = None,
    settings: deployment.Deployment | None = None,
) -> bool:
    """Ask a running training to stop (it marks itself cancelled); False if it was not running.

    The request is recorded first, so a training stopped before it could say so still reads as cancelled."""
    root = paths.runs_dir(runs_root)
    info = run_info(run_id, root)
    if info.state != "running":
        return False
    if not may_cancel(info, session, settings):
        raise NotYourRun(f"run {run_id} was started from another browser session; only that session can cancel it")
    proc = training_process(run_id, root, records.read_json(info.path / "status.json", records.STATUS) or {})
    if proc is None:
        return False
    write_json(info.path / "cancel.json", {"requested": time.time()})
    try:
        proc.terminate()  # SIGTERM; on Windows it stops at once
    except psutil.Error:
        return False
    return True


def weights_of(run_id: str, runs_root: Path | None = None, which: str = "best") -> Path:
    """The checkpoint of a finished run (best or final)."""
    if which not in ("best", "final"):
        raise ValueError("which must be best or final")
    info = run_info(run_id, runs_root)
    if info.state != "finished":
        raise DigitsError(f"run {run_id} is {info.state}, not finished; only finished runs can be used")
    return info.path / f"{which}.pt"
