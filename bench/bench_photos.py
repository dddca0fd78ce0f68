"""Image-head accuracy on MNIST test digits rendered as photos and screenshots, per condition.

Each digit becomes dark ink on a page, saved the way a phone or a screenshot tool would save it
(paper tones, lighting gradients, shadows, blur, JPEG, rotation, stroke thickness, EXIF orientation,
transparency), and goes through the serving path: Predictor's prepare_image, then the image head.
`--baseline REV` also scores the preprocessing of core/features/image.py at that git revision on the very same
files, so the table shows before and after from one run, and counts the inputs that need no repair
(MNIST's 28x28s, canvases, black on white) whose 28x28 differs from the baseline's: it must be none.

    python -m bench.bench_photos --per-condition 300 --baseline main
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.at_revision import module_at
from core import paths
from core.data.mnist import load_mnist
from core.errors import InvalidInput
from core.predict import Predictor, prepare_image

# What Pillow's ImageOps.exif_transpose applies for each EXIF orientation, and its inverse, which the
# camera applied when it stored the pixels.
EXIF_UNDO = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
EXIF_DO = {**EXIF_UNDO, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
ORIENTATION_TAG = 0x0112

# Each condition: the rendering settings it draws at random (see render()).
CONDITIONS = {
    "clean white page": {},
    "grey paper (210/255)": {"paper": (210, 210)},
    "paper tones (160-250, tinted)": {"paper": (160, 250), "tint": True, "jpeg": (80, 95)},
    "lighting gradient": {"gradient": (0.35, 0.6), "jpeg": (80, 95)},
    "shadow across the page": {"shadow": (0.4, 0.65), "jpeg": (80, 95)},
    "blurred phone JPEG": {"blur": (1.0, 2.5), "noise": 3.0, "jpeg": (50, 80)},
    "rotated up to 15 degrees": {"rotate": 15},
    "thin and thick strokes": {"thickness": True},
    "EXIF orientation": {"exif": True, "jpeg": (85, 95)},
    "screenshot, transparent corners": {"corners": True},
    "transparent background": {"transparent": True},
    "phone photo, all at once": {
        "paper": (175, 245),
        "tint": True,
        "gradient": (0.15, 0.35),
        "shadow": (0.35, 0.6),
        "blur": (0.5, 1.5),
        "noise": 3.0,
        "rotate": 15,
        "thickness": True,
        "exif": True,
        "jpeg": (60, 90),
    },
}


def ink_mask(digit28: np.ndarray, rng: np.random.Generator, spec: dict) -> np.ndarray:
    """The digit's ink in [0,1], enlarged 6-12x, maybe thinned or thickened, maybe rotated."""
    scale = int(rng.integers(6, 13))
    img = Image.fromarray((digit28 * 255).astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BICUBIC)
    if spec.get("thickness"):
        size = 2 * int(rng.integers(1, max(2, scale // 2) + 1)) + 1
        img = img.filter(ImageFilter.MaxFilter(size) if rng.random() < 0.5 else ImageFilter.MinFilter(min(size, 5)))
    if spec.get("rotate"):
        img = img.rotate(float(rng.uniform(-spec["rotate"], spec["rotate"])), Image.BICUBIC, expand=True)
    return np.asarray(img, np.float32) / 255


def lighting(h: int, w: int, rng: np.random.Generator, spec: dict) -> np.ndarray:
    """A multiplicative light field: a linear gradient and/or a soft-edged shadow over part of the page."""
    light = np.ones((h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if "gradient" in spec:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs / w + np.sin(angle) * ys / h
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        light *= 1 - float(rng.uniform(*spec["gradient"])) * ramp
    if "shadow" in spec:
        # A straight shadow edge through a random point of the middle of the page, blurred into a penumbra.
        angle = rng.uniform(0, 2 * np.pi)
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        side = (np.cos(angle) * (xs - cx) + np.sin(angle) * (ys - cy)) > 0
        penumbra = float(rng.uniform(0.01, 0.06)) * max(h, w)
        soft = (
            np.asarray(
                Image.fromarray((side * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(penumbra)), np.float32
            )
            / 255
        )
        light *= 1 - float(rng.uniform(*spec["shadow"])) * soft
    return light


def render(digit28: np.ndarray, rng: np.random.Generator, spec: dict) -> bytes:
    """One MNIST digit as the bytes of a photo or screenshot of it, drawn with spec's settings."""
    ink = ink_mask(digit28, rng, spec)
    dh, dw = ink.shape
    h, w = int(dh * rng.uniform(1.3, 2.2)), int(dw * rng.uniform(1.3, 2.2))
    top, left = int(rng.integers(0, h - dh + 1)), int(rng.integers(0, w - dw + 1))
    mask = np.zeros((h, w), np.float32)
    mask[top : top + dh, left : left + dw] = ink
    paper = np.full(3, float(rng.uniform(*spec.get("paper", (245, 255)))), np.float32)
    if spec.get("tint"):
        paper *= rng.uniform(0.9, 1.0, 3).astype(np.float32)  # cream, bluish, ...
    pen = rng.uniform(10, 70, 3).astype(np.float32)
    if spec.get("transparent"):
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = pen.astype(np.uint8) if rng.random() < 0.5 else 0
        rgba[..., 3] = (mask * 255).astype(np.uint8)
        return _png(Image.fromarray(rgba))
    rgb = paper * (1 - mask[..., None]) + pen * mask[..., None]
    rgb *= lighting(h, w, rng, spec)[..., None]
    if "noise" in spec:
        rgb += rng.normal(0, spec["noise"], rgb.shape)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    if "blur" in spec:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(*spec["blur"]))))
    if spec.get("corners"):
        return _png(_rounded_corners(img, int(rng.integers(1, 13)), rng))
    exif = Image.Exif()
    if spec.get("exif"):
        orientation = int(rng.integers(2, 9))
        img = img.transpose(EXIF_DO[orientation])  # what the camera stored; exif_transpose undoes it
        exif[ORIENTATION_TAG] = orientation
    if "jpeg" in spec:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(*spec["jpeg"])), exif=exif.tobytes())
        return buf.getvalue()
    return _png(img, exif)


def _rounded_corners(img: Image.Image, radius: int, rng: np.random.Generator) -> Image.Image:
    """A window screenshot: the four corners outside a rounded rectangle are transparent."""
    alpha = Image.new("L", img.size, 0)
    ImageDraw.Draw(alpha).rounded_rectangle((0, 0, img.width - 1, img.height - 1), radius=radius, fill=255)
    rgba = img.convert("RGBA")
    rgba.putalpha(alpha)
    if rng.random() < 0.5:  # some tools store transparent pixels as transparent black
        arr = np.asarray(rgba).copy()
        arr[arr[..., 3] == 0] = 0
        rgba = Image.fromarray(arr)
    return rgba


def _png(img: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif.tobytes() if exif else b"")
    return buf.getvalue()


def image_head(predictor: Predictor, images28: list[np.ndarray | None]) -> np.ndarray:
    """The image head's digit for each 28x28 (-1 where preprocessing refused the picture)."""
    import torch

    ok = [i for i, x in enumerate(images28) if x is not None]
    digits = np.full(len(images28), -1)
    with torch.inference_mode():
        for start in range(0, len(ok), 500):
            batch = torch.from_numpy(np.stack([images28[i] for i in ok[start : start + 500]]))
            digits[ok[start : start + 500]] = predictor.model(image=batch)["image"].argmax(-1).numpy()
    return digits


def unchanged(old: types.ModuleType, images: np.ndarray) -> str:
    """How many inputs that need no photo repair preprocess differently from old: they must not."""
    from bench.bench_predict import canvas_from
    from core.features import image

    def differ(make, picks) -> str:
        count = sum(
            not np.array_equal(old.preprocess(make(images[i])), image.preprocess(make(images[i]))) for i in picks
        )
        return f"{count} of {len(picks)}"

    def opaque(d, ink=255):  # the canvas with its black background painted in; ink=0 for black on white
        rgb = canvas_from(d)[..., :3]
        return np.dstack([rgb if ink else 255 - rgb, np.full((280, 280), 255, np.uint8)])

    every_20th = range(0, len(images), 20)
    return (
        f"differing 28x28 from the baseline: MNIST as is {differ(lambda d: d, range(len(images)))}, "
        f"canvas (transparent) {differ(canvas_from, every_20th)}, canvas (opaque black) {differ(opaque, every_20th)}, "
        f"black on white {differ(lambda d: opaque(d, ink=0), every_20th)}"
    )


def prepared(prepare, data) -> np.ndarray | None:
    try:
        return prepare(data)
    except InvalidInput:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--per-condition", type=int, default=300, help="MNIST test digits per condition")
    parser.add_argument(
        "--baseline", default=None, help="git revision whose core/features/image.py to score too, e.g. main"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", type=Path, default=None, help="save each picture the image head misread here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    predictor = Predictor.load(args.weights)
    images, labels = load_mnist(paths.data_dir(args.data_dir), "test")
    old = module_at("core/features/image.py", args.baseline) if args.baseline else None
    columns = ["after"] + (["before"] if old else [])
    rows = []

    def score(name: str, inputs: list, truth: np.ndarray) -> None:
        start = time.perf_counter()
        row = {"condition": name, "n": len(truth)}
        digits = image_head(predictor, [prepared(prepare_image, x) for x in inputs])
        row["after"] = (digits == truth).mean()
        if args.failures:
            args.failures.mkdir(parents=True, exist_ok=True)
            for k in np.flatnonzero((digits != truth) & np.array([isinstance(x, bytes) for x in inputs])):
                slug = "".join(c if c.isalnum() else "_" for c in name)
                (args.failures / f"{slug}_{k}_true{truth[k]}_read{digits[k]}.img").write_bytes(inputs[k])
        if old:
            before = [
                prepared(lambda x: old.preprocess(old.decode(x) if isinstance(x, bytes) else x), x) for x in inputs
            ]
            row["before"] = (image_head(predictor, before) == truth).mean()
        rows.append(row)
        print(
            f"  {name}: "
            + ", ".join(f"{c} {100 * row[c]:.1f} %" for c in columns)
            + f" ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )

    score("clean MNIST, 28x28 as is", list(images), labels)
    rng = np.random.default_rng(args.seed)
    for name, spec in CONDITIONS.items():
        chosen = rng.choice(len(images), args.per_condition, replace=False)
        score(name, [render(images[i], rng, spec) for i in chosen], labels[chosen])

    if old:
        print(unchanged(old, images), file=sys.stderr)
    print(
        f"Image head of {Path(args.weights).name} on MNIST test digits rendered as photos "
        f"({args.per_condition} per condition, seed {args.seed}):\n"
    )
    print("| condition | n | " + " | ".join(c for c in reversed(columns)) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for row in rows:
        print(
            f"| {row['condition']} | {row['n']:,} | "
            + " | ".join(f"{100 * row[c]:.1f} %" for c in reversed(columns))
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
