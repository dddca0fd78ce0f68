"""Leave-one-speaker-out: train a recipe's audio encoder on five FSDD speakers, test on the sixth, as
recorded and under voice and room conditions it never heard, with calibration fitted across speakers."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.config import RunConfig
from core.data.fsdd import SPEAKERS
from core.data.pairing import LOSO_PAIRING_SEED, balanced_pairing
from core.features import audio
from core.features.conditions import CLEAN, CONDITIONS, condition_bank
from core.model.calibration import (
    expected_calibration_error,
    fit_temperature,
    product_of_experts,
    reliability,
    softmax,
    unsure_threshold,
)
from core.model.device import use_all_cores
from core.training.dataset import load_run_data
from core.training.evaluate import standardised_audio_logits
from core.training.loop import train_model


def loso_config(config: RunConfig, speaker: str, epochs: int | None = None, limit: int | None = None) -> RunConfig:
    """The audio-only variant of config, with speaker held out.

    limit caps the MNIST images loaded (an audio-only run never trains on them), so small is cheap."""
    train = replace(
        config.train, split="loso", held_out_speaker=speaker, epochs=epochs or config.train.epochs, limit=limit or 10
    )
    return replace(
        config, name=f"{config.name}-loso-{speaker}", model=replace(config.model, modalities=("audio",)), train=train
    )


def audio_logits(model, features: np.ndarray, mean: np.ndarray, std: np.ndarray, utterance_norm: str) -> np.ndarray:
    """(N, 10) audio-head logits for (N, 39, 13) raw features, standardised as the model was trained."""
    return standardised_audio_logits(model, audio.standardize(features, mean, std, utterance_norm))


def _summary(per_speaker: dict[str, float]) -> dict:
    worst = min(per_speaker, key=per_speaker.get)
    return {
        "per_speaker": per_speaker,
        "mean": round(float(np.mean(list(per_speaker.values()))), 2),
        "min": per_speaker[worst],
        "worst_speaker": worst,
    }


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return round(100.0 * float((logits.argmax(1) == labels).mean()), 2)


TTA = "tta:"  # prefix of the keys holding test-time-warped results


def loso_fold(
    config: RunConfig,
    root: Path,
    speaker: str,
    epochs: int | None = None,
    limit: int | None = None,
    conditions: tuple[str, ...] = (),
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train config's audio recipe without speaker; (logits, labels) of that speaker's clips, as recorded
    ("clean") and under each condition; with conditions, also "tta:<condition>": the logits of the same
    clips read at every test-time warp and averaged (see audio.TTA_WARPS)."""
    use_all_cores()  # honours $DIGITS_THREADS
    cfg = loso_config(config, speaker, epochs, limit)
    data = load_run_data(cfg, root)
    model, _ = train_model(cfg, data)
    stats = (data.feature_mean, data.feature_std, cfg.features.utterance_norm)
    out = {"clean": (standardised_audio_logits(model, data.test.clips[:, 0]), data.test.clip_labels)}
    for c in (CLEAN, *conditions) if conditions else ():
        bank = condition_bank(root, c)
        held = bank.subset(bank.speakers == speaker)
        if c != CLEAN:
            out[c] = (audio_logits(model, held.clean, *stats), held.digits)
        out[TTA + c] = (warp_averaged_logits(model, held.views, *stats), held.digits)
    return out


def warp_averaged_logits(model, views: np.ndarray, mean, std, utterance_norm: str) -> np.ndarray:
    """(N, 10) log of the mean probability over the W warped views (N, W, 39, 13) of each clip."""
    n, w = views.shape[:2]
    logits = audio_logits(model, views.reshape(n * w, *views.shape[2:]), mean, std, utterance_norm).reshape(n, w, -1)
    return np.log(softmax(logits).mean(axis=1))


def loso_audio(
    config: RunConfig,
    root: Path,
    epochs: int | None = None,
    limit: int | None = None,
    speakers: tuple[str, ...] = SPEAKERS,
    on_speaker: Callable[[str, float], None] | None = None,
    conditions: tuple[str, ...] | None = None,
    image_probs: tuple[np.ndarray, np.ndarray] | None = None,
    jobs: int = 1,
) -> dict:
    """Audio accuracy (%) per held-out speaker, their mean and worst, under each condition; calibration.

    Each speaker's temperature is fitted on the other held-out speakers' logits (cross-fitted, so no
    speaker calibrates itself); the pooled temperature over all of them is the one a model of this
    recipe should ship with. image_probs (calibrated image-head probabilities and labels of test images)
    adds how a product-of-experts fusion resolves image/audio disagreements on held-out voices.
    jobs > 1 trains that many held-out speakers at once, in separate processes."""
    from concurrent.futures import ProcessPoolExecutor

    conditions = CONDITIONS if conditions is None else tuple(conditions)
    started = time.perf_counter()
    for c in (CLEAN, *conditions) if conditions else ():
        condition_bank(root, c)  # built once here, not by every worker
    args = (epochs, limit, conditions)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            futures = {s: pool.submit(loso_fold, config, root, s, *args) for s in speakers}
            done = ((s, f.result()) for s, f in futures.items())
            logits = _collect(done, on_speaker, len(speakers))
    else:
        logits = _collect(((s, loso_fold(config, root, s, *args)) for s in speakers), on_speaker, len(speakers))
    return loso_report(config, logits, epochs, image_probs, time.perf_counter() - started)


def _collect(folds, on_speaker, total: int) -> dict:
    logits = {}
    with tqdm(folds, total=total, desc="held-out speakers", unit="speaker", disable=None, file=sys.stderr) as bar:
        for speaker, fold in bar:
            logits[speaker] = fold
            bar.set_postfix_str(f"{speaker} {_accuracy(*fold['clean']):.1f}%")
            if on_speaker:
                on_speaker(speaker, _accuracy(*fold["clean"]))
    return logits


def loso_report(config: RunConfig, logits: dict, epochs: int | None, image_probs=None, seconds: float = 0.0) -> dict:
    """Accuracy per speaker and condition, calibration and fusion figures from each fold's logits; the same
    for the test-time-warped reading under "tta" when the folds hold it."""
    result = {
        "recipe": config.name,
        "epochs": epochs or config.train.epochs,
        **_family({s: {k: v for k, v in f.items() if not k.startswith(TTA)} for s, f in logits.items()}, image_probs),
    }
    if any(k.startswith(TTA) for k in next(iter(logits.values()))):
        tta = {s: {k[len(TTA) :]: v for k, v in f.items() if k.startswith(TTA)} for s, f in logits.items()}
        result["tta"] = _family(tta, image_probs)
    result["seconds"] = round(seconds, 1)
    return result


def _family(logits: dict, image_probs) -> dict:
    conditions = [c for c in next(iter(logits.values())) if c != "clean"]
    result = {
        **_summary({s: _accuracy(*v["clean"]) for s, v in logits.items()}),
        "conditions": {c: _summary({s: _accuracy(*v[c]) for s, v in logits.items()}) for c in conditions},
    }
    result["calibration"] = _calibration(logits, ["clean", *conditions]) if len(logits) > 1 else None
    if image_probs is not None and result["calibration"]:
        result["fusion"] = _fusion(
            logits, result["calibration"]["cross_fitted_temperatures"], image_probs, ["clean", *conditions]
        )
    return result


def _calibration(logits: dict, conditions: list[str]) -> dict:
    """Cross-fitted temperatures, ECE (%) before and after, per condition; pooled temperature and threshold."""
    speakers = list(logits)
    temps = {
        s: fit_temperature(
            np.concatenate([logits[o]["clean"][0] for o in speakers if o != s]),
            np.concatenate([logits[o]["clean"][1] for o in speakers if o != s]),
        )
        for s in speakers
    }
    ece = {}
    for c in conditions:
        raw = np.concatenate([softmax(logits[s][c][0]) for s in speakers])
        cal = np.concatenate([softmax(logits[s][c][0], temps[s]) for s in speakers])
        labels = np.concatenate([logits[s][c][1] for s in speakers])
        ece[c] = {
            "raw": round(100 * expected_calibration_error(raw, labels), 2),
            "calibrated": round(100 * expected_calibration_error(cal, labels), 2),
        }
    clean_cal = np.concatenate([softmax(logits[s]["clean"][0], temps[s]) for s in speakers])
    clean_labels = np.concatenate([logits[s]["clean"][1] for s in speakers])
    pooled = fit_temperature(np.concatenate([logits[s]["clean"][0] for s in speakers]), clean_labels)
    bins = reliability(clean_cal, clean_labels)
    bins.pop("ece")
    return {
        "temperature": round(pooled, 4),
        "cross_fitted_temperatures": {s: round(t, 4) for s, t in temps.items()},
        "ece": ece,
        "unsure_below": round(unsure_threshold(clean_cal, clean_labels), 4),
        "reliability": bins,
    }


def _fusion(
    logits: dict, temps: dict[str, float], image_probs: tuple[np.ndarray, np.ndarray], conditions: list[str]
) -> dict:
    """Where image and audio disagree on held-out voices, how often the product of experts picks the right one."""
    p_img_all, img_labels = image_probs
    out = {}
    for c in conditions:
        follows_right = disagreements = correct = total = 0
        for s, by_condition in logits.items():
            lg, labels = by_condition[c]
            pairing = balanced_pairing(
                labels, img_labels, seed=LOSO_PAIRING_SEED
            )  # one test image of the same digit per clip
            p_aud, p_img = softmax(lg, temps[s]), p_img_all[pairing]
            fused = product_of_experts(p_img, p_aud).argmax(1)
            a, i = p_aud.argmax(1), p_img.argmax(1)
            split = a != i
            disagreements += int(split.sum())
            follows_right += int((fused[split] == labels[split]).sum())
            correct += int((fused == labels).sum())
            total += len(labels)
        out[c] = {
            "pairs": total,
            "fused_accuracy": round(100 * correct / max(1, total), 2),
            "disagreements": disagreements,
            "fused_follows_right": round(100 * follows_right / max(1, disagreements), 2) if disagreements else None,
        }
    return out
