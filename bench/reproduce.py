"""Train the seed's 13 trials and the fusion/LOSO ablations on one budget; write results/{trials,ablations}/*.json."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from core import paths
from core.config import override, to_dict
from core.model.device import thread_count
from core.runs.results import result_from_run, save_result
from core.training.loop import new_run_id, run
from core.training.loso import loso_audio
from core.trials import SEED_TRIALS

BUDGET = {"epochs": 1, "train_fraction": 0.1, "batch_size": 32, "lr": 1e-3, "seed": 0, "split": "official"}


def budgeted(config, name: str | None = None, modalities: tuple[str, ...] | None = None):
    config = override(
        config, **{k: BUDGET[k] for k in ("epochs", "train_fraction", "batch_size", "lr", "seed", "split")}
    )
    if modalities:
        config = replace(config, model=replace(config.model, modalities=modalities))
    return replace(config, name=name) if name else config


def entries():
    """(results file, config, kind, seed's reported F1) in the order they are trained."""
    try10 = SEED_TRIALS["try10"].config
    seed = {
        n: (
            Path("trials") / f"{n}.json",
            budgeted(t.config),
            "seed-trial",
            {"f1_best": t.reported_f1_best, "f1_final": t.reported_f1_final},
        )
        for n, t in SEED_TRIALS.items()
    }
    ablations = {
        n: (Path("ablations") / f"{n}.json", budgeted(try10, f"try10-{n}", mods), "ablation", {})
        for n, mods in (("image_only", ("image",)), ("audio_only", ("audio",)))
    }
    order = ["try10", "image_only", "audio_only"] + [f"try{i}" for i in range(1, 14) if i != 10]
    return [(n, *({**seed, **ablations}[n])) for n in order]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", default="/tmp/digits-repro", help="where run folders (with weights) go; never committed")
    p.add_argument("--only", nargs="*", help="entry names to (re)train")
    p.add_argument("--skip-loso", action="store_true")
    args = p.parse_args()
    root, out = paths.data_dir(), paths.RESULTS_DIR
    budget = {
        **BUDGET,
        "threads": thread_count(),
        "note": "every trial and ablation: 1 epoch over 10% of MNIST train (5,500 pairs), "
        "validation and test as in core.train",
    }
    todo = [e for e in entries() if (e[0] in args.only if args.only else not (out / e[1]).exists())]
    bar = tqdm(todo, desc="trials", unit="trial", disable=None, file=sys.stderr)
    for name, rel, config, kind, reported in bar:
        bar.set_postfix_str(name)
        load = os.getloadavg()[0]
        # A fresh run folder per training: a run id names one run, so retraining an entry never mixes two.
        run_dir = run(config, root, Path(args.runs), run_id=new_run_id(name), progress=False)
        entry = name if kind == "seed-trial" else f"try10 {name.replace('_', ' ')}"  # apart from OUR_TRIALS' names
        record = result_from_run(
            run_dir,
            entry=entry,
            kind=kind,
            budget={**budget, "load_average_at_start": round(load, 1)},
            reported=reported,
        )
        save_result(record, out / rel)
        if name == "try10":  # the fused ablation is try10 itself on this budget
            save_result(
                {**record, "entry": "try10 fused", "trial": "try10-fused", "kind": "ablation", "reported": {}},
                out / "ablations" / "fused.json",
            )
        bar.write(f"{name}: fused {record['final'].get('fused', {}).get('accuracy')} in {record['train_seconds']} s")
    loso_file = out / "ablations" / "audio_loso.json"
    if not args.skip_loso and (not loso_file.exists() or (args.only and "audio_loso" in args.only)):
        config = budgeted(SEED_TRIALS["try10"].config, "try10-audio_loso", ("audio",))
        started = time.perf_counter()
        loso = loso_audio(
            config,
            root,
            epochs=BUDGET["epochs"],
            conditions=(),
            on_speaker=lambda s, a: print(f"loso {s}: {a:.1f}%", flush=True),
        )
        save_result(
            {
                "entry": "try10 audio LOSO",
                "trial": "try10-audio_loso",
                "config": to_dict(config),
                "history": [],
                "kind": "ablation",
                "budget": {**budget, "note": "1 epoch per held-out speaker over the other five"},
                "reported": {},
                "train_seconds": round(time.perf_counter() - started, 1),
                "loso": {k: loso[k] for k in ("per_speaker", "mean", "min")},
            },
            loso_file,
        )


if __name__ == "__main__":
    main()
