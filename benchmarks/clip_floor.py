"""Detection precision / recall / F1 for clip thresholds tuned from a floor up (``DecisionRule.clip_floor``).

Usage: python benchmarks/clip_floor.py [--checkpoint CKPT] [--validation SPEC] [--real SPEC]
Scores the rendered validation split (default ``out/corpus-default``) and the held-out real libraries
(default ``manifest:build/holdout/MANIFEST.csv``, from ``benchmarks/holdout_set.py``) once with
``score_examples`` (the code behind ``timbrescope evaluate``), then for each floor 0.05-0.40 tunes the clip
thresholds on the validation scores from that floor up (``evaluate.thresholds.tune_thresholds``, as
``train`` and ``tune-thresholds --clip-floor`` do) and prints micro P / R / F1 of the detections on both,
and their mean F1 (the rule that picks the shipped floor, docs/notebook/EXPERIMENTS.md, session 21).
realdev is never an input. Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from timbrescope.data.specs import open_dataset
from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import score_examples
from timbrescope.evaluate.thresholds import tune_thresholds
from timbrescope.inference import Recognizer
from timbrescope.taxonomy import target_members

FLOORS = np.round(np.arange(0.05, 0.401, 0.05), 2)


def scored(recognizer: Recognizer, spec: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Clip scores ``[n, labels]`` and truth (bool, the same shape) of one split."""
    index = {label: i for i, label in enumerate(recognizer.labels)}
    result, _ = score_examples(recognizer, open_dataset(spec).sample(split, None, 0))
    truth = np.zeros(result.scores.shape, bool)
    for row, example in enumerate(result.examples):
        for member in (m for target in example.labels for m in target_members(target) if m in index):
            truth[row, index[member]] = True
    return result.scores, truth


def micro(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray) -> tuple[float, float, float]:
    """Micro (precision, recall, F1) of ``scores >= thresholds`` against ``truth``."""
    detected = scores >= thresholds
    right = (detected & truth).sum()
    precision, recall = right / max(detected.sum(), 1), right / max(truth.sum(), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--validation", default="out/corpus-default")
    parser.add_argument("--real", default="manifest:build/holdout/MANIFEST.csv")
    args = parser.parse_args()
    recognizer = Recognizer(args.checkpoint)
    valid_scores, valid_truth = scored(recognizer, args.validation, "validation")
    real_scores, real_truth = scored(recognizer, args.real, "all")
    no_frames = np.zeros((len(valid_scores), 1, valid_scores.shape[1]), np.float32)
    print(f"| clip floor | held-out P / R / F1 ({len(real_scores)}) | validation P / R / F1 ({len(valid_scores)}) | mean F1 |")
    print("|---|---|---|---|")
    print("| the model's thresholds | {:.3f} / {:.3f} / {:.3f} | {:.3f} / {:.3f} / {:.3f} | |".format(
        *micro(real_scores, real_truth, recognizer.threshold_arrays()[0]),
        *micro(valid_scores, valid_truth, recognizer.threshold_arrays()[0])))
    for floor in FLOORS:
        thresholds, _ = tune_thresholds(valid_truth.astype(np.float32), valid_scores, np.ones_like(valid_scores),
                                        no_frames, no_frames, np.zeros(len(valid_scores), bool), 1,
                                        clip_floor=float(floor))
        real, valid = micro(real_scores, real_truth, thresholds), micro(valid_scores, valid_truth, thresholds)
        print(f"| {floor:.2f} | {real[0]:.3f} / {real[1]:.3f} / {real[2]:.3f} | {valid[0]:.3f} / {valid[1]:.3f} / "
              f"{valid[2]:.3f} | {(real[2] + valid[2]) / 2:.3f} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/clip_floor.py"))
