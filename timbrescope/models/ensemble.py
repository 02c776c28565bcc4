"""``ensemble``: several trained networks of one front-end and label set, scored as one model.

Its clip and frame probabilities are the mean of its members' (an instrument's score is the average
belief of the networks), returned as logits so that the registry contract, thresholds, timelines and
ONNX export treat it like any other model. Averaging networks trained with different seeds lifts the
real-note judges by about 0.03 top-1 (docs/MODEL.md, session 29); a recipe asks for it with
``[model] members = N`` (``train.loop``), never by building this class by hand.
"""

from __future__ import annotations

import torch
from torch import nn

from timbrescope.models.base import RecognitionModel
from timbrescope.models.registry import create_model, register_model

EPSILON = 1e-6  # probabilities are kept inside (EPSILON, 1 - EPSILON) before they become logits again


@register_model("ensemble")
class Ensemble(RecognitionModel):
    """Members ``[{"model": name, "config": config}, …]`` -> the mean of their probabilities as logits:
    ``frame_logits [batch, frames, labels]``, ``clip_logits [batch, labels]``, ``embedding [batch, sum of dims]``."""

    assembled = True

    def __init__(self, labels: list[str], members: list[dict], frontend: dict | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(create_model(m["model"], **m["config"]) for m in members)
        first = self.members[0]
        for member in self.members[1:]:
            if (member.labels, member.config.get("frontend"), member.hop_seconds, type(member)) != (
                    first.labels, first.config.get("frontend"), first.hop_seconds, type(first)):
                raise ValueError("ensemble members must be one kind of model with the same labels and front-end")
        if list(labels) != first.labels:
            raise ValueError("the ensemble's labels must be its members'")
        self.labels = list(first.labels)
        self.frontend = first.frontend
        self.augmentation, self.frame_level = first.augmentation, first.frame_level
        self.config = {"labels": self.labels, "frontend": first.config.get("frontend"),
                       "members": [{"model": m["model"], "config": member.config}
                                   for m, member in zip(members, self.members)]}

    @property
    def hop_seconds(self) -> float:
        return self.members[0].hop_seconds

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every member on the same ``features``; probabilities averaged, then turned back into logits."""
        outputs = [member.forward_features(features) for member in self.members]

        def mean(key: str) -> torch.Tensor:
            p = torch.stack([member.probabilities(out[key]) for member, out in zip(self.members, outputs)]).mean(0)
            return torch.logit(p.clamp(EPSILON, 1 - EPSILON))

        return {"frame_logits": mean("frame_logits"), "clip_logits": mean("clip_logits"),
                "embedding": torch.cat([out["embedding"] for out in outputs], dim=1)}
