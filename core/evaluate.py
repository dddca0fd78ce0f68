"""Evaluate a checkpoint on the official split, or a recipe leave-one-speaker-out: `python -m core.evaluate`."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from core import paths
from core.errors import DigitsError
from core.features.conditions import CONDITIONS
from core.io import write_json
from core.model.checkpoint import feature_stats, load
from core.training.dataset import load_eval_data
from core.training.evaluate import calibrated_probs, evaluate_conditions, evaluate_split, image_logits
from core.training.loop import build_config
from core.training.loso import loso_audio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description="Evaluate a checkpoint or a recipe.")
    parser.add_argument(
        "--weights", default=str(paths.DEFAULT_WEIGHTS), help="checkpoint (default: weights/default.pt)"
    )
    parser.add_argument(
        "--split",
        choices=["official", "loso"],
        default="official",
        help="official: MNIST test + FSDD takes 0-4; loso: retrain the audio recipe with each speaker held out",
    )
    parser.add_argument(
        "--conditions",
        nargs="*",
        default=None,
        metavar="NAME",
        help=f"voice and room conditions to score (default: all of {', '.join(CONDITIONS)}; none: give the flag alone)",
    )
    parser.add_argument("--trial", default=None, help="loso only: a named recipe instead of the checkpoint's")
    parser.add_argument("--save", action="store_true", help="loso only: write results/loso/<recipe>.json")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="loso only: epochs per held-out speaker (default: the recipe's)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="loso only: at most this many training pairs (smoke runs)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="loso only: held-out speakers trained at once (processes)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    conditions = CONDITIONS if args.conditions is None else tuple(args.conditions)
    try:
        model, ckpt = load(args.weights)
        root = paths.data_dir(args.data_dir)
        stats = feature_stats(ckpt)
        data = load_eval_data(ckpt["run_config"], root, stats)
        if args.split == "official":
            result = {
                "weights": args.weights,
                "split": "official",
                "heads": evaluate_split(model, data.test, calibration=ckpt.get("calibration")),
                "conditions": evaluate_conditions(model, ckpt, data, root, conditions),
            }
        else:
            config = build_config(args.trial) if args.trial else ckpt["run_config"]
            image = None
            if "image" in model.modalities:
                logits = image_logits(model, data.test.images)
                image = (calibrated_probs({"image": logits}, ckpt.get("calibration"))["image"], data.test.labels)
            result = {
                "weights": args.weights,
                "split": "loso",
                **loso_audio(
                    config,
                    root,
                    epochs=args.epochs,
                    limit=args.limit,
                    conditions=conditions,
                    image_probs=image,
                    jobs=max(1, args.jobs),
                    on_speaker=lambda s, a: print(f"{s:>9}: {a:.1f}%", file=sys.stderr, flush=True),
                ),
            }
            if args.save:
                write_json(
                    paths.RESULTS_DIR / "loso" / f"{result['recipe']}.json",
                    {
                        **result,
                        "trial": result["recipe"],
                        "entry": f"{result['recipe']}, leave-one-speaker-out (audio)",
                    },
                )
    except (DigitsError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, default=_plain))
    else:
        _print_table(result)
    return 0


def _plain(value):
    return value.tolist() if isinstance(value, np.ndarray) else str(value)


def _print_table(result: dict) -> None:
    if result["split"] == "official":
        for head, m in result["heads"].items():
            print(
                f"{head:>6}: accuracy {m['accuracy']:.2f}%  macro-F1 {m['macro_f1']:.2f}%  "
                f"ECE {m['ece']:.2f}%  (n={m['n']})"
            )
        for condition, r in result["conditions"].items():
            a = r["audio"]
            line = f"{condition:>12}: audio accuracy {a['accuracy']:.2f}%  ECE {a['ece']:.2f}%"
            if "fusion" in r:
                f = r["fusion"]
                line += (
                    f"  fused {f['learned']['accuracy']:.2f}% (product {f['product']['accuracy']:.2f}%),"
                    f" {f['disagreements']} disagreements"
                )
            print(line)
    else:
        for speaker, acc in result["per_speaker"].items():
            print(f"{speaker:>12}: audio accuracy {acc:.1f}%")
        print(f"{'mean':>12}: {result['mean']:.1f}%   worst speaker: {result['min']:.1f}% ({result['worst_speaker']})")
        for condition, r in result["conditions"].items():
            print(f"{condition:>12}: mean {r['mean']:.1f}%  worst {r['min']:.1f}% ({r['worst_speaker']})")
        if result.get("calibration"):
            c = result["calibration"]
            print(
                f"temperature {c['temperature']:.3f}; ECE % (raw -> calibrated): "
                + ", ".join(f"{k} {v['raw']:.1f} -> {v['calibrated']:.1f}" for k, v in c["ece"].items())
            )


if __name__ == "__main__":
    sys.exit(main())
