"""Peak memory of one prediction's preprocessing for small uploads that decode to a lot.

A FLAC of 30 s at 384 kHz over 8 channels (about 100 KB, within the header limits) and a white
10000x10000 PNG, beside the largest that the limits accept (30 s of 96 kHz stereo, a 4096x4096 RGB
PNG), each read in a fresh process through core/features/audio.py and core/features/image.py as they are in the working
tree and, with --against, as they were at a git revision.

    python -m bench.bench_decode_memory --against main
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def flac(rate: int = 384_000, channels: int = 8, tone: bool = False, seconds: int = 30) -> bytes:
    """seconds of silence (or a quiet 200 Hz tone), written a second at a time (never all samples in memory)."""
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    second = np.zeros((rate, channels), np.int16)
    if tone:
        second[:] = (3000 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate))[:, None].astype(np.int16)
    with sf.SoundFile(buf, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds):
            f.write(second)
    return buf.getvalue()


def png(width: int = 10_000, height: int = 10_000, square: bool = False) -> bytes:
    """A white RGB PNG (with a black square in the middle if asked), compressed a row at a time."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    white = b"\0" + b"\xff" * (3 * width)
    inked = (
        b"\0" + b"\xff" * (3 * (width // 3)) + b"\0" * (3 * (width - 2 * (width // 3))) + b"\xff" * (3 * (width // 3))
    )
    pack = zlib.compressobj(9)
    rows = (inked if square and height // 3 <= y < height - height // 3 else white for y in range(height))
    idat = b"".join(pack.compress(row) for row in rows) + pack.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def child(kind: str, path: str, revision: str | None) -> None:
    """Read one file as the app would and print the peak resident memory (MB) it took."""
    import librosa  # noqa: F401
    import numpy as np  # noqa: F401 - the imports are the baseline, not the measurement
    import soundfile  # noqa: F401
    from PIL import Image  # noqa: F401

    from core.errors import InvalidInput

    name = "audio" if kind == "flac" else "image"
    if revision:
        from bench.at_revision import module_at

        module = module_at(f"core/features/{name}.py", revision)
    else:
        module = __import__(f"core.features.{name}", fromlist=[name])

    def read(data: bytes) -> None:
        if name == "audio":
            module.mfcc_features(module.place_in_window(module.trim_speech(module.to_mono_8k(*module.decode(data)))))
        else:
            module.preprocess(module.decode(data))

    # A small file first, so that what librosa and scipy load on first use is not counted.
    read(flac(16_000, 2, tone=True, seconds=1) if name == "audio" else png(300, 300, square=True))
    data = Path(path).read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    try:
        read(data)
        outcome = "read"
    except InvalidInput as exc:
        outcome = f"refused: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak:.0f}\t{peak - before:.0f}\t{time.perf_counter() - start:.2f}\t{outcome}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default=None, help="git revision to measure as well, e.g. main")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "REV"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], None if args.child[2] == "-" else args.child[2])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        files = [
            ("flac", Path(tmp) / "30s_384k_8ch.flac", flac()),
            ("flac", Path(tmp) / "30s_96k_stereo_tone.flac", flac(96_000, 2, tone=True)),
            ("png", Path(tmp) / "white_10000x10000.png", png()),
            ("png", Path(tmp) / "square_4096x4096.png", png(4096, 4096, square=True)),
        ]
        print("| file | size | code | peak RSS | of which reading it | time | outcome |")
        print("|---|---:|---|---:|---:|---:|---|")
        for kind, path, data in files:
            path.write_bytes(data)
            for revision in ([args.against] if args.against else []) + ["-"]:
                out = (
                    subprocess.run(
                        [sys.executable, "-m", "bench.bench_decode_memory", "--child", kind, str(path), revision],
                        cwd=REPO,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    .stdout.strip()
                    .split("\t")
                )
                code = "working tree" if revision == "-" else revision
                print(
                    f"| {path.name} | {path.stat().st_size / 1024:.0f} KB | {code} | {out[0]} MB | {out[1]} MB | "
                    f"{out[2]} s | {out[3][:90]} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
