"""Which process is a run's training: a pid read from a file is used only once psutil has shown it is ours."""

from __future__ import annotations

import functools
import os
import subprocess
import time
from pathlib import Path

import psutil

from core.io import UnreadableRecord, process_alive
from core.runs import records

# psutil's create_time adds the boot time, which Linux gives in whole seconds: a process may seem to start up to 1 s
# after the status it wrote at once.
CLOCK_SLACK_S = 2.0
HEARTBEAT_FILE = "heartbeat.json"  # a sweep's watcher rewrites it while the training it started runs, on any host
HEARTBEAT_STALE_S = 60.0  # a heartbeat older than this (or from a clock this far off) no longer says "running"
children: dict[int, subprocess.Popen] = {}  # trainings this process started: polled, so they do not stay zombies


def _reap(pid: int) -> None:
    child = children.get(pid)
    if child is not None and child.poll() is not None:
        children.pop(pid, None)


def pid_alive(pid: int | None) -> bool:
    """A live, non-zombie process (our own finished trainings are reaped first)."""
    if not isinstance(pid, int) or pid <= 1:
        return False
    _reap(pid)
    return process_alive(pid)


@functools.cache
def _user() -> str:
    return psutil.Process().username()


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _trains(proc: psutil.Process, run_id: str, root: Path) -> bool:
    """Whether proc's command line is `python -m core.train` writing run_id into root."""
    argv = proc.cmdline()
    at = next((i for i in range(1, len(argv)) if argv[i] == "core.train" and argv[i - 1] == "-m"), None)
    if at is None:
        return False
    args = argv[at + 1 :]
    given = _option(args, "--run-id")
    if given is None:  # core.train names the run time-trial-pid itself
        given = run_id if run_id.endswith(f"-{proc.pid}") else None
    if given != run_id:
        return False
    out = _option(args, "--out")
    return out is None or (Path(proc.cwd()) / out).resolve() == root.resolve()


def training_process(run_id: str, root: Path, status: dict) -> psutil.Process | None:
    """The live process training this run, if the pid in its status is really that: a process of this user, started
    before the status was written, whose command line trains this run. None otherwise; pids <= 1 are never looked at."""
    pid = status.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or pid == os.getpid():
        return None
    _reap(pid)
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE or proc.username() != _user():
                return None
            if proc.create_time() > status["started"] + CLOCK_SLACK_S:  # the pid was reused since
                return None
            return proc if _trains(proc, run_id, Path(root)) else None
    except (psutil.Error, OSError, OverflowError, ValueError):
        return None


def heartbeat_fresh(run_dir: Path, now: float | None = None) -> bool:
    """Whether the process watching this run's training (a sweep's Ray worker, perhaps on another host of a cluster,
    where this host cannot see the pid) said within HEARTBEAT_STALE_S that it is alive."""
    try:
        beat = records.read_json(Path(run_dir) / HEARTBEAT_FILE, records.HEARTBEAT)
    except UnreadableRecord:
        return False
    now = time.time() if now is None else now
    return beat is not None and abs(now - beat["at"]) <= HEARTBEAT_STALE_S
