"""Teach it your voice (core.model.adapt): adapting helps an unheard speaker; profiles round-trip, bad ones refused."""

from __future__ import annotations

import io
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.errors import InvalidInput
from core.features import audio
from core.model.adapt import (
    AdaptConfig,
    InvalidProfile,
    adapt,
    adapted_logits,
    base_audio,
    dtw_distances,
    enroll,
    fine_tune,
)
from core.model.voice_profile import MAX_PROFILE_BYTES, load_profile, profile_bytes, profile_to_dict

HELD_OUT = "jackson"


@pytest.fixture(scope="module")
def held_out_fold(data_root, tmp_path_factory):
    """A small audio model trained on five FSDD speakers (2 epochs, clean clips only), saved as a checkpoint;
    with the held-out speaker's raw features and digits, and replayable training clips."""
    from core.model.checkpoint import save
    from core.training.dataset import load_run_data
    from core.training.loop import build_config, train_model
    from core.training.loso import loso_config

    base = build_config("fused")
    config = loso_config(
        replace(base, features=replace(base.features, augment_views=0, synthetic_voices=False, raised_voices=0)),
        HELD_OUT,
        epochs=2,
    )
    data = load_run_data(config, data_root)
    model, _ = train_model(config, data)
    path = save(tmp_path_factory.mktemp("fold") / "fold.pt", model, config, data.feature_mean, data.feature_std)
    from core.features.banks import load_fsdd_bank

    bank = load_fsdd_bank(data_root, 0)
    held = bank.speakers == HELD_OUT
    replay = (data.train.clips[:, 0], data.train.clip_labels)
    return path, bank.clean[held], bank.digits[held], replay


@pytest.fixture(scope="module")
def predictor(held_out_fold):
    from core.predict import Predictor

    return Predictor.load(held_out_fold[0])


def _stats(p):
    return p.mean, p.std, p.config.features.utterance_norm


def _one_per_digit(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(labels == d)) for d in range(10)])


@pytest.fixture(scope="module")
def profile(predictor, held_out_fold):
    _, raw, digits, replay = held_out_fold
    enrol = _one_per_digit(digits)
    return adapt(predictor, raw[enrol], digits[enrol], replay=replay), enrol


def test_adaptation_improves_a_held_out_speaker(predictor, held_out_fold, profile):
    _, raw, digits, _ = held_out_fold
    prof, enrol = profile
    rest = np.setdiff1d(np.arange(len(digits)), enrol)
    x = audio.standardize(raw[rest], *_stats(predictor))
    with torch.inference_mode():
        before = predictor.model(audio=torch.from_numpy(x))["audio"].numpy().argmax(1)
    after = adapted_logits(prof, predictor.model, x).argmax(1)
    unadapted, adapted = (before == digits[rest]).mean(), (after == digits[rest]).mean()
    assert adapted > unadapted, (unadapted, adapted)
    assert prof.fine_tuned and prof.counts == (1,) * 10


def test_predict_carries_the_adapted_and_the_unadapted_answer(predictor, held_out_fold, profile):
    _, raw, digits, _ = held_out_fold
    prof, enrol = profile
    import soundfile as sf

    from core.data.fsdd import list_clips
    from core.paths import data_dir

    clip = next(c for c in list_clips(data_dir()) if c.speaker == HELD_OUT and c.digit == 4 and c.take == 40)
    recording = sf.read(str(clip.path), dtype="float32")
    plain = predictor.predict(audio=recording)
    adapted = predictor.predict(audio=recording, profile=prof)
    assert not plain.adapted and adapted.adapted
    assert adapted.unadapted["audio"] == plain.probs["audio"]  # the unadapted answer is the shipped model's
    x = audio.standardize(adapted.features[None], *_stats(predictor))
    assert adapted.digits["audio"] == int(adapted_logits(prof, predictor.model, x).argmax())


def test_a_profile_round_trips_through_download_and_upload(predictor, held_out_fold, profile):
    _, raw, _, _ = held_out_fold
    prof, _ = profile
    data = profile_bytes(prof)
    assert len(data) < MAX_PROFILE_BYTES
    back = load_profile(data, predictor.model)
    assert (
        back.labels.tolist() == prof.labels.tolist() and back.model_id == prof.model_id and back.config == prof.config
    )
    assert back.gate == prof.gate
    _same_answers(back, prof, predictor, raw)


def test_a_profile_saved_before_the_average_the_template_norm_and_the_fine_tunes_mean_still_loads(
    predictor, held_out_fold
):
    _, raw, digits, replay = held_out_fold
    enrol = _one_per_digit(digits, seed=1)
    old_settings = AdaptConfig(
        steps=2, average=0.0, template_norm="none", template_scale=80.0, gated=True, fine_tunes=1
    )
    prof = adapt(predictor, raw[enrol], digits[enrol], old_settings, replay=replay)
    old = profile_to_dict(prof)
    old["config"] = {k: v for k, v in old["config"].items() if k not in ("average", "template_norm", "fine_tunes")}
    back = load_profile(_saved(old), predictor.model)
    assert back.config == old_settings and back.gate == prof.gate > 0
    _same_answers(back, prof, predictor, raw)


def _same_answers(back, prof, predictor, raw) -> None:
    """Weights travel as float16: the same answers, logits equal to float16 precision."""
    x = audio.standardize(raw[:40], *_stats(predictor))
    np.testing.assert_allclose(
        adapted_logits(back, predictor.model, x), adapted_logits(prof, predictor.model, x), atol=0.05
    )


def test_the_profile_keeps_a_running_average_of_the_fine_tuned_weights(predictor, held_out_fold):
    _, raw, digits, replay = held_out_fold
    enrol = _one_per_digit(digits, seed=2)
    x = audio.standardize(raw[enrol], *_stats(predictor))
    last = fine_tune(predictor.model, x, digits[enrol], replay, AdaptConfig(steps=1, average=0.0))
    averaged = fine_tune(predictor.model, x, digits[enrol], replay, AdaptConfig(steps=1, average=0.9))
    before = base_audio(predictor.model).state_dict()
    moved = 0
    for name, p in averaged.named_parameters():
        step = last.state_dict()[name] - before[name]
        # After one step the average has moved a tenth of the way from the model's weights to the step's.
        torch.testing.assert_close(p.detach() - before[name], 0.1 * step, atol=1e-6, rtol=1e-4)
        moved += int(step.abs().max() > 0)
    assert moved > 0


def test_the_profile_keeps_the_mean_of_its_fine_tunes(predictor, held_out_fold):
    _, raw, digits, replay = held_out_fold
    enrol = _one_per_digit(digits, seed=3)
    x = audio.standardize(raw[enrol], *_stats(predictor))
    one = AdaptConfig(steps=2, fine_tunes=1)
    steps = []
    mean = fine_tune(predictor.model, x, digits[enrol], replay, replace(one, fine_tunes=2), lambda *a: steps.append(a))
    first, second = (fine_tune(predictor.model, x, digits[enrol], replay, replace(one, seed=s)) for s in (0, 1))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)], "progress runs over both fine-tunes"
    differ = 0
    for name, p in mean.state_dict().items():
        a, b = first.state_dict()[name], second.state_dict()[name]
        if p.is_floating_point():
            torch.testing.assert_close(p, (a + b) / 2, atol=1e-6, rtol=1e-5)
            differ += int(not torch.equal(a, b))
    assert differ > 0, "two seeds must give two different fine-tunes"


def test_normalised_templates_ignore_a_recordings_level_and_spread(held_out_fold, predictor):
    _, raw, digits, _ = held_out_fold
    x = audio.standardize(raw[:12], *_stats(predictor))
    templates, query = x[:10], x[10:]
    louder = query * 1.7 + 0.4  # every coefficient scaled and offset, as a louder, brighter take might be
    np.testing.assert_allclose(
        dtw_distances(louder, templates, "cmvn"), dtw_distances(query, templates, "cmvn"), atol=1e-4
    )
    assert not np.allclose(dtw_distances(louder, templates, "none"), dtw_distances(query, templates, "none"), atol=1e-3)
    with pytest.raises(ValueError, match="template_norm"):
        AdaptConfig(template_norm="loud")


def _saved(d: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(d, buf)
    return buf.getvalue()


class _Payload:
    def __reduce__(self):
        return (print, ("this ran on load",))


def test_bad_profiles_are_refused(predictor, profile):
    prof, _ = profile
    good = profile_to_dict(prof)
    state = dict(good["state"])
    name = next(k for k, v in state.items() if v.dim() == 2)
    state[name] = torch.zeros(3, 3)
    bad = {
        "wrong weight shape": {**good, "state": state},
        "missing weight": {**good, "state": dict(list(good["state"].items())[1:])},
        "wrong template shape": {**good, "templates": torch.zeros(10, 20, 13)},
        "a digit without a recording": {**good, "labels": torch.zeros(10, dtype=torch.int64)},
        "non-finite template": {**good, "templates": good["templates"].clone().fill_(float("nan"))},
        "another model": {**good, "model_id": "0123456789abcdef"},
        "settings out of range": {**good, "config": {**good["config"], "template_scale": 1e9}},
        "an unknown template norm": {**good, "config": {**good["config"], "template_norm": "loud"}},
        "an average of 1": {**good, "config": {**good["config"], "average": 1.0}},
        "no fine-tune": {**good, "config": {**good["config"], "fine_tunes": 0}},
        "gate out of range": {**good, "gate": -1.0},
        "not a profile": {"state_dict": {}},
    }
    for why, d in bad.items():
        with pytest.raises(InvalidProfile):
            load_profile(_saved(d), predictor.model)
            pytest.fail(why)
    with pytest.raises(InvalidProfile, match="at most"):
        load_profile(b"\0" * (MAX_PROFILE_BYTES + 1), predictor.model)
    with pytest.raises(InvalidProfile, match="carry code"):
        load_profile(_saved({**good, "config": _Payload()}), predictor.model)
    with pytest.raises(InvalidProfile, match="carry code"):
        load_profile(pickle.dumps(_Payload()), predictor.model)
    with pytest.raises(InvalidProfile):
        load_profile(profile_bytes(prof)[:500], predictor.model)  # truncated


def test_a_profile_of_another_model_is_not_applied(profile, tiny_weights):
    from core.predict import Predictor

    other = Predictor.load(tiny_weights)
    with pytest.raises(InvalidProfile, match="another model"):
        other.predict(audio=(np.zeros(8000, np.float32) + 0.1 * np.sin(np.arange(8000)), 8000), profile=profile[0])


def test_enrollment_needs_every_digit(predictor, held_out_fold):
    _, raw, digits, _ = held_out_fold
    keep = np.array([np.flatnonzero(digits == d)[0] for d in range(10) if d != 7])
    with pytest.raises(InvalidProfile, match="missing: 7"):
        adapt(predictor, raw[keep], digits[keep], AdaptConfig(steps=0))


def test_enrollment_refuses_silence_noise_and_a_cut_word(predictor):
    from tests.helpers import speech_like

    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInput, match="silent"):
        enroll(predictor, 3, (np.zeros(16000, np.float32), 16000))
    with pytest.raises(InvalidInput, match="stands out"):
        enroll(predictor, 3, ((0.05 * rng.normal(size=16000)).astype(np.float32), 16000))
    blip = np.zeros(16000, np.float32)
    blip[8000:8480] = speech_like(0.06, 8000)  # 60 ms: no digit is that short
    with pytest.raises(InvalidInput, match="ms of speech"):
        enroll(predictor, 3, (blip, 8000))


def test_enrollment_asks_to_confirm_a_clearly_other_digit(data_root):
    """Shipped model: a clip it reads confidently, enrolled as another digit, is flagged; as itself, it is not."""
    import soundfile as sf

    from core.predict import Predictor

    shipped = Predictor.load()
    recording = sf.read(str(data_root / "fsdd" / "recordings" / "7_theo_2.wav"), dtype="float32")
    heard = shipped.predict(audio=recording)
    assert heard.digits["audio"] == 7 and max(heard.probs["audio"]) > 0.9  # precondition: the model is sure
    assert enroll(shipped, 3, recording).other_digit
    right = enroll(shipped, 7, recording)
    assert not right.other_digit and right.heard == 7


def test_your_recordings_in_the_embedding_before_and_after(predictor, held_out_fold, profile):
    from core.model.adapt import voice_in_embedding

    _, raw, _, _ = held_out_fold
    prof, _ = profile
    views = voice_in_embedding(prof, predictor.model, audio.standardize(raw[:60], *_stats(predictor)))
    for when in ("before", "after"):
        assert views[when]["test"].shape == (60, 2) and views[when]["yours"].shape == (10, 2)
    assert not np.allclose(views["before"]["yours"], views["after"]["yours"])  # the fine-tuned encoder moved them
