"""Frozen configuration dataclasses: one place for every default of the model, features and training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

N_CLASSES = 10  # the digits 0-9: every head's output, every label


@dataclass(frozen=True)
class Conv:
    """One convolution: kernel, output channels, padding, then an optional max-pool and dropout."""

    kernel: int
    channels: int
    padding: int = 0
    pool: tuple[int, int, int] | None = (2, 2, 0)  # (kernel, stride, padding) of the max-pool after it
    dropout: bool = False  # dropout after this layer (and its pool)


@dataclass(frozen=True)
class ImageEncoderConfig:
    # Seed try10: 5x5/32, 3x3/64, 3x3/128 with 2x2 pools; "same" padding is our choice (28->14->7->3).
    convs: tuple[Conv, ...] = (Conv(5, 32, 2), Conv(3, 64, 1, dropout=True), Conv(3, 128, 1))
    fc: tuple[int, ...] = (64,)  # hidden sizes; the last is the embedding size
    fc_dropout: tuple[bool, ...] = (True,)  # dropout after each fc (the seed's "after fc1")


@dataclass(frozen=True)
class AudioEncoderConfig:
    # Parallel first-layer heads (kernel, channels, padding), concatenated: the seed's multi-head Conv1d.
    heads: tuple[tuple[int, int, int], ...] = ((7, 32, 3), (5, 32, 2), (3, 32, 1))
    head_pool: tuple[int, int, int] | None = (3, 1, 1)
    head_dropout: bool = True
    convs: tuple[Conv, ...] = ()  # further Conv1d layers after the heads
    fc: tuple[int, ...] = (128, 64)
    fc_dropout: tuple[bool, ...] = (True, False)
    # "flatten" is the seed's (96 x 507 -> fc); "meanmax" pools over time first (our own encoder).
    temporal_pooling: str = "flatten"
    input_layout: str = "sequence"  # "sequence": (B,1,507) as the seed; "frames": (B,13,39) coefficients as channels


@dataclass(frozen=True)
class FusionConfig:
    hidden: tuple[int, ...] = ()  # fully connected layers between the concatenation and the classifier
    batchnorm: bool = True
    softmax_output: bool = False  # the seed's try3-6 put a softmax before CrossEntropyLoss
    # A linear head per modality so one modality alone can be predicted: "joint" trains it with the
    # encoders (auxiliary loss), "probe" on detached embeddings so the encoders train as the seed's did.
    aux_heads: str = "joint"


@dataclass(frozen=True)
class FeatureConfig:
    utterance_norm: str = "none"  # "none", "mean" or "meanvar": per-utterance CMVN before global stats
    augment_views: int = 8  # precomputed random views per training clip (0 = clean only)
    synthetic_voices: bool = False  # add espeak-ng voices to the audio training data
    raised_voices: int = 0  # ... and this many more takes per voice and digit at a raised pitch
    voice_accents: int = 1  # ... each espeak-ng variant spoken in this many English accents
    augmentation: str = "basic"  # a preset of core.features.audio.AUGMENTATIONS for the views


@dataclass(frozen=True)
class ModelConfig:
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    modalities: tuple[str, ...] = ("image", "audio")  # ablations train one alone
    dropout: float = 0.3


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" (the seed's) or "cosine": per-epoch decay towards zero
    weight_decay: float = 0.0
    # Mixup of the clips within a batch (drawings stay whole), weights drawn from Beta(mixup, mixup); 0 = off.
    mixup: float = 0.0
    class_weights: bool = True
    aux_loss_weight: float = 0.5  # weight of each single-modality head's loss
    train_fraction: float = 1.0  # fraction of the MNIST training images used
    limit: int | None = None  # at most this many training pairs (tiny smoke runs)
    eval_limit: int | None = None  # at most this many validation and test images (tiny smoke runs; None: all)
    seed: int = 0
    split: str = "official"  # FSDD split: "official" or "loso"
    held_out_speaker: str | None = None  # with split="loso"
    validation_images: int = 5000  # taken from the end of MNIST train
    validation_takes: tuple[int, int] = (5, 10)  # FSDD train takes [a, b) kept for validation


@dataclass(frozen=True)
class RunConfig:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def to_dict(config: Any) -> dict:
    return asdict(config)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) frozen dataclass from asdict() output; JSON lists become tuples again."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _coerce(f.type, data[f.name], cls)
    return cls(**kwargs)


_CLASSES = {
    c.__name__: c
    for c in (
        Conv,
        ImageEncoderConfig,
        AudioEncoderConfig,
        FusionConfig,
        FeatureConfig,
        ModelConfig,
        TrainConfig,
        RunConfig,
    )
}


def _coerce(type_hint: Any, value: Any, owner: type) -> Any:
    hint = str(type_hint)
    for name, cls in _CLASSES.items():
        if hint == name:
            return from_dict(cls, value)
        if hint.startswith(f"tuple[{name}") and value is not None:
            return tuple(from_dict(cls, v) for v in value)
    if isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def override(config: RunConfig, **train_overrides: Any) -> RunConfig:
    """Replace training fields that are not None, e.g. from command-line flags."""
    changes = {k: v for k, v in train_overrides.items() if v is not None}
    return replace(config, train=replace(config.train, **changes)) if changes else config


def with_dropout(config: RunConfig, dropout: float | None) -> RunConfig:
    return config if dropout is None else replace(config, model=replace(config.model, dropout=dropout))


assert all(is_dataclass(c) for c in _CLASSES.values())
