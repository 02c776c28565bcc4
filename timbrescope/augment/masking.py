"""SpecAugment masks on log-mel features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SpecMask:
    """One band of up to an eighth of the mel bands and one stretch of up to a tenth of the frames per
    clip of ``[n, mels, frames]``, set to the clip's lowest value."""

    def draw(self, rng: np.random.Generator, size: int, mels: int, length: int) -> np.ndarray:
        """``[n, 4]``: band start and width, frame start and width of each clip."""
        return np.array([[int(rng.integers(mels)), int(rng.integers(0, mels // 8 + 1)),
                          int(rng.integers(length)), int(rng.integers(0, length // 10 + 1))] for _ in range(size)],
                        dtype=np.int64).reshape(size, 4)

    def apply(self, inputs: torch.Tensor, draw: np.ndarray) -> torch.Tensor:
        out = inputs.clone()
        floor = out.amin(dim=(1, 2))
        for i, (f0, fw, t0, tw) in enumerate(draw):
            out[i, f0:f0 + fw, :] = floor[i]
            out[i, :, t0:t0 + tw] = floor[i]
        return out
