"""Accuracy, macro-F1 and the confusion matrix, in plain numpy."""
from __future__ import annotations

import numpy as np

N_CLASSES = 10


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = N_CLASSES) -> np.ndarray:
    """Rows are true digits, columns predicted."""
    return np.bincount(np.asarray(y_true) * n + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def macro_f1(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = cm.sum(1) > 0
    return float(f1[present].mean()) if present.any() else 0.0


def summarize(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """accuracy and macro_f1 in percent, n, and the confusion matrix as nested lists."""
    cm = confusion(y_true, y_pred)
    return {
        "accuracy": 100.0 * float(np.trace(cm)) / max(1, int(cm.sum())),
        "macro_f1": 100.0 * macro_f1(cm),
        "n": int(cm.sum()),
        "confusion": cm.tolist(),
    }
