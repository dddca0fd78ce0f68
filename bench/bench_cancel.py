"""Seconds from core.runs.store.cancel() to a training saying it stopped, and to its exit, per phase (target 2 s)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from core import paths
from core.deployment import Deployment
from core.runs.store import cancel, pid_alive, start_training
from tests.system.test_runs_cancel import PHASES, REQUEST, _status  # the phases as the test sees them


def once(phase: str, runs: Path, data_dir: Path, delay: float) -> tuple[float, float, str, str] | None:
    """Seconds from cancel() to the run's status saying it stopped and to its process's exit, the state it wrote and
    the phase it was in; None if the phase was missed."""
    run_id = start_training(REQUEST, runs_root=runs, data_dir=str(data_dir), settings=Deployment())
    run_dir = runs / run_id
    pid = _status(run_dir)["pid"]
    while not PHASES[phase](run_dir) and pid_alive(pid):
        time.sleep(0.01)
    time.sleep(delay)  # a little into the phase, not at its first instant
    if not pid_alive(pid) or not PHASES[phase](run_dir):
        cancel(run_id, runs)
        while pid_alive(pid):
            time.sleep(0.01)
        return None
    started = time.perf_counter()
    cancel(run_id, runs)
    said = None
    while pid_alive(pid):
        if said is None and _status(run_dir)["state"] != "running":
            said = time.perf_counter() - started
        time.sleep(0.005)
    exited = time.perf_counter() - started
    status = _status(run_dir)
    return said if said is not None else exited, exited, status["state"], status.get("phase", "?")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3, help="cancels per phase")
    p.add_argument("--delay", type=float, default=0.3, help="seconds into the phase before cancelling")
    args = p.parse_args()
    data_dir = paths.data_dir()
    print(
        f"load average at start: {os.getloadavg()[0]:.1f}; DIGITS_THREADS={os.environ.get('DIGITS_THREADS', 'unset')}"
    )
    print(
        "| phase | cancels | status says stopped: median / max s | process gone: median / max s | states written |\n"
        "|---|---:|---:|---:|---|"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for phase in PHASES:
            results = []
            while len(results) < args.repeat:
                result = once(phase, Path(tmp), data_dir, args.delay)
                if result:
                    results.append(result)
            said, gone = [r[0] for r in results], [r[1] for r in results]
            states = ", ".join(sorted({f"{r[2]} ({r[3]})" for r in results}))
            print(
                f"| {phase} | {len(results)} | {statistics.median(said):.2f} / {max(said):.2f} | "
                f"{statistics.median(gone):.2f} / {max(gone):.2f} | {states} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
