"""Training-time augmentation. Each transform draws its random parameters in one step (``draw``) and
applies them in another (``apply``), so a draw can be kept, logged or repeated; ``augment`` composes
them for a batch as the model's ``augmentation`` kind allows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from timbrescope.augment.masking import SpecMask
from timbrescope.augment.mixture import Mixture, MixtureDraw

__all__ = ["Mixture", "MixtureDraw", "SpecMask", "augment"]


def augment(batch, kind: str | None, mixture_probability: float, rng: np.random.Generator):
    """``batch`` (a dataclass with ``inputs, clips, mask, frames, frame_known``, e.g.
    ``train.sampling.Batch``) mixed (``Mixture``) and, for ``logmel`` features, masked (``SpecMask``);
    features of another ``kind`` (None) are left as they are."""
    if kind is None:
        return batch
    mixture = Mixture(mixture_probability, kind)
    batch = replace(batch, **mixture.apply(batch, mixture.draw(rng, len(batch.inputs))))
    if kind == "logmel":
        size, mels, length = batch.inputs.shape
        mask = SpecMask()
        batch = replace(batch, inputs=mask.apply(batch.inputs, mask.draw(rng, size, mels, length)))
    return batch
