"""The test inputs behind a confusion cell: the answers the run's confusion counts, surest first, image and clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.analysis.mistakes import answers_on_test_split, mistakes
from core.runs.leaderboard import shipped
from core.training.metrics import confusion


def test_a_cells_mistakes_are_the_answers_its_confusion_counts(tiny_run, data_root):
    answers, split = answers_on_test_split(tiny_run / "final.pt", data_root)
    recorded = json.loads((tiny_run / "summary.json").read_text())["final"]
    assert set(answers) == {"fused", "image", "audio"}
    for head, a in answers.items():
        matrix = confusion(a.truth, a.predicted)
        assert matrix.tolist() == recorded[head]["confusion"]  # the same answers the run's record counted
        wrong = matrix - np.diag(np.diag(matrix))
        truth, predicted = (int(v) for v in np.unravel_index(wrong.argmax(), wrong.shape))
        found = mistakes(a, split, head, truth, predicted, limit=10_000)
        assert len(found) == matrix[truth, predicted] > 0
        assert all(m.truth == truth and m.predicted == predicted for m in found)
        assert all(a.truth[m.index] == truth and a.predicted[m.index] == predicted for m in found)
        assert [m.confidence for m in found] == sorted((m.confidence for m in found), reverse=True)
        assert len(mistakes(a, split, head, truth, predicted, limit=2)) == min(2, len(found))
        for m in found:
            if head == "audio":
                assert m.image is None and m.clip == split.clip_names[m.index]
            else:
                assert np.array_equal(m.image, split.images[m.index])
                assert m.clip == (split.clip_names[split.pairing[m.index]] if head == "fused" else None)
            assert m.clip is None or (data_root / "fsdd" / "recordings" / m.clip).is_file()
    with pytest.raises(ValueError, match="diagonal"):
        mistakes(answers["image"], split, "image", 3, 3)


def test_the_shipped_weights_row_shows_their_stored_figures(tiny_run, tmp_path):
    entry = shipped(tiny_run / "final.pt")
    assert entry.row["status"] == "shipped" and entry.weights == tiny_run / "final.pt"
    assert entry.row["seed F1 (final)"] is None  # the fused recipe is ours: the seed reported nothing for it
    test = torch.load(tiny_run / "final.pt", weights_only=True)["metrics"]["test"]
    assert entry.row["F1 fused"] == round(test["fused_macro_f1"], 2) and entry.row["acc audio"] == round(
        test["audio_accuracy"], 2
    )
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    bad = shipped(broken)
    assert bad.row["status"].startswith("unreadable (") and bad.weights is None
