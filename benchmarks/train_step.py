"""Seconds per training step of `timbrenet` configurations, timed as `make model` trains: processes side by side,
one PyTorch thread each, channels-last weights and glibc keeping freed memory (as `train` has them).

Usage: python benchmarks/train_step.py [--config JSON ...] [--set section.key=value ...] [--processes 2]
       [--steps 40] [--batch N]
Each process builds ``timbrenet`` with the taxonomy's labels and the ``--config`` (default: the recipe's ``[model]
config``), then times forward, backward and an AdamW step of ``forward_features`` on random log-mel batches drawn
as an epoch draws them: the recipe's crops (e.g. ``[64, 64 mels, 101 frames]`` for 2 s) and, in
``sampling.whole_clip_share`` of the steps, whole 5-s clips, with the clip loss and the recipe's share of the frame
loss. The recipe is the default one with ``--set`` overrides applied (as `train --set`). A process's figures are the
median crop step and the median whole-clip step after its first five steps. An epoch of the default recipe is
25,000 clips, 391 steps of 64, plus data loading and validation. Configurations run one after another, each in
``--processes`` processes at once. Prints Markdown for docs/BENCHMARKS.md, its first line naming the machine (two
CPUs differed 2.3-2.8x a step; session 37).
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


def step_seconds(config: dict, recipe: TrainConfig, steps: int, batch: int) -> tuple[float, float]:
    """Median seconds of one training step of ``timbrenet(**config)`` on one thread, after ``WARMUP`` steps, on
    ``batch`` crops of ``recipe.crop_seconds`` and on ``batch`` whole clips (drawn in ``recipe.whole_clip_share``
    of the steps, seeded), with ``recipe.frame_loss_weight``: ``(crop step, whole-clip step)``."""
    import numpy as np
    import torch
    from torch.nn import functional

    from timbrescope.data.clips import CLIP_SECONDS
    from timbrescope.models.registry import create_model
    from timbrescope.taxonomy import labels
    from timbrescope.train.loop import retain_freed_memory

    retain_freed_memory()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("timbrenet", labels=labels(), **config).to(memory_format=torch.channels_last)  # as trained
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    frontend = model.frontend.config
    whole = round(CLIP_SECONDS * frontend.sample_rate) // frontend.hop_length + 1
    crop = round((recipe.crop_seconds or CLIP_SECONDS) * frontend.sample_rate) // frontend.hop_length + 1
    draws = np.random.default_rng(0).random(WARMUP + steps) < recipe.whole_clip_share
    times: dict[bool, list[float]] = {False: [], True: []}
    for step, whole_clip in enumerate(draws):
        logmel = torch.randn(batch, frontend.n_mels, whole if whole_clip else crop)
        started = time.perf_counter()
        out = model.forward_features(logmel)
        loss = functional.binary_cross_entropy_with_logits(out["clip_logits"], torch.rand_like(out["clip_logits"]))
        loss = loss + recipe.frame_loss_weight * functional.binary_cross_entropy_with_logits(
            out["frame_logits"], torch.rand_like(out["frame_logits"]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step >= WARMUP:
            times[bool(whole_clip)].append(time.perf_counter() - started)
    return tuple(statistics.median(times[kind]) if times[kind] else float("nan") for kind in (False, True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", action="append", type=json.loads, default=None,
                        help='timbrenet keys as JSON, e.g. \'{"widths": [32, 64, 128, 256], "top_blocks": 1}\'')
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a recipe override, as `train --set` (e.g. sampling.crop_seconds=1.0)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=None)
    args = parser.parse_args()
    recipe = resolve_recipe("default", args.set).config
    configs = args.config or [recipe.model_config]
    batch = args.batch or recipe.batch_size
    steps = -(-EPOCH_CLIPS // batch)
    share = recipe.whole_clip_share
    print(f"training step of timbrenet, batch {batch}: crops of {recipe.crop_seconds:g} s, whole 5-s clips in "
          f"{share:g} of the steps; {args.processes} process(es) at once, one thread each; {describe()}\n")
    print(f"| configuration | s per crop step / whole-clip step (each process) | epoch of {steps} steps, s |\n"
          f"|---|---|---|")
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        for config in configs:
            seconds = pool.starmap(step_seconds, [(config, recipe, args.steps, batch)] * args.processes)
            epoch = statistics.mean(steps * ((1 - share) * crop + share * (whole if share else 0))
                                    for crop, whole in seconds)
            print(f"| `{json.dumps(config)}` | {' / '.join(f'{c:.3f}, {w:.3f}' for c, w in seconds)} | {epoch:.0f} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/train_step.py"))
