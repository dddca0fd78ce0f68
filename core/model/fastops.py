"""One fused CPU training kernel: ReLU, a stride-1 max over 3 and dropout in a single pass (numba)."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

# Why: on the seed's (B, 96, 507) audio map torch runs these as many passes over the whole map (max_pool1d's
# indexed kernel and bernoulli_ are the slowest); one pass each way does the same math faster (docs/results.md, Speed).


@njit(cache=True, boundscheck=False)
def _forward(x, bits, threshold, scale, out, code):
    rows, n = x.shape
    for r in range(rows):
        for t in range(n):
            # The first maximum of the window takes the gradient, as max_pool1d's argmax does.
            best, off = x[r, t - 1] if t > 0 else -np.inf, 0
            if x[r, t] > best:
                best, off = x[r, t], 1
            if t + 1 < n and x[r, t + 1] > best:
                best, off = x[r, t + 1], 2
            # max(relu(.)) == relu(max(.)), and a zero output has a zero gradient either way.
            if best > 0 and (bits[r, t] & 0x7FFF) >= threshold:
                out[r, t], code[r, t] = best * scale, off
            else:
                out[r, t], code[r, t] = 0.0, -1


@njit(cache=True, boundscheck=False)
def _backward(g, code, scale, grad):
    rows, n = g.shape
    for r in range(rows):
        for t in range(n):
            acc = g[r, t] if code[r, t] == 1 else 0.0
            if t + 1 < n and code[r, t + 1] == 0:
                acc += g[r, t + 1]
            if t > 0 and code[r, t - 1] == 2:
                acc += g[r, t - 1]
            grad[r, t] = acc * scale


def keep_threshold(p: float) -> tuple[int, np.float32]:
    """(threshold, scale): keep where 15 random bits >= threshold, scaled so the expectation is unchanged.

    The drop rate is p rounded to a multiple of 1/32768 (0.29999 for 0.3)."""
    threshold = round(p * 32768)
    if not 0 <= threshold < 32768:
        raise ValueError(f"dropout probability must be in [0, 1), not {p}")
    return threshold, np.float32(32768 / (32768 - threshold))


def random_bits(shape: tuple[int, int]) -> np.ndarray:
    """An int16 array whose low 15 bits are uniform, drawn by torch's generator (so torch.manual_seed
    governs the masks). random_() on int64 costs a quarter of uniform_() per element; it draws 63 bits,
    so the top 16-bit lane of each word has 15 random bits, and every lane is read as 15."""
    n = shape[0] * shape[1]
    words = torch.empty(-(-n // 4), dtype=torch.int64).random_()
    return words.numpy().view(np.int16)[:n].reshape(shape)  # 2-D: numba vectorises [r, t], not [r * n + t]


class _ReluMax3Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        rows = x.detach().contiguous().reshape(-1, x.shape[-1])
        threshold, scale = keep_threshold(p)
        out, code = torch.empty_like(rows), torch.empty(rows.shape, dtype=torch.int8)
        bits = random_bits(rows.shape) if threshold else np.zeros(rows.shape, np.int16)
        _forward(rows.numpy(), bits, threshold, scale, out.numpy(), code.numpy())
        ctx.save_for_backward(code)
        ctx.scale, ctx.in_shape = scale, x.shape
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (code,) = ctx.saved_tensors
        grad = torch.empty(code.shape, dtype=g.dtype)
        _backward(g.contiguous().reshape(code.shape).numpy(), code.numpy(), ctx.scale, grad.numpy())
        return grad.reshape(ctx.in_shape), None


def relu_max3_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """dropout(max_pool1d(relu(x), 3, 1, 1), p) on a CPU float32 (..., T) tensor, with its gradient."""
    if x.dtype != torch.float32 or x.device.type != "cpu":
        raise ValueError(f"the fused kernel takes CPU float32 tensors, not {x.dtype} on {x.device}")
    return _ReluMax3Dropout.apply(x, float(p))
