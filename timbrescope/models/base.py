"""What every registered model shares, so training, inference and evaluation treat them alike.

A model is a front-end (a layer: waveform -> features; None for models fitted on a dataset's
precomputed features) and ``forward_features`` (features -> outputs). Class attributes tell the
training loop how to treat it:

- ``output_activation``: ``"sigmoid"`` (multi-label) or ``"softmax"`` (one label per clip);
- ``frame_level``: whether ``frame_logits`` carry real time resolution (else one frame per clip);
- ``augmentation``: ``"logmel"`` (mixtures in the power domain + SpecAugment on ``[B, mels, T]``
  features), ``"waveform"`` (mixtures by summing) or None;
- ``head_names``: the output layers a transfer-learning run re-trains (everything else is frozen);
- ``accepts_features``: whether it can be fitted on precomputed feature vectors (``input_dim``);
- ``fitted_once``: a scikit-learn pipeline, fitted in one step (``fit_arrays``) instead of epochs;
- ``assembled``: built from trained models (an ensemble), never trained by name.

and hooks it may override: ``penalty`` (a term added to the training loss) and ``data_config``
(configuration the training data decides, e.g. the composers of a composer head).
"""

from __future__ import annotations

import torch
from torch import nn

from timbrescope.errors import ModelError


class RecognitionModel(nn.Module):
    output_activation = "sigmoid"
    frame_level = True
    augmentation: str | None = None
    head_names: tuple[str, ...] = ("head",)
    accepts_features = False
    fitted_once = False
    assembled = False
    training_defaults: dict = {}  # recipe values of a reference system (batch size, learning rate, shares)
    frontend: nn.Module | None
    labels: list[str]
    config: dict

    @property
    def sample_rate(self) -> int | None:
        """The rate the front-end expects, or None for a model of precomputed features."""
        return None if self.frontend is None else self.frontend.config.sample_rate

    @property
    def hop_seconds(self) -> float:
        """Seconds between two output frames (``frame_logits``); a frame is the output at one hop."""
        raise NotImplementedError

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """waveform ``[batch, samples]`` at ``sample_rate`` -> ``frame_logits [batch, frames, labels]``,
        ``clip_logits [batch, labels]``, ``embedding [batch, dim]``."""
        if self.frontend is None:
            raise ModelError("this model was fitted on precomputed features, not audio; score it on such a dataset")
        return self.forward_features(self.frontend(waveform))

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def penalty(self) -> torch.Tensor | float:
        """A regularisation term added to each training step's loss (none by default)."""
        return 0.0

    @classmethod
    def data_config(cls, config: dict, examples: list) -> dict:
        """Settings the training examples decide, added to the model's ``config`` before it is built."""
        return {}

    def fit_arrays(self, features, targets) -> RecognitionModel:
        """Fit in one step on feature vectors ``[n, dim]`` and targets ``[n, labels]`` (``fitted_once`` models)."""
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores in 0..1 from logits ``[..., labels]`` by the model's output activation."""
        return torch.softmax(logits, dim=-1) if self.output_activation == "softmax" else torch.sigmoid(logits)


def clip_outputs(frame_logits: torch.Tensor, clip_logits: torch.Tensor, embedding: torch.Tensor) -> dict:
    """The output dict of the registry contract; ``frame_logits`` may be ``[B, L]`` (one frame per clip)."""
    if frame_logits.dim() == 2:
        frame_logits = frame_logits[:, None]
    return {"frame_logits": frame_logits, "clip_logits": clip_logits, "embedding": embedding}
