"""Leaderboard entries: committed trial results (results/) and finished or running runs (runs/)."""

from __future__ import annotations

from pathlib import Path

from core import paths
from core.errors import DigitsError
from core.io import UnreadableRecord, write_json
from core.runs import records

LOSO_DIR = "loso"  # results/loso/*.json: leave-one-speaker-out figures ({recipe, per_speaker, mean, min, ...})


def result_from_run(run_dir: Path, **extra) -> dict:
    """A self-contained result record from a finished run directory (no weights, small enough to commit)."""
    run_dir = Path(run_dir)
    try:
        summary = records.read_json(run_dir / "summary.json", records.SUMMARY)
        config = records.read_json(run_dir / "config.json", records.CONFIG)
        history = records.read_jsonl(run_dir / "metrics.jsonl", records.EPOCH_ROW) or []
    except UnreadableRecord as exc:
        raise DigitsError(f"run {run_dir.name} cannot be made a result: {exc}") from None
    if summary is None or config is None:
        raise DigitsError(f"run {run_dir.name} has no summary.json or config.json: it did not finish")
    return {
        "entry": config["name"],
        "trial": config["name"],
        "run_id": run_dir.name,
        "config": config,
        "history": history,
        **summary,
        **extra,
    }


def save_result(record: dict, path: Path) -> Path:
    return write_json(path, record)


def is_loso(source: str) -> bool:
    """Whether a result file (its path under results/) holds leave-one-speaker-out figures."""
    return source.split("/", 1)[0] == LOSO_DIR


def load_results(results_dir: Path | None = None) -> list[dict]:
    """Every committed result under results/ (results/trials/*.json, results/ablations/*.json ...), each a new dict
    with "source" (its path under results/) and "entry" (default: the file's stem). A file that fails its schema
    comes back as {"entry", "source", "problem": why}."""
    root = Path(results_dir) if results_dir else paths.RESULTS_DIR
    out = []
    for path in sorted(root.glob("*/*.json")):
        source = path.relative_to(root).as_posix()
        schema = records.LOSO_RESULT if is_loso(source) else records.RESULT
        try:
            record = records.read_json(path, schema)
        except UnreadableRecord as exc:
            out.append({"entry": path.stem, "source": source, "problem": str(exc)})
            continue
        if record is not None:
            out.append({**record, "entry": record.get("entry") or path.stem, "source": source})
    return out
