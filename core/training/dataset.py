"""The tensors one run trains and is tested on: MNIST images, FSDD features, splits and statistics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import RunConfig
from core.data.fsdd import OFFICIAL_TEST_TAKES
from core.data.mnist import load_mnist
from core.data.pairing import TEST_PAIRING_SEED, VAL_PAIRING_SEED, balanced_pairing
from core.features import audio
from core.features.banks import ClipBank, load_fsdd_bank
from core.features.voices import synthetic_bank


@dataclass
class Split:
    """Images with labels, the clip pool they pair with, and a fixed pairing for evaluation."""

    images: np.ndarray  # (N, 28, 28) float32
    labels: np.ndarray  # (N,)
    clips: np.ndarray  # (M, V+1, 39, 13) standardised features, view 0 clean
    clip_labels: np.ndarray  # (M,)
    clip_speakers: np.ndarray
    clip_names: np.ndarray
    pairing: np.ndarray  # (N,) index into clips, fixed by a seed


@dataclass
class RunData:
    train: Split
    val: Split
    test: Split
    feature_mean: np.ndarray  # (13,)
    feature_std: np.ndarray  # (13,)


def feature_stats(features: np.ndarray, utterance_norm: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over every frame of the training features."""
    x = audio.standardize(
        features.reshape(-1, audio.N_FRAMES, audio.N_COEFFS), np.zeros(13), np.ones(13), utterance_norm
    )
    flat = x.reshape(-1, audio.N_COEFFS)
    return flat.mean(0).astype(np.float32), (flat.std(0) + 1e-5).astype(np.float32)


def _clip_masks(bank: ClipBank, cfg: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = cfg.train
    if t.split == "official":
        test = np.isin(bank.takes, list(OFFICIAL_TEST_TAKES))
    elif t.split == "loso":
        if t.held_out_speaker not in set(bank.speakers):
            raise ValueError(
                f"held_out_speaker must be one of {sorted(set(bank.speakers))}, not {t.held_out_speaker!r}"
            )
        test = bank.speakers == t.held_out_speaker
    else:
        raise ValueError(f"split must be official or loso, not {t.split!r}")
    val = ~test & (bank.takes >= t.validation_takes[0]) & (bank.takes < t.validation_takes[1])
    return ~test & ~val, val, test


def _views(bank: ClipBank, mean, std, norm: str, with_views: bool) -> np.ndarray:
    stacked = np.concatenate([bank.clean[:, None], bank.views], axis=1) if with_views else bank.clean[:, None]
    return audio.standardize(stacked, mean, std, norm)


def _mnist_splits(cfg: RunConfig, root: Path, subsample: bool) -> tuple:
    """(train images, labels, validation images, labels, test images, labels); subsample applies
    train_fraction and limit to the training images, and eval_limit to the validation and test images."""
    t = cfg.train
    images, labels = load_mnist(root, "train")
    n_val = t.validation_images
    tr_img, tr_lab, va_img, va_lab = images[:-n_val], labels[:-n_val], images[-n_val:], labels[-n_val:]
    n_train = len(tr_img)
    if subsample and t.train_fraction < 1.0:
        n_train = max(10, int(round(n_train * t.train_fraction)))
    if subsample and t.limit:
        n_train = min(n_train, t.limit)
    if n_train < len(tr_img):
        keep = np.sort(np.random.default_rng(t.seed).permutation(len(tr_img))[:n_train])
        tr_img, tr_lab = tr_img[keep], tr_lab[keep]
    te_img, te_lab = load_mnist(root, "test")
    if subsample and t.eval_limit:  # the first images of each split: the same ones for every seed
        n = t.eval_limit
        va_img, va_lab, te_img, te_lab = va_img[:n], va_lab[:n], te_img[:n], te_lab[:n]
    return tr_img, tr_lab, va_img, va_lab, te_img, te_lab


def _splits(
    cfg: RunConfig, mnist: tuple, banks: tuple[ClipBank, ClipBank, ClipBank], mean, std, train_views: bool
) -> RunData:
    tr_img, tr_lab, va_img, va_lab, te_img, te_lab = mnist
    norm = cfg.features.utterance_norm

    def split(img, lab, b: ClipBank, with_views: bool, seed: int) -> Split:
        return Split(
            img,
            lab,
            _views(b, mean, std, norm, with_views),
            b.digits,
            b.speakers,
            b.names,
            balanced_pairing(lab, b.digits, seed),
        )

    train_bank, val_bank, test_bank = banks
    return RunData(
        train=split(tr_img, tr_lab, train_bank, train_views, cfg.train.seed),
        val=split(va_img, va_lab, val_bank, False, VAL_PAIRING_SEED),
        test=split(te_img, te_lab, test_bank, False, TEST_PAIRING_SEED),
        feature_mean=mean,
        feature_std=std,
    )


def load_run_data(cfg: RunConfig, root: Path, progress=None) -> RunData:
    """Everything one training run needs: augmented views, synthetic voices, statistics from the training
    clips, and the training images limited by train_fraction and limit."""
    f = cfg.features
    mnist = _mnist_splits(cfg, root, subsample=True)
    bank = load_fsdd_bank(root, f.augment_views, progress=progress, augmentation=f.augmentation)
    m_train, m_val, m_test = _clip_masks(bank, cfg)
    train_bank = bank.subset(m_train)
    if f.synthetic_voices:
        train_bank = synthetic_bank(
            train_bank, f.augment_views, f.augmentation, raised=f.raised_voices, accents=f.voice_accents
        )
    mean, std = feature_stats(np.concatenate([train_bank.clean[:, None], train_bank.views], 1), f.utterance_norm)
    return _splits(cfg, mnist, (train_bank, bank.subset(m_val), bank.subset(m_test)), mean, std, train_views=True)


def load_eval_data(cfg: RunConfig, root: Path, stats: tuple[np.ndarray, np.ndarray]) -> RunData:
    """A trained model's splits, standardised with its stored statistics: every MNIST image, clean FSDD
    clips only. Builds no training data: no augmented views, no synthetic voices (no espeak-ng)."""
    mnist = _mnist_splits(cfg, root, subsample=False)
    bank = load_fsdd_bank(root, 0)
    masks = _clip_masks(bank, cfg)
    mean, std = (np.asarray(s, dtype=np.float32) for s in stats)
    return _splits(cfg, mnist, tuple(bank.subset(m) for m in masks), mean, std, train_views=False)
