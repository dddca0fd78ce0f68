"""Train a trial from the command line: `python -m core.train --trial fused`."""

from __future__ import annotations

import argparse
import json
import sys

from core import paths
from core.errors import DigitsError
from core.training.evaluate import headline
from core.training.loop import Cancelled, build_config, run
from core.trials import TRIALS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train a trial: Adam, class-weighted cross-entropy, validation each epoch, best and final "
        "checkpoints.",
    )
    p.add_argument("--trial", default="fused", choices=list(TRIALS), help="named configuration (default: fused)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the trial's)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: 32)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--dropout", type=float, default=None, help="dropout probability (default: the trial's)")
    p.add_argument("--train-fraction", type=float, default=None, help="fraction of MNIST training images (default: 1)")
    p.add_argument("--limit", type=int, default=None, help="at most this many training pairs (tiny smoke runs)")
    p.add_argument(
        "--eval-limit",
        type=int,
        default=None,
        help="at most this many validation and test images (tiny smoke runs; default: all)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument("--split", choices=["official", "loso"], default=None, help="FSDD split (default: official)")
    p.add_argument("--held-out-speaker", default=None, help="with --split loso: the speaker to test on")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    p.add_argument("--out", default=None, help="runs folder (default: $DIGITS_RUNS_DIR, else runs/)")
    p.add_argument("--run-id", default=None, help="name of the run folder (default: time-trial-pid)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        config = build_config(
            args.trial,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            dropout=args.dropout,
            train_fraction=args.train_fraction,
            limit=args.limit,
            eval_limit=args.eval_limit,
            seed=args.seed,
            split=args.split,
            held_out_speaker=args.held_out_speaker,
        )
        run_dir = run(
            config, paths.data_dir(args.data_dir), paths.runs_dir(args.out), args.run_id, progress=not args.no_progress
        )
    except (DigitsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        print("cancelled", file=sys.stderr)
        return 130
    summary = json.loads((run_dir / "summary.json").read_text())
    print(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "best_epoch": summary["best_epoch"],
                "best": headline(summary["best"]),
                "final": headline(summary["final"]),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
