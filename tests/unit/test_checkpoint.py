"""Bad weights files: truncated, another architecture, or a pickle carrying code; refused, nothing executed."""

import io
import pickle

import numpy as np
import pytest
import torch

from core.config import to_dict
from core.errors import CheckpointError
from core.model import checkpoint
from core.model.nets import DigitClassifier
from core.predict import Predictor
from core.trials import TRIALS


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    # Untrained weights are enough: these tests are about the file, not the accuracy.
    config = TRIALS["fused"].config
    path = tmp_path_factory.mktemp("weights") / "good.pt"
    return checkpoint.save(path, DigitClassifier(config.model), config, np.zeros(13), np.ones(13))


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def test_truncated_checkpoints_are_refused(good, tmp_path):
    data = good.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            Predictor.load(path)
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            checkpoint.load(data[:cut])


def test_another_architecture_is_refused(good):
    ckpt = checkpoint.load_dict(good)
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        checkpoint.load(_saved({**ckpt, "config": to_dict(TRIALS["try1"].config)}))
    with pytest.raises(CheckpointError, match="not a digits checkpoint"):
        checkpoint.load(_saved(torch.nn.Linear(13, 10).state_dict()))  # some other project's weights
    with pytest.raises(CheckpointError, match="not a digits checkpoint"):
        checkpoint.load(_saved({**ckpt, "state_dict": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="feature statistics"):
        checkpoint.load(_saved({**ckpt, "feature_stats": {"mean": torch.zeros(20), "std": torch.ones(20)}}))
    config = to_dict(TRIALS["fused"].config)
    config["model"]["image"]["convs"][0]["kernel"] = -3
    with pytest.raises(CheckpointError, match="does not describe a model"):
        checkpoint.load(_saved({**ckpt, "config": config}))
    # A billion channels: refused from the shapes alone, without allocating them.
    config["model"]["image"]["convs"][0].update(kernel=5, channels=10**9)
    with pytest.raises(CheckpointError, match="missing or of another shape"):
        checkpoint.load(_saved({**ckpt, "config": config}))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's note on the pickle protocol
def test_a_pickle_carrying_code_is_refused_and_never_run(good, tmp_path):
    marker = tmp_path / "code-ran"
    ckpt = checkpoint.load_dict(good)
    hostile = {
        "in_a_checkpoint": _saved({**ckpt, "metrics": Payload(marker)}),
        "whole_file": _saved(Payload(marker)),
        "plain_pickle": pickle.dumps(Payload(marker)),  # the legacy, non-zip torch format
    }
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))
    assert (tmp_path / "control").exists(), "the payload must really run when unpickled unsafely"
    for name, data in hostile.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        for source in (data, path):
            with pytest.raises(CheckpointError, match="refused, it is not a plain weights file"):
                checkpoint.load(source)
        with pytest.raises(CheckpointError, match="refused"):
            Predictor.load(path)
        assert not marker.exists(), f"{name}: the payload ran"


def test_a_loaded_predictor_keeps_serving_after_bad_weights(good, mnist_test, tmp_path):
    serving = Predictor.load(good)
    before = serving.predict(image=mnist_test[0][0])
    (tmp_path / "bad.pt").write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError):
        Predictor.load(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no such weights file"):
        Predictor.load(tmp_path / "missing.pt")
    assert serving.predict(image=mnist_test[0][0]).probs == before.probs


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_a_feature_std_that_is_not_positive_is_refused(good, tmp_path, value):
    # Audio features are divided by std: a zero made every audio prediction NaN, shown as "0, nan% sure".
    ckpt = checkpoint.load_dict(good)
    std = torch.ones(13)
    std[3] = value
    bad = _saved({**ckpt, "feature_stats": {"mean": torch.zeros(13), "std": std}})
    with pytest.raises(CheckpointError, match=rf"feature std must be positive; coefficient\(s\) \[3\] are \[{value}\]"):
        checkpoint.load(bad)
    (tmp_path / "bad.pt").write_bytes(bad)
    with pytest.raises(CheckpointError, match="feature std must be positive"):
        Predictor.load(tmp_path / "bad.pt")
