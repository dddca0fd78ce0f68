"""The downloader, against local file:// mirrors and a local HTTP server on 127.0.0.1 (this machine has no internet)."""

import gzip
import hashlib
import http.server
import io
import os
import threading
import time
import zipfile
from collections import Counter
from types import SimpleNamespace

import pytest

from core.data.download import FSDD_COMMIT, check_fsdd, download_fsdd, download_mnist, fetch, fsdd_manifest
from core.data.mnist import load_mnist
from core.errors import DownloadError


def test_mnist_download_verifies_and_installs(tmp_path, data_root):
    mirror = data_root / "mnist"
    target = download_mnist(tmp_path, mirrors=(f"file://{mirror}/",), progress=False)
    assert sorted(p.name for p in target.glob("*.gz")) == sorted(p.name for p in mirror.iterdir())
    images, labels = load_mnist(tmp_path, "test")
    assert images.shape == (10000, 28, 28)


def test_mnist_download_rejects_a_bad_checksum_and_falls_back(tmp_path, data_root):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (data_root / "mnist").iterdir():
        blob = bytearray(gzip.decompress(f.read_bytes()))
        blob[-1] ^= 0xFF
        (bad / f.name).write_bytes(gzip.compress(bytes(blob), compresslevel=1))
    with pytest.raises(DownloadError, match="md5"):
        download_mnist(tmp_path / "a", mirrors=(f"file://{bad}/",), progress=False)
    assert not list((tmp_path / "a" / "mnist").glob("*.gz"))
    download_mnist(tmp_path / "b", mirrors=(f"file://{bad}/", f"file://{data_root / 'mnist'}/"), progress=False)
    assert len(list((tmp_path / "b" / "mnist").glob("*.gz"))) == 4


def test_offline_download_fails_fast_with_where_to_put_files(tmp_path, manifest):
    with pytest.raises(DownloadError, match="by hand"):
        download_mnist(tmp_path, mirrors=("http://127.0.0.1:9/",), progress=False)
    with pytest.raises(DownloadError, match="by hand"):
        download_fsdd(tmp_path, urls=("http://127.0.0.1:9/fsdd.zip",), progress=False, manifest=manifest)
    assert not (tmp_path / "fsdd" / "recordings").exists()


def test_the_committed_manifest_matches_every_recording_of_the_mirror(data_root):
    # The mirror is FSDD at FSDD_COMMIT (its README says so); the manifest is what downloads are checked against.
    manifest = fsdd_manifest()
    assert len(manifest) == 3000 and len({n.split("_")[1] for n in manifest}) == 6
    assert check_fsdd(data_root / "fsdd" / "recordings", manifest) == ([], [])


# ---- FSDD from a local HTTP mirror -------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(data_root):
    """Twenty recordings of the committed manifest: small archives, the real checks."""
    full = fsdd_manifest()
    return {p.name: full[p.name] for p in sorted((data_root / "fsdd" / "recordings").glob("3_*.wav"))[:20]}


def archive(data_root, names, tamper: str | None = None) -> bytes:
    """A zip laid out as GitHub's archive of the commit, holding names (one of them altered if tamper names it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            data = (data_root / "fsdd" / "recordings" / name).read_bytes()
            z.writestr(f"free-spoken-digit-dataset-{FSDD_COMMIT}/recordings/{name}", data + b"x" * (name == tamper))
        z.writestr(f"free-spoken-digit-dataset-{FSDD_COMMIT}/README.md", "readme")
    return buf.getvalue()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a slow response the client gave up on must not hold up the test


@pytest.fixture
def mirror():
    """An HTTP server on 127.0.0.1 serving routes[path] = (how, body), counting hits per path.

    how: "whole"; "cut" (declares the whole length, sends half, closes); "chunked-cut" (chunked, closes
    inside the chunk: IncompleteRead); "paced" (the whole body in four parts 0.2 s apart); "slow" (1 KB
    every 0.2 s, stopping after 5 s at most)."""
    routes, hits = {}, Counter()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            hits[self.path] += 1
            how, body = routes[self.path]
            self.close_connection = True
            self.send_response(200)
            if how == "chunked-cut":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n" % len(body) + body[: len(body) // 2])
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if how == "cut":
                    self.wfile.write(body[: len(body) // 2])
                elif how in ("paced", "slow"):
                    step = -(-len(body) // 4) if how == "paced" else 1024
                    for start in range(0, min(len(body), 25 * step), step):
                        self.wfile.write(body[start : start + step])
                        self.wfile.flush()
                        time.sleep(0.2)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(routes=routes, hits=hits, url=lambda path: f"http://127.0.0.1:{server.server_port}{path}")
    server.shutdown()
    server.server_close()


def installed(target, manifest) -> bool:
    return sorted(p.name for p in target.iterdir()) == sorted(manifest) and check_fsdd(target, manifest) == ([], [])


def test_fsdd_download_installs_each_recording_verified(tmp_path, data_root, manifest, mirror):
    mirror.routes["/fsdd.zip"] = ("whole", archive(data_root, manifest))
    target = download_fsdd(tmp_path, urls=(mirror.url("/fsdd.zip"),), progress=False, manifest=manifest)
    assert target == tmp_path / "fsdd" / "recordings" and installed(target, manifest)
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".recordings.")] == []  # no staging left
    download_fsdd(tmp_path, urls=(mirror.url("/fsdd.zip"),), progress=False, manifest=manifest)
    assert mirror.hits["/fsdd.zip"] == 1, "a complete, verified folder is not fetched again"


def test_a_cut_short_response_is_a_clear_error_and_the_next_mirror_is_tried(tmp_path, data_root, manifest, mirror):
    body = archive(data_root, manifest)
    mirror.routes.update(
        {"/cut.zip": ("cut", body), "/chunked.zip": ("chunked-cut", body), "/good.zip": ("whole", body)}
    )
    with pytest.raises(DownloadError, match=rf"was cut short: {len(body) // 2:,} of {len(body):,} bytes arrived"):
        fetch(mirror.url("/cut.zip"), progress=False)
    with pytest.raises(DownloadError, match="was cut short: IncompleteRead"):
        fetch(mirror.url("/chunked.zip"), progress=False)
    with pytest.raises(DownloadError, match="cut short.*cut short.*by hand"):
        download_fsdd(
            tmp_path / "a", urls=(mirror.url("/cut.zip"), mirror.url("/chunked.zip")), progress=False, manifest=manifest
        )
    assert not (tmp_path / "a" / "fsdd" / "recordings").exists()
    urls = tuple(mirror.url(p) for p in ("/cut.zip", "/chunked.zip", "/good.zip"))
    assert installed(download_fsdd(tmp_path / "b", urls=urls, progress=False, manifest=manifest), manifest)


def test_an_oversized_response_is_refused_from_its_length(mirror):
    mirror.routes["/big.zip"] = ("whole", b"z" * 5000)
    with pytest.raises(DownloadError, match="is 5,000 bytes; no dataset file here is over 1,000"):
        fetch(mirror.url("/big.zip"), progress=False, max_bytes=1000)


def test_a_download_that_overruns_its_deadline_gives_up(tmp_path, data_root, manifest, mirror):
    mirror.routes["/slow.zip"] = ("slow", archive(data_root, manifest))
    with pytest.raises(DownloadError, match="took longer than its deadline"):
        download_fsdd(tmp_path, urls=(mirror.url("/slow.zip"),), progress=False, manifest=manifest, deadline_s=1)
    assert not (tmp_path / "fsdd" / "recordings").exists()


def test_a_tampered_or_incomplete_archive_is_refused_and_the_next_mirror_is_tried(
    tmp_path, data_root, manifest, mirror
):
    names = sorted(manifest)
    mirror.routes.update(
        {
            "/tampered.zip": ("whole", archive(data_root, names, tamper=names[3])),
            "/short.zip": ("whole", archive(data_root, names[:-1])),
            "/notzip.zip": ("whole", b"not a zip"),
            "/good.zip": ("whole", archive(data_root, names)),
        }
    )
    for path, message in (
        ("/tampered.zip", f"1 recording\\(s\\) do not match their sha256, e.g. {names[3]}"),
        ("/short.zip", "holds 19 of the 20 FSDD recordings"),
        ("/notzip.zip", "not a readable zip"),
    ):
        with pytest.raises(DownloadError, match=message):
            download_fsdd(tmp_path / path[1:-4], urls=(mirror.url(path),), progress=False, manifest=manifest)
        assert not (tmp_path / path[1:-4] / "fsdd" / "recordings").exists()
    urls = tuple(mirror.url(p) for p in ("/tampered.zip", "/short.zip", "/good.zip"))
    assert installed(download_fsdd(tmp_path / "ok", urls=urls, progress=False, manifest=manifest), manifest)


def test_two_downloads_at_once_fetch_once_and_do_not_race(tmp_path, data_root, manifest, mirror):
    # Two clicks on the button, or two visitors: the second waits for the first, then finds FSDD installed.
    # (Without the lock both fetch, and one removes the other's staging folder under it.)
    mirror.routes["/fsdd.zip"] = ("paced", archive(data_root, manifest))
    results, errors = [], []

    def run():
        try:
            results.append(download_fsdd(tmp_path, urls=(mirror.url("/fsdd.zip"),), progress=False, manifest=manifest))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(results) == 2 and installed(results[0], manifest)
    assert mirror.hits["/fsdd.zip"] == 1


def test_an_existing_partial_folder_and_its_user_files_are_kept(tmp_path, data_root, manifest, mirror):
    names = sorted(manifest)
    target = tmp_path / "fsdd" / "recordings"
    target.mkdir(parents=True)
    for name in names[:5]:  # a download cut off earlier, or copied by hand
        (target / name).write_bytes((data_root / "fsdd" / "recordings" / name).read_bytes())
    (target / names[5]).write_bytes(b"my own take of this digit")  # an FSDD name, other content
    (target / "7_me_0.wav").write_bytes(b"the user's own recording")
    (target / "notes.txt").write_text("mine")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in target.iterdir()}
    mirror.routes["/fsdd.zip"] = ("whole", archive(data_root, names))
    with pytest.raises(
        DownloadError,
        match=f"except 1 file\\(s\\) there that differ from FSDD's \\({names[5]}\\); they were left as they are",
    ):
        download_fsdd(tmp_path, urls=(mirror.url("/fsdd.zip"),), progress=False, manifest=manifest)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in target.iterdir() if p.name in before} == before
    assert check_fsdd(target, manifest) == ([], [names[5]])  # the 14 missing ones arrived, verified
    assert sorted(os.listdir(target)) == sorted(set(names) | {"7_me_0.wav", "notes.txt"})


def test_check_reports_missing_and_changed_recordings(tmp_path, data_root, manifest, capsys):
    from core.data.__main__ import main

    names = sorted(manifest)
    target = tmp_path / "fsdd" / "recordings"
    target.mkdir(parents=True)
    for name in names[1:]:
        data = (data_root / "fsdd" / "recordings" / name).read_bytes()
        (target / name).write_bytes(data if name != names[2] else data[:100])
    (tmp_path / "mnist").symlink_to(data_root / "mnist")
    assert check_fsdd(target, manifest) == ([names[0]], [names[2]])
    assert main(["check", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"18 of 3000 match commit {FSDD_COMMIT[:12]}" in out and "2981 missing" in out
    assert f"1 different from FSDD's: {names[2]}" in out
    assert hashlib.sha256((target / names[1]).read_bytes()).hexdigest() == manifest[names[1]]
