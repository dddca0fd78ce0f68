"""Training runs as background processes: start one at a time, list, follow, cancel; ids stay inside runs/."""
from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core import paths
from core.errors import DigitsError
from core.io import process_alive, read_jsonl, write_json
from core.limits import TRAIN_BOUNDS

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class InvalidRunId(DigitsError, ValueError):
    """A run id that is not a plain folder name inside runs/."""


class TrainingBusy(DigitsError, RuntimeError):
    """Another training is already running."""


@dataclass(frozen=True)
class TrainRequest:
    """What the sidebar form may ask for, with the bounds an anonymous visitor gets."""

    trial: str = "fused"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    dropout: float = 0.3
    train_fraction: float = 0.2
    seed: int = 0

    BOUNDS = TRAIN_BOUNDS

    def validate(self) -> "TrainRequest":
        from core.trials import TRIALS

        if self.trial not in TRIALS:
            raise ValueError(f"unknown trial {self.trial!r}")
        for name, (lo, hi) in self.BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
        return self

    def argv(self) -> list[str]:
        return ["--trial", self.trial, "--epochs", str(self.epochs), "--batch-size", str(self.batch_size),
                "--lr", repr(self.lr), "--dropout", repr(self.dropout), "--train-fraction", repr(self.train_fraction),
                "--seed", str(self.seed)]


@dataclass
class RunInfo:
    run_id: str
    path: Path
    state: str  # running, finished, failed, cancelled, interrupted, unknown
    trial: str | None = None
    started: float | None = None
    ended: float | None = None
    epochs_total: int | None = None
    history: list[dict] = field(default_factory=list)
    error: str | None = None
    summary: dict | None = None

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


# Set by app.py when it, not the user, chose OMP_WAIT_POLICY=PASSIVE for its own process: trainings it starts
# get OpenMP's default back (spinning threads train ~30% faster on an idle machine).
APP_WAIT_POLICY_ENV = "DIGITS_APP_SET_OMP_WAIT_POLICY"


def pid_alive(pid: int | None) -> bool:
    """A live, non-zombie process that is a core.train job (pids get reused)."""
    if not pid:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own finished child, so it stops looking alive
    except ChildProcessError:
        pass
    if not process_alive(pid):
        return False
    try:
        return b"core.train" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, json.JSONDecodeError):
        return None


def run_info(run_id: str, runs_root: Path | None = None) -> RunInfo:
    path = safe_run_dir(run_id, runs_root)
    status = _read_json(path / "status.json") or {}
    config = _read_json(path / "config.json") or {}
    state = status.get("state", "unknown")
    if state == "running" and not pid_alive(status.get("pid")):
        state = "interrupted"  # killed without a chance to say so
    summary = _read_json(path / "summary.json") if state == "finished" else None
    return RunInfo(run_id=run_id, path=path, state=state, trial=status.get("trial") or config.get("name"),
                   started=status.get("started"), ended=status.get("ended"),
                   epochs_total=(config.get("train") or {}).get("epochs"), history=read_jsonl(path / "metrics.jsonl"),
                   error=status.get("error"), summary=summary)


def list_runs(runs_root: Path | None = None) -> list[RunInfo]:
    """Every run folder, newest first."""
    root = paths.runs_dir(runs_root)
    if not root.is_dir():
        return []
    # A symlink could point outside runs/ (safe_run_dir refuses it): skip it rather than fail every listing.
    runs = [run_info(p.name, runs_root) for p in root.iterdir()
            if p.is_dir() and not p.is_symlink() and RUN_ID.fullmatch(p.name)]
    return sorted(runs, key=lambda r: r.started or 0, reverse=True)


def active_training(runs_root: Path | None = None) -> RunInfo | None:
    return next((r for r in list_runs(runs_root) if r.state == "running"), None)


def start_training(request: TrainRequest, runs_root: Path | None = None, data_dir: str | None = None) -> str:
    """Validate, then spawn `python -m core.train` detached from this process; returns the run id."""
    request.validate()
    root = paths.runs_dir(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two submits at once: the second sees the first's run
        busy = active_training(runs_root)
        if busy:
            raise TrainingBusy(f"a training is already running ({busy.run_id}); wait for it or cancel it")
        run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{request.trial}-{os.urandom(3).hex()}"
        run_dir = safe_run_dir(run_id, runs_root)
        run_dir.mkdir()
        env = dict(os.environ)
        if env.pop(APP_WAIT_POLICY_ENV, None):  # the app's OpenMP setting was for itself, not for training
            env.pop("OMP_WAIT_POLICY", None)
        if data_dir:
            env[paths.DATA_DIR_ENV] = str(data_dir)
        with open(run_dir / "train.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core.train", *request.argv(), "--run-id", run_id, "--out", str(root), "--no-progress"],
                cwd=paths.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the Streamlit session that started it
            )
        # Written before the child gets going, so a page reload right now already sees the run.
        write_json(run_dir / "status.json", {"state": "running", "pid": proc.pid, "started": time.time(), "trial": request.trial})
    return run_id


def cancel(run_id: str, runs_root: Path | None = None) -> bool:
    """Ask a running training to stop (it marks itself cancelled); False if it was not running."""
    info = run_info(run_id, runs_root)
    status = _read_json(info.path / "status.json") or {}
    if info.state != "running":
        return False
    try:
        os.kill(int(status["pid"]), signal.SIGTERM)
    except (ProcessLookupError, KeyError, ValueError):
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
