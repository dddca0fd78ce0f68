"""Train (once) and load the six leave-one-speaker-out audio models the adaptation benchmark adapts.

Each fold is the recipe's audio side trained without one FSDD speaker (core.training.loso.loso_config), saved as a
checkpoint under --folds-dir (default data/loso_folds/<recipe>-e<epochs>/, git-ignored: derived from the
dataset) so later benchmark runs reuse it."""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from core import paths
from core.data.fsdd import SPEAKERS


def folds_dir(recipe: str, epochs: int | None, explicit: str | None = None) -> Path:
    """Where the fold checkpoints of recipe at epochs live."""
    return Path(explicit) if explicit else paths.DATA_CACHE_DIR / "loso_folds" / f"{recipe}-e{epochs or 'recipe'}"


def train_fold(
    recipe: str, root: Path, speaker: str, epochs: int | None, out: Path, overrides: dict | None = None
) -> tuple[str, float]:
    """Train recipe's audio side (training fields replaced by overrides) without speaker and save it to
    out/<speaker>.pt; (speaker, seconds)."""
    from core.model.checkpoint import save
    from core.model.device import use_all_cores
    from core.training.dataset import load_run_data
    from core.training.loop import build_config, train_model
    from core.training.loso import loso_config

    use_all_cores()  # honours $DIGITS_THREADS
    started = time.perf_counter()
    cfg = loso_config(build_config(recipe, **(overrides or {})), speaker, epochs)
    data = load_run_data(cfg, root)
    model, _ = train_model(cfg, data)
    save(out / f"{speaker}.pt", model, cfg, data.feature_mean, data.feature_std)
    return speaker, time.perf_counter() - started


def ensure_folds(
    recipe: str,
    root: Path,
    epochs: int | None,
    out: Path,
    jobs: int = 1,
    speakers: tuple[str, ...] = SPEAKERS,
    overrides: dict | None = None,
) -> dict[str, Path]:
    """The fold checkpoint of each speaker, training the missing ones (jobs at a time)."""
    out.mkdir(parents=True, exist_ok=True)
    missing = [s for s in speakers if not (out / f"{s}.pt").is_file()]
    if missing:
        from core.features.conditions import CLEAN, condition_bank
        from core.training.dataset import load_run_data
        from core.training.loop import build_config
        from core.training.loso import loso_config

        load_run_data(loso_config(build_config(recipe), missing[0], epochs), root)  # caches built once, here
        condition_bank(root, CLEAN)
        with ProcessPoolExecutor(max(1, jobs)) as pool:
            for f in [pool.submit(train_fold, recipe, root, s, epochs, out, overrides) for s in missing]:
                speaker, seconds = f.result()
                print(f"fold {speaker}: trained in {seconds:.0f} s", file=sys.stderr, flush=True)
    return {s: out / f"{s}.pt" for s in speakers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", default="fused", help="recipe whose audio side each fold trains")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fold (default: the recipe's)")
    parser.add_argument("--folds-dir", default=None)
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at once (processes)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    out = folds_dir(args.trial, args.epochs, args.folds_dir)
    ensure_folds(args.trial, paths.data_dir(args.data_dir), args.epochs, out, args.jobs)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
