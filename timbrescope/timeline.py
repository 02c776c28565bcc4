"""Instrument timelines: the decision rule that turns a model's scores into a result, which frames each
label plays in (shared by inference, training's threshold tuning and evaluation, so all three decide
alike), and their text rendering for terminals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class DecisionRule:
    """How scores become a result, saved in every checkpoint beside the thresholds tuned under it.

    A recording is analysed in windows of ``window_seconds`` (the training clip length); a window below
    ``silence_dbfs`` (mean power) scores 0; frame probabilities are median-smoothed over
    ``smooth_frames`` frames before their frame thresholds; a label's runs of frames closer than
    ``merge_gap_seconds`` are joined and runs shorter than ``min_segment_seconds`` dropped. Clip
    thresholds were tuned from ``clip_floor`` up: per-label F1 on a rendered validation bank picks
    thresholds as low as 0.05 for labels rare in its mixtures, which real recordings punish with false
    detections (notebook/EXPERIMENTS.md, session 21)."""

    window_seconds: float = 5.0
    silence_dbfs: float = -60.0
    smooth_frames: int = 5  # 200 ms at the 40-ms hop
    merge_gap_seconds: float = 0.5
    min_segment_seconds: float = 0.2
    clip_floor: float = 0.05

    @classmethod
    def from_dict(cls, values: Mapping | None) -> DecisionRule:
        """The rule a checkpoint stores (a checkpoint older than the stored rule was tuned under the defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in known})


def timeline_scores(frames: np.ndarray, detected: np.ndarray, smooth_frames: int) -> np.ndarray:
    """The frame scores a timeline thresholds, ``[frames, labels]``: frame probabilities median-smoothed
    over ``smooth_frames`` frames where ``detected`` (bool, ``[frames, labels]`` or ``[labels]``: the
    label's 5-s window reaches its clip threshold) and 0 elsewhere. A label plays where this reaches
    its frame threshold (> 0)."""
    detected = np.broadcast_to(detected, frames.shape)
    out = np.zeros_like(frames)
    columns = np.flatnonzero(detected.any(axis=0))
    if len(columns):
        out[:, columns] = np.where(detected[:, columns], median_over_time(frames[:, columns], smooth_frames), 0)
    return out


def active_frames(frames: np.ndarray, detected: np.ndarray, frame_thresholds: np.ndarray,
                  smooth_frames: int) -> np.ndarray:
    """bool ``[frames, labels]``: where each label plays (``timeline_scores`` at its frame threshold)."""
    return timeline_scores(frames, detected, smooth_frames) >= np.asarray(frame_thresholds)


def median_over_time(frames: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Median of each column over ``size`` (odd) frames centred on each frame, edges repeated:
    ``scipy.ndimage.median_filter(frames, (size, 1), mode="nearest")`` without importing SciPy
    (0.56-0.69 s and 18 MB in every CLI run, measured with torch loaded). Computed ``chunk`` frames
    at a time, so the ``size``-fold window copies stay small for hours of frames."""
    if len(frames) == 0:
        return frames
    half = size // 2
    padded = np.concatenate([np.repeat(frames[:1], half, axis=0), frames, np.repeat(frames[-1:], half, axis=0)])
    smooth = np.empty_like(frames)
    for start in range(0, len(frames), chunk):
        stop = min(start + chunk, len(frames))
        windows = np.lib.stride_tricks.sliding_window_view(padded[start:stop + 2 * half], size, axis=0)
        smooth[start:stop] = np.median(windows, axis=-1)
    return smooth


def format_timeline(segments: Iterable[Mapping], duration: float, width: int = 60) -> str:
    """One row per label: a bar of ``width`` cells over ``duration`` seconds, '█' where it plays.

    ``segments`` are mappings with ``label``, ``start`` and ``end`` (seconds). Labels are listed in
    order of first entry. Returns the rows and a time axis, joined by newlines ('' if no segment).
    """
    rows: dict[str, list[str]] = {}
    cell = duration / width if duration > 0 else 1.0
    for seg in sorted(segments, key=lambda s: s["start"]):
        bar = rows.setdefault(seg["label"], [" "] * width)
        first = min(width - 1, int(seg["start"] / cell))
        last = max(first, min(width - 1, int(seg["end"] / cell - 1e-9)))
        bar[first:last + 1] = "█" * (last - first + 1)
    if not rows:
        return ""
    name_width = max(map(len, rows))
    lines = [f"{label:>{name_width}} |{''.join(bar)}|" for label, bar in rows.items()]
    axis = f"0 s{f'{duration:.1f} s':>{width - 1}}"
    lines.append(f"{'':>{name_width}}  {axis}")
    return "\n".join(lines)


def result_csv(result: Mapping) -> str:
    """An ``identify --json`` object as CSV (``kind,label,family,score,detected,start,end``): one
    ``instrument`` row per label with its score, highest first, then one ``segment`` row per timeline
    segment (``start`` and ``end`` in seconds)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["kind", "label", "family", "score", "detected", "start", "end"])
    for item in result["instruments"]:
        writer.writerow(["instrument", item["label"], item["family"], item["score"], int(item["detected"]), "", ""])
    families = {item["label"]: item["family"] for item in result["instruments"]}
    for seg in result["segments"]:
        writer.writerow(["segment", seg["label"], families.get(seg["label"], ""), seg["score"], 1, seg["start"], seg["end"]])
    return out.getvalue()
