"""Latency of one Predictor.predict with a drawing and a recording, preprocessing included: p50 and p95."""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np

from core import paths
from core.data.mnist import load_mnist
from core.predict import Predictor


def canvas_from(digit28: np.ndarray) -> np.ndarray:
    """A 280x280 RGBA canvas: white strokes on transparent black (the pad sends opaque black; both read alike)."""
    big = np.kron(digit28, np.ones((10, 10), np.float32))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = (big[..., None] * 255).astype(np.uint8)
    rgba[..., 3] = (big > 0.05) * 255
    return rgba


def microphone_like(wav: Path, rate: int = 48_000, seconds: float = 2.0) -> tuple[np.ndarray, int]:
    """An FSDD clip as a browser would record it: 48 kHz, in 2 s of quiet room noise."""
    import librosa
    import soundfile as sf

    samples, sr = sf.read(wav, dtype="float32")
    up = librosa.resample(samples, orig_sr=sr, target_sr=rate)
    out = np.random.default_rng(0).normal(0, 2e-3, int(rate * seconds)).astype(np.float32)
    start = int(0.5 * rate)
    out[start : start + len(up)] += up[: len(out) - start]
    return out, rate


def percentiles(fn, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS))
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    p.add_argument("--quick", action="store_true", help="20 calls")
    args = p.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    n = 20 if args.quick else args.calls
    root = paths.data_dir()
    predictor = Predictor.load(args.weights)
    images, labels = load_mnist(root, "test")
    wav = root / "fsdd" / "recordings" / f"{labels[0]}_jackson_0.wav"
    canvas, mic = canvas_from(images[0]), microphone_like(wav)
    wav_bytes = wav.read_bytes()
    png = io.BytesIO()
    from PIL import Image

    Image.fromarray(canvas).save(png, format="PNG")
    cases = {
        "canvas RGBA + 48 kHz 2 s recording": dict(image=canvas, audio=mic),
        "PNG bytes + 8 kHz WAV bytes (upload)": dict(image=png.getvalue(), audio=wav_bytes),
    }
    for inputs in cases.values():
        predictor.predict(**inputs)  # warm-up: lazy imports, first allocations
    print(
        f"{n} calls each, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; "
        f"weights {args.weights}; digit {labels[0]}"
    )
    for name, inputs in cases.items():
        p50, p95 = percentiles(lambda: predictor.predict(**inputs), n)
        print(f"{name:>38}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
