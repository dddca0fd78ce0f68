"""Real browser (Debian's chromium via Playwright): draw with the mouse, speak through the fake microphone."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from core import paths
from core.predict import Predictor
from tests.helpers import (
    card,
    fake_mic_wav,
    launch_chromium,
    metric,
    microphone,
    require_chromium,
    streamlit_server,
    wait_until,
)

pytestmark = pytest.mark.browser


def weights_for_browser(request) -> Path:
    """The shipped model when there is one (what users get), else the tiny test checkpoint."""
    return paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")


def fake_mic_clip(predictor: Predictor, data_root: Path, tmp: Path) -> tuple[Path, int]:
    """An FSDD test clip at 16 kHz with silence around it (sox), the one the model is surest about of a few."""
    best = None
    for name in ["3_jackson_0.wav", "5_theo_1.wav", "0_george_2.wav", "8_nicolas_0.wav", "6_lucas_3.wav"]:
        out = tmp / f"16k_{name}"
        fake_mic_wav(data_root / "fsdd" / "recordings" / name, out, 0.6, 0.9)
        samples, rate = sf.read(out, dtype="float32")
        r = predictor.predict(audio=(samples, rate))
        if best is None or r.confidence > best[2]:
            best = (out, r.digit, r.confidence)
    return best[0], best[1]


@pytest.fixture(scope="module")
def server(request, data_root, tmp_path_factory):
    require_chromium(sox=True)
    tmp = tmp_path_factory.mktemp("browser")
    weights = weights_for_browser(request)
    env = {"DIGITS_WEIGHTS": str(weights), "DIGITS_DATA_DIR": str(data_root), "DIGITS_RUNS_DIR": str(tmp / "runs")}
    with streamlit_server(env) as url:
        yield url, weights, tmp


def recorded_wav(page) -> bytes:
    """The recording the browser holds (and sent to the app), through the widget's own download button."""
    widget = microphone(page)
    widget.hover()
    with page.expect_download() as download:
        widget.locator('button[aria-label^="Download as WAV"]').click()
    return Path(download.value.path()).read_bytes()


def shown_cards(page) -> set[str]:
    labels = page.locator('[data-testid="stMetric"] [data-testid="stMetricLabel"]').all_inner_texts()
    return {label.strip() for label in labels}


def drawing_pad(page):
    """The draw page's canvas (ui/drawing_pad.js)."""
    return page.locator('canvas[aria-label^="Drawing area"]')


def canvas_pixels(page) -> np.ndarray:
    """What the canvas holds, read back from the browser."""
    url = drawing_pad(page).evaluate("c => c.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_draw_and_speak_in_a_real_browser(server, data_root):
    from playwright.sync_api import sync_playwright

    url, weights, tmp = server
    predictor = Predictor.load(weights)
    wav, expected_audio = fake_mic_clip(predictor, data_root, tmp)
    with sync_playwright() as p:
        browser = launch_chromium(p, fake_mic=wav)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}, permissions=["microphone"]).new_page()
            page.goto(url, timeout=120_000)
            page.get_by_text("Draw a digit or record one").wait_for(timeout=120_000)
            # The sidebar was drawn while the model loaded; it names the model without the visitor clicking.
            page.locator('[data-testid="stSidebar"]').get_by_text("Loaded: ").wait_for(timeout=30_000)

            # Draw a 7 with the mouse on the canvas.
            canvas = drawing_pad(page)
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            x0, y0 = box["x"], box["y"]
            page.mouse.move(x0 + 70, y0 + 60)
            page.mouse.down()
            for x, y in [(140, 60), (210, 60), (180, 140), (150, 220)]:
                page.mouse.move(x0 + x, y0 + y, steps=12)
            page.mouse.up()
            shown_image = metric(page, "Image prediction")
            expected_image = predictor.predict(image=canvas_pixels(page)).digits["image"]
            assert shown_image == str(expected_image)
            # The keyboard's undo and redo, on the canvas the mouse just drew on.
            page.keyboard.press("Control+z")
            wait_until(lambda: "Image prediction" not in shown_cards(page), "Ctrl+Z left the image card")
            page.keyboard.press("Control+y")
            assert metric(page, "Image prediction") == shown_image

            # Speak through the fake microphone: %noloop plays the WAV once, from when recording opens it.
            microphone(page).locator('button[aria-label="Record"]').click()
            page.wait_for_timeout(int((sf.info(wav).duration + 0.4) * 1000))
            microphone(page).locator('button[aria-label="Stop recording"]').click()
            assert metric(page, "Audio prediction", timeout=90_000) == str(expected_audio)
            # Every card, fused included, is what Predictor gives for the same canvas and recording.
            expected = predictor.predict(image=canvas_pixels(page), audio=recorded_wav(page))
            for head in ("fused", "image", "audio"):
                (first, p1), (second, p2) = expected.top(head)
                unsure = head == "audio" and expected.audio_unsure  # the card then names its two best guesses
                shown = (
                    (f"{first} or {second}", f"{p1:.0%} / {p2:.0%}, unsure")
                    if unsure
                    else (str(first), f"{p1:.0%} sure")
                )
                assert card(page, head) == shown, head

            # An example replaces the drawing and the recording: the canvas empties, and all three cards stay.
            page.get_by_role("button", name="Try an example from the test set").click()
            wait_until(lambda: canvas_pixels(page).max() == 0, "the canvas was not emptied by the example")
            wait_until(
                lambda: microphone(page).locator('button[aria-label="Record"]').count() == 1,
                "the recording was not replaced by the example",
            )
            for head in ("Fused", "Image", "Audio"):
                metric(page, f"{head} prediction")
            # Clear drawing drops the example's digit too: the voice's card alone is left.
            page.get_by_role("button", name="Clear drawing").click()
            wait_until(lambda: not shown_cards(page) - {"Audio prediction"}, "Clear drawing left an image card")
            assert shown_cards(page) == {"Audio prediction"}
        finally:
            browser.close()


def test_draw_with_a_finger_on_a_phone(server):
    """A phone-sized viewport with touch input only: a finger draws, the image card answers, Clear empties."""
    from playwright.sync_api import sync_playwright

    url, weights, _ = server
    predictor = Predictor.load(weights)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
            page = context.new_page()
            page.goto(url, timeout=120_000)
            page.get_by_text("Draw a digit or record one").wait_for(timeout=120_000)
            canvas = drawing_pad(page)
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box  # the canvas fits the phone's width
            # A finger draws a 1 (touch events, as a phone sends them; no mouse on a phone).
            touch = context.new_cdp_session(page)
            points = [(box["x"] + 130 + y // 20, box["y"] + y) for y in range(40, 230, 10)]
            for kind, at in [("touchStart", points[:1]), *[("touchMove", [pt]) for pt in points[1:]], ("touchEnd", [])]:
                touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in at]})
            shown = metric(page, "Image prediction")
            assert canvas_pixels(page).max() > 0  # the finger drew, it did not scroll the page
            assert shown == str(predictor.predict(image=canvas_pixels(page)).digits["image"])
            # Undo takes the stroke back, card and all; Redo brings both back.
            page.get_by_role("button", name="Undo").tap()
            wait_until(lambda: not shown_cards(page), "Undo left the image card")
            assert canvas_pixels(page).max() == 0
            page.get_by_role("button", name="Redo").tap()
            assert metric(page, "Image prediction") == shown
            page.get_by_role("button", name="Clear drawing").tap()
            wait_until(lambda: not shown_cards(page), "Clear drawing left the image card")
            assert canvas_pixels(page).max() == 0
        finally:
            browser.close()
