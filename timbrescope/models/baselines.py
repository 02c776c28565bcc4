"""Neural baselines that reproduce the reference projects (see docs/BENCHMARKS.md for their sources).

- ``mfcc-mlp``: 120 MFCC summary features -> 256 sigmoid units -> softmax (UIowa notes project);
- ``raw-cnn1d``: six 1-D convolutions on the raw waveform with max-pooling, dropout and one dense
  layer; multi-label (sigmoid) by default, single-label with ``multi_label=False`` (IRMAS project);
- ``spec-cnn2d``: 2-D CNN on a three-channel spectrogram (log-mel, delta, delta-delta): strided 3x7
  and 3x5 convolutions, then 3x3 blocks 32 -> 64 -> 128 with batch norm and max-pooling, dense
  outputs for instruments and, given ``composers``, the composer (MusicNet project);
- ``wave-cnn``: three convolutions with average pooling and dropout 0.2, dense 64 -> 32, on a
  trimmed, average-pooled waveform, with optional L1/L2 penalties (NSynth project);
- ``mfcc-lstm``: a 2-layer LSTM over frames of MFCC, spectral centroid and contrast, dropout 0.1,
  linear output (Medley-solos project).
"""

from __future__ import annotations

import torch
from torch import nn

from timbrescope.data.clips import CLIP_SECONDS
from timbrescope.features import FrontendConfig
from timbrescope.features.frontend import LogMel
from timbrescope.features.classic import SEQUENCE_DIM, SUMMARY_DIM, ClassicConfig, SequenceFrontend, SummaryFrontend
from timbrescope.models.base import RecognitionModel, clip_outputs
from timbrescope.models.registry import register_model
from timbrescope.models.waveform import Waveform, WaveformConfig


@register_model("mfcc-mlp")
class MfccMlp(RecognitionModel):
    """MFCC summary ``[batch, 120]`` (or precomputed features ``[batch, input_dim]``) -> one label."""

    output_activation = "softmax"
    frame_level = False
    accepts_features = True
    training_defaults = {"batch_size": 128, "learning_rate": 1e-3}

    def __init__(self, labels: list[str], frontend: dict | None = None, hidden: int = 256,
                 input_dim: int | None = None):
        super().__init__()
        self.labels = list(labels)
        self.frontend = None if input_dim else SummaryFrontend(ClassicConfig(**(frontend or {})))
        self.config = {"labels": self.labels, "frontend": None if input_dim else self.frontend.config.to_dict(),
                       "hidden": hidden, "input_dim": input_dim}
        dim = input_dim or SUMMARY_DIM
        self.hidden = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, hidden), nn.Sigmoid())
        self.head = nn.Linear(hidden, len(self.labels))

    @property
    def hop_seconds(self) -> float:
        return CLIP_SECONDS

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.hidden(features)
        logits = self.head(hidden)
        return clip_outputs(logits, logits, hidden)


def _conv1d(cin: int, cout: int, kernel: int, pool: int, pooling=nn.MaxPool1d) -> list[nn.Module]:
    return [nn.Conv1d(cin, cout, kernel, padding=kernel // 2), nn.ReLU(inplace=True), pooling(pool, ceil_mode=True)]


@register_model("raw-cnn1d")
class RawCnn1d(RecognitionModel):
    """waveform at 16 kHz -> frames every 512 samples (32 ms); the dense layer scores each frame and the
    max-pooled clip."""

    augmentation = "waveform"

    def __init__(self, labels: list[str], frontend: dict | None = None, multi_label: bool = True,
                 dropout: float = 0.25):
        super().__init__()
        self.labels = list(labels)
        self.frontend = Waveform(WaveformConfig(**(frontend or {})))
        self.output_activation = "sigmoid" if multi_label else "softmax"
        self.config = {"labels": self.labels, "frontend": self.frontend.config.to_dict(), "multi_label": multi_label,
                       "dropout": dropout}
        layers = [(1, 64, 11, 4), (64, 64, 9, 4), (64, 64, 7, 4), (64, 32, 5, 2), (32, 32, 5, 2), (32, 32, 5, 2)]
        self.convs = nn.Sequential(*(m for spec in layers for m in _conv1d(*spec)))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(32, len(self.labels))
        self._hop = 4 * 4 * 4 * 2 * 2 * 2

    @property
    def hop_seconds(self) -> float:
        return self._hop * self.frontend.config.pool / self.frontend.config.sample_rate

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.dropout(self.convs(features[:, None]))  # [B, 32, T']
        embedding = h.amax(dim=2)
        return clip_outputs(self.head(h.transpose(1, 2)), self.head(embedding), embedding)


def _block2d(cin: int, cout: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(pool, ceil_mode=True))


@register_model("spec-cnn2d")
class SpecCnn2d(RecognitionModel):
    """log-mel ``[B, 64, T]`` -> channels (log-mel, delta, delta-delta) -> frames every 40 ms; a second
    dense output scores the composer when ``composers`` are given."""

    augmentation = "logmel"
    head_names = ("head", "composer_head")

    @classmethod
    def data_config(cls, config: dict, examples: list) -> dict:
        """The composers the training examples name (a composer head), unless the config gives them."""
        if "composers" in config:
            return {}
        return {"composers": sorted({ex.metadata["composer"] for ex in examples if ex.metadata.get("composer")})}

    def __init__(self, labels: list[str], frontend: dict | None = None, composers: list[str] | None = None,
                 dropout: float = 0.3):
        super().__init__()
        self.labels = list(labels)
        self.composers = list(composers or [])
        self.frontend = LogMel(FrontendConfig(**(frontend or {})))
        self.config = {"labels": self.labels, "frontend": self.frontend.config.to_dict(), "composers": self.composers,
                       "dropout": dropout}
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, (3, 7), stride=(2, 2), padding=(1, 3), bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, (3, 5), stride=(2, 1), padding=(1, 2), bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(_block2d(32, 32, (2, 1)), _block2d(32, 64, (2, 1)), _block2d(64, 128, (2, 1)))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(128, len(self.labels))
        self.composer_head = nn.Linear(128, len(self.composers)) if self.composers else None

    @property
    def hop_seconds(self) -> float:
        return 2 * self.frontend.config.hop_seconds

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (features - features.mean(dim=(1, 2), keepdim=True)) / (features.std(dim=(1, 2), keepdim=True) + 1e-3)
        delta = torch.diff(x, dim=2, prepend=x[:, :, :1])
        x = torch.stack([x, delta, torch.diff(delta, dim=2, prepend=delta[:, :, :1])], dim=1)
        h = self.blocks(self.stem(x)).amax(dim=2)  # [B, 128, T']
        frames = self.dropout(h.transpose(1, 2))
        embedding = h.amax(dim=2)
        out = clip_outputs(self.head(frames), self.head(self.dropout(embedding)), embedding)
        if self.composer_head is not None:
            out["composer_logits"] = self.composer_head(self.dropout(embedding))
        return out


@register_model("wave-cnn")
class WaveCnn(RecognitionModel):
    """waveform at 16 kHz, average-pooled by 4 -> three convolutions -> dense 64 -> 32 -> labels
    (clip-level); ``l1``/``l2`` add weight penalties to the training loss."""

    frame_level = False
    augmentation = "waveform"

    def __init__(self, labels: list[str], frontend: dict | None = None, l1: float = 0.0, l2: float = 0.0,
                 dropout: float = 0.2):
        super().__init__()
        self.labels = list(labels)
        self.frontend = Waveform(WaveformConfig(**({"pool": 4} | (frontend or {}))))
        self.config = {"labels": self.labels, "frontend": self.frontend.config.to_dict(), "l1": l1, "l2": l2,
                       "dropout": dropout}
        self.l1, self.l2 = l1, l2
        layers = [(1, 16, 9, 4), (16, 32, 9, 4), (32, 64, 9, 4)]
        self.convs = nn.Sequential(*(m for spec in layers for m in [*_conv1d(*spec, pooling=nn.AvgPool1d),
                                                                     nn.Dropout(dropout)]))
        self.dense = nn.Sequential(nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, 32), nn.ReLU(inplace=True))
        self.head = nn.Linear(32, len(self.labels))

    @property
    def hop_seconds(self) -> float:
        return CLIP_SECONDS

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        embedding = self.dense(self.convs(features[:, None]).mean(dim=2))
        logits = self.head(embedding)
        return clip_outputs(logits, logits, embedding)

    def penalty(self) -> torch.Tensor:
        """``l1 * sum |w| + l2 * sum w^2`` over the weights (not biases)."""
        weights = [p for name, p in self.named_parameters() if name.endswith("weight")]
        return self.l1 * sum(w.abs().sum() for w in weights) + self.l2 * sum(w.square().sum() for w in weights)


@register_model("mfcc-lstm")
class MfccLstm(RecognitionModel):
    """frames of 20 MFCC + centroid + 7 contrast bands (23 ms) -> 2-layer LSTM -> linear output per frame;
    the clip is scored from the mean hidden state."""

    def __init__(self, labels: list[str], frontend: dict | None = None, hidden: int = 64, dropout: float = 0.1):
        super().__init__()
        self.labels = list(labels)
        self.frontend = SequenceFrontend(ClassicConfig(**(frontend or {})))
        self.config = {"labels": self.labels, "frontend": self.frontend.config.to_dict(), "hidden": hidden,
                       "dropout": dropout}
        self.norm = nn.BatchNorm1d(SEQUENCE_DIM, affine=False)
        self.lstm = nn.LSTM(SEQUENCE_DIM, hidden, num_layers=2, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden, len(self.labels))

    @property
    def hop_seconds(self) -> float:
        return self.frontend.config.hop_seconds

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _ = self.lstm(self.norm(features).transpose(1, 2))  # [B, T, hidden]
        embedding = h.mean(dim=1)
        return clip_outputs(self.head(h), self.head(embedding), embedding)
