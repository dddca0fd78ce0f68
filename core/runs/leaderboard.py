"""Leaderboard rows: the seed's reported F1 per trial beside our measured results, LOSO figures and runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import paths
from core.config import to_dict
from core.errors import CheckpointError
from core.io import UnreadableRecord
from core.model.checkpoint import load_dict
from core.runs.listing import list_runs
from core.runs.records import HEAD_NAMES as HEADS
from core.runs.records import RESULT, read_json
from core.runs.results import is_loso, load_results
from core.trials import TRIALS

LOSO_MEAN, LOSO_WORST = "LOSO mean acc (audio)", "LOSO worst speaker acc (audio)"
# The seed's Table 2, as reported: its fused model against published image-only MNIST models.
SEED_TABLE2 = [
    ("My Model (the seed's image + audio fusion)", 99.76),
    ("VGG-5 (Spinal FC)", 99.15),
    ("CAMNet3", 99.05),
    ("VGG8B (2x)", 99.01),
    ("CN (d=32)", 98.84),
    ("NSRL (log D)", 98.81),
    ("ResNet-152", 98.79),
    ("ResNet-14", 98.75),
]


@dataclass
class Entry:
    """One leaderboard row plus what the detail view needs."""

    row: dict
    history: list[dict] = field(default_factory=list)
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)  # per head, final weights, test split
    run_id: str | None = None
    per_speaker: dict[str, float] = field(default_factory=dict)  # LOSO: audio accuracy (%) per held-out speaker
    reliability: dict[str, dict] = field(default_factory=dict)  # per head: confidence, accuracy and count per bin
    weights: Path | None = None  # a checkpoint on this server whose test answers can be looked at (final weights)


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
    return {
        "epochs": train.get("epochs"),
        "batch": train.get("batch_size"),
        "lr": train.get("lr"),
        "dropout": model.get("dropout"),
        "data fraction": train.get("train_fraction"),
        "seed": train.get("seed"),
    }


def _reported(trial: str | None) -> dict:
    t = TRIALS.get(trial or "")
    return {
        "seed F1 (best epoch)": t.reported_f1_best if t else None,
        "seed F1 (final)": t.reported_f1_final if t else None,
    }


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
    if not all(
        (c is None and a is None and n == 0)
        or (
            isinstance(c, number)
            and isinstance(a, number)
            and isinstance(n, int)
            and n > 0
            and 0 <= c <= 1
            and 0 <= a <= 1
        )
        for c, a, n in zip(conf, acc, count)
    ):
        return None
    return {"confidence": conf, "accuracy": acc, "count": count}


def _reliabilities(record: dict) -> dict:
    final = record.get("final") or {}
    found = {h: _bins(final[h].get("reliability")) for h in HEADS if isinstance(final.get(h), dict)}
    return {h: b for h, b in found.items() if b}


def shipped(weights: Path) -> Entry:
    """The served checkpoint's own row: its recipe and the test figures stored in it."""
    row = {"entry": f"shipped weights ({weights.name})", "kind": "shipped"}
    try:
        ckpt = load_dict(weights)
        config = ckpt["config"]
        test = (ckpt.get("metrics") or {}).get("test") or {}
        measured = {
            f"{k} {h}": round(float(test[f"{h}_{m}"]), 2)
            for h in HEADS
            for k, m in (("F1", "macro_f1"), ("acc", "accuracy"))
            if isinstance(test.get(f"{h}_{m}"), (int, float))
        }
        name = config.get("name") if isinstance(config.get("name"), str) else None
    except (CheckpointError, AttributeError, TypeError, ValueError) as exc:
        return Entry({**row, "description": "", "status": f"unreadable ({exc})"})
    row.update(
        {
            "description": f"the model this app serves: the {name} recipe (weights/README.md)",
            **_reported(name),
            **measured,
            **_params(config),
            "status": "shipped",
        }
    )
    return Entry(row, weights=weights)


def entries(results_dir: Path | None = None, runs_root: Path | None = None, served: Path | None = None) -> list[Entry]:
    """The served weights (when given), every run (newest first), every trial (with its committed result if any),
    every other committed result, then the leave-one-speaker-out results. A file that fails its checks is one
    row, "unreadable (why)"."""
    results = load_results(results_dir)
    loso = [r for r in results if is_loso(r["source"]) and "problem" not in r]
    by_trial = {r.get("trial") or r["entry"]: r for r in results if not is_loso(r["source"]) and "problem" not in r}
    out = ([shipped(served)] if served is not None and served.exists() else []) + _runs(runs_root)
    for name, trial in TRIALS.items():
        rec = by_trial.pop(name, None) or {}
        row = {
            "entry": name,
            "kind": "trial",
            "description": trial.summary,
            **_reported(name),
            **_measured(rec),
            **_params(rec.get("config") or _config_dict(trial)),
            "train time (s)": rec.get("train_seconds"),
            "status": "result" if rec else "not run here",
        }
        out.append(Entry(row, rec.get("history") or [], _confusions(rec), reliability=_reliabilities(rec)))
    for rec in by_trial.values():  # results that are not one of the named trials (ablations ...)
        row = {
            "entry": rec["entry"],
            "kind": "result",
            "description": rec["source"],
            **_reported(rec.get("trial")),
            **_measured(rec),
            **_params(rec.get("config") or {}),
            "train time (s)": rec.get("train_seconds"),
            "status": "result",
        }
        out.append(
            Entry(
                row,
                rec.get("history") or [],
                _confusions(rec),
                per_speaker=(rec.get("loso") or {}).get("per_speaker", {}),
                reliability=_reliabilities(rec),
            )
        )
    for rec in loso:
        worst = min(rec["per_speaker"], key=rec["per_speaker"].get)
        row = {
            "entry": f"{rec['recipe']}, leave-one-speaker-out (audio)",
            "kind": "loso",
            "description": f"{rec['source']}: audio accuracy on each of {len(rec['per_speaker'])} speakers held out "
            f"of training; hardest: {worst}",
            **_loso(rec),
            "epochs": rec.get("epochs"),
            "train time (s)": rec.get("seconds"),
            "status": "result",
        }
        held_out = _bins((rec.get("calibration") or {}).get("reliability"))
        out.append(Entry(row, per_speaker=rec["per_speaker"], reliability={"audio": held_out} if held_out else {}))
    for rec in results:
        if "problem" in rec:
            out.append(
                Entry(
                    {
                        "entry": rec["entry"],
                        "kind": "result",
                        "description": rec["source"],
                        "status": f"unreadable ({rec['problem']})",
                    }
                )
            )
    return out


def _runs(runs_root: Path | None) -> list[Entry]:
    out = []
    for run in list_runs(runs_root):
        if run.state == "missing":  # deleted while we looked
            continue
        if run.state == "unreadable":
            out.append(
                Entry({"entry": run.run_id, "kind": "run", "description": "", "status": f"unreadable ({run.error})"})
            )
            continue
        summary = run.summary or {}
        status = (
            run.state if run.state != "running" else f"running ({run.epochs_done}/{run.epochs_total or '?'} epochs)"
        )
        row = {
            "entry": run.run_id,
            "kind": "run",
            "description": (run.error or "")[:120],
            **_reported(run.trial),
            **_measured(summary),
            **_params(run.config or {}),
            "train time (s)": summary.get("train_seconds"),
            "status": status,
        }
        final = run.path / "final.pt" if run.state == "finished" else None
        out.append(
            Entry(
                row,
                run.history,
                _confusions(summary),
                run.run_id,
                reliability=_reliabilities(summary),
                weights=final if final is not None and final.is_file() else None,
            )
        )
    return out


def _config_dict(trial) -> dict:
    return to_dict(trial.config)


SPREADS = 2.0  # a difference is "beyond the spread" past this many seed standard deviations (pooled for two trials)


@dataclass
class SeedRow:
    """One trial (one grid point) of a sweep: its F1 per head over seeds, beside the seed report's F1."""

    sweep_id: str
    trial: str
    grid: dict
    seeds: list[int]
    f1: dict[str, list[float]]  # head -> final macro-F1 per seed, in seed order
    reported_final: float | None

    def mean(self, head: str) -> float | None:
        values = self.f1.get(head) or []
        return sum(values) / len(values) if values else None

    def sd(self, head: str) -> float | None:
        """Sample standard deviation over seeds; None below two seeds."""
        values = self.f1.get(head) or []
        if len(values) < 2:
            return None
        m = sum(values) / len(values)
        return (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def beyond_spread(difference: float, *sds: float | None) -> bool | None:
    """Whether |difference| exceeds SPREADS pooled seed standard deviations; None when a spread is unknown."""
    if not sds or any(s is None for s in sds):
        return None
    pooled = (sum(s * s for s in sds) / len(sds)) ** 0.5
    return abs(difference) > SPREADS * pooled


def _sweep_records(results_dir: Path | None, runs_root: Path | None) -> dict[str, dict]:
    """Finished sweep trials by run id: {"sweep": label, "final": heads}, from runs/ and from results/*/<sweep>/."""
    found = {}
    root = Path(results_dir) if results_dir else paths.RESULTS_DIR
    for path in sorted(root.glob("sweeps/*/*.json")):
        try:
            record = read_json(path, RESULT)
        except UnreadableRecord:
            continue  # listed as unreadable nowhere else either: a sweep file is one seed of many
        if record and record.get("sweep") and record.get("final"):
            found[record.get("run_id") or path.stem] = {"sweep": record["sweep"], "final": record["final"]}
    for run in list_runs(runs_root):
        if run.sweep and run.state == "finished" and (run.summary or {}).get("final"):
            found[run.run_id] = {"sweep": run.sweep, "final": run.summary["final"]}
    return found


def seed_rows(results_dir: Path | None = None, runs_root: Path | None = None) -> list[SeedRow]:
    """Every sweep's trials with their F1 over seeds: committed sweeps (results/sweeps/) and sweeps in runs/,
    a running sweep's trials as their seeds finish. Ordered by sweep (newest first), then trial as planned."""
    groups: dict[tuple, SeedRow] = {}
    for rec in _sweep_records(results_dir, runs_root).values():
        label, final = rec["sweep"], rec["final"]
        grid = label.get("grid") or {}
        key = (label["sweep_id"], label["trial"], tuple(sorted(grid.items())))
        trial = TRIALS.get(label["trial"])
        row = groups.setdefault(
            key, SeedRow(label["sweep_id"], label["trial"], grid, [], {}, trial.reported_f1_final if trial else None)
        )
        row.seeds.append(label["seed"])
        for head in HEADS:
            if head in final:
                row.f1.setdefault(head, []).append(final[head]["macro_f1"])
    order = {name: i for i, name in enumerate(TRIALS)}
    rows = sorted(
        groups.values(),
        key=lambda r: (r.sweep_id, -order.get(r.trial, len(order)), sorted(r.grid.items())),
        reverse=True,
    )
    return rows


def seed_table(rows: list[SeedRow]) -> list[dict]:
    """The leaderboard's seed view: mean and spread per head, the seed report's F1, and which differences (from
    the seed's F1, from the sweep's best trial at the same grid point) are beyond the seed-to-seed spread."""
    best: dict[tuple, SeedRow] = {}
    for r in rows:
        key = (r.sweep_id, tuple(sorted(r.grid.items())))
        if r.mean("fused") is not None and (key not in best or r.mean("fused") > best[key].mean("fused")):
            best[key] = r
    out = []
    for r in rows:
        row = {
            "sweep": r.sweep_id,
            "trial": r.trial,
            "grid": ", ".join(f"{k}={v}" for k, v in sorted(r.grid.items())),
            "seeds": len(r.seeds),
        }
        for head in HEADS:
            row[f"F1 {head} mean"], row[f"F1 {head} sd"] = r.mean(head), r.sd(head)
        row["seed F1 (final)"] = r.reported_final
        fused, sd = r.mean("fused"), r.sd("fused")
        row["vs seed F1"] = None if fused is None or r.reported_final is None else fused - r.reported_final
        row["vs seed beyond spread"] = None if row["vs seed F1"] is None else beyond_spread(row["vs seed F1"], sd)
        top = best.get((r.sweep_id, tuple(sorted(r.grid.items()))))
        row["best trial"] = top.trial if top else None
        row["vs best"] = None if top is None or fused is None else fused - top.mean("fused")
        row["vs best beyond spread"] = (
            None if top is None or top is r or fused is None else beyond_spread(row["vs best"], sd, top.sd("fused"))
        )
        out.append(row)
    return out
