"""Seconds per training step of `timbrenet` configurations, timed as `make model` trains: processes side by side,
one PyTorch thread each.

Usage: python benchmarks/train_step.py [--config JSON ...] [--processes 2] [--steps 25] [--batch N]
Each process builds ``timbrenet`` with the taxonomy's labels and the ``--config`` (default: the default recipe's
``[model] config``), then times forward, backward and an AdamW step of ``forward_features``. The batch (default:
the recipe's) is random log-mel of the recipe's crops, e.g. ``[64, 64 mels, 151 frames]`` for 3 s, with the clip
loss and the recipe's share of the frame loss. A process's figure is the median step after its first five.
Configurations run one after another, each in ``--processes`` processes at once. An epoch of the default recipe
is 25,000 clips, 391 steps of 64, plus data loading and validation. Prints
Markdown for docs/BENCHMARKS.md, its first line naming the machine (two CPUs differed 2.3-2.8x a step; session 37).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time

from machine import describe

from timbrescope.errors import reported
from timbrescope.train.recipe import TrainConfig, resolve_recipe

WARMUP = 5  # steps left out of the median
EPOCH_CLIPS = 25_000  # the default recipe's train clips (corpus and notes)


def step_seconds(config: dict, recipe: TrainConfig, steps: int, batch: int) -> float:
    """Median seconds of one training step of ``timbrenet(**config)`` on one thread, after ``WARMUP`` steps, on
    ``batch`` crops of ``recipe.crop_seconds`` with ``recipe.frame_loss_weight``."""
    import torch
    from torch.nn import functional

    from timbrescope.models.registry import create_model
    from timbrescope.taxonomy import labels

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("timbrenet", labels=labels(), **config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    frontend = model.frontend.config
    frames = round(recipe.crop_seconds * frontend.sample_rate) // frontend.hop_length + 1
    logmel = torch.randn(batch, frontend.n_mels, frames)
    times = []
    for _ in range(WARMUP + steps):
        started = time.perf_counter()
        out = model.forward_features(logmel)
        loss = functional.binary_cross_entropy_with_logits(out["clip_logits"], torch.rand_like(out["clip_logits"]))
        loss = loss + recipe.frame_loss_weight * functional.binary_cross_entropy_with_logits(
            out["frame_logits"], torch.rand_like(out["frame_logits"]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[WARMUP:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", action="append", type=json.loads, default=None,
                        help='timbrenet keys as JSON, e.g. \'{"widths": [32, 64, 128, 256], "top_blocks": 1}\'')
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--batch", type=int, default=None)
    args = parser.parse_args()
    recipe = resolve_recipe("default").config
    configs = args.config or [recipe.model_config]
    batch = args.batch or recipe.batch_size
    steps = -(-EPOCH_CLIPS // batch)
    print(f"training step of timbrenet, batch {batch} of {recipe.crop_seconds:g} s, {args.processes} process(es) "
          f"at once, one thread each; {describe()}\n")
    print(f"| configuration | s per step (each process) | epoch of {steps} steps, s |\n|---|---|---|")
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        for config in configs:
            seconds = pool.starmap(step_seconds, [(config, recipe, args.steps, batch)] * args.processes)
            print(f"| `{json.dumps(config)}` | {' / '.join(f'{s:.3f}' for s in seconds)} | "
                  f"{steps * statistics.mean(seconds):.0f} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/train_step.py"))
