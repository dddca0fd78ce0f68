"""The image and audio CNN encoders and the fusion classifier, built from ModelConfig."""

from __future__ import annotations

import torch
from torch import nn

from core.config import N_CLASSES, AudioEncoderConfig, Conv, FusionConfig, ImageEncoderConfig, ModelConfig
from core.features.audio import N_COEFFS, N_FRAMES


def _pool(spec, dims: int) -> list[nn.Module]:
    if spec is None:
        return []
    return [(nn.MaxPool2d if dims == 2 else nn.MaxPool1d)(*spec)]


class FusingSequential(nn.Sequential):
    """nn.Sequential that runs a leading ReLU, MaxPool1d(3, 1, 1)[, Dropout] fused in CPU training when fast."""

    def __init__(self, *modules: nn.Module, fast: bool = True):
        super().__init__(*modules)
        self.fast = fast

    def _fused_prefix(self) -> tuple[int, float] | None:
        """(modules covered, dropout p) when the sequence starts with the fusable pattern."""
        mods = list(self)
        if len(mods) < 2 or not isinstance(mods[0], nn.ReLU) or type(mods[1]) is not nn.MaxPool1d:
            return None
        pool = mods[1]
        if (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode) != (3, 1, 1, 1, False):
            return None
        if len(mods) > 2 and type(mods[2]) is nn.Dropout:
            return 3, mods[2].p
        return 2, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only where a gradient is wanted: shape probes and inference keep torch's fast no-grad kernels.
        fusable = self.fast and self.training and torch.is_grad_enabled() and x.device.type == "cpu"
        prefix = self._fused_prefix() if fusable and x.dtype == torch.float32 else None
        if prefix is None:
            return super().forward(x)
        from core.model.fastops import relu_max3_dropout  # numba: imported only by training, not by the app

        covered, p = prefix
        x = relu_max3_dropout(x, p)
        for module in list(self)[covered:]:
            x = module(x)
        return x


def _conv_block(conv: Conv, in_ch: int, dims: int, dropout: float) -> list[nn.Module]:
    layer = (nn.Conv2d if dims == 2 else nn.Conv1d)(in_ch, conv.channels, conv.kernel, padding=conv.padding)
    return [layer, nn.ReLU(), *_pool(conv.pool, dims), *([nn.Dropout(dropout)] if conv.dropout else [])]


def _fc_stack(in_features: int, sizes: tuple[int, ...], drops: tuple[bool, ...], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, size in enumerate(sizes):
        layers.append(nn.Linear(in_features, size))
        if i < len(sizes) - 1:
            layers.append(nn.ReLU())
        if i < len(drops) and drops[i]:
            layers.append(nn.Dropout(dropout))
        in_features = size
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Shared by both modalities: embed() is the inference-mode embedding, dropout off."""

    embed_dim: int

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return self(x)
        finally:
            self.train(was_training)


class ImageEncoder(Encoder):
    def __init__(self, cfg: ImageEncoderConfig, dropout: float = 0.3, fast_ops: bool = True):
        super().__init__()
        layers, in_ch = [], 1
        for conv in cfg.convs:
            layers += _conv_block(conv, in_ch, 2, dropout)
            in_ch = conv.channels
        self.convs = nn.Sequential(*layers)
        if fast_ops:  # oneDNN's convolutions and max-pools run faster channels-last (same values)
            self.convs.to(memory_format=torch.channels_last)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 1, 28, 28)).numel()
        self.fc = _fc_stack(flat, cfg.fc, cfg.fc_dropout, dropout)
        self.embed_dim = cfg.fc[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 28, 28)  # (B, 1, 28, 28)
        return self.fc(self.convs(x).flatten(1))  # (B, embed_dim)


class AudioEncoder(Encoder):
    def __init__(self, cfg: AudioEncoderConfig, dropout: float = 0.3, fast_ops: bool = True):
        super().__init__()
        self.cfg = cfg
        in_ch, length = (1, N_FRAMES * N_COEFFS) if cfg.input_layout == "sequence" else (N_COEFFS, N_FRAMES)
        self.heads = nn.ModuleList(nn.Conv1d(in_ch, c, k, padding=p) for k, c, p in cfg.heads)
        after = [nn.ReLU(), *_pool(cfg.head_pool, 1), *([nn.Dropout(dropout)] if cfg.head_dropout else [])]
        ch = sum(c for _, c, _ in cfg.heads)
        for conv in cfg.convs:
            after += _conv_block(conv, ch, 1, dropout)
            ch = conv.channels
        self.body = FusingSequential(*after, fast=fast_ops)
        with torch.no_grad():
            flat = self._features(torch.zeros(1, in_ch, length)).shape[1]
        self.fc = _fc_stack(flat, cfg.fc, cfg.fc_dropout, dropout)
        self.embed_dim = cfg.fc[-1]

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        lengths = {h(x).shape[-1] for h in self.heads}
        if len(lengths) != 1:
            raise ValueError(f"audio heads must keep one length to concatenate, got {sorted(lengths)}")
        x = self.body(torch.cat([h(x) for h in self.heads], dim=1))  # (B, 96, 507) for the seed
        if self.cfg.temporal_pooling == "meanmax":
            return torch.cat([x.mean(-1), x.amax(-1)], dim=1)  # (B, 2C): invariant to where the word sits
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, N_FRAMES, N_COEFFS)  # (B, 39, 13)
        if self.cfg.input_layout == "sequence":
            x = x.reshape(-1, 1, N_FRAMES * N_COEFFS)  # (B, 1, 507), frame-major as the seed flattened it
        else:
            x = x.transpose(1, 2)  # (B, 13, 39): coefficients as channels, convolving over time
        return self.fc(self._features(x))


class FusionHead(nn.Module):
    def __init__(self, in_features: int, cfg: FusionConfig, dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(in_features)] if cfg.batchnorm else []
        for size in cfg.hidden:
            layers += [nn.Linear(in_features, size), nn.ReLU(), nn.Dropout(dropout)]
            in_features = size
        layers.append(nn.Linear(in_features, N_CLASSES))
        self.net = nn.Sequential(*layers)
        self.softmax_output = cfg.softmax_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.softmax(-1) if self.softmax_output else out


class DigitClassifier(nn.Module):
    """Image and/or audio encoders, a fused head, and an optional linear head per modality.

    fast_ops runs ReLU -> MaxPool1d(3, 1, 1) -> Dropout in the audio body as one kernel while training on the CPU
    (core.model.fastops) and the image convolutions channels-last. Neither holds parameters, so checkpoints load
    either way; False keeps the plain torch modules (the benchmark's reference)."""

    def __init__(self, cfg: ModelConfig, fast_ops: bool = True):
        super().__init__()
        self.cfg = cfg
        self.modalities = tuple(cfg.modalities)
        if not self.modalities or set(self.modalities) - {"image", "audio"}:
            raise ValueError(f"modalities must be image and/or audio, not {self.modalities}")
        encoders = {}
        if "image" in self.modalities:
            encoders["image"] = ImageEncoder(cfg.image, cfg.dropout, fast_ops)
        if "audio" in self.modalities:
            encoders["audio"] = AudioEncoder(cfg.audio, cfg.dropout, fast_ops)
        self.encoders = nn.ModuleDict(encoders)
        fused_dim = sum(e.embed_dim for e in self.encoders.values())
        self.fusion = FusionHead(fused_dim, cfg.fusion, cfg.dropout)
        if cfg.fusion.aux_heads not in ("joint", "probe", "none"):
            raise ValueError(f"aux_heads must be joint, probe or none, not {cfg.fusion.aux_heads!r}")
        multimodal = len(self.modalities) > 1 and cfg.fusion.aux_heads != "none"
        self.detach_aux = cfg.fusion.aux_heads == "probe"
        self.aux = nn.ModuleDict(
            {m: nn.Linear(e.embed_dim, N_CLASSES) for m, e in self.encoders.items()} if multimodal else {}
        )

    def forward(self, image: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits per head: 'fused' when every modality is given, and one per given modality."""
        inputs = {"image": image, "audio": audio}
        given = [m for m in self.modalities if inputs[m] is not None]
        if not given:
            raise ValueError(f"this model needs at least one of {self.modalities}")
        emb = {m: self.encoders[m](inputs[m]) for m in given}
        out = {m: self.aux[m](emb[m].detach() if self.detach_aux else emb[m]) for m in given if m in self.aux}
        if len(given) == len(self.modalities):
            out["fused"] = self.fusion(torch.cat([emb[m] for m in self.modalities], dim=1))
            if len(self.modalities) == 1:
                out[given[0]] = out["fused"]
        return out

    def embeddings(
        self, image: torch.Tensor | None = None, audio: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Inference-mode embeddings per given modality, plus 'fused' (the concatenation) when all are given."""
        inputs = {"image": image, "audio": audio}
        emb = {m: self.encoders[m].embed(inputs[m]) for m in self.modalities if inputs[m] is not None}
        if len(emb) == len(self.modalities) > 1:
            emb["fused"] = torch.cat([emb[m] for m in self.modalities], dim=1)
        return emb


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
