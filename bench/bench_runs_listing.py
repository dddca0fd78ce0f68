"""Milliseconds to list runs/ and build the leaderboard rows, first (every record checked) and again (cached), for a
runs/ of good runs plus the fuzz test's malformed ones."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from core.runs.leaderboard import entries
from core.runs.listing import list_runs
from tests.app.test_runs_fuzz import GOOD, _corrupt, _text


def build(root: Path, good: int, malformed: int) -> None:
    rng = random.Random(14)
    for i in range(good + malformed):
        run = root / f"20260102-{i:06d}-fused-{i:06x}"
        run.mkdir(parents=True)
        for name, data in GOOD.items():
            (run / name).write_text(_text(name, data))
        if i >= good:
            _corrupt(rng, run, fifo_ok=False)


def timed(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        out.append(1000 * (time.perf_counter() - started))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--good", type=int, default=50)
    p.add_argument("--malformed", type=int, default=520)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        build(root, args.good, args.malformed)
        first = timed(lambda: list_runs(root), 1)[0]
        again = timed(lambda: list_runs(root), args.repeat)
        board = timed(lambda: entries(runs_root=root), args.repeat)
        print(
            json.dumps(
                {
                    "runs": args.good + args.malformed,
                    "list_runs first ms": round(first),
                    "list_runs again ms (median)": round(statistics.median(again)),
                    "leaderboard rows again ms (median)": round(statistics.median(board)),
                }
            )
        )


if __name__ == "__main__":
    main()
