"""Seconds from `streamlit run app.py` to the server answering and to the first page drawn in a real browser."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import streamlit_server  # the server the browser tests and bench_latency start

REPO = Path(__file__).resolve().parent.parent
FIRST_PAGE_TEXT = "Draw a digit, say it"  # the default page's title, drawn once app.py has run
LAST_SECTION_TEXT = "3 · Prediction"  # drawn after every input widget, just before the page waits for the model


def first_page(url: str, timeout_s: float) -> dict[str, float]:
    """Seconds from a headless chromium's goto to each step of the first page (app.py ran for this session).

    static: Streamlit's front end fetched and parsed (DOMContentLoaded); socket: its websocket open; title: the
    default page's title drawn (the figure the issue targets); widgets: the page's last section drawn, i.e. the
    whole first run has reached the point where it waits for the model."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            marks: dict[str, float] = {}
            page.on("websocket", lambda ws: marks.setdefault("socket", time.monotonic()))
            page.on("domcontentloaded", lambda: marks.setdefault("static", time.monotonic()))
            start = time.monotonic()
            page.goto(url, timeout=timeout_s * 1000)
            page.get_by_text(FIRST_PAGE_TEXT).first.wait_for(timeout=timeout_s * 1000)
            marks["title"] = time.monotonic()
            page.get_by_text(LAST_SECTION_TEXT).first.wait_for(timeout=timeout_s * 1000)
            marks["widgets"] = time.monotonic()
            return {k: v - start for k, v in marks.items()}
        finally:
            browser.close()


def one_start(weights: str, browser: bool) -> tuple[float, dict[str, float]]:
    """Seconds from `streamlit run app.py` to its health check answering; the first page's steps when browser."""
    env = {"DIGITS_WEIGHTS": weights, "DIGITS_RUNS_DIR": tempfile.mkdtemp(prefix="bench-app-runs-")}
    start = time.monotonic()
    # Polled every 50 ms, with Streamlit's own file watcher as a user's `streamlit run` has it (the tests turn it off).
    with streamlit_server(
        env, ready_path="/_stcore/health", poll_s=0.05, timeout_s=60, options={"server.fileWatcherType": "auto"}
    ) as url:
        answered = time.monotonic() - start
        return answered, first_page(f"{url}/", 60) if browser else {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=os.environ.get("DIGITS_WEIGHTS", str(REPO / "weights" / "default.pt")))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one start, server answer only (no browser)")
    args = p.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(
        f"weights {args.weights}; load average {os.getloadavg()[0]:.1f} (2-core machine: above 2, figures are "
        "inflated by other work)"
    )
    drawn = []
    for i in range(repeats):
        try:
            answered, marks = one_start(args.weights, browser=not args.quick)
        except TimeoutError as exc:  # the server's; playwright's timeouts are errors of its own
            raise SystemExit(str(exc)) from None
        line = f"start {i + 1}: server answering after {answered:.1f} s"
        if marks:
            drawn.append(answered + marks["title"])
            line += (
                f"; first page drawn in the browser after {drawn[-1]:.1f} s (goto +{marks['title']:.2f} s: "
                f"front end +{marks['static']:.2f}, websocket +{marks['socket']:.2f}, title +{marks['title']:.2f}, "
                f"all widgets +{marks['widgets']:.2f})"
            )
        print(f"{line}  (load {os.getloadavg()[0]:.1f})", flush=True)
    if len(drawn) > 1:
        print(
            f"first page drawn: median {statistics.median(drawn):.1f} s, worst {max(drawn):.1f} s over {len(drawn)} "
            f"starts  (load {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
