"""Learning curves: train the same model on growing fractions of the training split and record the
validation score of each run (``timbrescope learning-curve``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from timbrescope.data.dataset import Dataset
from timbrescope.data.specs import open_dataset
from timbrescope.errors import ParameterError
from timbrescope.models.checkpoint import checkpoint_meta
from timbrescope.train.loop import train
from timbrescope.train.recipe import Recipe


def learning_curve(recipe: Recipe, out: Path, fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0),
                   progress: Callable[[str, int, int], None] | None = None, feature_cache: dict | None = None,
                   prefix: str = "fraction", dataset: Dataset | None = None) -> list[dict]:
    """One training run of exactly ``recipe``'s config per fraction of the train split (a fixed random subset of the at most
    ``config.limit`` examples drawn by ``Dataset.sample``, nested: each larger subset holds the
    smaller; ``dataset``: the recipe's data, already open); returns ``[{"model", "fraction", "train_examples", "valid_map", "seconds"}]``. Checkpoints go to
    ``out/<prefix>-<f>.ckpt``; a finished one is reused, so a killed curve resumes run by run."""
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise ParameterError(f"fractions must lie in (0, 1], got {fractions}")
    dataset, config = dataset or open_dataset(recipe.data), recipe.config
    train_examples = dataset.sample("train", config.limit, config.seed)
    order = np.random.default_rng(config.seed).permutation(len(train_examples))
    rest = [ex for ex in dataset.examples if ex.split != "train"]
    points = []
    for fraction in sorted(fractions):
        chosen = [train_examples[i] for i in sorted(order[:max(1, round(fraction * len(train_examples)))])]
        checkpoint = Path(out) / f"{prefix}-{fraction:g}.ckpt"
        if checkpoint.exists():
            summary = checkpoint_meta(checkpoint)["training"]
        else:
            summary = train(replace(dataset, examples=chosen + rest), checkpoint, replace(config, limit=None),
                            progress, feature_cache)
        points.append({"model": config.model, "fraction": fraction, "train_examples": summary["train_clips"],
                       "valid_map": summary["valid_map"], "seconds": summary["seconds"]})
    return points
