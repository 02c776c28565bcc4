"""Decision thresholds from validation scores: pure array functions (training calls them at its end,
``timbrescope tune-thresholds`` on a trained model)."""

from __future__ import annotations

import numpy as np

from timbrescope.evaluate.metrics import THRESHOLD_CANDIDATES, best_thresholds
from timbrescope.timeline import timeline_scores


def tune_thresholds(clip_truth: np.ndarray, clip_scores: np.ndarray, mask: np.ndarray, frame_truth: np.ndarray,
                    frame_scores: np.ndarray, frame_known: np.ndarray, smooth_frames: int,
                    previous: tuple[np.ndarray, np.ndarray] | None = None,
                    clip_floor: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per-label thresholds ``[labels]``: clip thresholds with the best F1 of the clip scores ``[n, labels]``
    (``mask``: which targets are known), and frame thresholds with the best frame F1 of the timelines
    that ``identify`` draws (``timeline.timeline_scores`` of the labels each clip's scores detect under
    those clip thresholds, smoothed over ``smooth_frames``) over the clips whose frames are known
    (``frame_known [n]``; frames ``[n, T, labels]``). A label without sounding frames, or data without
    known frames, keeps its clip threshold for frames. With ``previous`` (a model's clip and frame
    thresholds, tuned again on other data), a label without positives keeps its previous clip
    threshold, and data without known frames keeps the previous frame thresholds. Clip thresholds are
    chosen from ``clip_floor`` up (candidates 0.05-0.95 in steps of 0.05), kept ones raised to it."""
    candidates = THRESHOLD_CANDIDATES[THRESHOLD_CANDIDATES >= clip_floor - 1e-9]
    clip_thresholds = np.maximum(best_thresholds(clip_truth, clip_scores, mask,
                                                 0.5 if previous is None else previous[0], candidates), clip_floor)
    if not frame_known.any():
        return clip_thresholds, (clip_thresholds.copy() if previous is None else
                                 np.asarray(previous[1], np.float32).copy())
    n_labels = clip_scores.shape[1]
    truth = (frame_truth[frame_known] >= 0.5).reshape(-1, n_labels)
    timelines = np.concatenate([timeline_scores(frames, scores >= clip_thresholds, smooth_frames)
                                for frames, scores in zip(frame_scores[frame_known], clip_scores[frame_known])])
    tuned = best_thresholds(truth, timelines)
    return clip_thresholds, np.where(truth.any(axis=0), tuned, clip_thresholds).astype(np.float32)
