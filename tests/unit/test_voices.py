"""espeak-ng voices, trimming that ignores the room, the leave-one-speaker-out plumbing and the voice encoder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from core.features import audio


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_render_two_voices_two_digits(tmp_path):
    from core.features import banks as features
    from core.features import voices

    names = voices.voice_names(2)
    assert len(set(names)) == 2 and all("+" in n for n in names)
    clips = [(voices.render(v, d, 0, tmp_path), d, v) for v in names for d in (1, 7)]
    feats = {}
    for path, digit, voice in clips:
        samples, rate = sf.read(path, dtype="float32")
        assert rate > audio.SAMPLE_RATE and 0.2 < len(samples) / rate < 2.0  # one spoken word
        clean, views = features.clip_features(samples, rate, n_views=2, seed=0, augmentation="voice")
        assert clean.shape == (audio.N_FRAMES, audio.N_COEFFS) and views.shape == (2, audio.N_FRAMES, audio.N_COEFFS)
        assert np.isfinite(views).all()
        feats[voice, digit] = clean
    # Different words by the same voice differ more than nothing at all; renders are cached, not redone.
    assert not np.allclose(feats[names[0], 1], feats[names[0], 7])
    before = clips[0][0].stat().st_mtime_ns
    assert voices.render(names[0], 1, 0, tmp_path).stat().st_mtime_ns == before


def test_missing_espeak_is_a_clear_error(monkeypatch, tmp_path):
    from core.features import voices

    monkeypatch.setattr(voices.shutil, "which", lambda name: None)
    with pytest.raises(voices.EspeakMissing, match="espeak-ng is not installed"):
        voices.render("en-us+m1", 3, 0, tmp_path)


@pytest.mark.parametrize("snr_db", [40.0, 30.0])
def test_trim_is_the_same_on_a_tight_clip_and_one_in_a_noisy_room(wav_path, snr_db):
    samples, rate = sf.read(wav_path, dtype="float32")
    tight = audio.to_mono_8k(samples, rate)
    rng = np.random.default_rng(1)
    second = audio.SAMPLE_RATE
    loudest = np.sqrt(np.max(np.convolve(tight**2, np.ones(400) / 400, mode="valid")))
    noise = rng.normal(0, 1, len(tight) + 2 * second)
    noise *= loudest / noise.std() / 10 ** (snr_db / 20)
    padded = (np.concatenate([np.zeros(second), tight, np.zeros(second)]) + noise).astype(np.float32)
    a = audio.trim_speech(tight)
    b = audio.trim_speech(audio.to_mono_8k(padded, audio.SAMPLE_RATE))
    assert len(b) < len(tight) + 0.1 * second  # the second of room on each side is gone
    assert abs(len(a) - len(b)) < 0.06 * second
    fa, fb = (audio.mfcc_features(audio.place_in_window(x)) for x in (a, b))
    assert np.corrcoef(fa.ravel(), fb.ravel())[0, 1] > 0.9


def test_trim_keeps_a_pause_inside_the_word_and_drops_a_far_click():
    rate = audio.SAMPLE_RATE
    t = np.arange(int(0.2 * rate)) / rate
    syllable = (0.3 * np.sin(2 * np.pi * 200 * t) * np.hanning(len(t))).astype(np.float32)
    rng = np.random.default_rng(0)
    word = np.concatenate([syllable, np.zeros(int(0.08 * rate)), syllable])  # a short stop, as in "six"
    click = np.zeros(int(0.6 * rate), np.float32)
    click[-40:] = 0.2
    signal = np.concatenate([word, click]) + rng.normal(0, 1e-3, len(word) + len(click))
    kept = audio.trim_speech(signal.astype(np.float32))
    assert 0.4 * rate < len(kept) < 0.55 * rate


def test_a_tiny_loso_run_holds_each_speaker_out_and_reports_its_accuracy(data_root, monkeypatch):
    from core.training import loop, loso
    from core.training.loso import loso_audio
    from core.trials import get_trial

    base = get_trial("voice").config
    # A cheap recipe: the voice encoder on clean FSDD features only, two speakers, one epoch each.
    small = base.__class__(
        name="tiny",
        model=base.model,
        train=base.train,
        features=base.features.__class__(utterance_norm="meanvar", augment_views=0),
    )
    runs, real_train = [], loop.train_model

    def train_model(config, data, *args, **kwargs):  # the real training, watched
        model, summary = real_train(config, data, *args, **kwargs)
        runs.append((config, data, summary))
        return model, summary

    monkeypatch.setattr(loso, "train_model", train_model)  # the name loso_audio calls
    result = loso_audio(small, data_root, epochs=1, limit=20, speakers=("theo", "george"), conditions=())
    assert [set(data.test.clip_speakers) for _, data, _ in runs] == [{"theo"}, {"george"}]
    for (config, data, summary), speaker in zip(runs, ("theo", "george")):
        assert speaker not in set(data.train.clip_speakers) | set(data.val.clip_speakers)
        assert (
            set(summary["final"]) == {"audio"} and summary["final"]["audio"]["n"] == 500
        )  # audio alone, all 500 clips
        assert config.train.epochs == 1 and len(data.train.labels) == 20
        assert result["per_speaker"][speaker] == round(summary["final"]["audio"]["accuracy"], 2)
    accuracies = list(result["per_speaker"].values())
    assert result["mean"] == round(sum(accuracies) / 2, 2) and result["min"] == min(accuracies)
    assert result["recipe"] == "tiny" and result["epochs"] == 1


def test_voice_encoder_builds_and_pools_over_time():
    from core.model.nets import DigitClassifier, count_parameters
    from core.trials import OUR_TRIALS, SEED_TRIALS

    assert {f"try{i}" for i in range(1, 14)} <= set(SEED_TRIALS)
    voice = OUR_TRIALS["voice"].config
    model = DigitClassifier(voice.model).eval()
    assert count_parameters(model) < 500_000  # the seed's audio encoder alone has over six million
    # Pooled over time: the same word two frames earlier or later (in a silent window) gives the same output.
    torch.manual_seed(0)
    word = torch.randn(1, 15, audio.N_COEFFS)
    silence = torch.zeros(1, audio.N_FRAMES, audio.N_COEFFS)
    placed = [silence.clone() for _ in range(3)]
    for x, start in zip(placed, (10, 12, 14)):
        x[:, start : start + 15] = word
    with torch.no_grad():
        out = [model(audio=x)["audio"] for x in placed]
        assert torch.allclose(out[0], out[1], atol=1e-5) and torch.allclose(out[1], out[2], atol=1e-5)
        seed_encoder = DigitClassifier(SEED_TRIALS["try10"].config.model).eval().encoders["audio"]
        assert not torch.allclose(seed_encoder(placed[0]), seed_encoder(placed[1]), atol=1e-3)  # the seed's flattens
    fused = DigitClassifier(OUR_TRIALS["fused"].config.model)
    assert fused.modalities == ("image", "audio") and fused.cfg.audio == voice.model.audio
