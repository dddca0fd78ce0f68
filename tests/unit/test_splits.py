"""The data a run trains and is tested on (training.dataset.load_run_data): no clip or image leaks between splits."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import FeatureConfig, RunConfig, TrainConfig
from core.data.fsdd import OFFICIAL_TEST_TAKES, SPEAKERS, list_clips
from core.data.mnist import load_mnist
from core.training.dataset import load_run_data


def small(split: str = "official", speaker: str | None = None, utterance_norm: str = "none") -> RunConfig:
    """64 training pairs and clean FSDD features only (cached): loads in a few seconds."""
    return RunConfig(
        features=FeatureConfig(augment_views=0, utterance_norm=utterance_norm),
        train=TrainConfig(limit=64, split=split, held_out_speaker=speaker),
    )


def takes(split) -> set[int]:
    return {int(name.rsplit("_", 1)[1].split(".")[0]) for name in split.clip_names}


def names(split) -> set[str]:
    assert len(set(split.clip_names)) == len(split.clip_names), "a clip appears twice in one split"
    return set(split.clip_names)


def assert_disjoint(data) -> None:
    train, val, test = names(data.train), names(data.val), names(data.test)
    assert not train & val and not train & test and not val & test


@pytest.fixture(scope="module")
def everything(data_root):
    clips = list_clips(data_root)
    return {c.path.name for c in clips}, {c.path.name: c for c in clips}


def test_official_split_is_disjoint_and_tests_on_takes_0_to_4(data_root, everything):
    all_names, by_name = everything
    data = load_run_data(small(), data_root)
    assert_disjoint(data)
    assert names(data.test) == {n for n, c in by_name.items() if c.take in OFFICIAL_TEST_TAKES}
    assert takes(data.test) == set(OFFICIAL_TEST_TAKES)
    assert takes(data.val) and min(takes(data.val)) >= 5 and max(takes(data.val)) < 10
    assert min(takes(data.train)) >= 10
    assert names(data.train) | names(data.val) | names(data.test) == all_names  # no clip is dropped either
    for split in (data.train, data.val, data.test):
        assert [by_name[n].speaker for n in split.clip_names] == list(split.clip_speakers)
        assert [by_name[n].digit for n in split.clip_names] == list(split.clip_labels)


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_loso_holds_one_speaker_out_of_training(data_root, everything, speaker):
    _, by_name = everything
    data = load_run_data(small("loso", speaker), data_root)
    assert_disjoint(data)
    assert speaker not in set(data.train.clip_speakers) | set(data.val.clip_speakers)
    assert set(data.test.clip_speakers) == {speaker}
    assert names(data.test) == {n for n, c in by_name.items() if c.speaker == speaker}  # all 500 of them
    assert len(set(data.train.clip_speakers)) == len(SPEAKERS) - 1


def test_loso_refuses_an_unknown_speaker(data_root):
    with pytest.raises(ValueError, match="held_out_speaker must be one of"):
        load_run_data(small("loso", "nobody"), data_root)


def test_training_images_are_neither_validation_nor_test_images(data_root):
    data = load_run_data(small(), data_root)
    rows = lambda images: {img.tobytes() for img in images}  # noqa: E731 - MNIST holds no exact duplicates
    train, val, test = rows(data.train.images), rows(data.val.images), rows(data.test.images)
    assert len(train) == 64 and not train & val and not train & test and not val & test
    mnist_test, _ = load_mnist(data_root, "test")
    assert np.array_equal(data.test.images, mnist_test)
    for split in (data.train, data.val, data.test):  # the fixed evaluation pairing gives each image a clip of its digit
        assert np.array_equal(split.clip_labels[split.pairing], split.labels)


@pytest.mark.parametrize("utterance_norm", ["none", "mean"])
def test_features_are_standardised_with_training_statistics_only(data_root, utterance_norm):
    from core.features.banks import load_fsdd_bank

    data = load_run_data(small(utterance_norm=utterance_norm), data_root)
    bank = load_fsdd_bank(data_root, 0)
    raw = dict(zip(bank.names, bank.clean))

    def normalised(split):
        x = np.stack([raw[n] for n in split.clip_names]).astype(np.float64)
        return x - x.mean(axis=1, keepdims=True) if utterance_norm == "mean" else x

    frames = normalised(data.train).reshape(-1, 13)
    # float32 sums over ~94,000 frames drift by ~1e-3; the statistics of all clips differ by ~1e-1.
    assert np.allclose(data.feature_mean, frames.mean(0), rtol=1e-3, atol=1e-3)
    assert np.allclose(data.feature_std, frames.std(0) + 1e-5, rtol=1e-3, atol=1e-3)
    for split in (data.train, data.val, data.test):
        expected = (normalised(split) - data.feature_mean) / data.feature_std
        assert np.allclose(split.clips[:, 0], expected, atol=1e-4)
