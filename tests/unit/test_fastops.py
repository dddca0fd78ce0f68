"""The fast training path (fused ReLU/max-pool/dropout kernel, channels-last convs, fused Adam) equals the plain."""

import subprocess
import sys
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from core.model import checkpoint, fastops
from core.model import nets as models
from core.training.loop import _loss, make_optimizer
from core.trials import SEED_TRIALS


def _audio_map(seed: int = 0) -> torch.Tensor:
    """A (4, 96, 507) map with the ties real features have: flat stretches, exact zeros, negatives."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 96, 507, generator=g)
    x[0, :, 100:140] = 0.5
    x[1, :, 200:260] = -0.25
    x[2, :, :30] = 0.0
    x[3, 5, 300:303] = torch.tensor([1.0, 1.0, 0.5])
    return x


def _plain(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    return F.max_pool1d(F.relu(x), 3, 1, 1) * keep * scale


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5])
def test_fused_kernel_equals_relu_max_pool_dropout_with_the_same_mask(p):
    x = _audio_map()
    fused_in, plain_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(7)
    out = fastops.relu_max3_dropout(fused_in, p)
    threshold, scale = fastops.keep_threshold(p)
    torch.manual_seed(7)  # the same draw, read the way the kernel reads it
    keep = ((torch.from_numpy(fastops.random_bits((4 * 96, 507))) & 0x7FFF) >= threshold).reshape(x.shape) if p else 1
    expected = _plain(plain_in, keep, float(scale))
    assert torch.equal(out, expected)
    g = torch.randn_like(x)
    (out * g).sum().backward()
    (expected * g).sum().backward()
    assert torch.allclose(fused_in.grad, plain_in.grad, atol=1e-6)
    assert (fused_in.grad != 0).sum() > 1000  # the gradient reached the inputs, not just zeros


def test_fused_dropout_rate_and_scale_keep_the_expectation():
    x = torch.full((64, 96, 507), 2.0)
    out = fastops.relu_max3_dropout(x, 0.3)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.003
    assert torch.allclose(out[kept], torch.full_like(out[kept], 2.0 / 0.7), rtol=1e-4)
    assert abs(out.mean().item() - 2.0) < 0.01


def test_fused_masks_follow_torch_manual_seed():
    x = torch.rand(8, 96, 507) + 0.1
    torch.manual_seed(3)
    a = fastops.relu_max3_dropout(x, 0.3)
    torch.manual_seed(3)
    b = fastops.relu_max3_dropout(x, 0.3)
    c = fastops.relu_max3_dropout(x, 0.3)
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_fused_kernel_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="float32"):
        fastops.relu_max3_dropout(torch.zeros(2, 3, 10, dtype=torch.float64), 0.3)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        fastops.relu_max3_dropout(torch.zeros(2, 3, 10), 1.0)


def _try10(dropout: float):
    config = SEED_TRIALS["try10"].config
    return replace(config, model=replace(config.model, dropout=dropout))


def test_fast_path_gives_the_plain_gradients_and_update():
    # Dropout 0 makes the step deterministic. Gradients are compared before Adam, whose first step is
    # lr * sign(g) and so turns rounding noise in near-zero gradients into full-size differences.
    config = _try10(0.0)
    img, aud, y = torch.rand(16, 28, 28), torch.randn(16, 39, 13), torch.arange(16) % 10
    grads, after = {}, {}
    for fast in (False, True):
        torch.manual_seed(0)
        model = models.DigitClassifier(config.model, fast_ops=fast).train()
        conv = model.encoders["image"].convs[3].weight  # (64, 32, 3, 3): the layout is unambiguous
        assert conv.is_contiguous(memory_format=torch.channels_last) == fast and conv.is_contiguous() != fast
        _loss(model(image=img, audio=aud), y, None, 0.5).backward()
        grads[fast] = {k: p.grad.clone() for k, p in model.named_parameters()}
        for k, p in model.named_parameters():  # the same gradient into both optimizers, in each weight's layout
            p.grad = torch.empty_like(p).copy_(grads[False][k])
        opt = make_optimizer(model, config.train) if fast else torch.optim.Adam(model.parameters(), lr=config.train.lr)
        opt.step()
        after[fast] = {k: v.clone() for k, v in model.state_dict().items()}
    # Channels-last convolutions sum in another order: float32 rounding, 1e-7 to 1e-5 against gradients
    # up to ~0.5 (the largest on the image fc bias before BatchNorm, whose true gradient is zero). A
    # wrongly routed gradient would differ by the size of the gradient itself (1e-3 to 1e-1 here).
    scale = max(g.abs().max().item() for g in grads[False].values())
    for k, g in grads[False].items():
        assert (g - grads[True][k]).abs().max().item() <= 1e-4 * scale, k
    for k, v in after[False].items():
        assert torch.allclose(v, after[True][k], atol=1e-6), k


def test_fast_path_runs_the_fused_kernel_only_while_training(monkeypatch):
    model = models.DigitClassifier(_try10(0.3).model)
    calls = []
    real = fastops.relu_max3_dropout
    monkeypatch.setattr(fastops, "relu_max3_dropout", lambda x, p: calls.append(p) or real(x, p))
    img, aud = torch.rand(4, 28, 28), torch.randn(4, 39, 13)
    model.train()(image=img, audio=aud)
    assert calls == [0.3]
    with torch.no_grad():
        model.train()(image=img, audio=aud)
    model.eval()(image=img, audio=aud)
    assert calls == [0.3]


def test_checkpoints_load_across_both_paths(tmp_path):
    config = _try10(0.3)
    torch.manual_seed(0)
    fast = models.DigitClassifier(config.model).eval()
    checkpoint.save(tmp_path / "fast.pt", fast, config, torch.zeros(13).numpy(), torch.ones(13).numpy())
    plain, _ = checkpoint.load(tmp_path / "fast.pt", fast_ops=False)
    assert plain.encoders["image"].convs[3].weight.is_contiguous() and not plain.encoders["audio"].body.fast
    assert plain.state_dict().keys() == fast.state_dict().keys()
    img, aud = torch.rand(3, 28, 28), torch.randn(3, 39, 13)
    with torch.no_grad():
        a, b = fast(image=img, audio=aud), plain(image=img, audio=aud)
    assert all(torch.allclose(a[h], b[h], atol=1e-5) for h in a)


def test_building_and_running_a_model_for_inference_does_not_import_numba():
    # The app's Predictor builds models too; numba's import and compile belong to training only.
    code = (
        "import sys, torch; from core.model.nets import DigitClassifier; from core.trials import SEED_TRIALS;"
        "m = DigitClassifier(SEED_TRIALS['try10'].config.model).eval();"
        "m(image=torch.rand(2, 28, 28), audio=torch.randn(2, 39, 13)); print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
