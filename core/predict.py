"""The prediction API the app and other programs call: Predictor.load() then predict(image=, audio=)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core import limits, paths
from core.errors import InvalidInput
from core.features import audio as audio_features
from core.features import image as image_features
from core.model.checkpoint import feature_stats, load

AudioInput = "tuple[np.ndarray, int] | bytes"
MAX_AUDIO_BYTES = MAX_IMAGE_BYTES = limits.MAX_UPLOAD_BYTES


@dataclass
class Prediction:
    digit: int
    confidence: float
    probs: dict[str, list[float]]  # per head: "fused", "image", "audio" (those the inputs allow)
    head: str  # the head that gave digit: fused when both modalities are given
    image: np.ndarray | None = None  # the 28x28 the model saw
    waveform: np.ndarray | None = None  # the 1 s, 8 kHz window the features came from
    features: np.ndarray | None = None  # (39, 13) MFCC + log energy before standardisation
    digits: dict[str, int] = field(default_factory=dict)  # argmax per head
    unsure_below: float = 0.0  # the audio head is unsure below this (calibrated) confidence
    unadapted: dict[str, list[float]] = field(default_factory=dict)  # with a voice profile: heads it changed, before

    @property
    def adapted(self) -> bool:
        """True when a voice profile changed the audio head's reading."""
        return bool(self.unadapted)

    def unadapted_top(self, head: str = "audio") -> tuple[int, float]:
        """What the head would have said without the voice profile, and how sure."""
        p = self.unadapted[head]
        return int(np.argmax(p)), float(max(p))

    @property
    def audio_unsure(self) -> bool:
        """True when the audio head's confidence is under the threshold chosen on held-out speakers."""
        return "audio" in self.probs and max(self.probs["audio"]) < self.unsure_below

    def top(self, head: str, k: int = 2) -> list[tuple[int, float]]:
        """The k most likely digits of a head, with their probabilities."""
        p = self.probs[head]
        return [(int(d), float(p[d])) for d in np.argsort(p)[::-1][:k]]

    @property
    def disagreement(self) -> bool:
        """True when the image and audio heads name different digits."""
        return "image" in self.digits and "audio" in self.digits and self.digits["image"] != self.digits["audio"]


def prepare_image(image) -> np.ndarray:
    """Canvas array, picture bytes or PIL image -> the 28x28 MNIST-style array."""
    if isinstance(image, (bytes, bytearray)):
        if len(image) > MAX_IMAGE_BYTES:
            raise InvalidInput(
                f"The picture is {len(image) / 2**20:.0f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB."
            )
        image = image_features.decode(bytes(image))
    elif hasattr(image, "convert"):  # a PIL image
        image = np.asarray(image.convert("RGBA"))
    return image_features.preprocess(np.asarray(image))


def prepare_audio(audio) -> tuple[np.ndarray, np.ndarray]:
    """(samples, rate) or audio file bytes -> (1 s window at 8 kHz, (39, 13) features)."""
    if isinstance(audio, (bytes, bytearray)):
        if len(audio) > MAX_AUDIO_BYTES:
            raise InvalidInput(
                f"The audio file is {len(audio) / 2**20:.0f} MB; the limit is {MAX_AUDIO_BYTES // 2**20} MB."
            )
        samples, rate = audio_features.decode(bytes(audio))
    elif isinstance(audio, tuple) and len(audio) == 2:
        samples, rate = audio
    else:
        raise InvalidInput("Audio must be (samples, sample_rate) or the bytes of an audio file.")
    window = audio_features.serving_window(np.asarray(samples), rate)
    return window, audio_features.mfcc_features(window)


class Predictor:
    """A loaded checkpoint with its feature statistics; thread-safe for concurrent predict() calls."""

    def __init__(self, model, checkpoint: dict, device: torch.device | str = "cpu", source: str = ""):
        self.model = model.eval()
        self.checkpoint = checkpoint
        self.config = checkpoint["run_config"]
        self.mean, self.std = feature_stats(checkpoint)
        self.device = torch.device(device)
        self.source = source
        self.calibration = checkpoint.get("calibration") or {}

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | None = None) -> Predictor:
        path = Path(path) if path else paths.DEFAULT_WEIGHTS
        model, ckpt = load(path, device or "cpu")
        return cls(model, ckpt, device or "cpu", str(path))

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.model.modalities

    def audio_tensor(self, features: np.ndarray) -> torch.Tensor:
        x = audio_features.standardize(features, self.mean, self.std, self.config.features.utterance_norm)
        return torch.from_numpy(x).reshape(1, audio_features.N_FRAMES, audio_features.N_COEFFS).to(self.device)

    def _warp_averaged(self, window: np.ndarray) -> torch.Tensor:
        """The audio head's reading averaged over the checkpoint's test-time warps, as log-probabilities."""
        views = audio_features.warped_features(window, tuple(self.calibration["audio_warps"]))
        x = audio_features.standardize(views, self.mean, self.std, self.config.features.utterance_norm)
        probs = self.model(audio=torch.from_numpy(x).to(self.device))["audio"].float().softmax(-1)
        return probs.mean(0, keepdim=True).log()

    @property
    def model_id(self) -> str:
        """Fingerprint of the audio side a voice profile must have been made with (core.model.adapt)."""
        if not hasattr(self, "_model_id"):
            from core.model.adapt import model_id

            self._model_id = model_id(self.model)
        return self._model_id

    def predict(self, image=None, audio=None, profile=None) -> Prediction:
        """Digit, confidence and per-head probabilities for an image, a recording, or both.

        profile (a core.model.adapt.VoiceProfile) adapts the audio head to its speaker; the Prediction then also
        carries the unadapted probabilities of the heads it changed."""
        if profile is not None and audio is not None and profile.model_id != self.model_id:
            from core.model.adapt import InvalidProfile

            raise InvalidProfile("this voice profile was made with another model; teach the current model your voice")
        if image is None and audio is None:
            raise InvalidInput("Give a drawing, a recording, or both.")
        for name, given in (("image", image), ("audio", audio)):
            if given is not None and name not in self.modalities:
                raise InvalidInput(
                    f"This model was trained on {' and '.join(self.modalities)} only; it cannot read {name}."
                )
        img28 = prepare_image(image) if image is not None else None
        window, feats = prepare_audio(audio) if audio is not None else (None, None)
        img_t = torch.from_numpy(img28).reshape(1, 28, 28).to(self.device) if img28 is not None else None
        aud_t = self.audio_tensor(feats) if feats is not None else None
        with torch.inference_mode(), _one_thread():
            # One pass gives every head: with both inputs the model returns the per-modality heads
            # beside the fused one, so the page can show where image and audio disagree.
            logits = self.model(image=img_t, audio=aud_t)
            if aud_t is not None and self.calibration.get("audio_warps"):
                logits["audio"] = self._warp_averaged(window)
            adapted = self._adapted_audio(aud_t, profile) if profile is not None and aud_t is not None else None
        probs = self._probs(logits)
        unadapted = {}
        if adapted is not None:
            before, probs = probs, self._probs({**logits, "audio": adapted})
            unadapted = {h: before[h] for h in ("audio", "fused") if h in before and before[h] != probs[h]}
            unadapted.setdefault("audio", before["audio"])
        head = "fused" if "fused" in probs and img_t is not None and aud_t is not None else next(iter(probs))
        if head == "fused" and len(self.modalities) == 1:
            head = self.modalities[0]
        digits = {h: int(np.argmax(p)) for h, p in probs.items()}
        return Prediction(
            digit=digits[head],
            confidence=float(max(probs[head])),
            probs=probs,
            head=head,
            image=img28,
            waveform=window,
            features=feats,
            digits=digits,
            unsure_below=self.calibration.get("audio_unsure_below", 0.0),
            unadapted=unadapted,
        )

    def _adapted_audio(self, aud_t: torch.Tensor, profile) -> torch.Tensor:
        """The audio head's logits adapted to the profile's speaker (core.model.adapt.adapted_logits)."""
        from core.model.adapt import adapted_logits

        return torch.from_numpy(adapted_logits(profile, self.model, aud_t.float().cpu().numpy()))

    def _probs(self, logits: dict[str, torch.Tensor]) -> dict[str, list[float]]:
        """Calibrated probabilities per head; fused is the image x audio product when the checkpoint says so."""
        temps = self.calibration.get("temperature", {})
        probs = {h: _softmax(v / temps.get(h, 1.0)) for h, v in logits.items()}
        if self.calibration.get("fusion") == "product" and "fused" in probs and len(self.modalities) == 2:
            # The calibrated heads' product: a clear drawing is not overridden by a voice the model is unsure of.
            joint = np.asarray(probs["image"]) * np.asarray(probs["audio"])
            probs["fused"] = [float(v) for v in joint / joint.sum()]
        return probs


class _OneThread:
    """A batch of one is too small to split across cores; on a busy 2-core machine a second thread
    waiting for its turn made predict() several times slower (docs/results.md, Speed).

    torch's intra-op thread count is not simply per process: a thread keeps the value it first used, and a thread
    that has not used torch yet (every new Streamlit script thread) takes the value last set by any thread
    (measured with torch 2.13, docs/results.md, Structure). So concurrent predictions share one setting: the
    first caller in saves it and the last one out restores it; each restoring its own reading could leave
    1 for good."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callers = 0
        self._saved = 1

    @contextmanager
    def __call__(self):
        with self._lock:
            if self._callers == 0:
                self._saved = torch.get_num_threads()
                torch.set_num_threads(1)
            self._callers += 1
        try:
            yield
        finally:
            with self._lock:
                self._callers -= 1
                if self._callers == 0:
                    torch.set_num_threads(self._saved)


_one_thread = _OneThread()


def _softmax(logits: torch.Tensor) -> list[float]:
    z = logits.float().reshape(-1)
    # Heads that already end in softmax (the seed's try3-6) are probabilities; normalise them as they are.
    p = z / z.sum() if (z >= 0).all() and abs(float(z.sum()) - 1) < 1e-3 else z.softmax(-1)
    return [float(v) for v in p.cpu()]
