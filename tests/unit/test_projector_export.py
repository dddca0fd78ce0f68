"""core.analysis.projector_export and the coordinates CSV: files parse back, shapes and labels match, the sprite."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from core.analysis import embeddings as E
from core.analysis import projector_export as X


def sample(n=7, d=5, images=True, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    meta = pd.DataFrame(
        {
            "digit": rng.integers(0, 10, n),
            "speaker": [f"s{i % 3}" for i in range(n)],
            "clip": [f"{i}_s_{i}.wav" for i in range(n)],
        }
    )
    pics = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images else None
    return vectors, meta, pics


def test_an_export_reads_back_with_its_vectors_labels_and_sprite(tmp_path):
    vectors, meta, pics = sample()
    written = X.write_projector(tmp_path, X.projector_files(vectors, meta, pics, name="image embedding"))
    assert sorted(p.name for p in written) == sorted([X.TENSORS, X.METADATA, X.SPRITE, X.CONFIG])
    back = X.read_projector(tmp_path)
    np.testing.assert_allclose(back.vectors, vectors, rtol=1e-5)
    assert list(back.meta.columns) == ["digit", "speaker", "clip"]
    assert back.meta["digit"].astype(int).tolist() == meta["digit"].tolist()
    assert back.meta["clip"].tolist() == meta["clip"].tolist()
    assert back.config["tensor_name"] == "image embedding" and back.config["tensor_shape"] == [7, 5]
    assert back.config["single_image_dim"] == [28, 28] and back.sprite.shape == (3 * 28, 3 * 28)  # 7 images: 3x3 grid
    for i in range(7):  # row by row, each image in its cell; the cells past the last image stay black
        r, c = divmod(i, 3)
        assert np.array_equal(back.sprite[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28], pics[i])
    assert not back.sprite[2 * 28 :, 28:].any()


def test_one_metadata_column_is_written_without_a_header_as_the_projector_reads_it(tmp_path):
    vectors, meta, _ = sample(images=False)
    files = X.projector_files(vectors, meta[["digit"]])
    assert files[X.METADATA].decode().splitlines() == [str(d) for d in meta["digit"]]
    assert X.SPRITE not in files and "sprite" not in files[X.CONFIG].decode()
    X.write_projector(tmp_path, files)
    back = X.read_projector(tmp_path)
    assert back.sprite is None and back.meta.iloc[:, 0].astype(int).tolist() == meta["digit"].tolist()


def test_the_zip_holds_the_same_files():
    files = X.projector_files(*sample())
    with zipfile.ZipFile(io.BytesIO(X.projector_zip(files))) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == files


def test_inconsistent_inputs_and_files_are_refused(tmp_path):
    vectors, meta, pics = sample()
    with pytest.raises(X.ProjectorFormatError, match="metadata rows"):
        X.projector_files(vectors, meta.iloc[:5], pics)
    with pytest.raises(X.ProjectorFormatError, match="images"):
        X.projector_files(vectors, meta, pics[:3])
    with pytest.raises(X.ProjectorFormatError, match="tabs or line breaks"):
        X.projector_files(vectors, meta.assign(clip="a\tb"))
    with pytest.raises(X.ProjectorFormatError, match="finite"):
        X.projector_files(np.full((7, 5), np.nan), meta)
    with pytest.raises(X.ProjectorFormatError, match="wider"):
        X.sprite_image(np.zeros((300 * 300, 28, 28), np.uint8)[:1].repeat(300 * 300, 0))
    X.write_projector(tmp_path, X.projector_files(vectors, meta, pics))
    (tmp_path / X.METADATA).write_text("digit\tspeaker\tclip\n1\ts\tc\n")
    with pytest.raises(X.ProjectorFormatError, match="1 metadata rows for 7 vectors"):
        X.read_projector(tmp_path)
    (tmp_path / X.CONFIG).write_text("nothing here")
    with pytest.raises(X.ProjectorFormatError, match="no embeddings"):
        X.read_projector(tmp_path)


def test_the_coordinates_table_has_a_row_per_point_with_its_label_and_place():
    meta = pd.DataFrame({"digit": [3, 1, 4], "clip": ["a", "b", "c"]})
    xy = np.array([[0.5, 1.0], [2.0, -1.0], [3.0, 0.0]], np.float32)
    table = E.coordinates_table(meta, xy, np.array([2, 0, 1]))
    back = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    assert list(back.columns) == ["digit", "clip", "cluster", "x", "y"]
    assert back["digit"].tolist() == [3, 1, 4] and back["cluster"].tolist() == [2, 0, 1]
    np.testing.assert_allclose(back[["x", "y"]].to_numpy(), xy)
    with pytest.raises(ValueError, match="3 points"):
        E.coordinates_table(meta, xy[:2], np.array([2, 0, 1]))


def test_the_cli_writes_a_projector_export_of_the_embedding(embeddings_cli, tiny_weights, data_root, tmp_path):
    out = tmp_path / "projector"
    run = embeddings_cli("--encoder", "fused", "--n", 150, "--projector", out)
    assert run.returncode == 0, run.stderr
    back = X.read_projector(out)
    model, _, split = E.load_split(tiny_weights, data_root, "test")
    e = E.compute(model, split, "fused", n=150)
    np.testing.assert_allclose(back.vectors, e.vectors, rtol=1e-4, atol=1e-5)
    assert back.meta["digit"].astype(int).tolist() == e.meta["digit"].tolist()
    assert set(back.meta.columns) == {"digit", "prediction", "correct", "speaker", "clip", "cluster"}
    assert back.sprite.shape == (13 * 28, 13 * 28) and back.config["tensor_name"] == "fused embedding"
    assert np.array_equal(back.sprite[:28, 28:56], e.images[1])
