"""The Predictor API: both modalities, one alone, file bytes, and inputs it must refuse."""

import numpy as np
import pytest
import soundfile as sf

from core import paths
from core.errors import InvalidInput
from core.predict import Predictor


@pytest.fixture(scope="module")
def predictor(request):
    # The weights the app serves; a tiny trained run where they are not built yet.
    path = paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")
    return Predictor.load(path)


def test_predict_both_modalities(predictor, mnist_test, wav_path):
    images, labels = mnist_test
    samples, rate = sf.read(wav_path, dtype="float32")
    r = predictor.predict(image=images[0], audio=(samples, rate))
    assert r.head == "fused" and set(r.probs) == {"fused", "image", "audio"}
    assert 0 <= r.digit <= 9 and r.digit == int(np.argmax(r.probs["fused"]))
    assert r.confidence == pytest.approx(max(r.probs["fused"]))
    for p in r.probs.values():
        assert len(p) == 10 and sum(p) == pytest.approx(1, abs=1e-4)
    assert r.image.shape == (28, 28) and r.features.shape == (39, 13) and r.waveform.shape == (8000,)
    assert r.disagreement == (r.digits["image"] != r.digits["audio"])


def test_single_modalities_and_bytes(predictor, mnist_test, wav_path):
    images, _ = mnist_test
    r = predictor.predict(image=images[1])
    assert r.head == "image" and set(r.probs) == {"image"}
    from_bytes = predictor.predict(audio=wav_path.read_bytes())
    samples, rate = sf.read(wav_path, dtype="float32")
    from_array = predictor.predict(audio=(samples, rate))
    assert from_bytes.head == "audio" and np.allclose(from_bytes.probs["audio"], from_array.probs["audio"], atol=1e-5)


def test_bad_inputs_raise_invalid_input(predictor):
    with pytest.raises(InvalidInput, match="drawing"):
        predictor.predict()
    with pytest.raises(InvalidInput, match="blank"):
        predictor.predict(image=np.zeros((300, 300, 4), np.uint8))
    with pytest.raises(InvalidInput):
        predictor.predict(audio=b"RIFF\x00\x00")
    with pytest.raises(InvalidInput, match="Audio must be"):
        predictor.predict(audio=[1, 2, 3])
    assert issubclass(InvalidInput, ValueError)


def test_overlapping_predictions_restore_the_thread_count():
    # Two calls overlapping as A enters, B enters, A leaves, B leaves: each restoring what it read on the
    # way in would leave the process on one thread after both are done.
    import torch

    from core.predict import _one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a, b = _one_thread(), _one_thread()
        a.__enter__()
        b.__enter__()
        assert torch.get_num_threads() == 1
        a.__exit__(None, None, None)
        assert torch.get_num_threads() == 1  # B is still predicting
        b.__exit__(None, None, None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
