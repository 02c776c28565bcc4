"""Each sound bank as a domain: a supervised-contrastive term that pulls together the embeddings of one
label played by *different* banks (soundfont, recorded library, engine), so that the network learns the
label across instruments rather than each bank's instrument (Khosla et al., 2020, with positives
restricted to other banks).
"""

from __future__ import annotations

import numpy as np
import torch

from timbrescope.data.dataset import Example


def bank_of(example: Example) -> str | None:
    """The bank of a rendered clip with exactly one part (None for anything else)."""
    parts = example.metadata.get("parts") or []
    return parts[0].get("bank") if len(parts) == 1 else None


def bank_indices(examples: list[Example]) -> np.ndarray:
    """Each example's bank index ``[n]`` (-1: not a one-part rendered clip)."""
    names = sorted({bank for bank in map(bank_of, examples) if bank})
    position = {name: i for i, name in enumerate(names)}
    return np.array([position.get(bank_of(ex), -1) for ex in examples], np.int64)


def cross_bank_contrast(embedding: torch.Tensor, clips: torch.Tensor, banks: torch.Tensor,
                        temperature: float = 0.1) -> torch.Tensor:
    """Supervised-contrastive loss over the one-label, one-bank clips of a batch: ``embedding [n, dim]``,
    clip targets ``[n, labels]``, bank indices ``[n]`` (-1: none). An anchor's positives are the clips of its
    label from other banks; its denominator is every other such clip. Anchors without a positive do not
    count; 0 (with a gradient path) when no anchor has one."""
    kept = (banks >= 0) & ((clips > 0.5).sum(dim=1) == 1)
    if int(kept.sum()) < 2:
        return embedding.sum() * 0.0
    z = torch.nn.functional.normalize(embedding[kept], dim=1)
    label, bank = clips[kept].argmax(dim=1), banks[kept]
    self_pair = torch.eye(len(z), dtype=torch.bool, device=z.device)
    positive = (label[:, None] == label[None, :]) & (bank[:, None] != bank[None, :])
    logits = (z @ z.T / temperature).masked_fill(self_pair, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    anchors = positive.any(dim=1)
    if not anchors.any():
        return embedding.sum() * 0.0
    per_anchor = log_prob.masked_fill(~positive, 0.0).sum(dim=1)[anchors] / positive.sum(dim=1)[anchors]
    return -per_anchor.mean()
