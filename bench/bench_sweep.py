"""Wall time of 4 small trials on the local Ray engine (2 workers) against the same trials one after another.

Prints both wall times, their ratio (target <= 0.6), Ray's start-up and the engine's overhead per trial (target
<= 2 s: from Tune starting a trial to its training process spawning, plus from that process's exit to the driver
hearing of it). Both runs in one session, on one machine, in the order serial then Ray.

    DIGITS_THREADS=1 python -m bench.bench_sweep
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from core import paths
from core.runs.sweep import Engine, make_plan, run_sweep

TRIALS = ["try1", "try2", "try9", "try5"]  # small designs: the trials' time is training, not the engine's
BUDGET = {"epochs": 1, "limit": 1000, "eval_limit": 2000}


def timed_sweep(runs: Path, engine: Engine, seed: int) -> tuple[float, list[dict]]:
    plan = make_plan(TRIALS, [seed], BUDGET, {})
    started = time.perf_counter()
    results = run_sweep(plan, runs, engine, str(paths.data_dir()), out=lambda line: print("  " + line, flush=True))
    return time.perf_counter() - started, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        print("serial (local processes, one at a time):", flush=True)
        serial, _ = timed_sweep(Path(tmp) / "serial", Engine("local", workers=1), args.seed)
        import ray

        from core.runs import ray_engine

        engine = Engine("ray", workers=2)
        started = time.perf_counter()
        ray_engine.connect(engine)
        startup = time.perf_counter() - started
        print("Ray Tune (local, 2 one-thread workers):", flush=True)
        try:
            on_ray, results = timed_sweep(Path(tmp) / "ray", engine, args.seed)
        finally:
            ray.shutdown()
    overheads = [r["engine_overhead_s"] for r in results if r.get("engine_overhead_s") is not None]
    print(
        f"serial: {serial:.1f} s; Ray: {on_ray:.1f} s after a {startup:.1f} s start-up "
        f"({on_ray + startup:.1f} s in all)"
    )
    print(
        f"ratio Ray/serial: {on_ray / serial:.2f} without start-up, {(on_ray + startup) / serial:.2f} with it "
        f"(target <= 0.6)"
    )
    if overheads:
        print(
            f"engine overhead per trial: mean {statistics.mean(overheads):.2f} s, max {max(overheads):.2f} s "
            f"over {len(overheads)} trials (target <= 2 s)"
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
