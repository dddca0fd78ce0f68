"""Real browser: the Explore page shows a picture at once and polls the projection queue by itself until the result
replaces it; a second visitor asking for the same projection gets the finished one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core import paths
from tests.helpers import streamlit_server

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
PLOT = '[data-testid="stPlotlyChart"]'
DONE = "Download coordinates (CSV)"  # under the finished projection only


@pytest.fixture(scope="module")
def server(request, data_root, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser test needs /usr/bin/chromium (scripts/setup --dev installs it)")
    weights = paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")
    env = {
        "DIGITS_WEIGHTS": str(weights),
        "DIGITS_DATA_DIR": str(data_root),
        "DIGITS_RUNS_DIR": str(tmp_path_factory.mktemp("runs")),
        "DIGITS_PROJECTION_WORKERS": "1",
    }
    with streamlit_server(env) as url:
        yield url


def test_the_page_polls_until_its_projection_is_drawn_and_shares_it(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            first.goto(f"{server}/embeddings", timeout=120_000)
            # The default request (t-SNE of 2,000 image embeddings) waits in the queue or runs, with a picture.
            first.get_by_text("t-SNE (perplexity 30) in 2D of 2,000 image embeddings").first.wait_for(timeout=300_000)
            first.locator(PLOT).first.wait_for(timeout=120_000)
            assert first.get_by_role("button", name=DONE).count() == 0
            # Nobody clicks: the page's polling fragment notices the result and draws it (a hang guard, not a limit).
            first.get_by_role("button", name=DONE).wait_for(timeout=600_000)
            assert first.get_by_text("in line").count() == 0 and first.locator(PLOT).count() == 1
            second = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            second.goto(f"{server}/embeddings", timeout=120_000)
            # Another session: the kept result, no new job.
            second.get_by_role("button", name=DONE).wait_for(timeout=120_000)
            assert second.get_by_text("t-SNE: iteration").count() == 0
            second.locator(PLOT).first.wait_for(timeout=30_000)  # the chart mounts a moment after the button below it
            assert second.locator(PLOT).count() == 1
            # The coordinates download, built when clicked: a row per plotted point.
            with second.expect_download() as download:
                second.get_by_role("button", name=DONE).click()
            table = pd.read_csv(download.value.path())
            assert len(table) == 2000 and {"digit", "prediction", "cluster", "x", "y"} <= set(table.columns)
        finally:
            browser.close()
