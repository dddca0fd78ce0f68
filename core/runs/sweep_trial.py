"""One trial of a sweep: a `python -m core.train` process, watched (heartbeat, retries, resume) wherever it runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core import paths
from core.errors import DigitsError
from core.io import UnreadableRecord, write_json
from core.runs import records
from core.runs.processes import HEARTBEAT_FILE, training_process

LABEL_FILE = "sweep.json"  # in each run folder: which sweep, trial, seed and grid point it is
HEARTBEAT_EVERY_S = 10.0  # well inside core.runs.processes.HEARTBEAT_STALE_S
POLL_S = 1.0
ProgressFn = Callable[[str], None]


class SweepError(DigitsError, RuntimeError):
    """A sweep that cannot be planned, resumed or run."""


class TrialFailed(SweepError):
    """One trial's training process failed; the engine may retry it."""


@dataclass(frozen=True)
class TrialSpec:
    """One training of a sweep: a named trial, a seed and training overrides (the budget and a grid point)."""

    sweep_id: str
    trial: str
    seed: int
    overrides: dict = field(default_factory=dict)  # core.train flags: epochs, train_fraction, lr, ...
    grid: dict = field(default_factory=dict)  # the grid point alone (a subset of overrides), for labels
    run_id: str = ""

    def argv(self, runs_root: Path, data_dir: str | None) -> list[str]:
        args = [
            "-m",
            "core.train",
            "--trial",
            self.trial,
            "--seed",
            str(self.seed),
            "--run-id",
            self.run_id,
            "--out",
            str(runs_root),
            "--no-progress",
        ]
        for name, value in sorted(self.overrides.items()):
            args += [f"--{name.replace('_', '-')}", repr(value) if isinstance(value, float) else str(value)]
        return args + (["--data-dir", data_dir] if data_dir else [])

    def label(self) -> dict:
        return {"sweep_id": self.sweep_id, "trial": self.trial, "seed": self.seed, "grid": self.grid}


def finished_summary(run_dir: Path) -> dict | None:
    """The summary of a run that finished, else None (running, failed, killed, unreadable or never started)."""
    try:
        status = records.read_json(run_dir / "status.json", records.STATUS)
        if not status or status["state"] != "finished":
            return None
        return records.read_json(run_dir / "summary.json", records.SUMMARY)
    except UnreadableRecord:
        return None


def headline_f1(summary: dict) -> dict:
    return {h: round(summary["final"][h]["macro_f1"], 2) for h in records.HEAD_NAMES if h in summary.get("final", {})}


# Linux: the training dies with the process that watches it (PR_SET_PDEATHSIG survives the exec), so a killed Ray
# worker or driver leaves no orphan training; if the watcher died before that was set, the training does not start.
# A trampoline instead of Popen's preexec_fn, which is unsafe in threads (Tune and the local engine watch from threads).
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; watcher = int(sys.argv[1]); "
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL); "
    "os.getppid() == watcher or sys.exit(137); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def _command(argv: list[str]) -> list[str]:
    if sys.platform == "linux":
        return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]
    return [sys.executable, *argv]


def _clear_attempt(run_dir: Path, runs_root: Path) -> None:
    """Remove what an earlier, unfinished attempt at this trial left, stopping its training if it still runs."""
    try:
        status = records.read_json(run_dir / "status.json", records.STATUS) or {}
    except UnreadableRecord:
        status = {}
    proc = training_process(run_dir.name, runs_root, status) if status else None
    if proc is not None:
        proc.kill()
        proc.wait(30)
    shutil.rmtree(run_dir, ignore_errors=True)


def run_trial(
    spec: TrialSpec,
    runs_root: Path,
    data_dir: str | None = None,
    threads: int = 1,
    env: dict | None = None,
    where: dict | None = None,
) -> dict:
    """Train spec in a `python -m core.train` process and wait; its records land in runs_root/<run_id>.

    A trial that finished already is not trained again (resume); an unfinished earlier attempt is cleared first.
    where: more for the run's label (the Ray node). Returns {"run_id", "state", "seconds", "f1": {head: final
    macro-F1}}; TrialFailed when training fails."""
    runs_root = Path(runs_root).resolve()
    run_dir = runs_root / spec.run_id
    done = finished_summary(run_dir)
    if done is not None:
        return {"run_id": spec.run_id, "state": "finished", "seconds": 0.0, "f1": headline_f1(done), "resumed": True}
    if run_dir.exists():
        _clear_attempt(run_dir, runs_root)
    run_dir.mkdir(parents=True)
    host = socket.gethostname()
    write_json(run_dir / LABEL_FILE, {**spec.label(), "host": host, "worker_pid": os.getpid(), **(where or {})})
    child_env = {**os.environ, **(env or {}), "DIGITS_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    started, spawned = time.perf_counter(), time.time()
    with open(run_dir / "train.log", "wb") as log:
        proc = subprocess.Popen(
            _command(spec.argv(runs_root, data_dir)),
            cwd=paths.REPO_ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        # Written before the training gets going (as core.runs.store.start_training does), so the run lists at once.
        write_json(
            run_dir / "status.json",
            {"state": "running", "pid": proc.pid, "started": time.time(), "trial": spec.trial, "phase": "starting"},
        )
        beat = 0.0
        while proc.poll() is None:
            if time.monotonic() - beat >= HEARTBEAT_EVERY_S:
                beat = time.monotonic()
                write_json(run_dir / HEARTBEAT_FILE, {"at": time.time(), "host": host, "pid": os.getpid()})
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(POLL_S)
    (run_dir / HEARTBEAT_FILE).unlink(missing_ok=True)
    seconds, exited = round(time.perf_counter() - started, 2), time.time()
    summary = finished_summary(run_dir)
    if summary is not None:
        return {
            "run_id": spec.run_id,
            "state": "finished",
            "seconds": seconds,
            "f1": headline_f1(summary),
            "spawned": spawned,
            "exited": exited,
        }
    if (run_dir / "cancel.json").exists():  # cancelled from the app or `core.runs cancel`: not retried
        return {"run_id": spec.run_id, "state": "cancelled", "seconds": seconds, "f1": {}}
    last = _last_line(run_dir / "train.log")
    raise TrialFailed(f"{spec.run_id}: training exited with code {proc.returncode}: {last}")


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


@dataclass
class Progress:
    """Counts finished trials and prints one line for each, with the live count."""

    total: int
    out: ProgressFn = print
    after: Callable[[dict], None] | None = None  # called with each finished trial's result (the driver exports it)
    done: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __getstate__(self) -> dict:  # Tune pickles its callbacks, and with them this
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock())

    def finished(self, result: dict) -> None:
        with self.lock:
            self.done += 1
            f1 = " ".join(f"{h} {v:.2f}" for h, v in result.get("f1", {}).items())
            how = "already finished" if result.get("resumed") else f"{result.get('seconds', 0):.0f} s"
            self.out(
                f"[{self.done}/{self.total} done, {self.failed} failed] {result['run_id']} {result['state']}: "
                f"F1 {f1 or '-'} ({how})"
            )
        if self.after and result["state"] == "finished":
            self.after(result)

    def error(self, run_id: str, message: str, retrying: bool) -> None:
        with self.lock:
            if not retrying:
                self.failed += 1
            self.out(
                f"[{self.done}/{self.total} done, {self.failed} failed] {run_id} "
                f"{'failed, retrying' if retrying else 'FAILED'}: {message}"
            )


@dataclass(frozen=True)
class Engine:
    """How to run: Ray (local or the cluster at address) or local processes; resources per trial."""

    kind: str = "auto"  # "auto": Ray if importable, "ray", or "local"
    address: str | None = None
    workers: int | None = None  # trials at once (default: cores // cpus_per_trial on a local engine)
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    max_failures: int = 2


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        return False
    return True


def local_workers(engine: Engine) -> int:
    cores = os.cpu_count() or 1
    return max(1, min(engine.workers or cores // max(1, engine.cpus_per_trial), cores))
