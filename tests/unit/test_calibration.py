"""Temperature scaling, calibration error, the unsure threshold and product-of-experts fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import CheckpointError
from core.model import calibration as C
from core.model.checkpoint import check_calibration, load, save


def _sampled(temperature: float, n: int = 20000, seed: int = 0):
    """Logits and labels drawn from softmax(logits / temperature): calibrated at exactly that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, (n, 10))
    p = C.softmax(logits, temperature)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_the_labels_came_from(true_t):
    logits, labels = _sampled(true_t)
    assert C.fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.06)
    # ... and calibrating lowers the calibration error of an over- or under-confident model.
    if true_t != 1.0:
        raw = C.expected_calibration_error(C.softmax(logits), labels)
        fixed = C.expected_calibration_error(C.softmax(logits, C.fit_temperature(logits, labels)), labels)
        assert fixed < raw / 2


def test_ece_and_reliability_bins_by_hand():
    # Two answers at 0.95 confidence (one right), two at 0.55 (both right): bins 15 and 9 of 15.
    probs = np.full((4, 10), 0.0)
    probs[0, 1] = probs[1, 2] = 0.95
    probs[2, 3] = probs[3, 4] = 0.55
    probs[:2, 0] = 0.05
    probs[2:, 0] = 0.45
    labels = np.array([1, 7, 3, 4])
    bins = C.reliability(probs, labels)
    assert bins["count"][14] == 2 and bins["count"][8] == 2 and sum(bins["count"]) == 4
    assert bins["accuracy"][14] == 0.5 and bins["accuracy"][8] == 1.0
    assert bins["confidence"][0] is None
    assert bins["ece"] == pytest.approx(0.5 * abs(0.5 - 0.95) + 0.5 * abs(1.0 - 0.55))


def test_unsure_threshold_keeps_the_confident_answers_right_often_enough():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.2, 1.0, 5000)
    correct = rng.random(5000) < confidence  # calibrated: right with probability = confidence
    probs = np.zeros((5000, 10))
    probs[:, 0] = confidence
    probs[:, 1] = 1 - confidence
    labels = np.where(correct, 0, 2)
    t = C.unsure_threshold(probs, labels, target=0.9)
    sure = confidence >= t
    assert correct[sure].mean() >= 0.9
    # The threshold is the lowest that meets the target: lowering it a step breaks it.
    below = confidence >= t - 0.05
    assert correct[below].mean() < 0.9


def test_product_of_experts_lets_the_surer_head_win():
    clear_seven = np.eye(10)[7] * 0.98 + 0.002
    unsure_one = np.full(10, 0.04)
    unsure_one[1] = 0.64
    confident_one = np.full(10, 0.001)
    confident_one[1] = 0.991
    assert C.product_of_experts(clear_seven, unsure_one).argmax() == 7
    assert C.product_of_experts(clear_seven, confident_one).argmax() == 1  # a voice surer than the drawing
    assert C.product_of_experts(clear_seven, unsure_one).sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"temperature": {"audio": 0.0}}, "audio temperature"),
        ({"temperature": {"audio": float("nan")}}, "audio temperature"),
        ({"temperature": {"voice": 1.0}}, "fused/image/audio"),
        ({"audio_unsure_below": 1.5}, "probability"),
        ({"fusion": "vote"}, "fusion must be"),
        ([1, 2], "not a dictionary"),
    ],
)
def test_malformed_calibration_is_refused(bad, message):
    with pytest.raises(CheckpointError, match=message):
        check_calibration(bad)


def test_calibration_round_trips_and_the_predictor_applies_it(tiny_weights, tmp_path, wav_path, mnist_test):
    from core.predict import Predictor

    model, ckpt = load(tiny_weights)
    stats = ckpt["feature_stats"]
    path = tmp_path / "calibrated.pt"
    calibration = {
        "temperature": {"image": 2.0, "audio": 3.0, "fused": 1.5},
        "audio_unsure_below": 0.99,
        "fusion": "product",
    }
    save(path, model, ckpt["run_config"], stats["mean"], stats["std"], calibration=calibration)
    plain, calibrated = Predictor.load(tiny_weights), Predictor.load(path)
    assert calibrated.calibration["temperature"] == calibration["temperature"]
    image = (mnist_test[0][0] * 255).astype(np.uint8)
    a = plain.predict(image=image, audio=wav_path.read_bytes())
    b = calibrated.predict(image=image, audio=wav_path.read_bytes())
    # Same logits, so the same argmax per head; the temperature only flattens the probabilities.
    assert a.digits["image"] == b.digits["image"] and a.digits["audio"] == b.digits["audio"]
    for head, t in (("image", 2.0), ("audio", 3.0)):
        expected = torch.tensor(a.probs[head]).log().div(t).softmax(0).numpy()
        assert np.allclose(b.probs[head], expected, atol=1e-5)
    joint = np.asarray(b.probs["image"]) * np.asarray(b.probs["audio"])
    assert np.allclose(b.probs["fused"], joint / joint.sum(), atol=1e-6)
    assert b.audio_unsure == (max(b.probs["audio"]) < 0.99)
    assert b.top("audio")[0][0] == b.digits["audio"]


def test_test_time_warps_average_the_audio_head(tmp_path, wav_path):
    from core import paths
    from core.predict import Predictor

    model, ckpt = load(paths.DEFAULT_WEIGHTS)  # a trained head: its readings move with the warp
    stats = ckpt["feature_stats"]
    readings = {}
    for name, warps in (("identity", [1.0]), ("warped", [0.8, 0.9, 1.0])):
        path = tmp_path / f"{name}.pt"
        # The shipped calibration with only the warps changed: the temperatures stay as they are served.
        calibration = {**ckpt["calibration"], "audio_warps": warps}
        save(path, model, ckpt["run_config"], stats["mean"], stats["std"], calibration=calibration)
        readings[name] = Predictor.load(path).predict(audio=wav_path.read_bytes()).probs["audio"]
    plain = Predictor.load(paths.DEFAULT_WEIGHTS).predict(audio=wav_path.read_bytes()).probs["audio"]
    assert np.allclose(readings["identity"], plain, atol=1e-4)  # one warp of 1: the plain reading
    assert np.abs(np.log(readings["warped"]) - np.log(plain)).max() > 0.05
    assert sum(readings["warped"]) == pytest.approx(1.0)
    with pytest.raises(CheckpointError, match="audio_warps"):
        check_calibration({"audio_warps": [0.1]})


def test_a_finished_run_carries_reliability_bins_to_the_leaderboard(tiny_run, tmp_path):
    import json
    import shutil

    from core.runs.leaderboard import entries

    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "tiny")
    summary = json.loads((tiny_run / "summary.json").read_text())
    for figures in summary["final"].values():
        bins = figures["reliability"]
        assert sum(bins["count"]) == figures["n"] and len(bins["count"]) == C.ECE_BINS
    (entry,) = [e for e in entries(tmp_path / "no-results", runs) if e.run_id == "tiny"]
    assert set(entry.reliability) == set(summary["final"])
    # Bins that do not add up are dropped, never drawn.
    summary["final"]["audio"]["reliability"]["accuracy"][0] = 7.0
    summary["final"]["audio"]["reliability"]["count"][0] = 3
    (runs / "tiny" / "summary.json").write_text(json.dumps(summary))
    (entry,) = [e for e in entries(tmp_path / "no-results", runs) if e.run_id == "tiny"]
    assert "audio" not in entry.reliability and "image" in entry.reliability


def test_calibrate_writes_the_checkpoint_the_app_serves(tiny_weights, tmp_path, data_root, monkeypatch, capsys):
    import json

    from core import calibrate

    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    loso = tmp_path / "loso.json"
    loso.write_text(json.dumps({"recipe": "fused", "calibration": {"temperature": 1.7, "unsure_below": 0.6}}))
    out = tmp_path / "calibrated.pt"
    assert calibrate.main(["--weights", str(tiny_weights), "--loso", str(loso), "--out", str(out)]) == 0
    _, ckpt = load(out)
    cal = ckpt["calibration"]
    assert cal["temperature"]["audio"] == 1.7 and cal["audio_unsure_below"] == 0.6 and cal["fusion"] == "product"
    assert set(cal["temperature"]) == {"fused", "image", "audio"} and 0.01 <= cal["temperature"]["image"] <= 100
    # A LOSO file without calibration, or with nonsense in it, is refused with a message, and nothing is written.
    for bad in ({"recipe": "fused"}, {"calibration": {"temperature": [1]}}, [1, 2]):
        loso.write_text(json.dumps(bad))
        target = tmp_path / "never.pt"
        assert calibrate.main(["--weights", str(tiny_weights), "--loso", str(loso), "--out", str(target)]) == 1
        assert "error:" in capsys.readouterr().err and not target.exists()
