"""Learning: every head of a tiny run beats chance by far, and the shipped weights score what their README says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from core import paths
from core.config import FeatureConfig

# Chance is 10 %. A tiny run of a working pipeline clears every bar with room to spare (docs/mutants.md, Learning);
# a head that gets no gradient, wrong labels or another modality's input stays near chance.
BARS = {"fused": 90.0, "image": 80.0, "audio": 80.0}
# The shipped weights must score their README's figures within this many percentage points: one of the 300 test
# clips is 0.33 points, one of the 10,000 images 0.01; rounding and float16 weights move nothing by 0.1.
README_MARGIN = 0.1


@pytest.fixture(scope="module")
def tiny_summary(data_root):
    """The default recipe, 3 epochs on 1,024 pairs, with clean FSDD features (cached) so the audio head learns too."""
    from core.training.dataset import load_run_data
    from core.training.loop import build_config, fit

    config = build_config(
        "fused", epochs=3, limit=1024, batch_size=32, lr=3e-3, aux_loss_weight=1.0, seed=0, validation_images=500
    )
    config = replace(config, features=FeatureConfig(utterance_norm="mean", augment_views=0))
    return fit(config, load_run_data(config, data_root))


@pytest.mark.parametrize("head", list(BARS))
def test_each_head_of_a_tiny_run_learns(tiny_summary, head):
    result = tiny_summary["final"][head]
    assert result["n"] == (300 if head == "audio" else 10_000)
    assert result["accuracy"] > BARS[head] and result["macro_f1"] > BARS[head], result


def readme_figures() -> dict[str, dict[str, float]]:
    """{head: {"accuracy": %, "macro_f1": %}} from the table in weights/README.md."""
    text = (paths.WEIGHTS_DIR / "README.md").read_text()
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.lstrip().startswith("|")
    ]
    header = next((r for r in rows if r[:3] == ["head", "accuracy", "macro-F1"]), None)
    assert header, "weights/README.md has no table with the columns head | accuracy | macro-F1"
    number = lambda cell: float(re.fullmatch(r"([\d.]+)\s*%", cell)[1])  # noqa: E731
    figures = {
        r[0]: {"accuracy": number(r[1]), "macro_f1": number(r[2])}
        for r in rows[rows.index(header) + 1 :]
        if r[0] in ("fused", "image", "audio")
    }
    assert set(figures) == {"fused", "image", "audio"}, figures
    return figures


@pytest.mark.slow
def test_the_shipped_weights_score_what_their_readme_says(data_root):
    if not paths.DEFAULT_WEIGHTS.is_file():
        pytest.fail(f"{paths.DEFAULT_WEIGHTS} is missing")
    expected = readme_figures()
    # The README's own command.
    run = subprocess.run(
        [sys.executable, "-m", "core.evaluate", "--weights", str(paths.DEFAULT_WEIGHTS), "--json"],
        cwd=paths.REPO_ROOT,
        env={**os.environ, paths.DATA_DIR_ENV: str(data_root)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout)["heads"]
    for head, figures in expected.items():
        for key, value in figures.items():
            assert measured[head][key] == pytest.approx(value, abs=README_MARGIN), (head, key)
