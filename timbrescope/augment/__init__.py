"""Training-time augmentation. Each transform draws its random parameters in one step (``draw``) and
applies them in another (``apply``), so a draw can be kept, logged or repeated; ``augment`` composes
them for a batch as the model's ``augmentation`` kind allows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from timbrescope.augment.masking import SpecMask
from timbrescope.augment.mixture import Mixture, MixtureDraw
from timbrescope.augment.release import Release, ReleaseDraw, note_onsets

__all__ = ["Mixture", "MixtureDraw", "Release", "ReleaseDraw", "SpecMask", "augment", "note_onsets"]


def augment(batch, kind: str | None, mixture_probability: float, rng: np.random.Generator,
            release: Release | None = None):
    """``batch`` (a dataclass with ``inputs, clips, mask, frames, frame_known, single_note``, e.g.
    ``train.sampling.Batch``) with, for ``logmel`` features, some single notes released early
    (``release``, when given), then mixed (``Mixture``) and, for ``logmel`` features, masked
    (``SpecMask``); features of another ``kind`` (None) are left as they are."""
    if kind is None:
        return batch
    if release is not None and kind == "logmel":
        batch = replace(batch, **release.apply(batch, release.draw(rng, len(batch.inputs))))
    mixture = Mixture(mixture_probability, kind)
    batch = replace(batch, **mixture.apply(batch, mixture.draw(rng, len(batch.inputs))))
    if kind == "logmel":
        size, mels, length = batch.inputs.shape
        mask = SpecMask()
        batch = replace(batch, inputs=mask.apply(batch.inputs, mask.draw(rng, size, mels, length)))
    return batch
