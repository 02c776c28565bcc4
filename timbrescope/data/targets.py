"""Turn labels and segments into training targets: multi-hot clip vectors and frame activity matrices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def clip_target(instruments: Iterable[str], labels: list[str]) -> np.ndarray:
    """Multi-hot float32 ``[len(labels)]``; instruments outside ``labels`` are ignored."""
    index = {label: i for i, label in enumerate(labels)}
    target = np.zeros(len(labels), np.float32)
    for name in instruments:
        if name in index:
            target[index[name]] = 1.0
    return target


def frame_target(segments: Iterable[Mapping], labels: list[str], frames: int, hop_seconds: float) -> np.ndarray:
    """float32 ``[frames, len(labels)]``: 1 where frame ``i`` (at ``i * hop_seconds``) lies in a segment."""
    index = {label: i for i, label in enumerate(labels)}
    target = np.zeros((frames, len(labels)), np.float32)
    times = np.arange(frames) * hop_seconds
    for seg in segments:
        if seg["label"] in index:
            target[(times >= seg["start"]) & (times < seg["end"]), index[seg["label"]]] = 1.0
    return target
