"""Teach it your voice: adapt the audio head to one speaker from a few recordings per digit, in seconds.

A VoiceProfile holds the audio encoder and head fine-tuned for a few steps on the speaker's recordings (with
training clips replayed beside them, so other voices are not forgotten) and the recordings themselves as
templates: at prediction time the adapted head's logits are lowered by the dynamic-time-warping distance to
the speaker's nearest recording of each digit. Why this and not the alternatives: docs/results.md, Your voice.
Profiles are saved and loaded as a plain dict of tensors and validated in core.model.voice_profile."""

from __future__ import annotations

import copy
import hashlib
import weakref
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from core.config import N_CLASSES
from core.errors import DigitsError, InvalidInput
from core.features import audio

FRAME_SHAPE = (audio.N_FRAMES, audio.N_COEFFS)
MAX_CLIPS_PER_DIGIT = 10  # recordings a profile may hold per digit


class InvalidProfile(DigitsError, ValueError):
    """A voice profile that is not one of ours, is unsafe, or does not fit the loaded model."""


@dataclass(frozen=True)
class AdaptConfig:
    """How a profile is made and used (chosen on held-out speakers: docs/results.md, Your voice)."""

    steps: int = 40  # Adam steps fine-tuning the audio encoder and head; 0: templates only
    lr: float = 1e-3
    replay: int = 32  # training clips drawn beside the enrollment at each step
    template_scale: float = 40.0  # logits taken off per unit of DTW distance to a digit's nearest recording
    gated: bool = False  # adapt only recordings that sound like the speaker (see speaker_gate)
    seed: int = 0
    average: float = 0.9  # the profile keeps this running average of the weights over the steps (0: the last step)
    template_norm: str = "cmvn"  # frames of a recording normalised before DTW: see TEMPLATE_NORMS
    fine_tunes: int = 2  # fine-tunes from seeds seed, seed + 1, ...; the profile keeps their weights' mean

    def __post_init__(self):
        if self.fine_tunes < 1:
            raise ValueError(f"fine_tunes must be at least 1, not {self.fine_tunes}")
        if self.template_norm not in TEMPLATE_NORMS:
            raise ValueError(f"template_norm must be one of {', '.join(TEMPLATE_NORMS)}, not {self.template_norm!r}")
        if not 0.0 <= self.average < 1.0:
            raise ValueError(f"average must be in [0, 1), not {self.average}")


# "none": the standardised features as the model reads them; "cmvn": each coefficient of a recording also brought
# to zero mean and unit variance over its frames, so a louder or flatter take of the same word still aligns.
TEMPLATE_NORMS = ("none", "cmvn")


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, so the adapted head can be cached per profile
class VoiceProfile:
    """One speaker: the fine-tuned audio encoder and head, and their recordings as (standardised) templates."""

    state: dict = field(repr=False)  # state_dict of AdaptedAudio; empty when not fine-tuned
    templates: np.ndarray = field(repr=False)  # (M, 39, 13) standardised features
    labels: np.ndarray  # (M,) their digits
    model_id: str  # fingerprint of the model the profile was made with
    config: AdaptConfig = AdaptConfig()
    gate: float = 0.0  # the speaker's typical DTW distance between two different digits (0: no gate)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(int(c) for c in np.bincount(self.labels, minlength=N_CLASSES))

    @property
    def fine_tuned(self) -> bool:
        return bool(self.state)


class AdaptedAudio(torch.nn.Module):
    """The audio encoder and its head as one module: what adaptation fine-tunes."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def audio_head(model) -> torch.nn.Module:
    """The module that turns an audio embedding into the audio head's logits."""
    if "audio" in model.aux:
        return model.aux["audio"]
    if tuple(model.modalities) == ("audio",):
        return model.fusion
    raise InvalidProfile("this model has no audio head to adapt")


def base_audio(model) -> AdaptedAudio:
    """The model's own audio encoder and head (shared, not copied)."""
    return AdaptedAudio(model.encoders["audio"], audio_head(model))


def model_id(model) -> str:
    """A short fingerprint of the weights a profile depends on: the audio encoder and its head."""
    h = hashlib.sha1()
    for name, value in base_audio(model).state_dict().items():
        h.update(name.encode())
        h.update(value.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# --- templates: dynamic time warping between a recording and the speaker's own recordings ---


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def _frames(x: np.ndarray, norm: str) -> np.ndarray:
    """(N, T, C) unit-length frames of standardised features, after the template_norm of AdaptConfig."""
    x = np.asarray(x, np.float32)
    if norm == "cmvn":
        x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-5)
    elif norm != "none":
        raise ValueError(f"template_norm must be one of {', '.join(TEMPLATE_NORMS)}, not {norm!r}")
    return _unit(x)


def dtw_distances(x: np.ndarray, templates: np.ndarray, norm: str = "none") -> np.ndarray:
    """(N, M) DTW cost between (N, T, C) and (M, T, C) feature sequences: cosine frame distance, divided by 2T.

    Batched over all N x M pairs at once (one vector step per cell of the T x T grid); librosa's dtw aligns
    one pair per call, ~100x slower for the benchmark's 5,000 pairs."""
    a, b = _frames(x, norm), _frames(templates, norm)
    cost = 1.0 - np.einsum("nif,mjf->nmij", a, b)  # (N, M, T, T)
    n_t, m_t = cost.shape[2:]
    acc = np.full((*cost.shape[:2], m_t + 1), np.inf)  # one row of the accumulated cost at a time
    acc[..., 0] = np.inf
    prev = np.full_like(acc, np.inf)
    prev[..., 0] = 0.0
    for i in range(n_t):
        acc[..., 0] = np.inf
        for j in range(m_t):
            acc[..., j + 1] = cost[:, :, i, j] + np.minimum(np.minimum(prev[..., j + 1], acc[..., j]), prev[..., j])
        prev, acc = acc, prev
    return prev[..., m_t] / (n_t + m_t)


def template_scores(x: np.ndarray, templates: np.ndarray, labels: np.ndarray, norm: str = "none") -> np.ndarray:
    """(N, 10) DTW distance from each standardised feature sequence to the nearest template of each digit."""
    d = dtw_distances(x, templates, norm)
    return np.stack([d[:, labels == k].min(axis=1) for k in range(N_CLASSES)], axis=1)


def gate_distance(templates: np.ndarray, labels: np.ndarray) -> float:
    """The speaker's own yardstick: the median DTW distance from each recording to the nearest other digit."""
    own = template_scores(templates, templates, labels)
    own[np.arange(len(labels)), labels] = np.inf
    return float(np.median(own.min(axis=1)))


def speaker_gate(scores: np.ndarray, gate: float) -> np.ndarray:
    """(N, 1) weight of the adaptation per recording: 1 when it is nearer to one of the speaker's recordings than
    the speaker's digits are to each other, falling to 0 a little beyond that. Another voice is far from all of
    them, so it keeps the unadapted answer (docs/results.md, Your voice: "others")."""
    if gate <= 0:
        return np.ones((len(scores), 1))
    return np.clip((gate - scores.min(axis=1, keepdims=True)) / (GATE_WIDTH * gate), 0.0, 1.0)


GATE_WIDTH = 0.3  # the gate falls from 1 to 0 over this fraction of the yardstick


# --- adaptation ---


def fine_tune(
    model, x: np.ndarray, y: np.ndarray, replay: tuple[np.ndarray, np.ndarray] | None, config: AdaptConfig, on_step=None
) -> AdaptedAudio:
    """A copy of the model's audio encoder and head fine-tuned config.fine_tunes times from different seeds, their
    weights averaged; on_step(done, total) after each step of each.

    Why several: each fine-tune sees ten recordings and random replayed clips, and its weights carry that noise;
    all start from the same model, so their mean is a model too, better for the speaker and for other voices
    than any one of them (docs/results.md, Your voice)."""
    total = config.steps * config.fine_tunes
    nets = []
    for i in range(config.fine_tunes):
        progress = (lambda done, _, i=i: on_step(i * config.steps + done, total)) if on_step else None
        nets.append(_fine_tune_once(model, x, y, replay, replace(config, seed=config.seed + i), progress))
    return nets[0] if len(nets) == 1 else average_weights(nets)


def average_weights(nets: list[AdaptedAudio]) -> AdaptedAudio:
    """A new module whose floating-point weights are the mean of nets' (all of one architecture)."""
    mean = copy.deepcopy(nets[0])
    states = [n.state_dict() for n in nets]
    with torch.no_grad():
        for name, value in mean.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.stack([s[name] for s in states]).mean(0))
    return mean


def _fine_tune_once(
    model, x: np.ndarray, y: np.ndarray, replay: tuple[np.ndarray, np.ndarray] | None, config: AdaptConfig, on_step
) -> AdaptedAudio:
    """A copy of the model's audio encoder and head after config.steps Adam steps on (x, y) plus replayed clips
    (their running average when config.average > 0)."""
    net = copy.deepcopy(base_audio(model)).float().train()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()  # a batch of ten recordings would overwrite the statistics of the whole training set
    # Why an average: ten recordings and 32 random replayed clips make each step's weights noisy, and the
    # average of the last steps is both better for the speaker and kinder to other voices (docs/results.md).
    averaged = copy.deepcopy(net) if config.average else None
    gen = torch.Generator().manual_seed(config.seed)
    xe, ye = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    xr = yr = None
    if replay is not None and config.replay:
        xr, yr = (
            torch.from_numpy(np.ascontiguousarray(replay[0], np.float32)),
            torch.from_numpy(np.asarray(replay[1], np.int64)),
        )
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    torch.manual_seed(config.seed)  # dropout masks: the same recordings give the same profile
    with torch.enable_grad():
        for step in range(config.steps):
            opt.zero_grad()
            loss = F.cross_entropy(net(xe), ye)
            if xr is not None:
                i = torch.randint(0, len(xr), (config.replay,), generator=gen)
                loss = loss + F.cross_entropy(net(xr[i]), yr[i])
            loss.backward()
            opt.step()
            if averaged is not None:
                with torch.no_grad():
                    for avg, now in zip(averaged.parameters(), net.parameters()):
                        avg.mul_(config.average).add_(now, alpha=1.0 - config.average)
            if on_step:
                on_step(step + 1, config.steps)
    return (averaged if averaged is not None else net).eval()


def adapt(
    predictor_or_model,
    features: np.ndarray,
    labels,
    config: AdaptConfig = AdaptConfig(),
    stats=None,
    replay: tuple[np.ndarray, np.ndarray] | None = None,
    on_step=None,
) -> VoiceProfile:
    """A VoiceProfile from (N, 39, 13) raw features of one speaker and their digits (at least one of each).

    Give a Predictor, or a model with stats=(mean, std, utterance_norm) it was trained with. replay: standardised
    training clips and digits to replay while fine-tuning (core.model.adapt.replay_clips); without it only the
    templates adapt (fine-tuning on ten clips alone makes other voices worse: docs/results.md)."""
    if hasattr(predictor_or_model, "model"):
        p = predictor_or_model
        model, stats = p.model, (p.mean, p.std, p.config.features.utterance_norm)
    else:
        model = predictor_or_model
    if stats is None:
        raise InvalidProfile("adapting a bare model needs the feature statistics it was trained with")
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if features.ndim != 3 or features.shape[1:] != FRAME_SHAPE or len(features) != len(labels):
        raise InvalidProfile(f"need (N, {FRAME_SHAPE[0]}, {FRAME_SHAPE[1]}) features, one per label")
    if ((labels < 0) | (labels >= N_CLASSES)).any():
        raise InvalidProfile("labels must be digits 0-9")
    counts = np.bincount(labels, minlength=N_CLASSES)
    if (counts == 0).any():
        raise InvalidProfile(
            f"every digit needs a recording; missing: {', '.join(str(d) for d in np.flatnonzero(counts == 0))}"
        )
    if counts.max() > MAX_CLIPS_PER_DIGIT:
        raise InvalidProfile(f"at most {MAX_CLIPS_PER_DIGIT} recordings per digit")
    x = audio.standardize(features, *stats)
    state = {}
    if config.steps and replay is not None:
        net = fine_tune(model, x, labels, replay, config, on_step)
        state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return VoiceProfile(state, x, labels, model_id(model), config, gate_distance(x, labels) if config.gated else 0.0)


_adapted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # profile -> its AdaptedAudio, built once


def adapted_audio(profile: VoiceProfile, model) -> AdaptedAudio:
    """The profile's fine-tuned audio encoder and head on model's architecture (the model's own when not fine-tuned)."""
    if not profile.fine_tuned:
        return base_audio(model)
    net = _adapted.get(profile)
    if net is None:
        net = copy.deepcopy(base_audio(model)).float()
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in profile.state.items()})
        _adapted[profile] = net = net.eval()
    return net


@torch.inference_mode()
def adapted_logits(profile: VoiceProfile, model, x: np.ndarray) -> np.ndarray:
    """(N, 10) adapted audio logits of (N, 39, 13) standardised features: the fine-tuned head minus the scaled
    template distances, blended with the unadapted head by speaker_gate when the profile is gated."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    norm = profile.config.template_norm
    scores = template_scores(x, profile.templates, profile.labels, norm)
    logits = adapted_audio(profile, model)(t).float().numpy() - profile.config.template_scale * scores
    if profile.gate <= 0:
        return logits
    # The gate's yardstick (gate_distance) is measured on the features as the model reads them.
    g = speaker_gate(scores if norm == "none" else template_scores(x, profile.templates, profile.labels), profile.gate)
    return g * logits + (1 - g) * base_audio(model)(t).float().numpy()


@torch.inference_mode()
def embed_and_score(model, x: np.ndarray, profile: VoiceProfile | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) audio embeddings and (N, 10) audio-head logits of (N, 39, 13) standardised features, under the
    profile's fine-tuned encoder when given (the logits then leave out the templates)."""
    net = adapted_audio(profile, model) if profile is not None else base_audio(model)
    net.eval()
    emb = net.encoder(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
    return emb.float().numpy(), net.head(emb).float().numpy()


def voice_in_embedding(profile: VoiceProfile, model, test_x: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """2D PCA of the audio embedding, before and after adapting: {"before"|"after": {"test": (N, 2), "yours": (M, 2)}}.

    Each view is fitted on the test clips' embeddings under that encoder, and the profile's recordings are placed in it.
    """
    from sklearn.decomposition import PCA

    out = {}
    for when, prof in (("before", None), ("after", profile)):
        test, _ = embed_and_score(model, test_x, prof)
        yours, _ = embed_and_score(model, profile.templates, prof)
        pca = PCA(n_components=2, random_state=0).fit(test)
        out[when] = {"test": pca.transform(test).astype(np.float32), "yours": pca.transform(yours).astype(np.float32)}
    return out


def replay_clips(root, stats, n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n FSDD clips (takes 10-49, never the official test takes), standardised with stats, and their digits."""
    from core.features.banks import load_fsdd_bank

    bank = load_fsdd_bank(root, 0)
    pool = np.flatnonzero(bank.takes >= 10)
    pick = np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False)
    return audio.standardize(bank.clean[pick], *stats), bank.digits[pick]


# --- enrollment: each recording checked before it may teach the model anything ---

MIN_WORD_S = 0.12  # a spoken digit is longer than this (FSDD's shortest takes are ~0.2 s)
MIN_WORD_DB = 6.0  # the word must stand this far above the rest of the recording
OTHER_DIGIT_P = 0.9  # the unadapted head this sure of another digit ...
OWN_DIGIT_P = 0.05  # ... and this unsure of the one asked for: ask the user to confirm


@dataclass(frozen=True)
class Enrollment:
    """One recording of a digit for adaptation: its features and what the unadapted audio head heard."""

    digit: int
    features: np.ndarray = field(repr=False)  # (39, 13) raw features
    heard: int  # the unadapted audio head's answer
    heard_p: float
    own_p: float  # the unadapted head's probability of the digit asked for
    word_seconds: float

    @property
    def other_digit(self) -> bool:
        """True when the unadapted head is sure this is another digit: the user should confirm it."""
        return self.heard != self.digit and self.heard_p >= OTHER_DIGIT_P and self.own_p <= OWN_DIGIT_P


def enroll(predictor, digit: int, recording) -> Enrollment:
    """Check one recording ((samples, rate) or file bytes) of digit; InvalidInput when it holds no usable word."""
    from core.limits import MAX_UPLOAD_BYTES as MAX_AUDIO_BYTES

    if not isinstance(digit, (int, np.integer)) or not 0 <= digit < N_CLASSES:
        raise InvalidInput(f"digit must be 0-9, not {digit!r}")
    if isinstance(recording, (bytes, bytearray)):
        if len(recording) > MAX_AUDIO_BYTES:
            raise InvalidInput(
                f"The audio file is {len(recording) / 2**20:.0f} MB; the limit is {MAX_AUDIO_BYTES // 2**20} MB."
            )
        recording = audio.decode(bytes(recording))
    samples, rate = recording
    mono = audio.to_mono_8k(np.asarray(samples), rate)  # raises on silence, corrupt or too short files
    word = audio.trim_speech(mono)
    seconds = len(word) / audio.SAMPLE_RATE
    if len(mono) - len(word) >= 0.1 * audio.SAMPLE_RATE:
        # trim_speech returns a stretch of mono, so the rest's energy is the total's minus the word's.
        word_energy = float(np.dot(word.astype(np.float64), word))
        rest_power = max(float(np.dot(mono.astype(np.float64), mono)) - word_energy, 0.0) / (len(mono) - len(word))
        if 10 * np.log10((word_energy / len(word) + 1e-12) / (rest_power + 1e-12)) < MIN_WORD_DB:
            raise InvalidInput(
                "No word stands out from the background noise; move closer to the microphone and say it again."
            )
    if seconds < MIN_WORD_S:
        raise InvalidInput(f'Only {seconds * 1000:.0f} ms of speech were heard; say the whole word "{digit}" again.')
    result = predictor.predict(audio=(mono, audio.SAMPLE_RATE))
    p = result.probs["audio"]
    return Enrollment(
        int(digit), result.features, result.digits["audio"], float(max(p)), float(p[digit]), round(seconds, 3)
    )


def adapt_enrollments(
    predictor, enrollments: list[Enrollment], replay=None, on_step=None, config: AdaptConfig = AdaptConfig()
) -> VoiceProfile:
    """A VoiceProfile from checked recordings, at least one of each digit."""
    return adapt(
        predictor,
        np.stack([e.features for e in enrollments]),
        [e.digit for e in enrollments],
        config,
        replay=replay,
        on_step=on_step,
    )
