"""Leaderboard rows: the seed's reported F1 per trial beside our measured results, LOSO figures and runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.runs.records import HEAD_NAMES as HEADS
from core.runs.results import is_loso, load_results
from core.runs.listing import list_runs
from core.trials import TRIALS
from core.config import to_dict

LOSO_MEAN, LOSO_WORST = "LOSO mean acc (audio)", "LOSO worst speaker acc (audio)"
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
    per_speaker: dict[str, float] = field(default_factory=dict)  # LOSO: audio accuracy (%) per held-out speaker
    reliability: dict[str, dict] = field(default_factory=dict)  # per head: confidence, accuracy and count per bin


def _measured(record: dict) -> dict:
    """F1 and accuracy per head from a checked summary-like record ({"best": {head: ...}, "final": {...}})."""
    out = {}
    final, best = record.get("final") or {}, record.get("best") or {}
    for head in HEADS:
        if head in final:
            out[f"F1 {head}"] = round(final[head]["macro_f1"], 2)
            out[f"acc {head}"] = round(final[head]["accuracy"], 2)
    if "fused" in best:
        out["F1 fused (best epoch)"] = round(best["fused"]["macro_f1"], 2)
    if record.get("loso"):
        out.update(_loso(record["loso"]))
    return out


def _loso(figures: dict) -> dict:
    return {LOSO_MEAN: round(figures["mean"], 2), LOSO_WORST: round(figures["min"], 2)}


def _params(config: dict) -> dict:
    train, model = config.get("train") or {}, config.get("model") or {}
    return {"epochs": train.get("epochs"), "batch": train.get("batch_size"), "lr": train.get("lr"),
            "dropout": model.get("dropout"), "data fraction": train.get("train_fraction"), "seed": train.get("seed")}


def _reported(trial: str | None) -> dict:
    t = TRIALS.get(trial or "")
    return {"seed F1 (best epoch)": t.reported_f1_best if t else None, "seed F1 (final)": t.reported_f1_final if t else None}


def _confusions(record: dict) -> dict:
    final = record.get("final") or {}
    return {h: final[h]["confusion"] for h in HEADS if "confusion" in final.get(h, {})}


def _bins(value) -> dict | None:
    """Reliability bins as core.model.calibration.reliability writes them, or None when they are malformed."""
    if not isinstance(value, dict):
        return None
    conf, acc, count = value.get("confidence"), value.get("accuracy"), value.get("count")
    if not all(isinstance(v, list) for v in (conf, acc, count)) or not 0 < len(conf) == len(acc) == len(count) <= 100:
        return None
    number = (int, float)
    if not all((c is None and a is None and n == 0) or (isinstance(c, number) and isinstance(a, number)
               and isinstance(n, int) and n > 0 and 0 <= c <= 1 and 0 <= a <= 1) for c, a, n in zip(conf, acc, count)):
        return None
    return {"confidence": conf, "accuracy": acc, "count": count}


def _reliabilities(record: dict) -> dict:
    final = record.get("final") or {}
    found = {h: _bins(final[h].get("reliability")) for h in HEADS if isinstance(final.get(h), dict)}
    return {h: b for h, b in found.items() if b}


def entries(results_dir: Path | None = None, runs_root: Path | None = None) -> list[Entry]:
    """Every run (newest first), every trial (with its committed result if any), every other committed result, then
    the leave-one-speaker-out results. A file that fails its checks is one row, "unreadable (why)"."""
    results = load_results(results_dir)
    loso = [r for r in results if is_loso(r["source"]) and "problem" not in r]
    by_trial = {r.get("trial") or r["entry"]: r for r in results if not is_loso(r["source"]) and "problem" not in r}
    out = _runs(runs_root)
    for name, trial in TRIALS.items():
        rec = by_trial.pop(name, None) or {}
        row = {"entry": name, "kind": "trial", "description": trial.summary, **_reported(name), **_measured(rec),
               **_params(rec.get("config") or _config_dict(trial)),
               "train time (s)": rec.get("train_seconds"), "status": "result" if rec else "not run here"}
        out.append(Entry(row, rec.get("history") or [], _confusions(rec), reliability=_reliabilities(rec)))
    for rec in by_trial.values():  # results that are not one of the named trials (ablations ...)
        row = {"entry": rec["entry"], "kind": "result", "description": rec["source"], **_reported(rec.get("trial")),
               **_measured(rec), **_params(rec.get("config") or {}), "train time (s)": rec.get("train_seconds"),
               "status": "result"}
        out.append(Entry(row, rec.get("history") or [], _confusions(rec), per_speaker=(rec.get("loso") or {}).get("per_speaker", {}),
                         reliability=_reliabilities(rec)))
    for rec in loso:
        worst = min(rec["per_speaker"], key=rec["per_speaker"].get)
        row = {"entry": f"{rec['recipe']}, leave-one-speaker-out (audio)", "kind": "loso",
               "description": f"{rec['source']}: audio accuracy on each of {len(rec['per_speaker'])} speakers held out "
                              f"of training; hardest: {worst}", **_loso(rec), "epochs": rec.get("epochs"),
               "train time (s)": rec.get("seconds"), "status": "result"}
        held_out = _bins((rec.get("calibration") or {}).get("reliability"))
        out.append(Entry(row, per_speaker=rec["per_speaker"], reliability={"audio": held_out} if held_out else {}))
    for rec in results:
        if "problem" in rec:
            out.append(Entry({"entry": rec["entry"], "kind": "result", "description": rec["source"],
                              "status": f"unreadable ({rec['problem']})"}))
    return out


def _runs(runs_root: Path | None) -> list[Entry]:
    out = []
    for run in list_runs(runs_root):
        if run.state == "missing":  # deleted while we looked
            continue
        if run.state == "unreadable":
            out.append(Entry({"entry": run.run_id, "kind": "run", "description": "", "status": f"unreadable ({run.error})"}))
            continue
        summary = run.summary or {}
        status = run.state if run.state != "running" else f"running ({run.epochs_done}/{run.epochs_total or '?'} epochs)"
        row = {"entry": run.run_id, "kind": "run", "description": (run.error or "")[:120], **_reported(run.trial),
               **_measured(summary), **_params(run.config or {}), "train time (s)": summary.get("train_seconds"),
               "status": status}
        out.append(Entry(row, run.history, _confusions(summary), run.run_id, reliability=_reliabilities(summary)))
    return out


def _config_dict(trial) -> dict:
    return to_dict(trial.config)
