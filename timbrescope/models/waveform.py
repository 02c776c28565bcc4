"""Front-end of the waveform baselines: the raw samples at a fixed rate, optionally trimmed and
average-pooled (a cheap low-pass and decimation, as in the NSynth project)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class WaveformConfig:
    sample_rate: int = 16_000
    pool: int = 1                     # average-pool factor (4 -> 4,000 values per second at 16 kHz)
    trim_seconds: float | None = None  # keep only the first seconds of each clip

    def to_dict(self) -> dict:
        return asdict(self)


class Waveform(nn.Module):
    """waveform ``[batch, samples]`` -> ``[batch, samples']`` (trimmed, pooled), scaled to unit RMS per clip."""

    def __init__(self, config: WaveformConfig):
        super().__init__()
        self.config = config

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.config.trim_seconds:
            waveform = waveform[:, : round(self.config.trim_seconds * self.config.sample_rate)]
        if self.config.pool > 1:
            waveform = nn.functional.avg_pool1d(waveform[:, None], self.config.pool, ceil_mode=True)[:, 0]
        return waveform / (waveform.square().mean(dim=1, keepdim=True).sqrt() + 1e-4)
