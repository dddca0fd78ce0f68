"""Accuracy, macro-F1 and confusion per head (fused, image, audio) on a test split."""

from __future__ import annotations

import numpy as np
import torch

from core.data.pairing import balanced_pairing
from core.features import audio
from core.features.conditions import condition_bank
from core.model.calibration import expected_calibration_error, product_of_experts, reliability, softmax
from core.model.nets import DigitClassifier
from core.training.dataset import Split
from core.training.metrics import summarize

EVAL_BATCH = 1000


@torch.inference_mode()
def head_logits(model: DigitClassifier, split: Split, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Logits per head: fused and image over the paired images, audio over the unique clips."""
    model.eval()
    out: dict[str, list] = {}
    clips = torch.from_numpy(split.clips[:, 0])
    images = torch.from_numpy(split.images)
    both = len(model.modalities) == 2
    for start in range(0, len(images), EVAL_BATCH):
        sl = slice(start, start + EVAL_BATCH)
        img = images[sl].to(device)
        if both:
            aud = clips[split.pairing[sl]].to(device)
            out.setdefault("fused", []).append(model(image=img, audio=aud)["fused"].float().cpu())
        if "image" in model.modalities:
            out.setdefault("image", []).append(model(image=img)["image"].float().cpu())
    if "audio" in model.modalities:
        for start in range(0, len(clips), EVAL_BATCH):
            out.setdefault("audio", []).append(
                model(audio=clips[start : start + EVAL_BATCH].to(device))["audio"].float().cpu()
            )
    logits = {k: torch.cat(v).numpy() for k, v in out.items()}
    if "fused" in logits and model.fusion.softmax_output:  # the seed's try3-6 end in a softmax: back to logits
        logits["fused"] = np.log(np.clip(logits["fused"], 1e-12, None))
    return logits


def head_labels(split: Split, head: str) -> np.ndarray:
    """The true digits a head's outputs line up with: each clip once for audio, the images otherwise."""
    return split.clip_labels if head == "audio" else split.labels


def evaluate_split(
    model: DigitClassifier, split: Split, device: torch.device | str = "cpu", calibration: dict | None = None
) -> dict[str, dict]:
    """summarize() per head, plus its reliability bins and expected calibration error (%), under a
    checkpoint's calibration when given (its temperatures, and its fusion rule for the fused head)."""
    probs = calibrated_probs(head_logits(model, split, device), calibration)
    if "fused" in probs and (calibration or {}).get("fusion") == "product":
        probs["fused"] = product_of_experts(probs["image"], probs["audio"][split.pairing])  # each image with its clip
    out = {}
    for head, p in probs.items():
        labels = head_labels(split, head)
        bins = reliability(p, labels)
        out[head] = {**summarize(labels, p.argmax(1)), "ece": 100.0 * bins.pop("ece"), "reliability": bins}
    return out


def headline(metrics: dict[str, dict]) -> dict[str, float]:
    """Accuracy and F1 per head, without the confusion matrices, for logs and leaderboards."""
    return {f"{head}_{k}": round(v[k], 3) for head, v in metrics.items() for k in ("accuracy", "macro_f1")}


def calibrated_probs(logits: dict[str, np.ndarray], calibration: dict | None) -> dict[str, np.ndarray]:
    """Probabilities per head under a checkpoint's temperatures (1 where it has none)."""
    temps = (calibration or {}).get("temperature", {})
    return {head: softmax(v, temps.get(head, 1.0)) for head, v in logits.items()}


def evaluate_conditions(model, ckpt: dict, data, root, conditions: tuple[str, ...]) -> dict[str, dict]:
    """The audio head on the test clips under each condition, and what each fusion rule makes of the pairs."""
    config, calibration = ckpt["run_config"], ckpt.get("calibration")
    test_names = set(data.test.clip_names)
    images = image_logits(model, data.test.images) if "image" in model.modalities else None
    out = {}
    for condition in conditions:
        bank = condition_bank(root, condition)
        held = bank.subset(np.isin(bank.names, list(test_names)))
        features = audio.standardize(held.clean, data.feature_mean, data.feature_std, config.features.utterance_norm)
        logits = {"audio": standardised_audio_logits(model, features)}
        result = {"audio": _scores(logits["audio"], held.digits, calibration, "audio")}
        if images is not None:
            pairing = balanced_pairing(data.test.labels, held.digits)
            with torch.inference_mode():
                fused = torch.cat(
                    [
                        model(
                            image=torch.from_numpy(data.test.images[i : i + EVAL_BATCH]),
                            audio=torch.from_numpy(features[pairing[i : i + EVAL_BATCH]]),
                        )["fused"].float()
                        for i in range(0, len(pairing), EVAL_BATCH)
                    ]
                ).numpy()
            paired = {"fused": fused, "image": images, "audio": logits["audio"][pairing]}
            result["fusion"] = fusion_report(paired, data.test.labels, calibration)
        out[condition] = result
    return out


@torch.inference_mode()
def standardised_audio_logits(model: DigitClassifier, x: np.ndarray) -> np.ndarray:
    """(N, 10) audio-head logits for (N, 39, 13) features that are already model input."""
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return torch.cat(
        [model(audio=x[i : i + EVAL_BATCH])["audio"].float() for i in range(0, len(x), EVAL_BATCH)]
    ).numpy()


@torch.inference_mode()
def image_logits(model: DigitClassifier, images: np.ndarray) -> np.ndarray:
    """(N, 10) image-head logits for (N, 28, 28) images."""
    x = torch.from_numpy(images)
    return torch.cat(
        [model(image=x[i : i + EVAL_BATCH])["image"].float() for i in range(0, len(x), EVAL_BATCH)]
    ).numpy()


def _scores(logits: np.ndarray, labels: np.ndarray, calibration: dict | None, head: str) -> dict:
    probs = calibrated_probs({head: logits}, calibration)[head]
    m = summarize(labels, logits.argmax(1))
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "n": m["n"],
        "ece": 100.0 * expected_calibration_error(probs, labels),
    }


def fusion_report(paired_logits: dict[str, np.ndarray], labels: np.ndarray, calibration: dict | None) -> dict:
    """Accuracy of the learned fused head and of the calibrated product, and on the pairs where image and
    audio disagree, how often each follows the right one."""
    learned = paired_logits["fused"].argmax(1)
    probs = calibrated_probs(paired_logits, calibration)
    product = product_of_experts(probs["image"], probs["audio"]).argmax(1)
    split = paired_logits["image"].argmax(1) != paired_logits["audio"].argmax(1)

    def rate(pred, mask):
        return round(100.0 * float((pred[mask] == labels[mask]).mean()), 2) if mask.any() else None

    all_ = np.ones(len(labels), bool)
    return {
        "pairs": int(len(labels)),
        "disagreements": int(split.sum()),
        "learned": {"accuracy": rate(learned, all_), "follows_right": rate(learned, split)},
        "product": {"accuracy": rate(product, all_), "follows_right": rate(product, split)},
    }
