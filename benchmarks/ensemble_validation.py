"""How much an ensemble of trained models gains over its members on one split (validation by default).

Usage: python benchmarks/ensemble_validation.py --data CORPUS [--split validation] CKPT [CKPT ...]
Scores every clip of the split with each model through `Recognizer.identify` (the product's own
path), averages the clip probabilities (over the labels every model has), and prints clip mAP and single-instrument top-1 of each
member and of the average as Markdown: models already trained, averaged without training them again (a recipe
trains a shipped average with `[model] members`).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from timbrescope.data.specs import open_dataset
from timbrescope.data.targets import clip_target
from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import score_examples
from timbrescope.evaluate.metrics import mean_average_precision
from timbrescope.inference import Recognizer


def figures(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Clip mAP and top-1 accuracy on the single-instrument clips of ``truth [n, labels]``."""
    single = truth.sum(axis=1) == 1
    top1 = float((scores[single].argmax(axis=1) == truth[single].argmax(axis=1)).mean())
    return mean_average_precision(truth, scores), top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    examples = open_dataset(args.data).sample(args.split, None, 0)
    recognizers = [Recognizer(path) for path in args.models]
    labels = [label for label in recognizers[0].labels if all(label in r.labels for r in recognizers)]
    if len(labels) < max(len(r.labels) for r in recognizers):
        print(f"(scored on the {len(labels)} labels every model has)\n")
    all_scores = []
    for recognizer in recognizers:
        scored, skipped = score_examples(recognizer, examples)
        if skipped:
            raise SystemExit(f"error: {len(skipped)} clips could not be scored, e.g. {skipped[0]}")
        all_scores.append(scored.scores[:, [recognizer.labels.index(label) for label in labels]])
    truth = np.stack([clip_target(ex.labels, labels) for ex in examples])
    print(f"{len(examples)} clips of {args.data} [{args.split}]\n")
    print("| model | clip mAP | single-instrument top-1 |\n|---|---|---|")
    for path, scores in [*zip(args.models, all_scores), (f"mean of {len(args.models)}", np.mean(all_scores, axis=0))]:
        print("| {} | {:.3f} | {:.3f} |".format(path, *figures(truth, scores)))


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/ensemble_validation.py"))
