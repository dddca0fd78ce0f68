"""Leaderboard entries: committed trial results (results/) and finished or running runs (runs/)."""
from __future__ import annotations

import json
from pathlib import Path

from core import paths
from core.io import read_jsonl, write_json


def result_from_run(run_dir: Path, **extra) -> dict:
    """A self-contained result record from a finished run directory (no weights, small enough to commit)."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return {
        "entry": config.get("name", run_dir.name),
        "trial": config.get("name"),
        "config": config,
        "history": read_jsonl(run_dir / "metrics.jsonl"),
        **summary,
        **extra,
    }


def save_result(record: dict, path: Path) -> Path:
    return write_json(path, record)


def load_results(results_dir: Path | None = None) -> list[dict]:
    """Every committed result under results/ (results/trials/*.json, results/ablations/*.json ...)."""
    root = Path(results_dir) if results_dir else paths.RESULTS_DIR
    records = []
    for path in sorted(root.glob("*/*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):
            record.setdefault("entry", path.stem)
            record["source"] = str(path.relative_to(root))
            records.append(record)
    return records
