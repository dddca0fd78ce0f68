"""core.metrics against scikit-learn on random cases, including digits missing from y_true or y_pred."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from core.training.metrics import summarize


def random_case(rng: np.random.Generator):
    """Labels drawn from a random subset of the digits; predictions half right, half any digit."""
    n = int(rng.integers(1, 60))
    digits = rng.permutation(10)[: int(rng.integers(1, 11))]
    y_true = rng.choice(digits, n)
    y_pred = np.where(rng.random(n) < rng.random(), y_true, rng.integers(0, 10, n))
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(5))
def test_summary_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    absent_true = absent_pred = 0
    for _ in range(60):
        y_true, y_pred = random_case(rng)
        absent_true += len(set(range(10)) - set(y_true)) > 0
        absent_pred += len(set(range(10)) - set(y_pred)) > 0
        s = summarize(y_true, y_pred)
        assert s["accuracy"] == pytest.approx(100 * accuracy_score(y_true, y_pred))
        assert s["macro_f1"] == pytest.approx(
            100 * f1_score(y_true, y_pred, labels=range(10), average="macro", zero_division=0)
        )
        assert s["confusion"] == confusion_matrix(y_true, y_pred, labels=range(10)).tolist()
        assert s["n"] == len(y_true)
    assert absent_true > 10 and absent_pred > 10  # the cases really exercise missing digits


def test_a_digit_missing_from_both_counts_as_zero():
    # Digits 0 and 1 each get precision and recall 1/2 or 1 (F1 2/3); the eight digits never seen score 0.
    s = summarize(np.array([0, 0, 1]), np.array([0, 1, 1]))
    assert s["macro_f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 10)
    assert s["accuracy"] == pytest.approx(100 * 2 / 3)


def test_empty_input_scores_zero():
    s = summarize(np.array([], dtype=int), np.array([], dtype=int))
    assert (s["accuracy"], s["macro_f1"], s["n"]) == (0.0, 0.0, 0) and np.array(s["confusion"]).shape == (10, 10)
