"""Accuracy, macro-F1 and confusion per head (fused, image, audio) on a test split; also a CLI."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from core.dataset import Split
from core.metrics import summarize
from core.models import DigitClassifier

EVAL_BATCH = 1000


@torch.inference_mode()
def predict_heads(model: DigitClassifier, split: Split, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Predicted digits per head: fused and image over the paired images, audio over the unique clips."""
    model.eval()
    out: dict[str, list] = {}
    clips = torch.from_numpy(split.clips[:, 0])
    images = torch.from_numpy(split.images)
    both = len(model.modalities) == 2
    for start in range(0, len(images), EVAL_BATCH):
        sl = slice(start, start + EVAL_BATCH)
        img = images[sl].to(device)
        if both:
            aud = clips[split.pairing[sl]].to(device)
            logits = model(image=img, audio=aud)
            out.setdefault("fused", []).append(logits["fused"].argmax(1).cpu())
        if "image" in model.modalities:
            out.setdefault("image", []).append(model(image=img)["image"].argmax(1).cpu())
    if "audio" in model.modalities:
        for start in range(0, len(clips), EVAL_BATCH):
            out.setdefault("audio", []).append(model(audio=clips[start : start + EVAL_BATCH].to(device))["audio"].argmax(1).cpu())
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def evaluate_split(model: DigitClassifier, split: Split, device: torch.device | str = "cpu") -> dict[str, dict]:
    """summarize() per head; the audio head is scored on each clip once, the others on the images."""
    preds = predict_heads(model, split, device)
    return {head: summarize(split.clip_labels if head == "audio" else split.labels, p) for head, p in preds.items()}


def headline(metrics: dict[str, dict]) -> dict[str, float]:
    """Accuracy and F1 per head, without the confusion matrices, for logs and leaderboards."""
    return {f"{head}_{k}": round(v[k], 3) for head, v in metrics.items() for k in ("accuracy", "macro_f1")}


def main(argv: list[str] | None = None) -> int:
    from core import paths
    from core.checkpoint import load
    from core.dataset import load_run_data
    from core.errors import DigitsError
    from dataclasses import replace

    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description="Evaluate a checkpoint on a test split.")
    parser.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS), help="checkpoint (default: weights/default.pt)")
    parser.add_argument("--split", choices=["official", "loso"], default="official",
                        help="official: MNIST test + FSDD takes 0-4; loso: retrain the audio recipe with each speaker held out")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    parser.add_argument("--epochs", type=int, default=None, help="loso only: epochs per held-out speaker (default: the checkpoint's)")
    parser.add_argument("--limit", type=int, default=None, help="loso only: at most this many training pairs (smoke runs)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        model, ckpt = load(args.weights)
        config = ckpt["run_config"]
        root = paths.data_dir(args.data_dir)
        if args.split == "official":
            stats = (ckpt["feature_stats"]["mean"].numpy(), ckpt["feature_stats"]["std"].numpy())
            data = load_run_data(replace(config, train=replace(config.train, split="official", limit=1000)), root, stats=stats)
            result = {"weights": args.weights, "split": "official", "heads": evaluate_split(model, data.test)}
        else:
            from core.loso import loso_audio

            result = {"weights": args.weights, "split": "loso", **loso_audio(config, root, epochs=args.epochs, limit=args.limit)}
    except (DigitsError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


def _print_table(result: dict) -> None:
    if result["split"] == "official":
        for head, m in result["heads"].items():
            print(f"{head:>6}: accuracy {m['accuracy']:.2f}%  macro-F1 {m['macro_f1']:.2f}%  (n={m['n']})")
    else:
        for speaker, acc in result["per_speaker"].items():
            print(f"{speaker:>9}: audio accuracy {acc:.1f}%")
        print(f"     mean: {result['mean']:.1f}%   worst speaker: {result['min']:.1f}%")


if __name__ == "__main__":
    sys.exit(main())
