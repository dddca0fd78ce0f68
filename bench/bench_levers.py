"""Mixup and seeds, measured: LOSO folds of a recipe at each mixup weight and seed, and their seed ensembles.

Each (mixup, seed) trains the recipe's audio side six times, once without each FSDD speaker (bench/loso_folds.py,
saved under data/loso_folds/ and reused), and scores the held-out speaker's 500 clips as recorded and under every
voice and room condition (core.features.conditions). Then, per mixup weight, the seeds' probabilities averaged: how
much of a lever's gain is only seed-to-seed spread, and what an ensemble would add.

    DIGITS_THREADS=1 DIGITS_DATA_DIR=../shared/data python -m bench.bench_levers --mixup 0 0.4 --seeds 0 1 --jobs 2
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.loso_folds import ensure_folds, folds_dir
from core import paths
from core.data.fsdd import SPEAKERS
from core.features.conditions import CLEAN, CONDITIONS, condition_bank
from core.model.calibration import softmax


def held_out_probs(fold_path, banks: dict) -> dict[str, np.ndarray]:
    """Audio-head probabilities of the fold's held-out speaker under each condition."""
    from core.model.checkpoint import audio_standardisation, load
    from core.training.loso import audio_logits

    model, ckpt = load(fold_path)
    speaker = ckpt["run_config"].train.held_out_speaker
    stats = audio_standardisation(ckpt)
    out = {}
    for condition, bank in banks.items():
        held = bank.subset(bank.speakers == speaker)
        out[condition] = softmax(audio_logits(model, held.clean, *stats))
    return out


def summary(acc: dict[str, dict[str, float]]) -> dict:
    """{condition: {mean, worst, worst_speaker}} from {speaker: {condition: accuracy}}."""
    out = {}
    for condition in next(iter(acc.values())):
        per = {s: acc[s][condition] for s in acc}
        worst = min(per, key=per.get)
        out[condition] = {"mean": round(float(np.mean(list(per.values()))), 2), "worst": per[worst], "speaker": worst}
    out["per_speaker"] = {s: acc[s][CLEAN] for s in acc}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", default="fused", help="recipe whose audio side the folds train")
    parser.add_argument("--mixup", type=float, nargs="+", default=[0.0, 0.4], help="mixup weights (0: off)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at once (processes)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    root = paths.data_dir(args.data_dir)
    banks = {c: condition_bank(root, c) for c in (CLEAN, *CONDITIONS)}
    digits = {c: {s: b.digits[b.speakers == s] for s in SPEAKERS} for c, b in banks.items()}
    report = {}
    for alpha in args.mixup:
        probs = {}
        for seed in args.seeds:
            out = folds_dir(args.trial, None).with_name(f"{args.trial}-mixup{alpha:g}-seed{seed}")
            folds = ensure_folds(args.trial, root, None, out, args.jobs, overrides={"mixup": alpha, "seed": seed})
            probs[seed] = {s: held_out_probs(p, banks) for s, p in folds.items()}
            acc = {
                s: {c: round(100 * float((p.argmax(1) == digits[c][s]).mean()), 2) for c, p in probs[seed][s].items()}
                for s in SPEAKERS
            }
            report[f"mixup {alpha:g}, seed {seed}"] = summary(acc)
        if len(args.seeds) > 1:
            mean_probs = {s: {c: np.mean([probs[k][s][c] for k in probs], 0) for c in banks} for s in SPEAKERS}
            acc = {
                s: {c: round(100 * float((p.argmax(1) == digits[c][s]).mean()), 2) for c, p in mean_probs[s].items()}
                for s in SPEAKERS
            }
            report[f"mixup {alpha:g}, seeds {'+'.join(map(str, args.seeds))} averaged"] = summary(acc)
    conditions = (CLEAN, *CONDITIONS)
    print(f"{'variant':34s} " + " ".join(f"{c:>12s}" for c in conditions) + "   worst (clean)")
    for name, r in report.items():
        cells = " ".join(f"{r[c]['mean']:12.1f}" for c in conditions)
        print(f"{name:34s} {cells}   {r[CLEAN]['worst']:.1f} ({r[CLEAN]['speaker']})")
    if args.json:
        from core.io import write_json

        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
