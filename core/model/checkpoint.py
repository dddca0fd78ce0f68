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
from core.features.audio import N_COEFFS
from core.io import atomic_write
from core.model.nets import DigitClassifier

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "state_dict", "config", "feature_stats")


def feature_stats(ckpt: dict) -> tuple[np.ndarray, np.ndarray]:
    """The per-coefficient mean and std of the training features, from a checkpoint load() returned."""
    return ckpt["feature_stats"]["mean"].numpy(), ckpt["feature_stats"]["std"].numpy()


def audio_standardisation(ckpt: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """(mean, std, utterance_norm): what audio.standardize needs to read features as this model was trained."""
    return (*feature_stats(ckpt), ckpt["run_config"].features.utterance_norm)


def save(
    path: Path,
    model: DigitClassifier,
    config: RunConfig,
    mean: np.ndarray,
    std: np.ndarray,
    metrics: dict | None = None,
    half: bool = False,
    calibration: dict | None = None,
) -> Path:
    """Write atomically; half=True stores floating weights as float16 (loaded back as float32)."""
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu().clone())
        for k, v in model.state_dict().items()
    }
    ckpt = {
        "format_version": FORMAT_VERSION,
        "state_dict": state,
        "config": to_dict(config),
        "feature_stats": {
            "mean": torch.as_tensor(mean, dtype=torch.float32),
            "std": torch.as_tensor(std, dtype=torch.float32),
        },
        "metrics": metrics or {},
    }
    if calibration is not None:
        ckpt["calibration"] = check_calibration(calibration)
    return atomic_write(path, lambda f: torch.save(ckpt, f))


def load_dict(source: Path | bytes) -> dict:
    """The raw checkpoint dict; refuses anything that is not a weights-only checkpoint of ours."""
    name = "<upload>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)) and not Path(source).is_file():
        raise CheckpointError(f"{name}: no such weights file")
    try:
        ckpt = torch.load(
            io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source,
            map_location="cpu",
            weights_only=True,
        )
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{name}: refused, it is not a plain weights file (it may carry code): {str(exc)[:200]}"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{name}: not a readable checkpoint (truncated or corrupt): {str(exc)[:200]}") from exc
    if (
        not isinstance(ckpt, dict)
        or any(k not in ckpt for k in REQUIRED_KEYS)
        or not all(isinstance(ckpt[k], dict) for k in ("state_dict", "config", "feature_stats"))
    ):
        raise CheckpointError(f"{name}: not a digits checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    return ckpt


def load(
    source: Path | bytes, device: str | torch.device = "cpu", fast_ops: bool = True
) -> tuple[DigitClassifier, dict]:
    """Rebuild the model from its stored config and load its weights, in eval mode (fast_ops: see DigitClassifier)."""
    ckpt = load_dict(source)
    try:
        config = from_dict(RunConfig, ckpt["config"])
        with torch.device("meta"):  # shapes only, no memory: a hostile config may ask for billions of weights
            expected = {k: tuple(v.shape) for k, v in DigitClassifier(config.model).state_dict().items()}
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"the checkpoint's config does not describe a model this code can build: {exc}") from exc
    state = {
        k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in ckpt["state_dict"].items()
    }
    found = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state.items()}
    try:
        if found != expected:
            wrong = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
            raise RuntimeError(f"{len(wrong)} tensors missing or of another shape, e.g. {', '.join(wrong[:3])}")
        model = DigitClassifier(config.model, fast_ops)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"the weights do not fit the architecture in their config: {str(exc)[:300]}") from exc
    stats = ckpt["feature_stats"]
    std = stats.get("std")
    if isinstance(std, torch.Tensor) and std.dim() == 1 and not bool((std > 0).all()):
        # Features are divided by std: a zero turned every audio prediction into NaN ("digit 0, nan% sure").
        bad = [i for i, v in enumerate(std.tolist()) if not v > 0]
        raise CheckpointError(
            f"the checkpoint's feature std must be positive; coefficient(s) {bad} are {[std.tolist()[i] for i in bad]}"
        )
    # Wrong statistics would only fail later, inside predict(), as a shape error the user cannot act on.
    if not all(
        isinstance(stats.get(k), torch.Tensor) and stats[k].shape == (N_COEFFS,) and torch.isfinite(stats[k]).all()
        for k in ("mean", "std")
    ) or not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(
            f"the checkpoint's feature statistics or weights are malformed (need {N_COEFFS} finite "
            "coefficients and finite weights)"
        )
    if "calibration" in ckpt:
        ckpt["calibration"] = check_calibration(ckpt["calibration"])
    ckpt["run_config"] = config
    return model.to(device).eval(), ckpt


FUSION_RULES = ("learned", "product")


def check_calibration(calibration) -> dict:
    """A checkpoint's calibration, validated: {"temperature": {head: T}, "audio_unsure_below": c, "fusion": rule,
    "audio_warps": [test-time warps the audio head averages over]}."""

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"the checkpoint's calibration is malformed: {why}")

    if not isinstance(calibration, dict):
        raise bad("not a dictionary")
    temps = calibration.get("temperature", {})
    if not isinstance(temps, dict) or set(temps) - {"fused", "image", "audio"}:
        raise bad("temperature must map fused/image/audio to numbers")
    for head, t in temps.items():
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.01 <= t <= 100:
            raise bad(f"the {head} temperature must be a number from 0.01 to 100, not {t!r}")
    unsure = calibration.get("audio_unsure_below", 0.0)
    if isinstance(unsure, bool) or not isinstance(unsure, (int, float)) or not 0 <= unsure <= 1:
        raise bad(f"audio_unsure_below must be a probability, not {unsure!r}")
    warps = calibration.get("audio_warps", [])
    if (
        not isinstance(warps, (list, tuple))
        or len(warps) > 12
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0.5 <= w <= 2 for w in warps)
    ):
        raise bad(f"audio_warps must be at most 12 warp factors from 0.5 to 2, not {warps!r}")
    if calibration.get("fusion", "learned") not in FUSION_RULES:
        raise bad(f"fusion must be one of {', '.join(FUSION_RULES)}, not {calibration.get('fusion')!r}")
    return {
        "temperature": {h: float(t) for h, t in temps.items()},
        "audio_unsure_below": float(unsure),
        "fusion": calibration.get("fusion", "learned"),
        "audio_warps": [float(w) for w in warps],
        "source": str(calibration.get("source", ""))[:500],
    }
