"""Leave-one-speaker-out: train a recipe's audio encoder on five FSDD speakers, test on the sixth."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from core.config import RunConfig
from core.data.fsdd import SPEAKERS


def loso_config(config: RunConfig, speaker: str, epochs: int | None = None, limit: int | None = None) -> RunConfig:
    """The audio-only variant of config, with speaker held out."""
    train = replace(config.train, split="loso", held_out_speaker=speaker,
                    epochs=epochs or config.train.epochs, limit=limit)
    return replace(config, name=f"{config.name}-loso-{speaker}", model=replace(config.model, modalities=("audio",)), train=train)


def loso_audio(config: RunConfig, root: Path, epochs: int | None = None, limit: int | None = None,
               speakers: tuple[str, ...] = SPEAKERS, on_speaker: Callable[[str, float], None] | None = None) -> dict:
    """Audio accuracy (%) per held-out speaker and their mean, for config's audio recipe."""
    from core.dataset import load_run_data
    from core.train import fit

    per_speaker = {}
    for speaker in speakers:
        cfg = loso_config(config, speaker, epochs, limit)
        summary = fit(cfg, load_run_data(cfg, root))
        per_speaker[speaker] = round(summary["final"]["audio"]["accuracy"], 2)
        if on_speaker:
            on_speaker(speaker, per_speaker[speaker])
    values = list(per_speaker.values())
    return {"per_speaker": per_speaker, "mean": round(sum(values) / len(values), 2), "min": min(values),
            "epochs": epochs or config.train.epochs, "recipe": config.name}
