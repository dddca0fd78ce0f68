"""Embeddings in TensorBoard Projector's format: tensors.tsv, metadata.tsv, a sprite of the digits and its config."""

from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DigitsError
from core.io import atomic_write

TENSORS, METADATA, SPRITE, CONFIG = "tensors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"
SPRITE_MAX_PX = 8192  # the Projector refuses larger sprites
MAX_BYTES = 64 << 20  # any one file read back: 10,000 x 128 floats as text are ~15 MB


class ProjectorFormatError(DigitsError, ValueError):
    """Files that are not a consistent Projector export (shapes, labels, sprite or config disagree)."""


@dataclass
class ProjectorExport:
    """What an export holds, as read back: vectors, one metadata row per vector, the sprite and the config fields."""

    vectors: np.ndarray
    meta: pd.DataFrame
    sprite: np.ndarray | None  # (rows * h, cols * w) uint8
    config: dict


def sprite_image(images: np.ndarray) -> np.ndarray:
    """The images tiled row by row in a square grid, as the Projector expects (black where the grid runs out)."""
    images = np.asarray(images)
    if images.ndim != 3 or len(images) == 0:
        raise ProjectorFormatError(f"a sprite needs (n, height, width) images, not shape {images.shape}")
    n, h, w = images.shape
    side = math.ceil(math.sqrt(n))
    if side * max(h, w) > SPRITE_MAX_PX:
        raise ProjectorFormatError(f"{n} images of {w}x{h} make a sprite wider than the Projector's {SPRITE_MAX_PX} px")
    grid = np.zeros((side * side, h, w), dtype=np.uint8)
    grid[:n] = images
    return grid.reshape(side, side, h, w).transpose(0, 2, 1, 3).reshape(side * h, side * w)


def _tsv_safe(meta: pd.DataFrame) -> pd.DataFrame:
    text = meta.astype(str)
    for column in (*text.columns, *text.astype(str).to_numpy().ravel()):
        if re.search(r"[\t\r\n]", str(column)):
            raise ProjectorFormatError(f"metadata cannot hold tabs or line breaks: {str(column)!r}")
    return text


def projector_files(
    vectors: np.ndarray, meta: pd.DataFrame, images: np.ndarray | None = None, name: str = "embedding"
) -> dict[str, bytes]:
    """The export's files by name: vectors (n, d), a metadata row per vector, and the images (n, h, w) if any."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0 or not np.isfinite(vectors).all():
        raise ProjectorFormatError(f"need finite vectors as an (n, d) array, not shape {vectors.shape}")
    if len(meta) != len(vectors) or meta.shape[1] == 0:
        raise ProjectorFormatError(f"{len(meta)} metadata rows for {len(vectors)} vectors")
    if images is not None and len(images) != len(vectors):
        raise ProjectorFormatError(f"{len(images)} images for {len(vectors)} vectors")
    if not re.fullmatch(r"[\w .:-]+", name):
        raise ProjectorFormatError(f"the embedding's name must be letters, digits, spaces or .:-_, not {name!r}")
    tensors = io.StringIO()
    np.savetxt(tensors, vectors, delimiter="\t", fmt="%.6g")
    table = io.StringIO()
    # One column is written without a header, as the Projector reads it; several need the header row.
    _tsv_safe(meta).to_csv(table, sep="\t", index=False, header=meta.shape[1] > 1, lineterminator="\n")
    files = {TENSORS: tensors.getvalue().encode(), METADATA: table.getvalue().encode()}
    config = [
        f'  tensor_name: "{name}"',
        f"  tensor_shape: {vectors.shape[0]}",
        f"  tensor_shape: {vectors.shape[1]}",
        f'  tensor_path: "{TENSORS}"',
        f'  metadata_path: "{METADATA}"',
    ]
    if images is not None:
        from PIL import Image

        png = io.BytesIO()
        Image.fromarray(sprite_image(images), mode="L").save(png, format="PNG")
        files[SPRITE] = png.getvalue()
        h, w = np.asarray(images).shape[1:]
        config += [
            "  sprite {",
            f'    image_path: "{SPRITE}"',
            f"    single_image_dim: {w}",
            f"    single_image_dim: {h}",
            "  }",
        ]
    files[CONFIG] = ("embeddings {\n" + "\n".join(config) + "\n}\n").encode()
    return files


def write_projector(directory: str | Path, files: dict[str, bytes]) -> list[Path]:
    """Write the files into directory (created if needed), each atomically; the paths written."""
    directory = Path(directory)
    return [atomic_write(directory / name, lambda f, data=data: f.write(data)) for name, data in files.items()]


def projector_zip(files: dict[str, bytes]) -> bytes:
    """The files as one zip archive, for a download."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def parse_config(text: str) -> dict:
    """The fields of our projector_config.pbtxt (one embedding): tensor_name, tensor_shape, paths and sprite."""
    fields: dict = {"tensor_shape": [], "single_image_dim": []}
    body = re.fullmatch(r"\s*embeddings\s*\{(.*)\}\s*", text, flags=re.S)
    if body is None:
        raise ProjectorFormatError("projector_config.pbtxt holds no embeddings { ... } block")
    for key, value in re.findall(r"(\w+)\s*:\s*(\"[^\"\n]*\"|-?\d+)", body.group(1)):
        value = value.strip('"') if value.startswith('"') else int(value)
        if key in ("tensor_shape", "single_image_dim"):
            fields[key].append(value)
        else:
            fields[key] = value
    return fields


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ProjectorFormatError(f"{path.name} is missing from {path.parent}")
    if path.stat().st_size > MAX_BYTES:
        raise ProjectorFormatError(f"{path} is larger than {MAX_BYTES >> 20} MB")
    return path.read_bytes()


def read_projector(directory: str | Path) -> ProjectorExport:
    """Read an export back and check that its parts agree: shapes, one label row per vector, the sprite's grid."""
    directory = Path(directory)
    try:
        config = parse_config(_read(directory / CONFIG).decode())
        vectors = np.loadtxt(
            io.BytesIO(_read(directory / config.get("tensor_path", TENSORS))), delimiter="\t", dtype=np.float32, ndmin=2
        )
        table = _read(directory / config.get("metadata_path", METADATA))
        several = b"\t" in table.split(b"\n", 1)[0]  # the Projector's rule: a header row only above several columns
        meta = pd.read_csv(io.BytesIO(table), sep="\t", dtype=str, keep_default_na=False, header=0 if several else None)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, ProjectorFormatError):
            raise
        raise ProjectorFormatError(f"cannot parse the export in {directory}: {exc}") from exc
    if config["tensor_shape"] and list(vectors.shape) != config["tensor_shape"]:
        raise ProjectorFormatError(f"tensors.tsv is {vectors.shape}, the config says {config['tensor_shape']}")
    if len(meta) != len(vectors):
        raise ProjectorFormatError(f"{len(meta)} metadata rows for {len(vectors)} vectors")
    sprite = None
    if "image_path" in config:
        from PIL import Image, UnidentifiedImageError

        try:
            sprite = np.asarray(Image.open(io.BytesIO(_read(directory / config["image_path"]))).convert("L"))
        except (UnidentifiedImageError, OSError) as exc:
            raise ProjectorFormatError(f"the sprite is not an image: {exc}") from exc
        w, h = (config["single_image_dim"] + [0, 0])[:2]
        side = math.ceil(math.sqrt(len(vectors)))
        if sprite.shape != (side * h, side * w):
            raise ProjectorFormatError(
                f"the sprite is {sprite.shape[1]}x{sprite.shape[0]} px, not a {side}x{side} grid of {w}x{h} images"
            )
    return ProjectorExport(vectors, meta, sprite, config)
