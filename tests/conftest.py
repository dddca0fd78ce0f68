"""Shared fixtures: the dataset mirror, a tiny trained checkpoint, and sample inputs (helpers: tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO, run_module


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("DIGITS_DATA_DIR", REPO.parent / "shared" / "data")).resolve()
    if not (root / "mnist").is_dir() or not (root / "fsdd" / "recordings").is_dir():
        pytest.fail(f"dataset mirror not found at {root}; set DIGITS_DATA_DIR")
    return root


@pytest.fixture(scope="session")
def mnist_test(data_root):
    from core.data.mnist import load_mnist

    return load_mnist(data_root, "test")


@pytest.fixture(scope="session")
def wav_path(data_root) -> Path:
    return data_root / "fsdd" / "recordings" / "7_jackson_3.wav"


@pytest.fixture(scope="session")
def tiny_run(data_root, tmp_path_factory) -> Path:
    """A one-epoch run of the default recipe on 512 pairs (batch 32: 16 steps): it exercises every file and API."""
    from core.training.loop import build_config, run

    config = build_config("fused", epochs=1, limit=512, seed=0, batch_size=32)
    return run(config, data_root, tmp_path_factory.mktemp("runs"), run_id="tiny", progress=False)


@pytest.fixture(scope="session")
def tiny_weights(tiny_run) -> Path:
    return tiny_run / "final.pt"


@pytest.fixture
def embeddings_cli(tiny_weights, data_root):
    """`python -m core.embeddings --weights <tiny checkpoint> --data-dir <mirror> ARGS...`, its output captured."""
    return lambda *args: run_module("core.embeddings", "--weights", tiny_weights, "--data-dir", data_root, *args)
