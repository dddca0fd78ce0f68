"""Recording from this computer's microphone through sounddevice, with a plain reason when that cannot work."""

from __future__ import annotations

import numpy as np

RATE = 16000


def unavailable_reason(local_client: bool) -> str | None:
    """None when recording here can work; otherwise why not (remote visitor, no PortAudio, no input device)."""
    if not local_client:
        return (
            "The app runs on a server, not on your computer: its microphone is not yours. "
            "Use the browser recorder above instead."
        )
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
        return f"sounddevice cannot load PortAudio on this computer ({str(exc)[:120]}); install libportaudio2."
    try:
        devices = sd.query_devices()
    except Exception as exc:
        return f"PortAudio found no audio system ({str(exc)[:120]})."
    if not any(d.get("max_input_channels", 0) > 0 for d in devices):
        return "This computer has no microphone (no audio input device)."
    return None


def record(seconds: float = 1.5, rate: int = RATE) -> tuple[np.ndarray, int]:
    """Block for seconds and return (mono float32 samples, rate) from the default input device."""
    import sounddevice as sd

    samples = sd.rec(int(seconds * rate), samplerate=rate, channels=1, dtype="float32")
    sd.wait()
    return samples[:, 0], rate
