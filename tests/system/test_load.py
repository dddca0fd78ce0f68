"""Eight sessions predicting at once through one shared Predictor, as st.cache_resource shares it."""

import threading
import time

import numpy as np
import pytest

from core import paths
from core.predict import Predictor

SESSIONS, PREDICTIONS = 8, 20


@pytest.fixture(scope="module")
def predictor(request):
    path = paths.DEFAULT_WEIGHTS if paths.DEFAULT_WEIGHTS.is_file() else request.getfixturevalue("tiny_weights")
    return Predictor.load(path)


@pytest.fixture(scope="module")
def inputs(mnist_test, data_root):
    """Twenty (drawing, recording) pairs, the recordings as uploaded file bytes."""
    images, labels = mnist_test
    clips = sorted((data_root / "fsdd" / "recordings").glob("*.wav"))[::150][:PREDICTIONS]
    return [(images[i], clip.read_bytes()) for i, clip in enumerate(clips)]


def _outcome(result):
    return result.head, result.digits, result.probs


def test_eight_concurrent_sessions_match_one_session(predictor, inputs, capsys):
    sequential = [_outcome(predictor.predict(image=img, audio=wav)) for img, wav in inputs]
    results, errors, latencies = {}, [], []
    start = threading.Barrier(SESSIONS)

    def session(k: int) -> None:
        order = np.random.default_rng(k).permutation(len(inputs))  # each session asks in its own order
        start.wait()
        for i in order:
            t = time.perf_counter()
            try:
                results[k, int(i)] = _outcome(predictor.predict(image=inputs[i][0], audio=inputs[i][1]))
            except Exception as exc:
                errors.append(f"session {k}, input {i}: {type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(SESSIONS)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    assert errors == []
    assert len(results) == SESSIONS * PREDICTIONS
    for (k, i), outcome in results.items():
        head, digits, probs = outcome
        assert (head, digits) == sequential[i][:2], f"session {k}, input {i}"
        for name, p in probs.items():
            np.testing.assert_allclose(p, sequential[i][2][name], atol=1e-6, err_msg=f"session {k}, input {i}")
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    with capsys.disabled():
        print(
            f"\n[load] {SESSIONS} sessions x {PREDICTIONS} predictions (image + uploaded WAV): "
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, {len(latencies) / wall:.1f} predictions/s"
        )
