"""Every trial builds and trains a step; a tiny run writes its files; checkpoints round-trip safely."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from core.config import RunConfig, from_dict, to_dict
from core.errors import CheckpointError
from core.model import checkpoint
from core.model.nets import DigitClassifier
from core.trials import SEED_TRIALS, TRIALS


@pytest.mark.parametrize("name", list(TRIALS))
def test_every_trial_runs_forward_and_backward(name):
    config = TRIALS[name].config
    assert from_dict(RunConfig, json.loads(json.dumps(to_dict(config)))) == config
    model = DigitClassifier(config.model)
    out = model(image=torch.rand(4, 28, 28), audio=torch.randn(4, 39, 13))
    assert out["fused"].shape == (4, 10)
    sum(v.sum() for v in out.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_seed_trials_carry_the_scores_docs_results_quotes():
    from core import paths

    text = (paths.REPO_ROOT / "docs" / "results.md").read_text()
    table = {}
    for line in text.splitlines():
        if line.startswith("| try"):  # the first table with these rows: the reproduction, seed columns first
            cells = [c.strip() for c in line.strip("|").split("|")]
            table.setdefault(cells[0], cells[1:3])
    assert list(table) == list(SEED_TRIALS) == [f"try{i}" for i in range(1, 14)]
    quoted = lambda cell: None if cell == "-" else float(cell)  # noqa: E731
    for name, trial in SEED_TRIALS.items():
        assert (trial.reported_f1_best, trial.reported_f1_final) == tuple(map(quoted, table[name])), name


def test_encoders_embed_in_inference_mode():
    model = DigitClassifier(TRIALS["fused"].config.model).train()
    x = torch.rand(8, 28, 28)
    a, b = model.encoders["image"].embed(x), model.encoders["image"].embed(x)
    assert torch.equal(a, b) and a.shape == (8, 64)
    assert model.training, "embed() must restore the training flag"
    emb = model.embeddings(image=x, audio=torch.randn(8, 39, 13))
    assert emb["fused"].shape == (8, 128)


def test_tiny_run_writes_every_file(tiny_run):
    for name in ("config.json", "metrics.jsonl", "best.pt", "final.pt", "summary.json", "status.json"):
        assert (tiny_run / name).is_file(), name
    assert json.loads((tiny_run / "status.json").read_text())["state"] == "finished"
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert (
        set(summary["final"]) == set(summary["best"]) == {"fused", "image", "audio"}
    )  # test_learning checks the scores
    assert summary["final"]["audio"]["n"] == 300 and summary["final"]["fused"]["n"] == 10000
    # Twice chance after 16 steps on 512 pairs: the pipeline learns. (It lands near 30 %, and the exact
    # figure moves with the random stream, so the bar is set where a broken pipeline cannot reach.)
    assert summary["final"]["fused"]["accuracy"] > 20


def test_same_seed_same_numbers(data_root, tmp_path):
    from core.training.dataset import load_run_data
    from core.training.loop import build_config, fit

    config = build_config("fused", epochs=1, limit=128, seed=3)
    data = load_run_data(config, data_root)
    a, b = fit(config, data), fit(config, data)
    assert a["final"] == b["final"]


def test_checkpoint_round_trip_and_float16(tiny_weights, tmp_path):
    model, ckpt = checkpoint.load(tiny_weights)
    half = checkpoint.save(
        tmp_path / "half.pt",
        model,
        ckpt["run_config"],
        ckpt["feature_stats"]["mean"].numpy(),
        ckpt["feature_stats"]["std"].numpy(),
        half=True,
    )
    assert half.stat().st_size < 0.6 * tiny_weights.stat().st_size
    model16, _ = checkpoint.load(half)
    x, a = torch.rand(16, 28, 28), torch.randn(16, 39, 13)
    assert torch.equal(model(image=x, audio=a)["fused"].argmax(1), model16(image=x, audio=a)["fused"].argmax(1))


def test_bad_checkpoints_are_refused(tiny_weights, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load(truncated)

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "state_dict": {}, "config": {}, "feature_stats": Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        checkpoint.load(evil)

    model, ckpt = checkpoint.load(tiny_weights)
    other = dict(ckpt["config"], model=to_dict(TRIALS["try1"].config.model))
    foreign = tmp_path / "foreign.pt"
    torch.save({**{k: ckpt[k] for k in checkpoint.REQUIRED_KEYS}, "config": other}, foreign)
    with pytest.raises(CheckpointError, match="architecture"):
        checkpoint.load(foreign)
    with pytest.raises(CheckpointError, match="no such"):
        checkpoint.load(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "module", ["core.train", "core.evaluate", "core.embeddings", "core.calibrate", "core.runs", "core.data"]
)
def test_cli_help(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True)
    assert "usage" in out.stdout


def test_evaluate_cli_json(tiny_weights):
    out = subprocess.run(
        [sys.executable, "-m", "core.evaluate", "--weights", str(tiny_weights), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    summary = json.loads((tiny_weights.parent / "summary.json").read_text())
    for head in ("fused", "image", "audio"):
        assert result["heads"][head]["accuracy"] == pytest.approx(summary["final"][head]["accuracy"])
    assert np.array(result["heads"]["fused"]["confusion"]).sum() == 10000


def test_cosine_schedule_decays_from_the_base_rate():
    from dataclasses import replace

    from core.config import TrainConfig
    from core.training.loop import epoch_lr

    t = TrainConfig(epochs=6, lr=1e-3, lr_schedule="cosine")
    rates = [epoch_lr(t, e) for e in range(1, 7)]
    assert rates[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] > 0
    assert {epoch_lr(replace(t, lr_schedule="constant"), e) for e in range(1, 7)} == {1e-3}
    with pytest.raises(ValueError, match="lr_schedule"):
        epoch_lr(replace(t, lr_schedule="step"), 1)


class _Batches(list):
    """Fixed batches with the generator train_one_epoch draws mixup weights from."""

    def __init__(self, batches, seed):
        super().__init__(batches)
        self.rng = np.random.default_rng(seed)


@pytest.mark.parametrize("modalities", [("audio",), ("image", "audio")])
def test_mixup_blends_each_clip_with_another_and_teaches_each_head_what_it_saw(modalities):
    from dataclasses import replace

    import torch.nn.functional as F

    from core.training.loop import train_one_epoch

    config = TRIALS["fused"].config
    model = DigitClassifier(replace(config.model, modalities=modalities, dropout=0.0))
    torch.manual_seed(0)
    img, aud, y = torch.rand(8, 28, 28), torch.randn(8, 39, 13), torch.arange(8) % 10
    seen = []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs), with_kwargs=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay: the loss is checked against them
    image = img if "image" in modalities else None
    loss = train_one_epoch(model, _Batches([(image, aud, y)], seed=5), opt, None, 0.5, "cpu", mixup=0.4)

    rng = np.random.default_rng(5)  # the same draws, in the same order
    lam, perm = float(rng.beta(0.4, 0.4)), torch.from_numpy(rng.permutation(8))
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(8))
    torch.testing.assert_close(seen[0]["audio"], lam * aud + (1 - lam) * aud[perm])
    assert seen[0]["image"] is image, "drawings are never blended"
    with torch.no_grad():
        out = model(image=image, audio=seen[0]["audio"])

    def taught(logits, share):  # cross-entropy against share of y and the rest of the other example's label
        return share * F.cross_entropy(logits, y) + (1 - share) * F.cross_entropy(logits, y[perm])

    if image is None:  # one head, read twice: as "fused" (weight 1) and as "audio" (weight 0.5)
        expected = 1.5 * taught(out["audio"], lam)
    else:
        expected = taught(out["fused"], (1 + lam) / 2) + 0.5 * taught(out["audio"], lam) + 0.5 * taught(out["image"], 1)
    assert loss == pytest.approx(float(expected), rel=1e-5)

    seen.clear()
    train_one_epoch(model, _Batches([(image, aud, y)], seed=5), opt, None, 0.5, "cpu")
    assert torch.equal(seen[0]["audio"], aud), "without mixup the batch goes in as it is"
