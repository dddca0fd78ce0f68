"""Server-side timestamps of a page run, appended as JSON lines to $DIGITS_PROFILE when it is set (bench_latency)."""

from __future__ import annotations

import json
import os
import threading
import time

PROFILE_ENV = "DIGITS_PROFILE"
_lock = threading.Lock()  # sessions run their scripts in their own threads: one line at a time


def enabled() -> bool:
    return bool(os.environ.get(PROFILE_ENV))


def mark(name: str) -> None:
    """Note that the script run reached `name` now (wall clock, so the browser's timestamps compare with it).

    An append-only log, not a record read back by the app: written line by line, not atomically."""
    path = os.environ.get(PROFILE_ENV)
    if not path:
        return
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    line = json.dumps({"t": time.time(), "mark": name, "session": ctx.session_id if ctx else None})
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
