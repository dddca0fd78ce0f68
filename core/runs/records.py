"""Schemas of every record read back from runs/ and results/, and the validated, cached read of one record.

jsonschema (a dependency of Streamlit's Altair, well kept) checks them: declarative schemas read like the files they
describe, and its messages name the field and the bad value. Checking is not free (a summary holds six confusion
matrices) and every page lists the runs, so each file version is checked once (_cached) and served from memory."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from core.io import UnreadableRecord, lstat_record, parse_json, parse_jsonl, read_small_text
from core.limits import MAX_RECORD_BYTES

HEAD_NAMES = ("fused", "image", "audio")
NUMBER = {"type": ["number", "null"]}  # non-finite numbers are written and read back as null (core.io)
PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
COUNT = {"type": "integer", "minimum": 0, "maximum": 2**53}
SECONDS = {"type": "number", "minimum": 0}
WHEN = {"type": "number", "minimum": 0, "maximum": 1e11}  # seconds since 1970 (1e11: the year 5138)
NAME = {"type": "string", "maxLength": 200}

HEAD = {
    "type": "object",
    "required": ["accuracy", "macro_f1"],
    "properties": {
        "accuracy": PERCENT,
        "macro_f1": PERCENT,
        "n": COUNT,
        "confusion": {
            "type": "array",
            "minItems": 10,
            "maxItems": 10,
            "items": {"type": "array", "minItems": 10, "maxItems": 10, "items": COUNT},
        },
    },
}
HEADS = {"type": "object", "properties": {h: HEAD for h in HEAD_NAMES}}
EPOCH_ROW = {
    "type": "object",
    "required": ["epoch", "loss"],
    "properties": {
        "epoch": {"type": "integer", "minimum": 1, "maximum": 100_000},
        "loss": NUMBER,
        "seconds": SECONDS,
        "samples_per_s": NUMBER,
        "best_epoch": COUNT,
    },
    "patternProperties": {"^val_": NUMBER},
}
CONFIG = {
    "type": "object",
    "required": ["name", "train"],
    "properties": {
        "name": NAME,
        "train": {
            "type": "object",
            "properties": {
                "epochs": {"type": "integer", "minimum": 1, "maximum": 100_000},
                "batch_size": {"type": "integer", "minimum": 1},
                "lr": {"type": "number", "exclusiveMinimum": 0},
                "seed": {"type": "integer"},
                "train_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            },
        },
        "model": {"type": "object", "properties": {"dropout": {"type": "number", "minimum": 0, "maximum": 1}}},
    },
}
SUMMARY = {
    "type": "object",
    "properties": {
        "epochs": COUNT,
        "best_epoch": COUNT,
        "train_seconds": SECONDS,
        "parameters": COUNT,
        "device": NAME,
        "final": HEADS,
        "best": HEADS,
    },
}
STATUS = {
    "type": "object",
    "required": ["state", "started"],
    "properties": {
        "state": {"enum": ["running", "finished", "failed", "cancelled"]},
        "pid": {"type": ["integer", "null"], "minimum": 2, "maximum": 2**32 - 1},  # never 0, -1 or init
        "started": WHEN,
        "ended": WHEN,
        "trial": {"type": ["string", "null"], "maxLength": 200},
        "error": {"type": "string"},
        "phase": {"type": "string", "maxLength": 40},
    },
}
# Written by core.runs: who started a run from the app (a hash of their session's token), and a cancel request.
LAUNCH = {
    "type": "object",
    "required": ["requested"],
    "properties": {"requested": WHEN, "owner": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}},
}
CANCEL = {"type": "object", "required": ["requested"], "properties": {"requested": WHEN}}
STARTS = {"type": "object", "required": ["starts"], "properties": {"starts": {"type": "array", "items": WHEN}}}
# A leave-one-speaker-out result: audio accuracy (%) per held-out speaker. Files may carry more fields (another
# format is being extended); only these are required, and only the ones the leaderboard shows are checked.
LOSO_FIGURES = {
    "type": "object",
    "required": ["per_speaker", "mean", "min"],
    "properties": {
        "per_speaker": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"maxLength": 100},
            "additionalProperties": PERCENT,
        },
        "mean": PERCENT,
        "min": PERCENT,
    },
}
LOSO_RESULT = {
    "allOf": [
        LOSO_FIGURES,
        {"required": ["recipe"], "properties": {"recipe": NAME, "epochs": COUNT, "seconds": SECONDS}},
    ]
}
# Written by core.sweeps: a sweep's plan (runs/.sweeps/<id>.json), each sweep run's label (sweep.json) and the
# heartbeat of the process watching a sweep's training, which may run on another host of a cluster.
GRID_VALUE = {"type": "number"}
SWEEP_PLAN = {
    "type": "object",
    "required": ["sweep_id", "trials", "seeds", "budget", "grid", "created"],
    "properties": {
        "sweep_id": NAME,
        "trials": {"type": "array", "minItems": 1, "maxItems": 1000, "items": NAME},
        "seeds": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "integer", "minimum": 0}},
        "budget": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "grid": {
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 1, "maxItems": 100, "items": GRID_VALUE},
        },
        "created": WHEN,
    },
}
SWEEP_LABEL = {
    "type": "object",
    "required": ["sweep_id", "trial", "seed"],
    "properties": {
        "sweep_id": NAME,
        "trial": NAME,
        "seed": {"type": "integer", "minimum": 0},
        "grid": {"type": "object", "additionalProperties": GRID_VALUE},
        "host": NAME,
        "worker_pid": COUNT,
        "ray_node": NAME,
    },
}
HEARTBEAT = {"type": "object", "required": ["at"], "properties": {"at": WHEN, "host": NAME, "pid": COUNT}}
RESULT = {
    "type": "object",
    "properties": {
        "entry": NAME,
        "trial": {"type": ["string", "null"], "maxLength": 200},
        "run_id": NAME,
        "kind": NAME,
        "config": CONFIG,
        "history": {"type": "array", "items": EPOCH_ROW},
        "final": HEADS,
        "best": HEADS,
        "train_seconds": {"type": ["number", "null"], "minimum": 0},
        "loso": LOSO_FIGURES,
        "sweep": SWEEP_LABEL,
    },
}

_validators: dict[int, Any] = {}


def _validator(schema: dict):
    if id(schema) not in _validators:
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(schema)
        _validators[id(schema)] = Draft202012Validator(schema)
    return _validators[id(schema)]


def check(data: Any, schema: dict, name: str) -> Any:
    """data itself, or UnreadableRecord naming the first field that breaks schema."""
    try:
        error = next(_validator(schema).iter_errors(data), None)
    except RecursionError:
        raise UnreadableRecord(f"{name} is nested too deeply") from None
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
        raise UnreadableRecord(f"{name}{': ' + where if where else ''}: {message}")
    return data


_CACHE: OrderedDict[tuple, tuple[bool, Any]] = OrderedDict()
_CACHE_LOCK = threading.Lock()  # every visitor's script thread lists the runs
CACHE_ENTRIES = 4096


def _cached(path: Path, key: tuple, load) -> Any:
    """load(text) for the current version of path, computed once per version; None when path does not exist.

    A version is (inode, size, mtime, ctime): every writer here replaces or appends, which changes it. Callers get
    the cached object itself and must not change it."""
    st = lstat_record(path)
    if st is None:
        return None
    version = (str(path), *key, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _CACHE_LOCK:
        found = _CACHE.get(version)
        if found is not None:
            _CACHE.move_to_end(version)
    if found is None:  # read and checked outside the lock: two threads may both do it once, harmlessly
        try:
            text = read_small_text(path, MAX_RECORD_BYTES)
            found = (True, None if text is None else load(text))
        except UnreadableRecord as exc:
            found = (False, str(exc))
        with _CACHE_LOCK:
            _CACHE[version] = found
            while len(_CACHE) > CACHE_ENTRIES:
                _CACHE.popitem(last=False)
    ok, value = found
    if not ok:
        raise UnreadableRecord(value)
    return value


def read_json(path: Path, schema: dict) -> Any:
    """The JSON record at path, checked against schema; None if there is no such file; else UnreadableRecord."""
    path = Path(path)
    return _cached(path, ("json", id(schema)), lambda text: check(parse_json(text, path.name), schema, path.name))


def read_jsonl(path: Path, row_schema: dict, cut_tail_ok: bool = False) -> list | None:
    """Every line of a JSON-lines record, each checked; cut_tail_ok skips a last line still being written."""
    path = Path(path)

    def load(text: str) -> list:
        rows = parse_jsonl(text, path.name, cut_tail_ok)
        for i, row in enumerate(rows, 1):
            check(row, row_schema, f"{path.name} line {i}")
        return rows

    return _cached(path, ("jsonl", id(row_schema), cut_tail_ok), load)
