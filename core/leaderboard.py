"""Leaderboard rows: the seed's reported F1 per trial beside our measured results and runs."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.results import load_results
from core.runs import list_runs
from core.trials import TRIALS

HEADS = ("fused", "image", "audio")
# The seed's Table 2, as reported: its fused model against published image-only MNIST models.
SEED_TABLE2 = [("My Model (the seed's image + audio fusion)", 99.76), ("VGG-5 (Spinal FC)", 99.15), ("CAMNet3", 99.05),
               ("VGG8B (2x)", 99.01), ("CN (d=32)", 98.84), ("NSRL (log D)", 98.81), ("ResNet-152", 98.79),
               ("ResNet-14", 98.75)]


@dataclass
class Entry:
    """One leaderboard row plus what the detail view needs."""

    row: dict
    history: list[dict] = field(default_factory=list)
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)  # per head, final weights, test split
    run_id: str | None = None


def _measured(record: dict) -> dict:
    """F1 and accuracy per head from a summary-like record ({"best": {head: ...}, "final": {...}})."""
    out = {}
    final, best = record.get("final") or {}, record.get("best") or {}
    for head in HEADS:
        if head in final:
            out[f"F1 {head}"] = round(final[head]["macro_f1"], 2)
            out[f"acc {head}"] = round(final[head]["accuracy"], 2)
    if "fused" in best:
        out["F1 fused (best epoch)"] = round(best["fused"]["macro_f1"], 2)
    return out


def _params(config: dict) -> dict:
    train, model = config.get("train") or {}, config.get("model") or {}
    return {"epochs": train.get("epochs"), "batch": train.get("batch_size"), "lr": train.get("lr"),
            "dropout": model.get("dropout"), "data fraction": train.get("train_fraction"), "seed": train.get("seed")}


def _reported(trial: str | None) -> dict:
    t = TRIALS.get(trial or "")
    return {"seed F1 (best epoch)": t.reported_f1_best if t else None, "seed F1 (final)": t.reported_f1_final if t else None}


def _confusions(record: dict) -> dict:
    return {h: m["confusion"] for h, m in (record.get("final") or {}).items() if "confusion" in m}


def entries(results_dir: Path | None = None, runs_root: Path | None = None) -> list[Entry]:
    """Every run (newest first), every trial (with its committed result if any), and every other committed result."""
    results = load_results(results_dir)
    by_trial = {r.get("trial") or r.get("entry"): r for r in results}
    out = _runs(runs_root)
    for name, trial in TRIALS.items():
        rec = by_trial.pop(name, None) or {}
        row = {"entry": name, "kind": "trial", "description": trial.summary, **_reported(name), **_measured(rec),
               **_params(rec.get("config") or _config_dict(trial)),
               "train time (s)": rec.get("train_seconds"), "status": "result" if rec else "not run here"}
        out.append(Entry(row, rec.get("history") or [], _confusions(rec)))
    for rec in by_trial.values():  # results that are not one of the named trials (ablations ...)
        row = {"entry": rec.get("entry"), "kind": "result", "description": rec.get("source", ""), **_reported(rec.get("trial")),
               **_measured(rec), **_params(rec.get("config") or {}), "train time (s)": rec.get("train_seconds"),
               "status": "result"}
        out.append(Entry(row, rec.get("history") or [], _confusions(rec)))
    return out


def _runs(runs_root: Path | None) -> list[Entry]:
    out = []
    for run in list_runs(runs_root):
        config = _read(run.path / "config.json")
        summary = run.summary or {}
        status = run.state if run.state != "running" else f"running ({run.epochs_done}/{run.epochs_total or '?'} epochs)"
        row = {"entry": run.run_id, "kind": "run", "description": (run.error or "")[:120], **_reported(run.trial),
               **_measured(summary), **_params(config), "train time (s)": summary.get("train_seconds"), "status": status}
        out.append(Entry(row, run.history, _confusions(summary), run.run_id))
    return out


def _config_dict(trial) -> dict:
    from core.config import to_dict

    return to_dict(trial.config)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}
