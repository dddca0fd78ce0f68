"""Leave-one-speaker-out: train a recipe's audio encoder on five FSDD speakers, test on the sixth."""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from core.config import RunConfig
from core.data.fsdd import SPEAKERS


def loso_config(config: RunConfig, speaker: str, epochs: int | None = None, limit: int | None = None) -> RunConfig:
    """The audio-only variant of config, with speaker held out.

    limit caps the MNIST images loaded (an audio-only run never trains on them), so small is cheap."""
    train = replace(config.train, split="loso", held_out_speaker=speaker,
                    epochs=epochs or config.train.epochs, limit=limit or 10)
    return replace(config, name=f"{config.name}-loso-{speaker}", model=replace(config.model, modalities=("audio",)), train=train)


def loso_audio(config: RunConfig, root: Path, epochs: int | None = None, limit: int | None = None,
               speakers: tuple[str, ...] = SPEAKERS, on_speaker: Callable[[str, float], None] | None = None) -> dict:
    """Audio accuracy (%) per held-out speaker and their mean, for config's audio recipe."""
    from core.dataset import load_run_data
    from core.device import use_all_cores
    from core.train import fit

    use_all_cores()  # honours $DIGITS_THREADS
    started = time.perf_counter()
    per_speaker = {}
    for speaker in speakers:
        cfg = loso_config(config, speaker, epochs, limit)
        summary = fit(cfg, load_run_data(cfg, root))
        per_speaker[speaker] = round(summary["final"]["audio"]["accuracy"], 2)
        if on_speaker:
            on_speaker(speaker, per_speaker[speaker])
    values = list(per_speaker.values())
    return {"per_speaker": per_speaker, "mean": round(sum(values) / len(values), 2), "min": min(values),
            "epochs": epochs or config.train.epochs, "recipe": config.name,
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    from core import paths
    from core.train import build_config

    p = argparse.ArgumentParser(prog="python -m core.loso", description=__doc__)
    p.add_argument("--trial", default="voice", help="named recipe whose audio side is evaluated (default: voice)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per held-out speaker (default: the trial's)")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    p.add_argument("--save", action="store_true", help="write results/loso/<trial>.json for the leaderboard")
    args = p.parse_args(argv)
    result = loso_audio(build_config(args.trial), paths.data_dir(args.data_dir), epochs=args.epochs,
                        on_speaker=lambda s, a: print(f"{s:>9}: {a:.1f}%", file=sys.stderr, flush=True))
    if args.save:
        from core.io import write_json

        write_json(paths.RESULTS_DIR / "loso" / f"{args.trial}.json", result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
