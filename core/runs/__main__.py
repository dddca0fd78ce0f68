"""List, cancel or prune training runs from the command line: `python -m core.runs list`."""

from __future__ import annotations

import argparse
import sys

from core.errors import DigitsError
from core.runs.listing import list_runs
from core.runs.retention import prune
from core.runs.store import cancel


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
            print("\n".join(f"deleted {r}" for r in prune(args.out)) or "nothing to delete")
    except DigitsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
