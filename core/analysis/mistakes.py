"""The test inputs a head gets wrong: for a confusion-matrix cell, which images and clips, and how sure it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.analysis.embeddings import load_split
from core.model.calibration import product_of_experts
from core.training.dataset import Split
from core.training.evaluate import calibrated_probs, head_labels, head_logits


@dataclass(frozen=True)
class HeadAnswers:
    """One head's answers on the test split, in the order head_labels gives: images, or unique clips for audio."""

    truth: np.ndarray  # (N,) true digits
    predicted: np.ndarray  # (N,) the head's digit
    confidence: np.ndarray  # (N,) its (calibrated) probability of that digit


@dataclass(frozen=True)
class Mistake:
    """One wrong answer, with what the user needs to see and hear it."""

    index: int  # into the split's images (image and fused heads) or clips (audio head)
    truth: int
    predicted: int
    confidence: float
    image: np.ndarray | None  # (28, 28) in [0, 1], None for the audio head
    clip: str | None  # the FSDD file the head heard, None for the image head


def answers_on_test_split(weights: str | Path, root: str | Path) -> tuple[dict[str, HeadAnswers], Split]:
    """Every head's answers on the test split, under the checkpoint's calibration and fusion rule."""
    model, ckpt, split = load_split(weights, root, "test")
    calibration = ckpt.get("calibration")
    probs = calibrated_probs(head_logits(model, split), calibration)
    if "fused" in probs and (calibration or {}).get("fusion") == "product":
        probs["fused"] = product_of_experts(probs["image"], probs["audio"][split.pairing])
    answers = {head: HeadAnswers(head_labels(split, head), p.argmax(1), p.max(1)) for head, p in probs.items()}
    return answers, split


def mistakes(
    answers: HeadAnswers, split: Split, head: str, truth: int, predicted: int, limit: int = 12
) -> list[Mistake]:
    """The surest wrong answers of one confusion cell (truth read as predicted), at most limit."""
    if truth == predicted:
        raise ValueError("a diagonal cell holds the right answers, not mistakes")
    where = np.flatnonzero((answers.truth == truth) & (answers.predicted == predicted))
    where = where[np.argsort(-answers.confidence[where], kind="stable")][:limit]
    out = []
    for i in where:
        image = split.images[i] if head != "audio" else None
        clip = (
            split.clip_names[i] if head == "audio" else split.clip_names[split.pairing[i]] if head == "fused" else None
        )
        out.append(
            Mistake(int(i), truth, predicted, float(answers.confidence[i]), image, None if clip is None else str(clip))
        )
    return out
