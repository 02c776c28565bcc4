"""Two models on the same real recordings, paired: is the candidate's lead more than these recordings can tell?

Usage: python benchmarks/paired_judge.py [--manifest build/holdout/MANIFEST.csv] BASELINE CANDIDATE
Scores each single-label recording of the manifest with both models (`timbrescope evaluate`'s top-1 rule: a top
label outside the manifest's labels is wrong) and prints Markdown: top-1 and top-1 averaged over labels for each, the
recordings only one of them gets right, McNemar's exact test on those (two-sided binomial, p of the split under no
difference) and 95 % paired bootstrap intervals of the candidate's lead (recordings drawn with replacement, both
models on the same draws), then the labels whose counts differ. It measures how far the recordings alone move the
comparison of these two trained models; the seed moves it as well (`seed_spread.py`), which no interval here holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from timbrescope.data.specs import open_dataset
from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import score_examples, single_label_predictions
from timbrescope.inference import Recognizer

DRAWS = 2000  # bootstrap draws (seed 0)


def hits(model: str, examples: list) -> tuple[np.ndarray, np.ndarray]:
    """The true label of each single-label recording ``[n]`` and whether ``model`` ranks it first ``[n]`` (bool)."""
    recognizer = Recognizer(model)
    scored, skipped = score_examples(recognizer, examples)
    if skipped:
        raise SystemExit(f"error: {len(skipped)} recordings could not be scored by {model}, e.g. {skipped[0]}")
    targets = sorted({t for ex in examples for t in ex.labels})
    truth, predicted, _, _ = single_label_predictions(scored, targets, list(recognizer.labels))
    return np.array(truth), np.array(truth) == np.array(predicted)


def mcnemar(baseline: np.ndarray, candidate: np.ndarray) -> tuple[int, int, float]:
    """Recordings only the baseline gets right, only the candidate does, and the exact two-sided McNemar p."""
    only_baseline = int(np.sum(baseline & ~candidate))
    only_candidate = int(np.sum(candidate & ~baseline))
    split = only_baseline + only_candidate
    return only_baseline, only_candidate, binomtest(only_candidate, split).pvalue if split else 1.0


def label_average(truth: np.ndarray, right: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Top-1 averaged over the labels present, for each draw of recording indices ``[draws, n]`` -> ``[draws]``."""
    onehot = (truth[:, None] == np.unique(truth)[None, :]).astype(float)  # [n, labels]
    counts = onehot[draws].sum(axis=1)  # [draws, labels]
    correct = (onehot * right[:, None])[draws].sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.where(counts > 0, correct / np.maximum(counts, 1), np.nan), axis=1)


def lead_intervals(truth: np.ndarray, baseline: np.ndarray, candidate: np.ndarray, draws: int = DRAWS,
                   seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % paired bootstrap intervals of the candidate's lead in top-1 and in top-1 averaged over labels."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(truth), size=(draws, len(truth)))
    top1 = candidate[index].mean(axis=1) - baseline[index].mean(axis=1)
    labels = label_average(truth, candidate, index) - label_average(truth, baseline, index)
    return {name: tuple(float(q) for q in np.percentile(lead, [2.5, 97.5]))
            for name, lead in (("top-1", top1), ("over labels", labels))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", default="build/holdout/MANIFEST.csv")
    parser.add_argument("baseline")
    parser.add_argument("candidate")
    args = parser.parse_args()
    examples = open_dataset(f"manifest:{args.manifest}").sample("all", None, 0)
    truth, baseline = hits(args.baseline, examples)
    _, candidate = hits(args.candidate, examples)
    whole = np.arange(len(truth))[None, :]
    names = Path(args.baseline).stem, Path(args.candidate).stem
    print(f"{len(truth)} single-label recordings of {args.manifest}\n")
    print("| model | top-1 | top-1, mean over labels |\n|---|---|---|")
    for name, right in zip(names, (baseline, candidate)):
        print(f"| {name} | {right.mean():.3f} | {label_average(truth, right, whole)[0]:.3f} |")
    only_baseline, only_candidate, p = mcnemar(baseline, candidate)
    intervals = lead_intervals(truth, baseline, candidate)
    print(f"\nRight for one model only: {names[0]} {only_baseline}, {names[1]} {only_candidate} "
          f"(McNemar's exact test, two-sided: p = {p:.3f}). {names[1]}'s lead, 95 % paired bootstrap over "
          f"recordings ({DRAWS} draws): top-1 {intervals['top-1'][0]:+.3f} to {intervals['top-1'][1]:+.3f}, "
          f"over labels {intervals['over labels'][0]:+.3f} to {intervals['over labels'][1]:+.3f}.\n")
    print("| label | recordings | right: baseline -> candidate |\n|---|---|---|")
    for label in np.unique(truth):
        mine = truth == label
        if baseline[mine].sum() != candidate[mine].sum():
            print(f"| {label} | {mine.sum()} | {baseline[mine].sum()} -> {candidate[mine].sum()} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/paired_judge.py"))
