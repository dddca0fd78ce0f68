"""Voice profile files: a plain dict of tensors and numbers, read back with torch.load(weights_only=True), checked."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import torch

from core.config import N_CLASSES
from core.model.adapt import (
    FRAME_SHAPE,
    MAX_CLIPS_PER_DIGIT,
    TEMPLATE_NORMS,
    AdaptConfig,
    InvalidProfile,
    VoiceProfile,
    base_audio,
    model_id,
)

PROFILE_VERSION = 1
MAX_PROFILE_BYTES = 2 * 1024 * 1024  # the shipped model's profile is ~0.3 MB (float16 weights)


def profile_to_dict(profile: VoiceProfile) -> dict:
    c = profile.config
    return {
        "format": "digits-voice-profile",
        "version": PROFILE_VERSION,
        "state": {k: v.half() if v.is_floating_point() else v for k, v in profile.state.items()},
        "templates": torch.from_numpy(np.ascontiguousarray(profile.templates, np.float32)),
        "labels": torch.from_numpy(np.asarray(profile.labels, np.int64)),
        "model_id": profile.model_id,
        "gate": profile.gate,
        "config": {
            "steps": c.steps,
            "lr": c.lr,
            "replay": c.replay,
            "template_scale": c.template_scale,
            "gated": c.gated,
            "seed": c.seed,
            "average": c.average,
            "template_norm": c.template_norm,
            "fine_tunes": c.fine_tunes,
        },
    }


def profile_bytes(profile: VoiceProfile) -> bytes:
    """The profile as a small .pt file's bytes (for download)."""
    buf = io.BytesIO()
    torch.save(profile_to_dict(profile), buf)
    return buf.getvalue()


def load_profile(data: bytes, model) -> VoiceProfile:
    """A profile from a file's bytes, refused unless it is a plain, well-formed profile made with model."""
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidProfile("a voice profile is read from the bytes of a file")
    if len(data) > MAX_PROFILE_BYTES:
        raise InvalidProfile(
            f"the file is {len(data) / 2**20:.1f} MB; a voice profile is at most {MAX_PROFILE_BYTES // 2**20} MB"
        )
    try:
        raw = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InvalidProfile(f"refused: not a plain voice profile (it may carry code): {str(exc)[:200]}") from exc
    except (
        RuntimeError,
        EOFError,
        OSError,
        zipfile.BadZipFile,
        ValueError,
        KeyError,
        AttributeError,
        TypeError,
    ) as exc:
        raise InvalidProfile(
            f"not a readable voice profile (truncated or another kind of file): {str(exc)[:200]}"
        ) from exc
    return profile_from_dict(raw, model)


def profile_from_dict(raw, model) -> VoiceProfile:
    """Validate a loaded dict against model: keys, shapes, finiteness, counts and settings within their ranges."""
    if not isinstance(raw, dict) or raw.get("format") != "digits-voice-profile":
        raise InvalidProfile("not a digits voice profile")
    if raw.get("version") != PROFILE_VERSION:
        raise InvalidProfile(f"voice profile version {raw.get('version')!r}; this app reads version {PROFILE_VERSION}")
    key = raw.get("model_id")
    if not isinstance(key, str) or len(key) != 16:
        raise InvalidProfile("the profile does not say which model it was made with")
    if key != model_id(model):
        raise InvalidProfile("this voice profile was made with another model; teach the current model your voice again")
    templates, labels = raw.get("templates"), raw.get("labels")
    if (
        not isinstance(templates, torch.Tensor)
        or not templates.is_floating_point()
        or templates.dim() != 3
        or tuple(templates.shape[1:]) != FRAME_SHAPE
        or not 1 <= len(templates) <= N_CLASSES * MAX_CLIPS_PER_DIGIT
    ):
        raise InvalidProfile(
            f"templates must be (M, {FRAME_SHAPE[0]}, {FRAME_SHAPE[1]}) floats with 1-"
            f"{N_CLASSES * MAX_CLIPS_PER_DIGIT} recordings"
        )
    if (
        not isinstance(labels, torch.Tensor)
        or labels.dtype != torch.int64
        or tuple(labels.shape) != (len(templates),)
        or not bool(((labels >= 0) & (labels < N_CLASSES)).all())
    ):
        raise InvalidProfile("labels must be one digit 0-9 per template")
    counts = torch.bincount(labels, minlength=N_CLASSES)
    if bool((counts == 0).any()) or int(counts.max()) > MAX_CLIPS_PER_DIGIT:
        raise InvalidProfile(f"a profile needs 1-{MAX_CLIPS_PER_DIGIT} recordings of every digit")
    state = raw.get("state")
    expected = {k: (tuple(v.shape), v.dtype.is_floating_point) for k, v in base_audio(model).state_dict().items()}
    if not isinstance(state, dict) or (
        state
        and (
            set(state) != set(expected)
            or not all(
                isinstance(v, torch.Tensor) and (tuple(v.shape), v.is_floating_point()) == expected[k]
                for k, v in state.items()
            )
        )
    ):
        raise InvalidProfile("the profile's weights do not fit this model's audio encoder (wrong names or shapes)")
    if not torch.isfinite(templates).all() or not all(
        torch.isfinite(v).all() for v in state.values() if v.is_floating_point()
    ):
        raise InvalidProfile("the profile holds non-finite numbers")
    gate = raw.get("gate")
    if not _number(gate, 0, 10):
        raise InvalidProfile("the profile's gate must be a distance from 0 to 10")
    return VoiceProfile(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
        templates.float().numpy(),
        labels.numpy(),
        key,
        _config(raw.get("config")),
        float(gate),
    )


def _number(v, lo, hi, integer=False) -> bool:
    kinds = (int,) if integer else (int, float)
    return isinstance(v, kinds) and not isinstance(v, bool) and lo <= v <= hi


def _config(raw) -> AdaptConfig:
    if not isinstance(raw, dict):
        raise InvalidProfile("the profile's settings are missing")
    # Profiles saved before the weight average, the template normalisation and the averaged fine-tunes existed
    # were made without them.
    raw = {"average": 0.0, "template_norm": "none", "fine_tunes": 1, **raw}
    ok = (
        _number(raw.get("steps"), 0, 1000, True)
        and _number(raw.get("lr"), 0, 1)
        and _number(raw.get("replay"), 0, 4096, True)
        and _number(raw.get("template_scale"), 0, 1000)
        and _number(raw.get("seed"), 0, 2**31 - 1, True)
        and isinstance(raw.get("gated"), bool)
        and _number(raw.get("average"), 0, 0.999999)
        and raw.get("template_norm") in TEMPLATE_NORMS
        and _number(raw.get("fine_tunes"), 1, 16, True)
    )
    if not ok:
        raise InvalidProfile("the profile's settings are out of range")
    return AdaptConfig(
        steps=raw["steps"],
        lr=float(raw["lr"]),
        replay=raw["replay"],
        template_scale=float(raw["template_scale"]),
        gated=raw["gated"],
        seed=raw["seed"],
        average=float(raw["average"]),
        template_norm=raw["template_norm"],
        fine_tunes=raw["fine_tunes"],
    )
