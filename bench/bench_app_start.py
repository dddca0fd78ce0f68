"""Seconds from `streamlit run app.py` to the server answering and to the first page drawn in a real browser."""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST_PAGE_TEXT = "Draw a digit, say it"  # the default page's title, drawn once app.py has run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def first_page(url: str, timeout_s: float) -> float:
    """Seconds for a headless chromium to show the default page's text (app.py ran for this session)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            start = time.monotonic()
            page.goto(url, timeout=timeout_s * 1000)
            page.get_by_text(FIRST_PAGE_TEXT).first.wait_for(timeout=timeout_s * 1000)
            return time.monotonic() - start
        finally:
            browser.close()


def one_start(weights: str, browser: bool) -> tuple[float, float | None]:
    port = free_port()
    env = {**os.environ, "DIGITS_WEIGHTS": weights, "DIGITS_RUNS_DIR": tempfile.mkdtemp(prefix="bench-app-runs-")}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", start + 60):
            raise SystemExit("streamlit did not answer within 60 s")
        answered = time.monotonic() - start
        drawn = answered + first_page(f"http://127.0.0.1:{port}/", 60) if browser else None
        return answered, drawn
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=os.environ.get("DIGITS_WEIGHTS", str(REPO / "weights" / "default.pt")))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one start, server answer only (no browser)")
    args = p.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(f"weights {args.weights}; load average {os.getloadavg()[0]:.1f}")
    for i in range(repeats):
        answered, drawn = one_start(args.weights, browser=not args.quick)
        shown = f"; first page drawn in the browser after {drawn:.1f} s" if drawn is not None else ""
        print(f"start {i + 1}: server answering after {answered:.1f} s{shown}  (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
