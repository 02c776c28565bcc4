"""Metrics, all computed by scikit-learn; edge cases (a label never present, a model predicting nothing,
targets left unannotated) give defined results — ``None`` in JSON where a value does not exist — never
NaN crashes.

Inputs are ``y_true``/``y_pred`` (0/1) and ``y_score`` of shape ``[examples, labels]``; ``mask`` marks
the entries whose truth is known (OpenMIC-2018 is partially labelled); metrics use known entries only.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, f1_score, hamming_loss,
                             label_ranking_average_precision_score, precision_recall_fscore_support, roc_auc_score,
                             roc_curve)


def average_precisions(y_true: np.ndarray, y_score: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Average precision per label ``[labels]`` over the examples where the label is known (``mask``,
    all by default); NaN for a label without a known positive."""
    mask = _mask(y_true, mask)
    out = np.full(y_true.shape[1], np.nan)
    for j in range(y_true.shape[1]):
        known = mask[:, j]
        if y_true[known, j].sum() > 0:
            out[j] = average_precision_score(y_true[known, j], y_score[known, j])
    return out


def mean_average_precision(y_true: np.ndarray, y_score: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Macro mean of ``average_precisions`` over labels with a positive; NaN if no label has one."""
    ap = average_precisions(y_true, y_score, mask)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")


THRESHOLD_CANDIDATES = np.linspace(0.05, 0.95, 19)  # the thresholds tuning chooses among


def best_thresholds(y_true: np.ndarray, y_score: np.ndarray, mask: np.ndarray | None = None,
                    default: float | np.ndarray = 0.5,
                    candidates: np.ndarray = THRESHOLD_CANDIDATES) -> np.ndarray:
    """Per-label threshold maximising F1 over known examples; ``default`` (one value, or one per label)
    for labels without positives."""
    mask = _mask(y_true, mask)
    thresholds = np.broadcast_to(np.asarray(default, np.float32), (y_true.shape[1],)).copy()
    for j in range(y_true.shape[1]):
        known = mask[:, j]
        if y_true[known, j].sum() > 0:
            scores = [f1_score(y_true[known, j], y_score[known, j] >= t, zero_division=0.0) for t in candidates]
            thresholds[j] = candidates[int(np.argmax(scores))]
    return thresholds


def multi_label_metrics(labels: list[str], y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray,
                        mask: np.ndarray | None = None) -> dict:
    """mAP, per-label AP and ROC AUC, micro/macro/samples F1 at the given decisions, exact-match ratio,
    Hamming loss and label-ranking average precision. With a partial ``mask``, F1 micro is over known
    entries, F1 macro over each label's known examples, and the example-wise metrics (samples F1, exact
    match, Hamming loss, LRAP) over the fully annotated examples only."""
    mask = _mask(y_true, mask)
    y_true, y_pred = y_true.astype(int), y_pred.astype(int)
    ap = average_precisions(y_true, y_score, mask)
    auc = np.full(len(labels), np.nan)
    per_label_f1 = np.zeros(len(labels))
    for j in range(len(labels)):
        known = mask[:, j]
        if len(set(y_true[known, j])) == 2:
            auc[j] = roc_auc_score(y_true[known, j], y_score[known, j])
        per_label_f1[j] = f1_score(y_true[known, j], y_pred[known, j], labels=[0, 1], zero_division=0.0)
    full = mask.all(axis=1)
    t, p, s = y_true[full], y_pred[full], y_score[full]
    present = mask.any(axis=0) & ((y_true * mask).sum(axis=0) > 0)
    return {
        "examples": int(len(y_true)), "fully_annotated_examples": int(full.sum()),
        "map": _num(np.nanmean(ap) if np.isfinite(ap).any() else math.nan),
        "roc_auc_macro": _num(np.nanmean(auc) if np.isfinite(auc).any() else math.nan),
        "f1_micro": _num(f1_score(y_true[mask], y_pred[mask], zero_division=0.0)),
        "f1_macro": _num(per_label_f1[present].mean() if present.any() else math.nan),
        "f1_samples": _num(_samples_f1(t, p) if len(t) else math.nan),
        "exact_match": _num(accuracy_score(t, p) if len(t) else math.nan),
        "hamming_loss": _num(hamming_loss(t, p) if len(t) else math.nan),
        "lrap": _num(label_ranking_average_precision_score(t, s) if len(t) and t.sum() else math.nan),
        "per_label": {label: {"positives": int(y_true[mask[:, j], j].sum()), "known": int(mask[:, j].sum()),
                              "ap": _num(ap[j]), "roc_auc": _num(auc[j]), "f1": _num(per_label_f1[j])}
                      for j, label in enumerate(labels)},
    }


def roc_curves(labels: list[str], y_true: np.ndarray, y_score: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Label -> (false-positive rates, true-positive rates) for labels with known positives and negatives."""
    mask = _mask(y_true, mask)
    curves = {}
    for j, label in enumerate(labels):
        known = mask[:, j]
        if len(set(y_true[known, j].astype(int))) == 2:
            fpr, tpr, _ = roc_curve(y_true[known, j], y_score[known, j])
            curves[label] = (fpr, tpr)
    return curves


def single_label_metrics(truth: list[str], predicted: list[str], top3_hits: list[bool], classes: list[str]) -> dict:
    """Accuracy, top-3 accuracy, per-class precision/recall/F1 with micro, macro and weighted averages,
    and the confusion matrix (counts and row-normalised) over ``classes`` (true classes first, then any
    other predicted class)."""
    names = list(classes) + sorted(set(predicted) - set(classes))
    with warnings.catch_warnings():  # one class only: scikit-learn warns, and its result is right
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        p, r, f, support = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0.0)
        averages = {}
        for average in ("micro", "macro", "weighted"):
            ap, ar, af, _ = precision_recall_fscore_support(truth, predicted, labels=classes, average=average,
                                                             zero_division=0.0)
            averages[average] = {"precision": _num(ap), "recall": _num(ar), "f1": _num(af)}
        counts = confusion_matrix(truth, predicted, labels=names)
    rows = counts.sum(axis=1, keepdims=True)
    return {
        "examples": len(truth), "accuracy": _num(accuracy_score(truth, predicted)),
        "top3_accuracy": _num(np.mean(top3_hits)), **averages,
        "per_class": {c: {"precision": _num(p[i]), "recall": _num(r[i]), "f1": _num(f[i]), "support": int(support[i])}
                      for i, c in enumerate(classes)},
        "confusion": {"labels": names, "counts": counts.tolist(),
                      "normalised": np.round(np.divide(counts, np.maximum(rows, 1)), 4).tolist()},
    }


def frame_metrics(labels: list[str], frames_true: np.ndarray, frames_pred: np.ndarray, hop_seconds: float,
                  clip_ids: np.ndarray, segment_seconds: float = 1.0) -> dict:
    """Frame-level F1 (every output frame) and segment-based F1 (sed_eval's definition: a label is active
    in a ``segment_seconds`` segment of a clip if any of its frames is), micro and per label.
    ``frames_*`` are ``[frames, labels]`` of all clips stacked; ``clip_ids`` ``[frames]`` tells their clip."""
    per_segment = max(1, round(segment_seconds / hop_seconds))
    seg_true, seg_pred = [], []
    for clip in np.unique(clip_ids):
        rows = np.flatnonzero(clip_ids == clip)
        for start in range(0, len(rows), per_segment):
            part = rows[start:start + per_segment]
            seg_true.append(frames_true[part].max(axis=0))
            seg_pred.append(frames_pred[part].max(axis=0))
    seg_true, seg_pred = np.array(seg_true, int), np.array(seg_pred, int)
    frames_true, frames_pred = frames_true.astype(int), frames_pred.astype(int)
    return {
        "hop_seconds": hop_seconds, "segment_seconds": segment_seconds,
        "frame_f1_micro": _num(f1_score(frames_true.ravel(), frames_pred.ravel(), zero_division=0.0)),
        "segment_f1_micro": _num(f1_score(seg_true.ravel(), seg_pred.ravel(), zero_division=0.0)),
        "per_label": {label: {"frame_f1": _num(f1_score(frames_true[:, j], frames_pred[:, j], labels=[0, 1],
                                                                zero_division=0.0)),
                              "segment_f1": _num(f1_score(seg_true[:, j], seg_pred[:, j], labels=[0, 1],
                                                          zero_division=0.0))}
                      for j, label in enumerate(labels) if frames_true[:, j].any()},
    }


def _samples_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Example-wise F1; a never-positive padding column keeps one-label data multi-label for scikit-learn."""
    pad = ((0, 0), (0, 1))
    return f1_score(np.pad(y_true, pad), np.pad(y_pred, pad), average="samples", zero_division=0.0)


def _mask(y_true: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return np.ones(y_true.shape, bool) if mask is None else np.asarray(mask, bool)


def _num(value: float) -> float | None:
    """A JSON-safe number: None where the metric does not exist (NaN)."""
    value = float(value)
    return None if math.isnan(value) else round(value, 5)
