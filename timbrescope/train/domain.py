"""Each sound bank as a domain: a bank-adversarial head that makes the network's embedding forget which
bank (soundfont, recorded library, engine) played a label, so that it learns the label across instruments.

The adversary sees the clip embedding through a gradient reversal and guesses the bank of one-part
clips *among the banks that play that clip's label* (a conditional adversary: guessing the bank of all
banks would mostly guess the label, and reversing that would unlearn the label). Its loss is added to
the training loss with weight ``config.bank_adversary``, ramped up from 0 over training as in DANN
(Ganin et al., 2016). The head exists only during training; the checkpoint keeps the model alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from timbrescope.data.dataset import Example


def bank_of(example: Example) -> str | None:
    """The bank of a rendered clip with exactly one part (None for anything else)."""
    parts = example.metadata.get("parts") or []
    return parts[0].get("bank") if len(parts) == 1 else None


def bank_indices(examples: list[Example]) -> tuple[np.ndarray, list[str]]:
    """Each example's bank index ``[n]`` (-1: not a one-part rendered clip) and the bank names."""
    names = sorted({bank for bank in map(bank_of, examples) if bank})
    position = {name: i for i, name in enumerate(names)}
    return np.array([position.get(bank_of(ex), -1) for ex in examples], np.int64), names


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


class BankAdversary(nn.Module):
    """Guesses a one-part clip's bank among those that play its label, from ``embedding [n, dim]``."""

    def __init__(self, dim: int, label_banks: torch.Tensor):
        super().__init__()
        self.register_buffer("label_banks", label_banks)  # [labels, banks] bool: the banks that play a label
        self.net = nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, label_banks.shape[1]))

    @classmethod
    def fit_to(cls, dim: int, clips: torch.Tensor, banks: torch.Tensor) -> BankAdversary:
        """An adversary for training clips ``[n, labels]`` with bank indices ``banks [n]``."""
        single = (banks >= 0) & ((clips > 0.5).sum(dim=1) == 1)
        label_banks = torch.zeros(clips.shape[1], int(banks.max()) + 1, dtype=torch.bool)
        label_banks[clips[single].argmax(dim=1), banks[single]] = True
        return cls(dim, label_banks)

    def loss(self, embedding: torch.Tensor, clips: torch.Tensor, banks: torch.Tensor, progress: float) -> torch.Tensor:
        """Cross-entropy of the bank guess over the batch's one-part clips whose label two or more banks
        play; the gradient reaching ``embedding`` is reversed and scaled by the DANN ramp at ``progress``
        (0..1 of training)."""
        single = (banks >= 0) & ((clips > 0.5).sum(dim=1) == 1)
        label = clips.argmax(dim=1)
        # a label two or more banks play, and that the clip's bank plays: a clip whose stretch is silent, mixed
        # with a partner of another label, would otherwise carry that label with its own (impossible) bank
        single &= (self.label_banks[label].sum(dim=1) > 1) & self.label_banks[label, banks.clamp(min=0)]
        if not single.any():
            return embedding.sum() * 0.0
        ramp = 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0
        logits = self.net(_Reverse.apply(embedding[single], ramp))
        logits = logits.masked_fill(~self.label_banks[label[single]], float("-inf"))
        return nn.functional.cross_entropy(logits, banks[single])
