"""Mixtures of two training clips."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MixtureDraw:
    """Which clips ``[n]`` are mixed, with which ``partner`` ``[n]`` and at which gain (dB) ``[n]``."""

    mixed: torch.Tensor
    partner: torch.Tensor | None = None
    gain_db: torch.Tensor | None = None


@dataclass(frozen=True)
class Mixture:
    """With ``probability`` per clip, add another clip of the batch at a random -10..0 dB: in the power
    domain for ``logmel`` features ``[n, mels, frames]``, as samples for ``waveform`` ones ``[n, samples]``.
    Labels are united; a target stays unknown unless known in both or present in either."""

    probability: float
    kind: str = "logmel"

    def draw(self, rng: np.random.Generator, size: int) -> MixtureDraw:
        mixed = torch.from_numpy(rng.random(size) < self.probability)
        if not mixed.any():
            return MixtureDraw(mixed)
        return MixtureDraw(mixed, torch.from_numpy(rng.permutation(size)),
                           torch.from_numpy(rng.uniform(-10, 0, size).astype(np.float32)))

    def apply(self, batch, draw: MixtureDraw) -> dict[str, torch.Tensor]:
        """The batch's new ``inputs, clips, mask, frames, frame_known``."""
        inputs, clips, mask, frames, known = batch.inputs, batch.clips, batch.mask, batch.frames, batch.frame_known
        if draw.partner is None:
            return {}
        mix, partner = draw.mixed, draw.partner
        shape = (len(inputs),) + (1,) * (inputs.dim() - 1)
        if self.kind == "logmel":
            combined = torch.logaddexp(inputs, inputs[partner] + (draw.gain_db * (math.log(10) / 10)).view(shape))
        else:
            combined = inputs + inputs[partner] * (10 ** (draw.gain_db / 20)).view(shape)
        united = torch.maximum(clips, clips[partner])
        return {"inputs": torch.where(mix.view(shape), combined, inputs),
                "clips": torch.where(mix[:, None], united, clips),
                "mask": torch.where(mix[:, None], torch.maximum(torch.minimum(mask, mask[partner]), united), mask),
                "frames": torch.where(mix[:, None, None], torch.maximum(frames, frames[partner]), frames),
                "frame_known": torch.where(mix, known & known[partner], known)}
