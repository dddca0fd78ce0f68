"""Sweep trials x seeds (x a grid) on Ray Tune, locally or on a cluster; local processes when Ray is not installed."""

from __future__ import annotations

import argparse
import sys

from core import paths
from core.errors import DigitsError


def main(argv: list[str] | None = None) -> int:
    from core.runs.sweep import Engine, SweepError, load_plan, make_plan, parse_grid, run_sweep

    p = argparse.ArgumentParser(prog="python -m core.sweep", description=__doc__)
    p.add_argument(
        "--trials",
        nargs="+",
        metavar="TRIAL",
        help="trials to train (e.g. try1 ... try13); with --resume: only these of the sweep's, first",
    )
    p.add_argument(
        "--seeds", nargs="+", type=int, default=[0], metavar="SEED", help="one training per seed (default: 0)"
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs for every trial (default: each trial's own)")
    p.add_argument("--train-fraction", type=float, default=None, help="fraction of MNIST training images (default: 1)")
    p.add_argument("--limit", type=int, default=None, help="at most this many training pairs (tiny smoke sweeps)")
    p.add_argument(
        "--eval-limit",
        type=int,
        default=None,
        help="at most this many validation and test images (tiny smoke sweeps; default: all)",
    )
    p.add_argument(
        "--grid",
        nargs="*",
        default=[],
        metavar="FIELD=V1,V2",
        help="also sweep these training fields (epochs, batch_size, lr, dropout, train_fraction)",
    )
    p.add_argument("--resume", metavar="SWEEP_ID", help="finish this sweep: train its trials that have not finished")
    p.add_argument(
        "--engine",
        choices=["auto", "ray", "local"],
        default="auto",
        help="auto (default): Ray if installed, else local processes",
    )
    p.add_argument(
        "--address",
        default=None,
        help="join the Ray cluster at this address (default: $RAY_ADDRESS, else a local Ray on 127.0.0.1)",
    )
    p.add_argument("--workers", type=int, default=None, help="trials at once (default: cores / cpus per trial)")
    p.add_argument("--cpus-per-trial", type=int, default=1, help="CPUs per trial, also its torch threads (default: 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs each trial asks Ray for (default: 0)")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a trial whose worker or process died")
    p.add_argument(
        "--data-dir", default=None, help="dataset root on every node (default: $DIGITS_DATA_DIR, else data/)"
    )
    p.add_argument("--out", default=None, help="runs folder (default: $DIGITS_RUNS_DIR, else runs/)")
    p.add_argument(
        "--results",
        default=None,
        metavar="DIR",
        help="also write each finished trial's record (no weights) to DIR/<sweep id>/",
    )
    args = p.parse_args(argv)
    runs_root = paths.runs_dir(args.out)
    try:
        if args.cpus_per_trial < 1 or args.gpus_per_trial < 0 or args.max_failures < 0 or (args.workers or 1) < 1:
            raise SweepError(
                "--cpus-per-trial and --workers must be at least 1, --gpus-per-trial and --max-failures at least 0"
            )
        if args.resume:
            plan = load_plan(runs_root, args.resume)
        else:
            if not args.trials:
                raise SweepError("give --trials (or --resume SWEEP_ID)")
            budget = {
                "epochs": args.epochs,
                "train_fraction": args.train_fraction,
                "limit": args.limit,
                "eval_limit": args.eval_limit,
            }
            plan = make_plan(args.trials, args.seeds, budget, parse_grid(args.grid))
        engine = Engine(
            args.engine, args.address, args.workers, args.cpus_per_trial, args.gpus_per_trial, args.max_failures
        )
        data_dir = str(paths.data_dir(args.data_dir)) if args.data_dir else None
        results = run_sweep(
            plan,
            runs_root,
            engine,
            data_dir,
            args.results,
            out=lambda line: print(line, flush=True),
            only=args.trials if args.resume else None,
        )
    except DigitsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"stopped; resume with: python -m core.sweep --resume {plan.sweep_id}"
            + (f" --out {args.out}" if args.out else ""),
            file=sys.stderr,
        )
        return 130
    failed = [r["run_id"] for r in results if r["state"] == "failed"]
    print(
        f"sweep {plan.sweep_id}: {len(results) - len(failed)} trained now, {len(failed)} failed; runs in {runs_root}"
        + (f"; resume with --resume {plan.sweep_id}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
