"""The downloader, exercised against local file:// mirrors (this machine has no internet)."""
import gzip
import io
import zipfile

import pytest

from core.data.download import download_fsdd, download_mnist
from core.data.mnist import load_mnist
from core.errors import DownloadError


def test_mnist_download_verifies_and_installs(tmp_path, data_root):
    mirror = data_root / "mnist"
    target = download_mnist(tmp_path, mirrors=(f"file://{mirror}/",), progress=False)
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in mirror.iterdir())
    images, labels = load_mnist(tmp_path, "test")
    assert images.shape == (10000, 28, 28)


def test_mnist_download_rejects_a_bad_checksum_and_falls_back(tmp_path, data_root):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (data_root / "mnist").iterdir():
        blob = bytearray(gzip.decompress(f.read_bytes()))
        blob[-1] ^= 0xFF
        (bad / f.name).write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(DownloadError, match="md5"):
        download_mnist(tmp_path / "a", mirrors=(f"file://{bad}/",), progress=False)
    assert not list((tmp_path / "a" / "mnist").glob("*.gz"))
    download_mnist(tmp_path / "b", mirrors=(f"file://{bad}/", f"file://{data_root / 'mnist'}/"), progress=False)
    assert len(list((tmp_path / "b" / "mnist").glob("*.gz"))) == 4


def test_offline_download_fails_fast_with_where_to_put_files(tmp_path):
    with pytest.raises(DownloadError, match="by hand"):
        download_mnist(tmp_path, mirrors=("http://127.0.0.1:9/",), progress=False)
    with pytest.raises(DownloadError, match="by hand"):
        download_fsdd(tmp_path, url="http://127.0.0.1:9/master.zip", progress=False)


def test_fsdd_download_extracts_recordings(tmp_path, data_root):
    wavs = sorted((data_root / "fsdd" / "recordings").glob("0_*.wav"))[:20]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for w in wavs:
            z.write(w, f"free-spoken-digit-dataset-master/recordings/{w.name}")
        z.writestr("free-spoken-digit-dataset-master/README.md", "readme")
    archive = tmp_path / "master.zip"
    archive.write_bytes(buf.getvalue())
    target = download_fsdd(tmp_path / "root", url=f"file://{archive}", progress=False, expected_clips=20)
    assert sorted(p.name for p in target.iterdir()) == [w.name for w in wavs]
    with pytest.raises(DownloadError, match="expected 3000"):
        download_fsdd(tmp_path / "other", url=f"file://{archive}", progress=False)
    archive.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a zip"):
        download_fsdd(tmp_path / "third", url=f"file://{archive}", progress=False, expected_clips=20)
