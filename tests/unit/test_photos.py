"""Photos and screenshots of real MNIST digits: grey paper, a shadow, EXIF rotation, transparent corners.

Each picture is dark ink on a page, made from an MNIST test digit the way a phone or a screenshot tool
saves it; the shipped weights must read the digit, and the 28x28 the model sees must look like the
one a clean white page gives."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from core import paths
from core.predict import Predictor, prepare_image

DIGITS = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]  # the first clear test digits: 7 2 1 0 4 1 4 9 0 6
SCALE = 10  # a 280x280 digit on a 420x420 page


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load(paths.DEFAULT_WEIGHTS)


@pytest.fixture(scope="module")
def digits(mnist_test):
    images, labels = mnist_test
    return [(images[i], int(labels[i])) for i in DIGITS]


def page(digit28: np.ndarray, paper: float = 250.0, pen: float = 30.0) -> np.ndarray:
    """The digit in dark ink on a page (float RGB, 0-255), a third of a digit's width of margin around it."""
    ink = np.asarray(Image.fromarray((digit28 * 255).astype(np.uint8)).resize((28 * SCALE,) * 2, Image.BICUBIC)) / 255.0
    mask = np.zeros((420, 420), np.float32)
    mask[70:350, 70:350] = ink
    return np.repeat((paper * (1 - mask) + pen * mask)[..., None], 3, axis=2)


def encode(rgb: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    img.save(buf, fmt, **options)
    return buf.getvalue()


def assert_read_as_on_a_clean_page(predictor, digit28, label, data):
    clean = prepare_image(encode(page(digit28)))
    seen = prepare_image(data)
    assert predictor.predict(image=clean).digit == label, "the digit must be clear on a clean page"
    assert predictor.predict(image=data).digit == label
    assert np.corrcoef(seen.ravel(), clean.ravel())[0, 1] > 0.8


def test_grey_paper(predictor, digits):
    for digit28, label in digits:
        assert_read_as_on_a_clean_page(predictor, digit28, label, encode(page(digit28, paper=210)))


def test_a_shadow_across_the_page(predictor, digits):
    ys, xs = np.mgrid[0:420, 0:420]
    for k, (digit28, label) in enumerate(digits):
        # A straight shadow edge through the page, its side and slope changing from digit to digit.
        side = (xs - 210) * np.cos(k) + (ys - 210) * np.sin(k) > 40 * (k % 3 - 1)
        soft = np.asarray(Image.fromarray((side * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(6))) / 255.0
        shaded = page(digit28) * (1 - 0.55 * soft)[..., None]
        assert_read_as_on_a_clean_page(predictor, digit28, label, encode(shaded, "JPEG", quality=90))


@pytest.mark.parametrize(
    "orientation, stored",
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)],
)
def test_a_phone_photo_stored_sideways_with_exif_orientation(predictor, digits, orientation, stored):
    for digit28, label in digits:
        sideways = Image.fromarray(page(digit28).astype(np.uint8)).transpose(stored)
        exif = Image.Exif()
        exif[0x0112] = orientation  # "turn me this way to show me": what phones write
        assert_read_as_on_a_clean_page(
            predictor, digit28, label, encode(sideways, "JPEG", quality=92, exif=exif.tobytes())
        )


@pytest.mark.parametrize("radius", [0, 8])
def test_a_screenshot_with_transparent_corners(predictor, digits, radius):
    for digit28, label in digits:
        rgba = np.dstack([page(digit28, paper=255), np.full((420, 420), 255.0)]).astype(np.uint8)
        if radius:  # a window's rounded corners
            alpha = Image.new("L", (420, 420), 0)
            ImageDraw.Draw(alpha).rounded_rectangle((0, 0, 419, 419), radius=radius, fill=255)
            rgba[..., 3] = np.asarray(alpha)
        else:  # just the four corner pixels
            rgba[[0, 0, -1, -1], [0, -1, 0, -1], 3] = 0
        rgba[rgba[..., 3] == 0] = 0  # stored as transparent black, as many tools do
        assert_read_as_on_a_clean_page(predictor, digit28, label, encode(rgba))


def test_light_ink_on_a_dark_page_is_still_read(predictor, digits):
    # The polarity comes from the picture (what strays from the border's level), not from a rule of thumb.
    for digit28, label in digits:
        chalk = 255 - page(digit28, paper=215, pen=30)  # light chalk on a dark grey board
        assert predictor.predict(image=encode(chalk)).digit == label
