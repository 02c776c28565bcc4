"""``timbrenet``: the default recogniser, a compact depthwise-separable CNN over log-mel frames.

Designed for real-audio robustness and CPU speed together:

- per-recording normalisation of each mel band (mean and spread over time), which removes the
  fixed EQ, microphone colouration and level that separate rendered from recorded audio;
- one full 3x3 convolution, then depthwise-separable blocks; strides (no pooling layers) take
  frequency 64 -> 4 and time 2x (40 ms frames); optional residual blocks at that last resolution
  (``top_blocks``) see the whole spectrum at once;
- a dilated temporal convolution for context, a per-frame classifier, and attention pooling of the
  frame logits into clip logits (so the clip score is a weighted average of frame evidence).
"""

from __future__ import annotations

import torch
from torch import nn

from timbrescope.features import FrontendConfig
from timbrescope.features.frontend import LogMel
from timbrescope.models.base import RecognitionModel
from timbrescope.models.registry import register_model


def _separable(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 (halving frequency by its stride) then pointwise, each with batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=(2, 1), padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """A stride-1 separable block added to its input: ``[batch, channels, freq, time]`` -> the same shape.
    At the last resolution (4 frequency rows) its 3x3 reaches every row: the whole spectrum in one view.
    ``bottleneck`` > 0: the pointwise mixing passes through that many channels (with batch norm and ReLU),
    ``2 * channels * bottleneck`` weights instead of ``channels ** 2``."""

    def __init__(self, channels: int, bottleneck: int = 0):
        super().__init__()
        mixing = ([nn.Conv2d(channels, bottleneck, 1, bias=False), nn.BatchNorm2d(bottleneck), nn.ReLU(inplace=True),
                   nn.Conv2d(bottleneck, channels, 1, bias=False)] if bottleneck else
                  [nn.Conv2d(channels, channels, 1, bias=False)])
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True), *mixing, nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


@register_model("timbrenet")
class TimbreNet(RecognitionModel):
    """waveform ``[batch, samples]`` -> frame logits ``[batch, frames, labels]`` (one frame per
    ``time_pool * hop_length`` samples), clip logits ``[batch, labels]``, embedding ``[batch, widths[-1]]``."""

    time_pool = 2
    augmentation = "logmel"
    head_names = ("frame_head", "attention")
    # each epoch: half single-instrument clips, 35 % of all draws single notes (MODEL.md, EXPERIMENTS.md)
    training_defaults = {"solo_share": 0.5, "note_share": 0.35}

    def __init__(self, labels: list[str], frontend: dict | None = None, widths: tuple[int, ...] = (24, 48, 96, 160),
                 dropout: float = 0.1, normalisation: str = "global", temporal: str = "full", top_blocks: int = 0,
                 bottleneck: int = 0):
        super().__init__()
        if normalisation not in ("global", "band"):
            raise ValueError(f"normalisation must be 'global' or 'band', got {normalisation!r}")
        if temporal not in ("full", "separable"):
            raise ValueError(f"temporal must be 'full' or 'separable', got {temporal!r}")
        if top_blocks < 0:
            raise ValueError(f"top_blocks must be 0 or more, got {top_blocks}")
        if bottleneck < 0:
            raise ValueError(f"bottleneck must be 0 (none) or more, got {bottleneck}")
        self.labels = list(labels)
        self.normalisation = normalisation
        self.frontend = LogMel(FrontendConfig(**(frontend or {})))
        self.config = {"labels": self.labels, "frontend": self.frontend.config.to_dict(), "widths": list(widths),
                       "dropout": dropout, "normalisation": normalisation, "temporal": temporal,
                       "top_blocks": top_blocks, "bottleneck": bottleneck}
        w = list(widths)
        self.stem = nn.Sequential(nn.Conv2d(1, w[0], 3, stride=(2, self.time_pool), padding=1, bias=False),
                                  nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(_separable(cin, cout) for cin, cout in zip(w[:-1], w[1:])),
                                    *(_Residual(w[-1], bottleneck) for _ in range(top_blocks)))
        context = ([nn.Conv1d(2 * w[-1], w[-1], 3, padding=2, dilation=2, bias=False)] if temporal == "full" else
                   [nn.Conv1d(2 * w[-1], 2 * w[-1], 3, padding=2, dilation=2, groups=2 * w[-1], bias=False),
                    nn.Conv1d(2 * w[-1], w[-1], 1, bias=False)])
        self.temporal = nn.Sequential(*context, nn.BatchNorm1d(w[-1]), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.frame_head = nn.Conv1d(w[-1], len(self.labels), 1)
        self.attention = nn.Conv1d(w[-1], len(self.labels), 1)

    @property
    def hop_seconds(self) -> float:
        """Seconds between output frames."""
        return self.frontend.config.hop_seconds * self.time_pool

    def forward_features(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network after the front-end: ``logmel [batch, n_mels, frames]``."""
        if self.normalisation == "band":
            x = (logmel - logmel.mean(dim=2, keepdim=True)) / (logmel.std(dim=2, keepdim=True) + 1.0)
        else:  # "global": level and spread of the whole spectrogram; the spectral envelope is kept
            x = (logmel - logmel.mean(dim=(1, 2), keepdim=True)) / (logmel.std(dim=(1, 2), keepdim=True) + 1e-3)
        x = self.blocks(self.stem(x.unsqueeze(1)))             # [B, C, F', T']
        x = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)  # [B, 2C, T']
        x = self.temporal(x)                                   # [B, C, T']
        frame_logits = self.frame_head(x)                      # [B, L, T']
        weights = torch.softmax(self.attention(x), dim=2)
        clip_logits = (weights * frame_logits).sum(dim=2)
        return {"frame_logits": frame_logits.transpose(1, 2), "clip_logits": clip_logits,
                "embedding": x.mean(dim=2)}
