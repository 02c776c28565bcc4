"""Figures of an evaluation report (matplotlib, no display needed); each function writes one PNG and
returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import librosa  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 90


def confusion(single: dict, path: Path, title: str = "Confusion matrix (row-normalised)") -> Path:
    names, matrix = single["confusion"]["labels"], np.array(single["confusion"]["normalised"])
    size = max(4.0, 0.32 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04)
    return _save(fig, path)


def average_precision_bars(per_label: dict, path: Path) -> Path:
    items = sorted(((k, v["ap"]) for k, v in per_label.items() if v["ap"] is not None), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(items) + 1)))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4477aa")
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision")
    ax.set_title("Average precision per label")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def roc(curves: dict, per_label: dict, path: Path, most: int = 12) -> Path:
    """ROC curves of the ``most`` labels with the most positives."""
    chosen = sorted(curves, key=lambda label: -per_label[label]["positives"])[:most]
    fig, ax = plt.subplots(figsize=(6, 5))
    for label in chosen:
        fpr, tpr = curves[label]
        ax.plot(fpr, tpr, label=f"{label} (AUC {per_label[label]['roc_auc']:.2f})", linewidth=1)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("ROC curves")
    ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def class_distribution(counts: dict, path: Path) -> Path:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * len(items) + 1), 3.5))
    ax.bar([k for k, _ in items], [v for _, v in items], color="#66aa55")
    ax.set_ylabel("examples")
    ax.set_title("Class distribution of the evaluated data")
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    return _save(fig, path)


def training_curves(runs: list[tuple[str, list[dict]]], path: Path) -> Path:
    """Training and validation loss (log scale) and validation mAP per epoch, one line each of the
    ``(name, epochs)`` runs (an ensemble's members; one unnamed run for a single network)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, history in runs:
        epochs, prefix = [h["epoch"] for h in history], f"{name}: " if name else ""
        left.plot(epochs, [h["train_loss"] for h in history], label=f"{prefix}train")
        left.plot(epochs, [h["valid_loss"] for h in history], label=f"{prefix}validation")
        right.plot(epochs, [h["valid_map"] for h in history], label=name or None,
                   color=None if name else "#aa3377")
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend(fontsize=7)
    if any(name for name, _ in runs):
        right.legend(fontsize=7)
    right.set_xlabel("epoch")
    right.set_ylabel("validation mAP")
    fig.suptitle("Training log")
    return _save(fig, path)


def learning_curve(points: list[dict], path: Path, metric: str = "valid_map") -> Path:
    """Score against the number of training examples (one line per model if points carry ``model``)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in sorted({p.get("model", "") for p in points}):
        mine = sorted((p for p in points if p.get("model", "") == model), key=lambda p: p["train_examples"])
        ax.plot([p["train_examples"] for p in mine], [p[metric] for p in mine], marker="o", label=model or None)
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("Learning curve")
    if any(p.get("model") for p in points):
        ax.legend(fontsize=7)
    return _save(fig, path)


def error_example(audio: np.ndarray, sample_rate: int, frames: np.ndarray, hop_seconds: float, labels: list[str],
                  title: str, path: Path, most: int = 6) -> Path:
    """Waveform, log-mel spectrogram and the predicted timeline (frame probabilities of the ``most``
    highest-scoring labels) of one recording, on one time axis."""
    duration = len(audio) / sample_rate
    top = np.argsort(-frames.max(axis=0))[:most]
    fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [1, 2, 1.4]})
    axes[0].plot(np.arange(len(audio)) / sample_rate, audio, linewidth=0.3, color="#333333")
    axes[0].set_ylabel("waveform")
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=sample_rate, n_mels=64), ref=np.max)
    axes[1].imshow(mel, origin="lower", aspect="auto", extent=(0, duration, 0, 64), cmap="magma")
    axes[1].set_ylabel("mel band")
    axes[2].imshow(frames[:, top].T, aspect="auto", vmin=0, vmax=1, cmap="Greens", interpolation="nearest",
                   extent=(0, len(frames) * hop_seconds, len(top) - 0.5, -0.5))
    axes[2].set_yticks(range(len(top)), [labels[i] for i in top], fontsize=7)
    axes[2].set_xlabel("seconds")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
