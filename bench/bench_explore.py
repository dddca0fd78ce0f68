"""Seconds from pressing Apply on the Explore page (real app, Chromium) to a plot on screen: for a fresh 10,000-point
t-SNE (its first picture, its first t-SNE layout) and for a finished one revisited (targets: 2 s and 1 s median)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.bench_projection import cpu, load
from core import paths
from tests.helpers import streamlit_server

CHROMIUM = "/usr/bin/chromium"
DONE = "Download coordinates (CSV)"  # a button under the finished projection only
HANG_GUARD_MS = 2_400_000  # a 10,000-point t-SNE on a crowded 2-core machine; a guard, not a target
# The newest plot on screen that belongs to this run (not faded as stale) and whose points differ from `before`:
# returns its first x values, or null while there is none.
NEW_PLOT = """([before, text]) => {
  const live = [...document.querySelectorAll('[data-testid="stElementContainer"]:not([data-stale="true"])')];
  if (!live.some(c => c.innerText.includes(text))) return null;
  for (const c of live) {
    const gd = c.querySelector('.js-plotly-plot');
    if (!gd || !gd.data || !gd.data.length || !c.querySelector('.main-svg')) continue;
    const x = gd.data[0].x || [];  // plotly.py 6 sends numpy arrays base64-encoded: {dtype, bdata}
    const key = x.bdata ? x.bdata.slice(0, 80) : JSON.stringify(Array.from(x).slice(0, 5));
    if (key !== before && key !== '[]') return key;
  }
  return null;
}"""
CURRENT = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].pop();
  if (!gd || !gd.data || !gd.data.length) return '';
  const x = gd.data[0].x || [];
  return x.bdata ? x.bdata.slice(0, 80) : JSON.stringify(Array.from(x).slice(0, 5)); }"""


def describe(perplexity: float, n: int) -> str:
    return f"t-SNE (perplexity {perplexity:g}) in 2D of {n:,} image embeddings"


def apply(page, perplexity_steps: int, wait_text: str, points: int | None = None) -> tuple[float, str]:
    """Move the perplexity slider by steps of 5 (and set the points), press Apply; seconds until a new plot shows
    with wait_text on screen, and that plot's key."""
    before = page.evaluate(CURRENT)
    if points is not None:
        box = page.get_by_label("Points")
        box.fill(str(points))
        box.press("Tab")
    if perplexity_steps:
        thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Perplexity").get_by_role("slider")
        thumb.focus()
        for _ in range(abs(perplexity_steps)):
            thumb.press("ArrowRight" if perplexity_steps > 0 else "ArrowLeft")
    start = time.perf_counter()
    page.get_by_role("button", name="Apply").click()
    handle = page.wait_for_function(NEW_PLOT, arg=[before, wait_text], timeout=HANG_GUARD_MS, polling=20)
    return time.perf_counter() - start, handle.json_value()


def wait_text(page, text: str) -> float:
    start = time.perf_counter()
    page.get_by_text(text).first.wait_for(timeout=HANG_GUARD_MS)
    return time.perf_counter() - start


def wait_done(page) -> float:
    """Seconds until the finished projection's CSV button shows (under the result only)."""
    start = time.perf_counter()
    page.get_by_role("button", name=DONE).wait_for(timeout=HANG_GUARD_MS)
    return time.perf_counter() - start


def pick_method(page, label: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Projection").click()
    page.get_by_role("option", name=label, exact=True).click()


def summary(name: str, seconds: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(seconds):.2f} s, worst {max(seconds):.2f} s over {len(seconds)} "
        f"({', '.join(f'{s:.2f}' for s in seconds)})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000, help="points projected (default: 10,000)")
    p.add_argument("--fresh", type=int, default=5, help="fresh t-SNEs timed to their first picture (default: 5)")
    p.add_argument("--revisits", type=int, default=6, help="revisits of the finished t-SNE (default: 6)")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"CPU {cpu()}; {os.cpu_count()} cores; {load()}", flush=True)
    with tempfile.TemporaryDirectory() as runs:
        env = {
            "DIGITS_WEIGHTS": str(paths.DEFAULT_WEIGHTS),
            "DIGITS_DATA_DIR": str(paths.data_dir()),
            "DIGITS_RUNS_DIR": runs,
            "DIGITS_PROJECTION_WORKERS": "1",
        }
        with streamlit_server(env) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(f"{url}/embeddings", timeout=120_000)
            page.get_by_role("button", name="Apply").wait_for(timeout=120_000)
            # The default 2,000 points first; then 10,000, whose embeddings take seconds to compute once.
            page.wait_for_function(NEW_PLOT, arg=["", describe(30, 2000)], timeout=HANG_GUARD_MS)
            seconds, _ = apply(page, 0, describe(30, args.n), points=args.n)
            print(
                f"Apply with {args.n:,} points, embeddings not yet computed -> first picture: {seconds:.2f} s  "
                f"({load()})",
                flush=True,
            )
            print(f"  ... the t-SNE of perplexity 30 finished {wait_done(page):.0f} s later  ({load()})", flush=True)
            revisits = []
            for _ in range(args.revisits):  # PCA (no queue), then back to the finished t-SNE: a cached revisit
                pick_method(page, "PCA")
                apply(page, 0, f"PCA in 2D of {args.n:,} image embeddings")
                pick_method(page, "t-SNE")
                seconds, _ = apply(page, 0, describe(30, args.n))
                wait_done(page)
                revisits.append(seconds)
                print(f"  revisit: {seconds:.2f} s  ({load()})", flush=True)
            print(summary("Apply -> plot of a finished t-SNE (revisit)", revisits) + f"  ({load()})", flush=True)
            first, tsne_first = [], []
            for trial in range(args.fresh):  # each one cancelled once its first t-SNE layout is on screen
                perplexity = 30 + 5 * (trial + 1)
                seconds, _ = apply(page, 1, describe(perplexity, args.n))
                first.append(seconds)
                more = wait_text(page, "t-SNE: iteration")  # its first published t-SNE layout is on screen
                tsne_first.append(seconds + more)
                print(
                    f"  fresh t-SNE (perplexity {perplexity}): first picture {seconds:.2f} s, first t-SNE layout "
                    f"{seconds + more:.2f} s  ({load()})",
                    flush=True,
                )
                page.get_by_role("button", name="Cancel").first.click()
                page.get_by_text("Cancelled:").first.wait_for(timeout=HANG_GUARD_MS)
            print(summary("Apply -> first picture of a fresh t-SNE", first) + f"  ({load()})")
            print(summary("Apply -> first t-SNE layout", tsne_first) + f"  ({load()})")
            browser.close()


if __name__ == "__main__":
    main()
