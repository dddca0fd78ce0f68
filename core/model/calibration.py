"""Confidence that means something: temperature scaling, expected calibration error, reliability bins."""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
# The draw page calls the audio head unsure below the confidence at which, on speakers held out of
# training, the answers it gives stop being right this often.
UNSURE_TARGET_ACCURACY = 0.9


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 that minimises the negative log-likelihood of softmax(logits / T)."""
    from scipy.optimize import minimize_scalar

    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if len(logits) == 0 or logits.ndim != 2 or len(labels) != len(logits):
        raise ValueError("fit_temperature needs (N, classes) logits and N labels, N > 0")
    # NLL is convex in 1/T; searching log T over a wide bracket is robust and needs no gradient.
    result = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=(-4.0, 4.0),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Per equal-width confidence bin: mean confidence, accuracy and count; plus the ECE over them."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == labels
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins the first.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(index, confidence, bins) / count
        acc = np.bincount(index, correct.astype(float), bins) / count
    present = count > 0
    ece = float((count[present] / max(1, len(labels)) * np.abs(acc[present] - conf[present])).sum())
    return {
        "confidence": [float(c) if k else None for c, k in zip(conf, present)],
        "accuracy": [float(a) if k else None for a, k in zip(acc, present)],
        "count": count.tolist(),
        "ece": ece,
        "n": int(len(labels)),
    }


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over equal-width bins."""
    return reliability(probs, labels, bins)["ece"]


def unsure_threshold(probs: np.ndarray, labels: np.ndarray, target: float = UNSURE_TARGET_ACCURACY) -> float:
    """The lowest confidence c such that answers at confidence >= c are right at least target of the time."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    order = np.argsort(-confidence)
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= target)
    # The last position where the most confident k answers still meet the target sets the threshold.
    return float(confidence[order][ok[-1]]) if len(ok) else 1.0


def product_of_experts(p_image: np.ndarray, p_audio: np.ndarray) -> np.ndarray:
    """Late fusion of two calibrated heads that saw independent evidence: p ∝ p_image * p_audio.

    With uniform class priors this is the Bayes posterior given both, so a confidently wrong audio head
    outvotes a drawing only when it is more sure than the drawing is."""
    joint = np.asarray(p_image, dtype=np.float64) * np.asarray(p_audio, dtype=np.float64)
    return joint / np.clip(joint.sum(axis=-1, keepdims=True), 1e-300, None)
