"""The Free Spoken Digit Dataset: file listing, the official split and leave-one-speaker-out splits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataNotFound

NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[a-z]+)_(?P<take>\d+)\.wav$")
OFFICIAL_TEST_TAKES = range(0, 5)
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


@dataclass(frozen=True)
class Clip:
    path: Path
    digit: int
    speaker: str
    take: int


def list_clips(root: Path) -> list[Clip]:
    """Every recording under root/fsdd/recordings, sorted by name so the order is stable."""
    folder = Path(root) / "fsdd" / "recordings"
    if not folder.is_dir():
        raise DataNotFound(
            f"FSDD recordings not found in {folder}; run `python -m core.data download`, "
            "or set DIGITS_DATA_DIR to a folder holding fsdd/recordings/*.wav"
        )
    clips = []
    for path in sorted(folder.glob("*.wav")):
        m = NAME.match(path.name)
        if m:
            clips.append(Clip(path, int(m["digit"]), m["speaker"], int(m["take"])))
    if not clips:
        raise DataNotFound(f"{folder} holds no files named {{digit}}_{{speaker}}_{{take}}.wav")
    return clips
