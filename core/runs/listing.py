"""What runs/ holds: one RunInfo per run folder, read from its records and checked; ids stay inside runs/."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core import paths
from core.errors import DigitsError
from core.io import UnreadableRecord
from core.runs import records
from core.runs.processes import heartbeat_fresh, training_process

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
ENDED = ("finished", "failed", "cancelled", "interrupted")


class InvalidRunId(DigitsError, ValueError):
    """A run id that is not a plain folder name inside runs/."""


class RunIdTaken(DigitsError, FileExistsError):
    """A run id that already names a run: a second run would mix its records into the first's."""


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
    sweep: dict | None = None  # for a sweep's run: sweep_id, trial, seed, grid point, host (core.runs.sweep)

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
        raise RunIdTaken(
            f"run id {run_dir.name!r} is taken in {run_dir.parent} (it holds {taken[0]}): a run id names "
            "one run. Choose another --run-id, or delete that folder."
        )
    return run_dir


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
    return RunInfo(
        run_id=run_id,
        path=path,
        state=state,
        trial=status.get("trial") or (config or {}).get("name"),
        started=status["started"],
        ended=status.get("ended"),
        epochs_total=((config or {}).get("train") or {}).get("epochs"),
        history=history,
        error=status.get("error"),
        summary=summary,
        config=config,
        phase=status.get("phase"),
        owner=launch.get("owner"),
        sweep=sweep,
    )


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
