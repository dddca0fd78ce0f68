"""MNIST-style preprocessing: any drawing or picture of a digit to a centred 28x28 in [0,1]."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import InvalidInput
from core.limits import MAX_IMAGE_PIXELS as MAX_UPLOAD_PIXELS, MIN_IMAGE_SIDE

INK_THRESHOLD = 0.15  # a pixel this bright (after polarity) counts as ink
MAX_SIDE = 1024  # larger pictures are shrunk first; the digit ends up 20 px anyway


def decode(data: bytes) -> np.ndarray:
    """Decode image file bytes (PNG, JPEG, ...) to an RGBA uint8 array."""
    if not data:
        raise InvalidInput("The image file is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_UPLOAD_PIXELS:
                raise InvalidInput(f"The picture is {img.width}x{img.height}; the limit is {MAX_UPLOAD_PIXELS:,} pixels.")
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEGs decode at reduced size cheaply
            img.thumbnail((MAX_SIDE, MAX_SIDE))
            return np.asarray(img.convert("RGBA"))
    except InvalidInput:
        raise  # our own message, not the generic one below (InvalidInput is a ValueError)
    except Image.DecompressionBombError as exc:  # PIL refuses over ~179 M pixels before our own check
        raise InvalidInput(f"The picture is too large; the limit is {MAX_UPLOAD_PIXELS:,} pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput("Could not read this file as a picture. Use PNG or JPEG of one digit.") from exc


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale in [0,1] with white ink on black, whatever the input's channels and polarity."""
    img = np.asarray(image)
    if img.dtype.kind not in "fiub" or img.size == 0:
        raise InvalidInput(f"An image must be a non-empty array of numbers, not {img.dtype} of shape {img.shape}.")
    img = img.astype(np.float32)
    if img.dtype.kind == "f" and not np.isfinite(img).all():
        raise InvalidInput("The image holds NaN or infinite values.")
    if img.max(initial=0) > 1.0:
        img = img / 255.0
    if img.ndim == 3 and img.shape[2] in (3, 4):
        rgb, alpha = img[..., :3], img[..., 3] if img.shape[2] == 4 else None
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if alpha is not None and alpha.min() < 0.99:
            # Transparent background: the ink is wherever alpha is, whatever its colour.
            return np.clip(alpha * np.where(_ink_is_dark(gray, alpha), 1 - gray, gray), 0, 1)
        img = gray
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise InvalidInput(f"An image must be grayscale, RGB or RGBA, not shape {img.shape}.")
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return 1.0 - img if np.median(border) > 0.5 else img


def _ink_is_dark(gray: np.ndarray, alpha: np.ndarray) -> bool:
    opaque = alpha > 0.5
    return bool(opaque.any() and gray[opaque].mean() < 0.5)


def preprocess(image: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit in 20x20 keeping aspect, centre by mass in 28x28 (LeCun's MNIST recipe).

    A 28x28 input is taken as already MNIST-style and only has its polarity and range fixed."""
    gray = to_gray(image)
    if min(gray.shape) < MIN_IMAGE_SIDE:
        raise InvalidInput(f"The picture is {gray.shape[1]}x{gray.shape[0]} pixels; a digit needs at least "
                           f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}.")
    if gray.shape == (28, 28):
        if gray.max() < INK_THRESHOLD:
            raise InvalidInput("The image is blank: draw a digit first.")
        return gray.astype(np.float32)
    if max(gray.shape) > MAX_SIDE:
        scale = MAX_SIDE / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR, reducing_gap=2.0))
    ys, xs = np.nonzero(gray > INK_THRESHOLD)
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
