"""Count FSDD clips whose training features change between core/features/audio.py at a revision and the work tree.

The clean audio features (to_mono_8k -> trim_speech -> place_in_window -> mfcc_features) feed the
feature cache and the models trained on it, so a change to decoding or trimming must leave ordinary
clips bit for bit the same. Each clip is compared as recorded and padded with a second of quiet room
noise on each side (no clicks).

    python -m bench.trim_unchanged --against main
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import soundfile as sf

from bench.at_revision import module_at
from core import paths
from core.features import audio


def clean_path(module, samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    speech = module.trim_speech(module.to_mono_8k(samples, rate))
    return speech, module.mfcc_features(module.place_in_window(speech))


def in_a_room(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    """The clip with a second of room noise (40 dB below its loudest 50 ms) before and after it."""
    rng = np.random.default_rng(seed)
    loudest = np.sqrt(np.max(np.convolve(samples.astype(np.float64) ** 2, np.ones(400) / 400, mode="valid")))
    noise = rng.normal(0, loudest / 100, len(samples) + 2 * rate)
    return (np.concatenate([np.zeros(rate), samples, np.zeros(rate)]) + noise).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="main", help="git revision holding the reference core/features/audio.py")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    args = parser.parse_args(argv)
    old = module_at("core/features/audio.py", args.against)
    clips = sorted((paths.data_dir(args.data_dir) / "fsdd" / "recordings").glob("*.wav"))[: args.limit]
    changed = {"as recorded": [], "in a quiet room": []}
    for i, path in enumerate(clips):
        samples, rate = sf.read(path, dtype="float32")
        for case, x in (("as recorded", samples), ("in a quiet room", in_a_room(samples, rate, i))):
            (a_speech, a_feats), (b_speech, b_feats) = clean_path(old, x, rate), clean_path(audio, x, rate)
            if not (np.array_equal(a_speech, b_speech) and np.array_equal(a_feats, b_feats)):
                changed[case].append(path.name)
    print(f"{len(clips)} FSDD clips, features of {args.against} vs the working tree, compared bit for bit")
    for case, names in changed.items():
        print(f"  {case:16s} changed: {len(names)}" + (f"  ({', '.join(names[:10])})" if names else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
