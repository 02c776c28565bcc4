"""Export of a log-mel network to ONNX, so that inference can run on ONNX Runtime without PyTorch.

The graph is the network after its front-end: log-mel ``[batch, n_mels, frames]`` in, probabilities
out (``clip [batch, labels]``, ``frames [batch, frames', labels]``, and ``composers [batch, n]`` for
a model with a composer head). The front-end stays ``timbrescope.features.log_mel``, the one
implementation that training uses too. Everything inference needs (configuration, labels,
thresholds, taxonomy version, frame rate) is stored as JSON in the model's ``timbrescope`` metadata.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from timbrescope.errors import ModelError
from timbrescope.features.frontend import LogMel
from timbrescope.fileio import atomic_write

METADATA_KEY = "timbrescope"


class _Probabilities(nn.Module):
    """``forward_features`` with the model's output activation applied, as a tuple of tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.forward_features(logmel)
        scores = (self.model.probabilities(out["clip_logits"]), self.model.probabilities(out["frame_logits"]))
        if "composer_logits" in out:
            scores += (torch.softmax(out["composer_logits"], dim=-1),)
        return scores


def export_onnx(model: nn.Module, meta: dict, path: Path) -> None:
    """Write ``model`` (eval mode, with a ``LogMel`` front-end) and ``meta`` (JSON-serialisable) to
    ``path`` atomically. Raises ModelError for a model without the log-mel front-end."""
    if not isinstance(getattr(model, "frontend", None), LogMel):
        raise ModelError(f"only models with the log-mel front-end export to ONNX; "
                         f"{meta.get('model', type(model).__name__)} has none")
    config = model.frontend.config
    example = torch.zeros(2, config.n_mels, round(5 * config.sample_rate) // config.hop_length + 1)
    outputs = ["clip", "frames"] + (["composers"] if getattr(model, "composers", None) else [])
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # it logs every torchvision op it skips
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Probabilities(model.eval()), (example,), input_names=["log_mel"], output_names=outputs,
            dynamo=True, verbose=False,
            dynamic_shapes=({0: torch.export.Dim("batch"), 2: torch.export.Dim("frames", min=16)},))
    proto = program.model_proto
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(proto.SerializeToString()))
