"""Checkpoints: the model's whole decision rule — its configuration (labels, front-end: sample rate,
window and hop), taxonomy version, weights, per-label clip and frame thresholds, the rule that turns
scores into a result (``timeline.DecisionRule``: analysis window, silence gate, smoothing, segment
join/drop) — and the training summary with its recipe.

Inference rebuilds everything from a checkpoint, never from flags or code constants. Writes are atomic
(``fileio.atomic_write``), so a kill never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from timbrescope.errors import ModelError
from timbrescope.fileio import atomic_write, ensure_writable_folder
from timbrescope.models.onnx_export import Calibration, export_onnx
from timbrescope.models.registry import create_model
from timbrescope.taxonomy import TAXONOMY_VERSION
from timbrescope.timeline import DecisionRule

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, model: nn.Module, name: str, thresholds: list[float],
                    frame_thresholds: list[float], training: dict, rule: DecisionRule = DecisionRule()) -> None:
    """Write ``model`` (registered as ``name``, with its ``config``) and its decision rule: per-label
    thresholds for detecting it in a clip and for drawing its timeline, tuned under ``rule``."""
    payload = {"format": CHECKPOINT_FORMAT, "model": name, "config": model.config,
               "taxonomy_version": TAXONOMY_VERSION, "state_dict": model.state_dict(),
               "thresholds": [float(t) for t in thresholds],
               "frame_thresholds": [float(t) for t in frame_thresholds], "decision": asdict(rule),
               "training": training}
    atomic_torch_save(payload, Path(path))


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """The model in eval mode and the checkpoint's metadata (everything but the weights)."""
    payload = _read(Path(path))
    model = create_model(payload["model"], **payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, _meta(payload, path)


def checkpoint_meta(path: Path) -> dict:
    """The checkpoint's metadata (configuration, thresholds, training summary) without building the model."""
    return _meta(_read(Path(path)), path)


def export_checkpoint(path: Path, out: Path) -> dict:
    """Export a checkpoint's network to ONNX at ``out`` (``timbrescope.models.onnx_export``) with its
    metadata, the frame rate and the SHA-256 of the checkpoint file; returns that metadata. The recipe's
    ``[export] quantise = "temporal"`` runs the temporal convolutions in 8 bits, calibrated on the first
    ``calibration_clips`` validation clips of the recipe's ``[data] spec``."""
    ensure_writable_folder(Path(out).parent)
    model, meta = load_checkpoint(path)
    recipe = (meta.get("training") or {}).get("recipe") or {}
    export = recipe.get("export", {"quantise": "none"})
    calibration = (Calibration(recipe["data"]["spec"], export["calibration_clips"], meta["decision"]["window_seconds"])
                   if export["quantise"] == "temporal" else None)
    meta = {**{key: value for key, value in meta.items() if key != "path"}, "checkpoint": Path(path).name,
            "checkpoint_sha256": file_sha256(Path(path)), "sample_rate": model.sample_rate,
            "hop_seconds": model.hop_seconds, "frame_level": model.frame_level,
            "composers": list(getattr(model, "composers", [])), "quantised": export["quantise"]}
    export_onnx(model, meta, Path(out), calibration)
    return meta


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read(path: Path) -> dict:
    """The checkpoint's payload, checked (ModelError for a missing, foreign or other-taxonomy file)."""
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise ModelError(f"{path}: not a timbrescope checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a timbrescope checkpoint (format {CHECKPOINT_FORMAT} expected)")
    if payload["taxonomy_version"] != TAXONOMY_VERSION:
        raise ModelError(f"{path}: trained on taxonomy v{payload['taxonomy_version']}, this timbrescope "
                         f"uses v{TAXONOMY_VERSION}; retrain it or use a matching timbrescope")
    return payload


def _meta(payload: dict, path: Path) -> dict:
    return {**{key: value for key, value in payload.items() if key != "state_dict"}, "path": str(path)}


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` through ``fileio.atomic_write``: a kill never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
