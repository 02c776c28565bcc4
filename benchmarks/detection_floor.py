"""Detection precision/recall/F1 when a label must also reach FLOOR x the recording's top clip score.

Usage: python benchmarks/detection_floor.py [--checkpoint CKPT] [--data SPEC:SPLIT ...]
Scores each dataset split with `score_examples` (the code behind `timbrescope evaluate`) and prints,
for floors 0-1, micro precision / recall / F1 of the detections (clip score >= the label's threshold
and >= FLOOR x the top score). Defaults: the held-out libraries (`benchmarks/holdout_set.py`) and the
rendered validation splits of the two corpora. Prints Markdown (docs/notebook/EXPERIMENTS.md, session 20).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from clip_floor import micro, scored  # benchmarks/clip_floor.py: one split's scores and truth, micro P / R / F1
from timbrescope.errors import reported
from timbrescope.inference import Recognizer

DEFAULT_DATA = ["manifest:build/holdout/MANIFEST.csv:all", "out/corpus-default:validation",
                "out/corpus-notes:validation"]
FLOORS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA, metavar="SPEC:SPLIT")
    args = parser.parse_args()
    recognizer = Recognizer(args.checkpoint)
    thresholds = recognizer.threshold_arrays()[0]
    sets = {item: scored(recognizer, *item.rsplit(":", 1)) for item in args.data}
    print("| floor | " + " | ".join(f"{name} P / R / F1" for name in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for floor in FLOORS:
        cells = []
        for scores, truth in sets.values():  # a label must reach its threshold and FLOOR x the top score
            cells.append("{:.3f} / {:.3f} / {:.3f}".format(
                *micro(scores, truth, np.maximum(thresholds, floor * scores.max(axis=1, keepdims=True)))))
        print(f"| {floor:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/detection_floor.py"))
