"""MNIST-style preprocessing: any drawing, scan or photo of a digit to a centred 28x28 in [0,1]."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import InvalidInput
from core.limits import MAX_DECODED_IMAGE_BYTES, MAX_UPLOAD_BYTES, MB, MIN_IMAGE_SIDE
from core.limits import MAX_IMAGE_PIXELS as MAX_UPLOAD_PIXELS

INK_THRESHOLD = 0.15  # a pixel this bright (after polarity) counts as ink
MAX_SIDE = 1024  # larger pictures are shrunk first; the digit ends up 20 px anyway
FLAT_PAPER = 0.05  # a border whose brightness varies less than this is evenly lit paper (or a canvas)
PAPER_WINDOW = 0.2  # of the longer side: wider than any pen stroke, so the local paper level skips the ink
SPECK = 0.05  # under uneven light, ink apart from the digit and under this share of its largest stroke is noise
PAPER_GRID = 256  # the paper level is estimated on at most this many cells a side (speed)
STROKE_WINDOWS = 3  # ... or this many stroke widths, once a first pass has measured them


def decode(data: bytes) -> np.ndarray:
    """Decode image file bytes (PNG, JPEG, ...) to an RGBA uint8 array, upright as its EXIF says."""
    if not data:
        raise InvalidInput("The image file is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_UPLOAD_PIXELS:
                raise InvalidInput(
                    f"The picture is {img.width}x{img.height}; the limit is {MAX_UPLOAD_PIXELS:,} pixels."
                )
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEGs decode at reduced size cheaply
            decoded = img.width * img.height * _bytes_per_pixel(img.mode)
            if decoded > MAX_DECODED_IMAGE_BYTES:
                raise InvalidInput(
                    f"The picture is {img.width}x{img.height} and would take {decoded / MB:.0f} MB to "
                    f"decode; the limit is {MAX_DECODED_IMAGE_BYTES // MB} MB. Save it as JPEG or "
                    "make it smaller."
                )
            img.thumbnail((MAX_SIDE, MAX_SIDE))
            # Phones store the sensor's pixels and say in EXIF how to turn them; a sideways 7 is no 7.
            return np.asarray(ImageOps.exif_transpose(img).convert("RGBA"))
    except InvalidInput:
        raise  # our own message, not the generic one below (InvalidInput is a ValueError)
    except Image.DecompressionBombError as exc:  # PIL refuses over ~179 M pixels before our own check
        raise InvalidInput(f"The picture is too large; the limit is {MAX_UPLOAD_PIXELS:,} pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput("Could not read this file as a picture. Use PNG or JPEG of one digit.") from exc


def decode_data_url(url: str) -> np.ndarray:
    """Decode a PNG data URL (as a browser canvas gives it) to an RGBA uint8 array."""
    prefix = "data:image/png;base64,"
    if not isinstance(url, str) or not url.startswith(prefix):
        raise InvalidInput("The drawing did not arrive as a PNG image.")
    if len(url) > len(prefix) + MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise InvalidInput(f"The drawing is larger than {MAX_UPLOAD_BYTES // MB} MB.")
    try:
        data = base64.b64decode(url[len(prefix) :], validate=True)
    except binascii.Error as exc:
        raise InvalidInput("The drawing did not arrive as a PNG image.") from exc
    return decode(data)


def _bytes_per_pixel(mode: str) -> int:
    # Pillow keeps 1-bit, grey and palette pixels in a byte, 16-bit grey in two, everything else in four.
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def to_gray(image: np.ndarray) -> np.ndarray:
    """Ink in [0,1] (white ink on black, the background at 0), whatever the input's channels, polarity and lighting."""
    return _ink(image)[0]


def _ink(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """to_gray, and whether the background was even (a canvas, a scan, evenly lit paper)."""
    gray, alpha = _gray_and_alpha(image)
    if alpha is not None and _background_is_transparent(alpha):
        # Transparent background: the ink is wherever alpha is, whatever its colour.
        return np.clip(alpha * np.where(_ink_is_dark(gray, alpha), 1 - gray, gray), 0, 1), True
    if alpha is not None:
        # A few transparent pixels on an opaque picture (a screenshot's rounded corners): they are page.
        page = np.median(_border(gray)[_border(alpha) >= 0.5])
        gray = alpha * gray + (1 - alpha) * np.float32(page)
    return _ink_over_paper(gray)


def _gray_and_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    img = np.asarray(image)
    if img.dtype.kind not in "fiub" or img.size == 0:
        raise InvalidInput(f"An image must be a non-empty array of numbers, not {img.dtype} of shape {img.shape}.")
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise InvalidInput("The image holds NaN or infinite values.")
    if img.max(initial=0) > 1.0:
        img = img / 255.0
    alpha = None
    if img.ndim == 3 and img.shape[2] in (3, 4):
        if img.shape[2] == 4 and img[..., 3].min() < 0.99:
            alpha = img[..., 3]
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise InvalidInput(f"An image must be grayscale, RGB or RGBA, not shape {img.shape}.")
    return img, alpha


def _border(img: np.ndarray) -> np.ndarray:
    return np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])


def _background_is_transparent(alpha: np.ndarray) -> bool:
    return bool(np.median(_border(alpha)) < 0.5)


def _ink_is_dark(gray: np.ndarray, alpha: np.ndarray) -> bool:
    opaque = alpha > 0.5
    return bool(opaque.any() and gray[opaque].mean() < 0.5)


def _ink_over_paper(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Ink relative to the paper under it: the border shows the paper's range, the ink lies outside it.

    Ink is whatever strays furthest beyond the border's range, darker or lighter: grey paper, a shadow
    across the page and a black canvas all decide it right. Evenly lit paper has one level, taken off;
    otherwise the level is estimated locally by an opening wider than any stroke (it follows a shadow's
    edge exactly), and each pixel's ink is its share of the way from the paper's level to full ink."""
    edge = _border(gray)
    low, high = np.percentile(edge, [5, 95])
    darker = np.clip(low - gray, 0, None).sum()
    lighter = np.clip(gray - high, 0, None).sum()
    ink = 1 - gray if darker > lighter else gray
    edge = 1 - edge if darker > lighter else edge
    if high - low < FLAT_PAPER:
        return _relative(ink, np.float32(np.median(edge))), True
    return _relative(ink, _paper_level(ink)), False


def _paper_level(ink: np.ndarray) -> np.ndarray:
    """The paper's own level under every pixel of ink (ink-space: paper low, ink high), ink taken out.

    Estimated at most PAPER_GRID pixels a side: each cell keeps its highest value, so where a shadow's
    edge crosses a cell the estimate errs towards the shadow (ink there is weakened, nothing is invented)."""
    from scipy import ndimage

    cell = -(-max(ink.shape) // PAPER_GRID)
    h, w = -(-ink.shape[0] // cell), -(-ink.shape[1] // cell)
    padded = np.pad(ink, ((0, h * cell - ink.shape[0]), (0, w * cell - ink.shape[1])), mode="edge")
    pooled = padded.reshape(h, cell, w, cell).max(axis=(1, 3))
    size = max(3, int(PAPER_WINDOW * max(h, w)) | 1)
    paper = ndimage.grey_opening(pooled, size=(size, size), mode="reflect")
    rough = _relative(pooled, paper) > INK_THRESHOLD
    if rough.any():
        # A window just wider than the strokes follows the paper more closely (narrow shadow wedges).
        stroke = 2 * float(np.percentile(ndimage.distance_transform_edt(rough)[rough], 90))
        size = min(size, max(3, int(STROKE_WINDOWS * stroke) | 1))
        paper = ndimage.grey_opening(pooled, size=(size, size), mode="reflect")
    return np.repeat(np.repeat(paper, cell, axis=0), cell, axis=1)[: ink.shape[0], : ink.shape[1]]


def _relative(ink: np.ndarray, paper) -> np.ndarray:
    return np.clip((ink - paper) / np.maximum(1 - paper, 0.05), 0, 1).astype(np.float32)


def preprocess(image: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit in 20x20 keeping aspect, centre by mass in 28x28 (LeCun's MNIST recipe).

    A 28x28 input is taken as already MNIST-style and only has its polarity and range fixed."""
    gray, even = _ink(_shrunk(image))
    if min(gray.shape) < MIN_IMAGE_SIDE:
        raise InvalidInput(
            f"The picture is {gray.shape[1]}x{gray.shape[0]} pixels; a digit needs at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}."
        )
    if gray.shape == (28, 28):
        if gray.max() < INK_THRESHOLD:
            raise InvalidInput("The image is blank: draw a digit first.")
        return gray.astype(np.float32)
    ys, xs = np.nonzero(_digit_mask(gray, even))
    if len(ys) == 0:
        raise InvalidInput("The image is blank: draw a digit first.")
    crop = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, Image.LANCZOS))
    digit = np.clip(digit, 0, 1)
    canvas = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = digit
    return _centre_by_mass(canvas)


def _digit_mask(ink: np.ndarray, even: bool) -> np.ndarray:
    """Pixels that count as ink; under uneven light, without what a shadow's edge or the grain leaves.

    Those leftovers are specks, or slivers where a shadow's edge meets the picture's edge (the paper
    there is narrower than the window that estimates it): apart from the digit, touching the edge."""
    mask = ink > INK_THRESHOLD
    if even or not mask.any():
        return mask
    from scipy import ndimage

    parts, count = ndimage.label(mask, structure=np.ones((3, 3)))
    mass = np.asarray(ndimage.sum_labels(ink, parts, index=np.arange(1, count + 1)))
    at_edge = np.zeros(count + 1, bool)
    at_edge[_border(parts)] = True
    inside = ~at_edge[1:]
    main = (
        int(np.argmax(np.where(inside, mass, 0)))
        if (inside & (mass >= 0.2 * mass.max())).any()
        else int(np.argmax(mass))
    )
    keep = inside & (mass >= SPECK * mass[main])
    keep[main] = True
    return np.isin(parts, 1 + np.flatnonzero(keep))


def _shrunk(image) -> np.ndarray:
    """Arrays over MAX_SIDE a side shrunk to it (decode() already did so for files), each channel alike."""
    img = np.asarray(image)
    if img.ndim not in (2, 3) or max(img.shape[:2]) <= MAX_SIDE or img.dtype.kind not in "fiub":
        return img
    scale = MAX_SIDE / max(img.shape[:2])
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    planes = img.astype(np.float32).reshape(*img.shape[:2], -1)
    if not np.isfinite(planes).all():
        return img  # to_gray names the problem
    shrunk = [
        np.asarray(Image.fromarray(planes[..., c]).resize(size, Image.BILINEAR, reducing_gap=2.0))
        for c in range(planes.shape[2])
    ]
    return np.stack(shrunk, axis=-1).reshape(size[1], size[0], *img.shape[2:])


def _centre_by_mass(img: np.ndarray) -> np.ndarray:
    total = img.sum()
    if total <= 0:
        return img
    ys, xs = np.indices(img.shape)
    dy = int(round(14 - (ys * img).sum() / total))
    dx = int(round(14 - (xs * img).sum() / total))
    shifted = np.zeros_like(img)
    src_y, dst_y = slice(max(0, -dy), 28 - max(0, dy)), slice(max(0, dy), 28 - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), 28 - max(0, dx)), slice(max(0, dx), 28 - max(0, -dx))
    shifted[dst_y, dst_x] = img[src_y, src_x]
    return shifted
