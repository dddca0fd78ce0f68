"""Accuracy, macro-F1 and the confusion matrix over the ten digits, computed by scikit-learn."""

from __future__ import annotations

import numpy as np

from core.config import N_CLASSES

LABELS = list(range(N_CLASSES))


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Rows are true digits, columns predicted."""
    from sklearn.metrics import confusion_matrix  # here: importing scikit-learn is slow, and only evaluation needs it

    return confusion_matrix(y_true, y_pred, labels=LABELS)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean F1 over all ten digits; a digit absent from both y_true and y_pred counts as 0."""
    from sklearn.metrics import f1_score

    if len(y_true) == 0:
        return 0.0  # scikit-learn refuses empty input
    return float(f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0))


def summarize(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """accuracy and macro_f1 in percent, n, and the confusion matrix as nested lists."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    cm = confusion(y_true, y_pred) if len(y_true) else np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    return {
        "accuracy": 100.0 * float(np.trace(cm)) / max(1, int(cm.sum())),
        "macro_f1": 100.0 * macro_f1(y_true, y_pred),
        "n": int(cm.sum()),
        "confusion": cm.tolist(),
    }
