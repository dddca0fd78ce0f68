"""The README's screenshots in headless chromium: `python docs/screenshots/take.py URL [WAV]` against a running app."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent


def main(url: str, wav: str | None = None) -> None:
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    if wav:
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_context(viewport={"width": 1400, "height": 900}, permissions=["microphone"]).new_page()
        page.goto(url, timeout=120_000)
        page.get_by_text("Draw a digit or record one").wait_for(timeout=120_000)
        canvas = page.locator('canvas[aria-label^="Drawing area"]')  # ui/drawing_pad.js
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 70, box["y"] + 60)
        page.mouse.down()
        for x, y in [(140, 60), (210, 60), (180, 140), (150, 220)]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()
        page.locator('[data-testid="stMetric"]', has_text="Image prediction").wait_for(timeout=60_000)
        if wav:
            page.locator('[data-testid="stAudioInput"]').first.locator('button[aria-label="Record"]').click()
            page.wait_for_timeout(2600)
            page.locator('[data-testid="stAudioInput"]').first.locator('button[aria-label="Stop recording"]').click()
            try:
                page.locator('[data-testid="stMetric"]', has_text="Fused prediction").wait_for(timeout=60_000)
            except Exception:
                page.screenshot(path="/tmp/take_failed.png")
                raise
        page.wait_for_timeout(1500)
        page.screenshot(path=OUT / "draw_and_speak.png")

        page.get_by_role("link", name="Explore embeddings").click()
        page.wait_for_timeout(5000)
        # A new projection waits in the queue first; a kept one is drawn at once.
        page.get_by_text("Waiting for the").first.wait_for(state="detached", timeout=600_000)
        page.get_by_role("button", name="Download coordinates (CSV)").wait_for(timeout=600_000)  # the finished one
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=300_000)
        page.get_by_text("Cluster quality per embedding").wait_for(timeout=300_000)
        page.set_viewport_size({"width": 1400, "height": 1300})  # the plot, the selected point and its neighbours
        page.wait_for_timeout(2500)
        page.screenshot(path=OUT / "embeddings.png")
        page.set_viewport_size({"width": 1400, "height": 900})

        page.get_by_role("link", name="Leaderboard").click()
        frames = page.get_by_test_id("stDataFrame")
        frames.nth(1).wait_for(timeout=60_000)
        grid = min((frames.nth(i).bounding_box() for i in range(2)), key=lambda b: b["y"])
        row = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        page.mouse.click(grid["x"] + 16, grid["y"] + 35 + 35 * row + 17)  # that row's selection box
        page.get_by_text("Confusion, fused head").wait_for(timeout=60_000)
        page.set_viewport_size({"width": 1400, "height": 1100})
        page.wait_for_timeout(2000)
        page.screenshot(path=OUT / "leaderboard.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
