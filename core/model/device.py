"""Pick CUDA when present, else the CPU with every core."""

from __future__ import annotations

import os

# torch is imported inside the functions that use it: thread_count() serves modules (t-SNE, the Explore
# page's constants) that should not pay torch's import (~1 s) for it.


def best_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def thread_count() -> int:
    """Every core, unless $DIGITS_THREADS caps it (benchmarks and parallel jobs share the machine)."""
    cap = os.environ.get("DIGITS_THREADS")
    return max(1, int(cap) if cap else os.cpu_count() or 1)


def use_all_cores() -> None:
    import torch

    torch.set_num_threads(thread_count())
