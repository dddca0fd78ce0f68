"""Training throughput of the try10 model: a plain batch-32 DataLoader loop against core.train, side by side."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from core import paths
from core.model import nets as models
from core.model.device import thread_count
from core.training.dataset import load_run_data
from core.training.evaluate import evaluate_split, headline
from core.training.loop import Batches, _loss, build_config, class_weights, make_optimizer, train_one_epoch


def epoch_order(data, batch_size: int, seed: int):
    """The (image, audio, label) tensors of one epoch in core.train's order, so both loops see the same data."""
    parts = list(Batches(data, batch_size, np.random.default_rng(seed), audio_only=False))
    return tuple(torch.cat([p[i] for p in parts]) for i in range(3))


def reference(config, order, weight, limit: int | None = None, mask_seed: int | None = None):
    """The seed's way: plain torch modules, default Adam, a batch-32 DataLoader over precomputed tensors.

    mask_seed re-seeds torch after the weights are drawn: the same model and data, other dropout masks."""
    torch.manual_seed(config.train.seed)
    model = models.DigitClassifier(config.model, fast_ops=False).train()
    if mask_seed is not None:
        torch.manual_seed(mask_seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    loader = DataLoader(TensorDataset(*(t[:limit] for t in order)), batch_size=config.train.batch_size, shuffle=False)
    start = time.perf_counter()
    for img, aud, y in loader:
        loss = _loss(model(image=img, audio=aud), y, weight, config.train.aux_loss_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start, model


def ours(config, data, weight):
    """core.train's loop: the fused audio kernel, channels-last image convs, fused Adam, tensor batches."""
    torch.manual_seed(config.train.seed)
    model = models.DigitClassifier(config.model)
    opt = make_optimizer(model, config.train)
    batches = Batches(data, config.train.batch_size, np.random.default_rng(config.train.seed), audio_only=False)
    start = time.perf_counter()
    train_one_epoch(model, batches, opt, weight, config.train.aux_loss_weight, "cpu")
    return time.perf_counter() - start, model


def warm_up(config, order, weight) -> float:
    """A few steps of each loop on throwaway models, so neither timed epoch pays a one-time cost (oneDNN
    primitives; numba's import and compile, or its on-disk cache). Returns the seconds ours' first step took."""
    model = models.DigitClassifier(config.model).train()
    img, aud, y = (t[: config.train.batch_size] for t in order)
    start = time.perf_counter()
    _loss(model(image=img, audio=aud), y, weight, config.train.aux_loss_weight).backward()
    first = time.perf_counter() - start
    reference(config, order, weight, limit=3 * config.train.batch_size)
    return first


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.2f}" + (f" +- {np.std(values, ddof=1):.2f}" if len(values) > 1 else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--train-fraction", type=float, default=0.2, help="MNIST training fraction (default 0.2: 11,000 pairs)"
    )
    p.add_argument("--threads", type=int, default=thread_count())
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="weights, data order and dropout masks (default 0)"
    )
    p.add_argument("--quick", action="store_true", help="1,000 pairs: a smoke run")
    p.add_argument(
        "--noise",
        action="store_true",
        help="also train the reference with other dropout masks: how far accuracy moves with the masks alone",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    speedups, diffs, noise = [], [], []
    for seed in args.seeds:
        config = build_config(
            "try10", epochs=1, train_fraction=args.train_fraction, limit=1000 if args.quick else None, seed=seed
        )
        data = load_run_data(config, paths.data_dir())
        order = epoch_order(data, config.train.batch_size, config.train.seed)
        weight = class_weights(data.train.labels)
        n = len(order[2])
        first = warm_up(config, order, weight)
        print(
            f"try10, seed {seed}, 1 epoch of {n} pairs, batch {config.train.batch_size}, {args.threads} thread(s), "
            f"load average {os.getloadavg()[0]:.1f} at start; ours' first step in the process "
            "(numba's import and kernels) "
            f"{first:.2f} s, before timing"
        )
        rows = {}
        runs = [("reference", lambda: reference(config, order, weight)), ("ours", lambda: ours(config, data, weight))]
        if args.noise:
            runs.append(("ref, other masks", lambda: reference(config, order, weight, mask_seed=10_000 + seed)))
        for name, fn in runs:
            seconds, model = fn()
            test = headline(evaluate_split(model, data.test))
            rows[name] = (n / seconds, test)
            print(
                f"{name:>16}: {n / seconds:7.1f} samples/s ({seconds:.1f} s)  "
                f"test accuracy fused {test['fused_accuracy']:.2f} "
                f"image {test['image_accuracy']:.2f} audio {test['audio_accuracy']:.2f}  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        (ref, ref_test), (fast, fast_test) = rows["reference"], rows["ours"]
        speedups.append(fast / ref)
        diffs.append(fast_test["fused_accuracy"] - ref_test["fused_accuracy"])
        line = f"seed {seed}: speed-up {speedups[-1]:.2f}x; fused accuracy ours - reference {diffs[-1]:+.2f} points"
        if args.noise:
            noise.append(rows["ref, other masks"][1]["fused_accuracy"] - ref_test["fused_accuracy"])
            line += f"; reference with other masks - reference {noise[-1]:+.2f}"
        print(line, flush=True)
    print(
        f"over {len(args.seeds)} seed(s): speed-up {mean_sd(speedups)}x (target >= 2); fused accuracy ours - reference "
        f"{mean_sd(diffs)} points (target within 0.1)"
        + (f"; reference with other masks - reference {mean_sd(noise)}" if noise else "")
    )


if __name__ == "__main__":
    main()
