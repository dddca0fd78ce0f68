"""The fast training path (shift max-pool, uniform-mask dropout, fused Adam) computes what the plain one does."""
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from core import models
from core.train import _loss, make_optimizer
from core.trials import SEED_TRIALS


@pytest.fixture
def plain_ops():
    yield lambda flag: setattr(models, "FAST_OPS", flag)
    models.FAST_OPS = True


def test_shift_max_pool_matches_max_pool_forward_and_backward():
    x = torch.relu(torch.randn(4, 96, 507, dtype=torch.float64)).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    g = torch.randn(4, 96, 507, dtype=torch.float64)
    (models.ShiftMaxPool1d(3, 1, 1)(x) * g).sum().backward()
    (torch.nn.MaxPool1d(3, 1, 1)(x2) * g).sum().backward()
    assert torch.equal(models.ShiftMaxPool1d(3, 1, 1)(x), torch.nn.MaxPool1d(3, 1, 1)(x2))
    assert torch.allclose(x.grad, x2.grad, atol=1e-12)


def test_fast_dropout_keeps_the_distribution():
    drop = models.FastDropout(0.3).train()
    out = drop(torch.ones(200_000))
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.7))
    assert torch.equal(drop.eval()(torch.ones(10)), torch.ones(10))


def test_fast_path_gives_the_plain_gradients_and_update(plain_ops):
    # Dropout 0 makes the step deterministic. Gradients are compared before Adam, whose first step is
    # lr * sign(g) and so turns rounding noise in near-zero gradients into full-size differences.
    config = SEED_TRIALS["try10"].config
    config = replace(config, model=replace(config.model, dropout=0.0))
    img, aud, y = torch.rand(16, 28, 28), torch.randn(16, 39, 13), torch.arange(16) % 10
    grads, after = {}, {}
    for fast in (False, True):
        plain_ops(fast)
        torch.manual_seed(0)
        model = models.DigitClassifier(config.model).train()
        assert any(isinstance(m, models.ShiftMaxPool1d) for m in model.modules()) == fast
        _loss(model(image=img, audio=aud), y, None, 0.5).backward()
        grads[fast] = {k: p.grad.clone() for k, p in model.named_parameters()}
        for k, p in model.named_parameters():  # the same gradient into both optimizers
            p.grad = grads[False][k].clone()
        opt = make_optimizer(model, config.train) if fast else torch.optim.Adam(model.parameters(), lr=config.train.lr)
        opt.step()
        after[fast] = {k: v.clone() for k, v in model.state_dict().items()}
    for k, g in grads[False].items():
        assert torch.allclose(g, grads[True][k], rtol=1e-4, atol=1e-6), k
    for k, v in after[False].items():
        assert torch.allclose(v, after[True][k], atol=1e-6), k
