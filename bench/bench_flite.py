"""The audio head on a speech engine it never trained on: flite's four voices saying each digit at three rates.

Evaluation only (other engines never make training data). Needs Debian's flite: `apt-get install flite`.
    python bench/bench_flite.py --weights weights/default.pt [--weights other.pt ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from core.features.voices import WORDS
from core.model.calibration import expected_calibration_error
from core.predict import Predictor

VOICES = ("slt", "kal16", "awb", "rms")  # slt is a woman, the others men
RATES = (0.8, 1.0, 1.25)  # flite's duration_stretch: faster, as is, slower


def render(folder: Path) -> list[tuple[Path, str, int]]:
    """(wav, voice, digit) for every voice, digit and rate."""
    flite = shutil.which("flite")
    if not flite:
        sys.exit("flite is not installed: apt-get install flite")
    out = []
    for voice in VOICES:
        for digit, word in enumerate(WORDS):
            for rate in RATES:
                path = folder / f"{digit}_{voice}_{rate}.wav"
                subprocess.run(
                    [flite, "-voice", voice, "--setf", f"duration_stretch={rate}", "-t", word, "-o", str(path)],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
                out.append((path, voice, digit))
    return out


def score(weights: str, clips: list[tuple[Path, str, int]]) -> dict:
    predictor = Predictor.load(weights)
    right, wrong_confidence, unsure, probs, labels = defaultdict(list), [], 0, [], []
    for path, voice, digit in clips:
        samples, rate = sf.read(path, dtype="float32")
        result = predictor.predict(audio=(samples, rate))
        ok = result.digits["audio"] == digit
        right[voice].append(ok)
        if not ok:
            wrong_confidence.append(max(result.probs["audio"]))
        unsure += result.audio_unsure
        probs.append(result.probs["audio"])
        labels.append(digit)
    return {
        "all": 100 * np.mean([v for vs in right.values() for v in vs]),
        **{v: 100 * np.mean(right[v]) for v in VOICES},
        "wrong_conf": float(np.median(wrong_confidence)) if wrong_confidence else float("nan"),
        "unsure": unsure,
        "ece": 100 * expected_calibration_error(np.asarray(probs), np.asarray(labels)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", action="append", required=True, help="checkpoint to score (repeatable)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clips = render(Path(tmp))
        print(f"{len(clips)} clips: {len(VOICES)} voices x 10 digits x {len(RATES)} rates")
        print(f"| weights | all | {' | '.join(VOICES)} | wrong answers' median confidence | unsure | ECE % |")
        for weights in args.weights:
            r = score(weights, clips)
            cells = " | ".join(f"{r[v]:.1f}" for v in VOICES)
            print(f"| {weights} | {r['all']:.1f} | {cells} | {r['wrong_conf']:.2f} | {r['unsure']} | {r['ece']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
