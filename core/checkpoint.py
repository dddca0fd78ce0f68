"""Checkpoints as plain dicts (state_dict, config, feature statistics, metrics), loaded weights-only."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from core.config import RunConfig, from_dict, to_dict
from core.errors import CheckpointError
from core.io import atomic_write
from core.models import DigitClassifier

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "state_dict", "config", "feature_stats")


def save(path: Path, model: DigitClassifier, config: RunConfig, mean: np.ndarray, std: np.ndarray,
         metrics: dict | None = None, half: bool = False) -> Path:
    """Write atomically; half=True stores floating weights as float16 (loaded back as float32)."""
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu().clone())
             for k, v in model.state_dict().items()}
    ckpt = {
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "config": to_dict(config),
        "feature_stats": {"mean": torch.as_tensor(mean, dtype=torch.float32), "std": torch.as_tensor(std, dtype=torch.float32)},
        "metrics": metrics or {},
    }
    return atomic_write(path, lambda f: torch.save(ckpt, f))


def load_dict(source: Path | bytes) -> dict:
    """The raw checkpoint dict; refuses anything that is not a weights-only checkpoint of ours."""
    name = "<upload>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)) and not Path(source).is_file():
        raise CheckpointError(f"{name}: no such weights file")
    try:
        ckpt = torch.load(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source,
                          map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{name}: refused, it is not a plain weights file (it may carry code): {str(exc)[:200]}") from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{name}: not a readable checkpoint (truncated or corrupt): {str(exc)[:200]}") from exc
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise CheckpointError(f"{name}: not a digits checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    return ckpt


def load(source: Path | bytes, device: str | torch.device = "cpu") -> tuple[DigitClassifier, dict]:
    """Rebuild the model from its stored config and load its weights, in eval mode."""
    ckpt = load_dict(source)
    try:
        config = from_dict(RunConfig, ckpt["config"])
        model = DigitClassifier(config.model)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's config does not describe a model this code can build: {exc}") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights do not fit the architecture in their config: {str(exc)[:300]}") from exc
    ckpt["run_config"] = config
    return model.to(device).eval(), ckpt
