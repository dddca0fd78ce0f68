"""Store a calibration in a checkpoint: image and fused temperatures fitted on its validation split, the
audio temperature and unsure threshold from a leave-one-speaker-out run of its recipe (held-out voices)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core import paths
from core.errors import DigitsError
from core.model.calibration import fit_temperature
from core.model.checkpoint import feature_stats, load, save
from core.training.dataset import load_eval_data
from core.training.evaluate import head_labels, head_logits


def calibrate(weights: Path, loso_result: dict, root: Path, fusion: str) -> tuple[dict, dict]:
    """(calibration, figures): temperatures per head, the audio head's unsure threshold and the fusion rule."""
    model, ckpt = load(weights)
    stats = feature_stats(ckpt)
    val = load_eval_data(ckpt["run_config"], root, stats).val
    logits = head_logits(model, val)
    temperature = {head: fit_temperature(v, head_labels(val, head)) for head, v in logits.items() if head != "audio"}
    # The validation clips come from the speakers the model trained on: the audio head is right on nearly all
    # of them, and a temperature fitted there would make it surer still. Held-out speakers say how sure to be.
    calibration = loso_result.get("calibration") or {}
    if "audio" in logits:
        if "temperature" not in calibration:
            raise ValueError("the leave-one-speaker-out result holds no calibration (it needs two or more speakers)")
        temperature["audio"] = float(calibration["temperature"])
    result = {
        "temperature": {h: round(t, 4) for h, t in temperature.items()},
        "audio_unsure_below": float(calibration.get("unsure_below", 0.0)),
        "fusion": fusion,
        "source": f"image/fused: validation split; audio: leave-one-speaker-out of {loso_result.get('recipe')}",
    }
    figures = {
        "validation_n": {h: int(len(v)) for h, v in logits.items()},
        "validation_accuracy": {
            h: round(100 * float((v.argmax(1) == head_labels(val, h)).mean()), 2) for h, v in logits.items()
        },
    }
    return result, figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.calibrate", description=__doc__)
    p.add_argument("--weights", required=True, help="checkpoint to calibrate")
    p.add_argument("--loso", required=True, help="results/loso/<recipe>.json from `core.evaluate --split loso --save`")
    p.add_argument(
        "--fusion",
        choices=["learned", "product"],
        default="product",
        help="fused head: the trained fusion layer, or the product of the calibrated image and audio heads",
    )
    p.add_argument("--out", required=True, help="where to write the calibrated checkpoint")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    args = p.parse_args(argv)
    try:
        loso = json.loads(Path(args.loso).read_text())
        if not isinstance(loso, dict):
            raise ValueError(f"{args.loso} is not a leave-one-speaker-out result")
        calibration, figures = calibrate(Path(args.weights), loso, paths.data_dir(args.data_dir), args.fusion)
        model, ckpt = load(args.weights)
        save(
            Path(args.out),
            model,
            ckpt["run_config"],
            *feature_stats(ckpt),
            ckpt.get("metrics"),
            half=args.half,
            calibration=calibration,
        )
    except (DigitsError, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"out": args.out, "calibration": calibration, **figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
