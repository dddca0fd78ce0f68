"""Train a trial: Adam, class-weighted cross-entropy, validation each epoch, best and final checkpoints."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.config import N_CLASSES, RunConfig, override, to_dict, with_dropout
from core.data.pairing import pair_by_label
from core.io import append_jsonl, write_json
from core.model import checkpoint
from core.model.device import best_device, use_all_cores
from core.model.nets import DigitClassifier, count_parameters
from core.runs.listing import claim_run_dir
from core.training.dataset import RunData, load_run_data
from core.training.evaluate import evaluate_split, headline
from core.trials import get_trial

EpochCallback = Callable[[int, dict], None]


class Cancelled(Exception):
    """Training was asked to stop (SIGTERM or SIGINT)."""


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse frequency, normalised to mean 1: rarer digits weigh more."""
    counts = np.bincount(labels, minlength=N_CLASSES).astype(np.float64)
    w = counts.sum() / (10 * np.maximum(counts, 1))
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def _loss(
    outputs: dict,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    aux_weight: float,
    other: torch.Tensor | None = None,
    lam: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy of every head, the single-modality heads weighted by aux_weight.

    With mixup (each clip lam of its own and 1 - lam of another example's, whose label is other), every head is
    taught the mix of the labels it saw: the audio head lam of target; the image head, whose drawings stay whole
    (blending them cost the image head), all of it; the fused head, which sees both, the average of the two."""
    own = {"image": 1.0, "audio": lam, "fused": (1.0 + lam) / 2 if "image" in outputs else lam}
    total = 0.0
    for head, logits in outputs.items():
        scale = 1.0 if head == "fused" else aux_weight
        loss = F.cross_entropy(logits, target, weight=weight)
        if other is not None:
            loss = own[head] * loss + (1 - own[head]) * F.cross_entropy(logits, other, weight=weight)
        total = total + scale * loss
    return total


def make_optimizer(model: torch.nn.Module, t) -> torch.optim.Optimizer:
    """Adam; the fused kernel updates all weights in one pass instead of one per tensor (same update)."""
    return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=True)


@dataclass
class Batches:
    """One epoch's shuffled (image, audio, label) batches, audio paired by label with a random view."""

    data: RunData
    batch_size: int
    rng: np.random.Generator
    audio_only: bool

    def __iter__(self):
        tr = self.data.train
        n_views = tr.clips.shape[1]
        if self.audio_only:
            # An audio-only epoch visits each training clip once per stored view.
            clip_idx = self.rng.permutation(np.repeat(np.arange(len(tr.clip_labels)), n_views))
            labels, image_idx = tr.clip_labels[clip_idx], None
        else:
            image_idx = self.rng.permutation(len(tr.labels))
            labels = tr.labels[image_idx]
            clip_idx = pair_by_label(labels, tr.clip_labels, self.rng)
        view_idx = self.rng.integers(0, n_views, len(clip_idx))
        images, clips = torch.from_numpy(tr.images), torch.from_numpy(tr.clips)
        labels_t = torch.from_numpy(labels)
        for start in range(0, len(labels), self.batch_size):
            sl = slice(start, start + self.batch_size)
            if len(labels_t[sl]) < 2:
                continue  # BatchNorm needs two samples
            img = images[image_idx[sl]] if image_idx is not None else None
            yield img, clips[clip_idx[sl], view_idx[sl]], labels_t[sl]

    def __len__(self) -> int:
        tr = self.data.train
        n = len(tr.clip_labels) * tr.clips.shape[1] if self.audio_only else len(tr.labels)
        return -(-n // self.batch_size)


def train_one_epoch(
    model: DigitClassifier,
    batches: Batches,
    opt: torch.optim.Optimizer,
    weight,
    aux_weight: float,
    device,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch=None,
    mixup: float = 0.0,
) -> float:
    model.train()
    total, count = 0.0, 0
    for i, (img, aud, y) in enumerate(batches):
        if should_stop():
            raise Cancelled()
        img = img.to(device) if img is not None and "image" in model.modalities else None
        aud = aud.to(device) if "audio" in model.modalities else None
        y = y.to(device)
        if mixup > 0 and aud is not None:
            # Each clip blended with another of the batch, mostly another speaker's: the audio encoder cannot lean
            # on any one voice's cues (docs/results.md, Seeds, mixup and the other levers).
            lam = float(batches.rng.beta(mixup, mixup))
            perm = torch.from_numpy(batches.rng.permutation(len(y))).to(device)
            out = model(image=img, audio=lam * aud + (1 - lam) * aud[perm])
            loss = _loss(out, y, weight, aux_weight, other=y[perm], lam=lam)
        else:
            loss = _loss(model(image=img, audio=aud), y, weight, aux_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
        if on_batch:
            on_batch(i + 1, len(batches))
    return total / max(1, count)


def epoch_lr(t, epoch: int) -> float:
    """The learning rate for a 1-based epoch under t.lr_schedule."""
    if t.lr_schedule == "constant":
        return t.lr
    if t.lr_schedule == "cosine":
        return t.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / t.epochs))
    raise ValueError(f"lr_schedule must be constant or cosine, not {t.lr_schedule!r}")


def fit(config: RunConfig, data: RunData, *args, **kwargs) -> dict:
    """train_model() (same parameters) without the model: the summary only."""
    return train_model(config, data, *args, **kwargs)[1]


def train_model(
    config: RunConfig,
    data: RunData,
    run_dir: Path | None = None,
    on_epoch_end: EpochCallback | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: bool = False,
    device=None,
) -> tuple[DigitClassifier, dict]:
    """Train config on data. Writes metrics.jsonl, best.pt and final.pt into run_dir when given.

    Returns the final model (in eval mode) and the summary: best epoch, per-epoch history, and test metrics of the
    best and final weights."""
    device = device or best_device()
    t = config.train
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    model = DigitClassifier(config.model).to(device)
    opt = make_optimizer(model, t)
    audio_only = model.modalities == ("audio",)
    labels = data.train.clip_labels if audio_only else data.train.labels
    weight = class_weights(labels).to(device) if t.class_weights else None
    batches = Batches(data, t.batch_size, rng, audio_only)
    best_score, best_epoch, history = -1.0, 0, []
    bar = _bar(t.epochs * len(batches), progress)
    started = time.perf_counter()
    for epoch in range(1, t.epochs + 1):
        epoch_start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = epoch_lr(t, epoch)
        loss = train_one_epoch(
            model,
            batches,
            opt,
            weight,
            t.aux_loss_weight,
            device,
            should_stop,
            on_batch=(lambda i, n: bar.update(1)) if bar else None,
            mixup=t.mixup,
        )
        val = evaluate_split(model, data.val, device)
        row = {
            "epoch": epoch,
            "loss": round(loss, 5),
            "seconds": round(time.perf_counter() - epoch_start, 2),
            "samples_per_s": round(len(batches) * t.batch_size / (time.perf_counter() - epoch_start), 1),
            **{f"val_{k}": v for k, v in headline(val).items()},
        }
        score = val["fused"]["macro_f1"] if "fused" in val else next(iter(val.values()))["macro_f1"]
        if score > best_score:
            best_score, best_epoch = score, epoch
            if run_dir:
                checkpoint.save(
                    run_dir / "best.pt", model, config, data.feature_mean, data.feature_std, {"epoch": epoch, **row}
                )
        row["best_epoch"] = best_epoch
        history.append(row)
        if run_dir:
            append_jsonl(run_dir / "metrics.jsonl", row)
        if bar:
            bar.set_postfix(loss=row["loss"], val_f1=round(score, 2))
        if on_epoch_end:
            on_epoch_end(epoch, row)
    if bar:
        bar.close()
    train_seconds = time.perf_counter() - started
    final_test = evaluate_split(model, data.test, device)
    summary = {
        "epochs": t.epochs,
        "best_epoch": best_epoch,
        "train_seconds": round(train_seconds, 1),
        "parameters": count_parameters(model),
        "device": str(device),
        "final": final_test,
    }
    if run_dir:
        checkpoint.save(
            run_dir / "final.pt", model, config, data.feature_mean, data.feature_std, {"test": headline(final_test)}
        )
        best_model, _ = checkpoint.load(run_dir / "best.pt", device)
        summary["best"] = evaluate_split(best_model, data.test, device)
    return model.eval(), summary


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="batch", file=sys.stderr, dynamic_ncols=True)


def new_run_id(name: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{name}-{os.getpid()}"


def run(
    config: RunConfig,
    root: Path,
    runs_root: Path,
    run_id: str | None = None,
    progress: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> Path:
    """A full run in runs_root/<run_id>: status.json tracks running/finished/failed/cancelled."""
    use_all_cores()
    run_dir = claim_run_dir(Path(runs_root) / (run_id or new_run_id(config.name)))  # a reused id is refused
    write_json(run_dir / "config.json", to_dict(config))
    status = {
        "state": "running",
        "pid": os.getpid(),
        "started": time.time(),
        "trial": config.name,
        "phase": "loading data",
    }
    stop = {"flag": False}

    def on_sigterm(*_):  # stop at once in every phase: data loading and evaluation never look at the flag
        if not stop["flag"]:
            stop["flag"] = True
            raise Cancelled()

    previous = signal.signal(signal.SIGTERM, on_sigterm)  # before the status says so, so a cancel is always heard
    try:
        write_json(run_dir / "status.json", status)
        data = load_run_data(config, root)
        status["phase"] = "training"
        write_json(run_dir / "status.json", status)
        summary = fit(config, data, run_dir, on_epoch_end, lambda: stop["flag"], progress)
        write_json(run_dir / "summary.json", summary)
        write_json(run_dir / "status.json", {**status, "state": "finished", "ended": time.time()})
    except (Cancelled, KeyboardInterrupt):
        write_json(run_dir / "status.json", {**status, "state": "cancelled", "ended": time.time()})
        raise
    except Exception as exc:
        write_json(
            run_dir / "status.json",
            {**status, "state": "failed", "ended": time.time(), "error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return run_dir


def build_config(trial: str, **overrides) -> RunConfig:
    config = get_trial(trial).config
    config = with_dropout(config, overrides.pop("dropout", None))
    return override(config, **overrides)
