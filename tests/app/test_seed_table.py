"""The Leaderboard's trials over seeds: a sweep's finished runs as mean ± spread beside the seed report's F1."""

from __future__ import annotations

import json
import shutil

import pytest

from core.io import write_json
from tests.helpers import app_after_run

PAGE = "pages/leaderboard.py"


@pytest.fixture
def runs(monkeypatch, tmp_path, tiny_weights, data_root):
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("DIGITS_RUNS_DIR", str(runs))
    monkeypatch.setenv("DIGITS_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    return runs


def _sweep_run(runs, tiny_run, sweep_id: str, trial: str, seed: int):
    run_dir = runs / f"{sweep_id}-{trial}-s{seed}"
    shutil.copytree(tiny_run, run_dir)
    write_json(run_dir / "sweep.json", {"sweep_id": sweep_id, "trial": trial, "seed": seed, "grid": {}})
    return run_dir


def test_a_sweeps_seeds_show_as_mean_and_spread(runs, tiny_run):
    for seed in (0, 1):
        _sweep_run(runs, tiny_run, "sweep-apptest", "fused", seed)
    at = app_after_run(PAGE)
    assert any(h.value == "Trials over seeds" for h in at.subheader)
    picker = next((s for s in at.selectbox if s.key == "seed_sweep"), None)
    if picker is not None:  # committed sweeps in results/ are listed too
        picker.select("sweep-apptest").run()
    table = next(d.value for d in at.dataframe if "fused − best trial" in d.value.columns)
    summary = json.loads((tiny_run / "summary.json").read_text())
    (row,) = table.to_dict("records")
    assert row["trial"] == "fused" and row["seeds"] == 2 and row["fused − best trial"] == "best"
    assert row["F1 fused"] == f"{summary['final']['fused']['macro_f1']:.2f} ± 0.00"  # one run copied: no spread
    assert any("beyond spread" in c.value for c in at.caption)
