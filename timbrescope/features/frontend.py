"""The log-mel front-end as a model layer, so training and inference cannot compute features differently."""

from __future__ import annotations

import torch
from torch import nn

from timbrescope.features.logmel import FrontendConfig, log_mel


class LogMel(nn.Module):
    """waveform ``[batch, samples]`` (float, at ``config.sample_rate``) -> log-mel ``[batch, n_mels, frames]``
    by ``timbrescope.features.logmel.log_mel`` (numpy, on the CPU; no gradient flows through it)."""

    def __init__(self, config: FrontendConfig):
        super().__init__()
        self.config = config

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        features = log_mel(waveform.detach().cpu().float().numpy(), self.config)
        return torch.from_numpy(features).to(waveform.device)
