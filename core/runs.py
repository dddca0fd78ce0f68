"""Training runs as background processes: start one at a time, list, follow, cancel; ids stay inside runs/."""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from core import deployment, paths, records
from core.errors import DigitsError
from core.io import UnreadableRecord, write_json
from core.limits import TRAIN_BOUNDS
from core.processes import (CLOCK_SLACK_S, children, heartbeat_fresh, pid_alive,  # noqa: F401 - pid_alive: tests
                            training_process)

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
ENDED = ("finished", "failed", "cancelled", "interrupted")
START_LOCK_TIMEOUT_S = 30.0
HOUR_S = 3600.0
STARTS_FILE = ".starts.json"  # when trainings were started, for the hourly limit (runs/ retention may delete runs)


class InvalidRunId(DigitsError, ValueError):
    """A run id that is not a plain folder name inside runs/."""


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


class RunIdTaken(DigitsError, FileExistsError):
    """A run id that already names a run: a second run would mix its records into the first's."""


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

    def validate(self) -> "TrainRequest":
        from core.trials import TRIALS

        if self.trial not in TRIALS:
            raise InvalidTrainRequest(f"unknown trial {self.trial!r}")
        for name, (lo, hi) in self.BOUNDS.items():
            value = getattr(self, name)
            whole = isinstance(lo, int) and isinstance(hi, int)  # epochs, batch_size, seed: no 2.5 epochs
            kinds = (int,) if whole else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
                kind = "a whole number" if whole else "a number"
                raise InvalidTrainRequest(f"{name} must be {kind} between {lo} and {hi}, not {value!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 2):
            raise InvalidTrainRequest(f"limit must be a whole number of at least 2, not {self.limit!r}")
        return self

    def argv(self) -> list[str]:
        return ["--trial", self.trial, "--epochs", str(self.epochs), "--batch-size", str(self.batch_size),
                "--lr", repr(self.lr), "--dropout", repr(self.dropout), "--train-fraction", repr(self.train_fraction),
                "--seed", str(self.seed), *(["--limit", str(self.limit)] if self.limit is not None else [])]


@dataclass
class RunInfo:
    run_id: str
    path: Path
    state: str  # running, finished, failed, cancelled, interrupted, unreadable (error says why), missing
    trial: str | None = None
    started: float | None = None
    ended: float | None = None
    epochs_total: int | None = None
    history: list[dict] = field(default_factory=list)
    error: str | None = None
    summary: dict | None = None
    config: dict | None = None
    phase: str | None = None  # starting, loading data, training (written by core.train)
    owner: str | None = None  # hash of the session token of the visitor who started it from the app
    sweep: dict | None = None  # for a sweep's run: sweep_id, trial, seed, grid point, host (core.sweeps)

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def safe_run_dir(run_id: str, runs_root: Path | None = None) -> Path:
    """runs_root/run_id, refusing anything that could name a path outside runs_root."""
    root = paths.runs_dir(runs_root)
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):  # match() allows "x\n"
        raise InvalidRunId(f"{run_id!r} is not a valid run id (letters, digits, '.', '_', '-')")
    path = (root / run_id).resolve()
    if path.parent != root.resolve():
        raise InvalidRunId(f"{run_id!r} points outside {root}")
    return path


def claim_run_dir(run_dir: Path) -> Path:
    """Create run_dir for a new run, or take the folder start_training made; RunIdTaken if a run used it already.

    metrics.jsonl is created exclusively, so of two runs given one id only one proceeds."""
    run_dir.mkdir(parents=True, exist_ok=True)
    taken = [n for n in ("config.json", "summary.json", "best.pt", "final.pt") if (run_dir / n).exists()]
    try:
        if not taken:
            os.close(os.open(run_dir / "metrics.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        taken = ["metrics.jsonl"]
    if taken:
        raise RunIdTaken(f"run id {run_dir.name!r} is taken in {run_dir.parent} (it holds {taken[0]}): a run id names "
                         "one run. Choose another --run-id, or delete that folder.")
    return run_dir


# Set by app.py when it, not the user, chose OMP_WAIT_POLICY=PASSIVE for its own process: trainings it starts
# get OpenMP's default back (spinning threads train ~30% faster on an idle machine).
APP_WAIT_POLICY_ENV = "DIGITS_APP_SET_OMP_WAIT_POLICY"


def _read(run_id: str, path: Path, root: Path) -> RunInfo:
    status = records.read_json(path / "status.json", records.STATUS)
    if status is None:
        if not path.is_dir():
            return RunInfo(run_id, path, "missing", error="no such run")
        raise UnreadableRecord("no status.json")
    config = records.read_json(path / "config.json", records.CONFIG)
    launch = records.read_json(path / "launch.json", records.LAUNCH) or {}
    sweep = records.read_json(path / "sweep.json", records.SWEEP_LABEL)
    state = status["state"]
    if state == "running" and training_process(run_id, root, status) is None and not heartbeat_fresh(path):
        # Killed without a chance to say so, or cancelled before its handler was set up. (A sweep's training on
        # another host of a cluster has a pid this host cannot check; its watcher's heartbeat says it runs.)
        state = "cancelled" if records.read_json(path / "cancel.json", records.CANCEL) else "interrupted"
    history = records.read_jsonl(path / "metrics.jsonl", records.EPOCH_ROW, cut_tail_ok=state == "running") or []
    summary = records.read_json(path / "summary.json", records.SUMMARY) if state == "finished" else None
    return RunInfo(run_id=run_id, path=path, state=state, trial=status.get("trial") or (config or {}).get("name"),
                   started=status["started"], ended=status.get("ended"),
                   epochs_total=((config or {}).get("train") or {}).get("epochs"), history=history,
                   error=status.get("error"), summary=summary, config=config, phase=status.get("phase"),
                   owner=launch.get("owner"), sweep=sweep)


def run_info(run_id: str, runs_root: Path | None = None) -> RunInfo:
    """What the run's files say, checked; a run whose files fail the checks is "unreadable", error saying why."""
    path = safe_run_dir(run_id, runs_root)
    try:
        return _read(run_id, path, paths.runs_dir(runs_root))
    except UnreadableRecord as exc:
        return RunInfo(run_id, path, "unreadable", error=str(exc))


def list_runs(runs_root: Path | None = None) -> list[RunInfo]:
    """Every run folder, newest first. Symlinks and other names are not runs (a symlink could leave runs/)."""
    root = paths.runs_dir(runs_root)
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    runs = [run_info(e.name, root) for e in entries if RUN_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    return sorted(runs, key=lambda r: r.started or 0, reverse=True)


def active_training(runs_root: Path | None = None) -> RunInfo | None:
    return next((r for r in list_runs(runs_root) if r.state == "running"), None)


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


def start_training(request: TrainRequest, runs_root: Path | None = None, data_dir: str | None = None,
                   session: str | None = None, settings: deployment.Deployment | None = None) -> str:
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
        raise TrainingLimit(f"{len(starts)} trainings started in the last hour, the most this server allows "
                            f"({settings.trainings_per_hour}); the next can start in {wait} min")
    from core.retention import prune

    prune(root, keep_runs=max(0, settings.keep_runs - 1), keep_bytes=settings.keep_bytes)  # room for this one
    run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{request.trial}-{os.urandom(3).hex()}"
    run_dir = safe_run_dir(run_id, root)
    run_dir.mkdir()
    write_json(run_dir / "launch.json", {"requested": now, "owner": owner_hash(session), "request": asdict(request)})
    env = dict(os.environ)
    if env.pop(APP_WAIT_POLICY_ENV, None):  # the app's OpenMP setting was for itself, not for training
        env.pop("OMP_WAIT_POLICY", None)
    if data_dir:
        env[paths.DATA_DIR_ENV] = str(data_dir)
    with open(run_dir / "train.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.train", *request.argv(), "--run-id", run_id, "--out", str(root), "--no-progress"],
            cwd=paths.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **_detached())
    children[proc.pid] = proc
    # Written before the child gets going, so a page reload right now already sees the run.
    write_json(run_dir / "status.json", {"state": "running", "pid": proc.pid, "started": time.time(),
                                         "trial": request.trial, "phase": "starting"})
    write_json(root / STARTS_FILE, {"starts": [*starts, now]})
    return run_id


def may_cancel(run: RunInfo, session: str | None, settings: deployment.Deployment | None = None) -> bool:
    """A visitor (session given) may cancel the runs their session started, or any if the setting says so;
    the operator (no session: the command line, tests) any."""
    if session is None:
        return True
    return (settings or deployment.load()).cancel_any_run or (run.owner is not None and run.owner == owner_hash(session))


def cancel(run_id: str, runs_root: Path | None = None, session: str | None = None,
           settings: deployment.Deployment | None = None) -> bool:
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.runs", description="List, cancel or prune the runs in runs/.")
    p.add_argument("action", choices=["list", "cancel", "prune"])
    p.add_argument("run_id", nargs="?", help="cancel: the run to stop")
    p.add_argument("--out", default=None, help="runs folder (default: $DIGITS_RUNS_DIR, else runs/)")
    args = p.parse_args(argv)
    try:
        if args.action == "list":
            for r in list_runs(args.out):
                print(f"{r.run_id}\t{r.state}\t{r.epochs_done}/{r.epochs_total or '?'} epochs\t{r.error or ''}")
        elif args.action == "cancel":
            print("cancelling" if cancel(args.run_id or "", args.out) else f"{args.run_id} is not running")
        else:
            from core.retention import prune

            print("\n".join(f"deleted {r}" for r in prune(args.out)) or "nothing to delete")
    except DigitsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
