"""runs/ retention: past a count or a size, the oldest ended runs are deleted; runs results/ cites, and the runs of a
sweep whose plan is still in runs/.sweeps/, never are."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core import deployment, paths
from core.io import UnreadableRecord, process_alive
from core.runs import records
from core.runs.listing import ENDED, RunInfo, list_runs
from core.runs.results import load_results
from core.runs.sweep import SWEEPS_DIR

DELETING = ".deleting-"  # a run is renamed to this first, so no page ever lists it half deleted


def protected(results_dir: Path | None = None) -> set[str]:
    """Ids of the runs that committed results (results/*/*.json, "run_id") were made from."""
    return {r["run_id"] for r in load_results(results_dir) if isinstance(r.get("run_id"), str)}


def in_a_sweep(runs: list[RunInfo], root: Path) -> set[str]:
    """Ids of the runs of a sweep whose plan is still in runs/.sweeps/: a sweep is an operator's deliberate job, and a
    sweep run without --results has no other copy of its records (deleting the plan releases them)."""
    plans = root / SWEEPS_DIR
    return {r.run_id for r in runs if r.sweep and (plans / f"{r.sweep['sweep_id']}.json").is_file()}


def size_of(path: Path) -> int:
    """Bytes under path, not following symlinks."""
    total = 0
    for folder, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def _surely_ended(run: RunInfo) -> bool:
    """Ended, and not a run whose pid still lives but could not be checked (a training inside another program)."""
    if run.state not in ENDED:
        return False
    if run.state in ("interrupted", "cancelled"):
        try:
            status = records.read_json(run.path / "status.json", records.STATUS) or {}
        except UnreadableRecord:
            return False
        return status.get("state") != "running" or not process_alive(status.get("pid") or 0)
    return True


def _delete(path: Path, root: Path) -> bool:
    if path.parent != root or path.is_symlink() or not path.is_dir():
        return False
    doomed = root / f"{DELETING}{path.name}"
    try:
        os.rename(path, doomed)
    except OSError:
        return False
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def prune(
    runs_root: Path | None = None,
    keep_runs: int | None = None,
    keep_bytes: int | None = None,
    results_dir: Path | None = None,
) -> list[str]:
    """Delete the oldest ended runs until at most keep_runs runs remain and they take at most keep_bytes
    (both default to the deployment setting); returns the ids deleted, oldest first.

    Running runs, unreadable ones (their state is unknown), runs that results/ cites and the runs of a sweep still
    planned in runs/.sweeps/ are kept, even past a limit."""
    root = paths.runs_dir(runs_root).resolve()
    if keep_runs is None or keep_bytes is None:
        settings = deployment.load()
        keep_runs = settings.keep_runs if keep_runs is None else keep_runs
        keep_bytes = settings.keep_bytes if keep_bytes is None else keep_bytes
    for leftover in root.glob(f"{DELETING}*"):  # a prune that was killed half-way
        shutil.rmtree(leftover, ignore_errors=True)
    runs = list_runs(root)
    sizes = {r.run_id: size_of(r.path) for r in runs}
    count, total = len(runs), sum(sizes.values())
    keep = protected(results_dir) | in_a_sweep(runs, root)
    candidates = sorted(
        (r for r in runs if r.run_id not in keep and _surely_ended(r)), key=lambda r: (r.started or 0, r.run_id)
    )
    deleted = []
    for run in candidates:
        if count <= keep_runs and total <= keep_bytes:
            break
        if _delete(run.path, root):
            count, total = count - 1, total - sizes[run.run_id]
            deleted.append(run.run_id)
    return deleted
