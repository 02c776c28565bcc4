"""Detection precision/recall/F1 when a label must also reach FLOOR x the recording's top clip score.

Usage: python benchmarks/detection_floor.py [--checkpoint CKPT] [--data SPEC:SPLIT ...]
Scores each dataset split with `score_examples` (the code behind `timbrescope evaluate`) and prints,
for floors 0-1, micro precision / recall / F1 of the detections (clip score >= the label's threshold
and >= FLOOR x the top score). Defaults: the held-out libraries (`benchmarks/holdout_set.py`) and the
rendered validation splits of the two corpora. Prints Markdown (docs/notebook/EXPERIMENTS.md, session 20).
"""

from __future__ import annotations

import argparse

import numpy as np

from timbrescope.data.specs import open_dataset
from timbrescope.evaluate.evaluation import score_examples
from timbrescope.inference import Recognizer
from timbrescope.taxonomy import target_members

DEFAULT_DATA = ["manifest:build/holdout/MANIFEST.csv:all", "out/corpus-default:validation",
                "out/corpus-notes:validation"]
FLOORS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def detection(scores: np.ndarray, wanted: list[set[int]], thresholds: np.ndarray, floor: float) -> tuple[float, ...]:
    """Micro (precision, recall, F1) of the labels detected in ``scores [n, labels]`` against ``wanted``."""
    on = (scores >= thresholds) & (scores >= floor * scores.max(axis=1, keepdims=True))
    right = sum(len(set(np.flatnonzero(row)) & w) for row, w in zip(on, wanted))
    precision = right / on.sum() if on.sum() else 0.0
    recall = right / sum(map(len, wanted))
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA, metavar="SPEC:SPLIT")
    args = parser.parse_args()
    recognizer = Recognizer(args.checkpoint)
    index = {label: i for i, label in enumerate(recognizer.labels)}
    thresholds = recognizer.threshold_arrays()[0]
    sets = {}
    for item in args.data:
        spec, split = item.rsplit(":", 1)
        scored, _ = score_examples(recognizer, open_dataset(spec).sample(split, None, 0))
        wanted = [{index[m] for t in ex.labels for m in target_members(t) if m in index} for ex in scored.examples]
        sets[item] = (scored.scores, wanted)
    print("| floor | " + " | ".join(f"{name} P / R / F1" for name in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for floor in FLOORS:
        print(f"| {floor:.1f} | " + " | ".join("{:.3f} / {:.3f} / {:.3f}".format(*detection(*sets[name], thresholds, floor))
                                                for name in sets) + " |")


if __name__ == "__main__":
    main()
