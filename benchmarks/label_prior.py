"""Top-1 on single-label real recordings, raw and with each label's score divided by its training share.

Usage: python benchmarks/label_prior.py --manifest M.csv --checkpoint CKPT --corpus DIR [--exclude-banks B1,B2]
       [--apart L1,L2]
The share of a label is the fraction of the corpus's train clips (less those of ``--exclude-banks``,
as `timbrescope train --exclude-banks` leaves them out) that hold it: a fixed rule, nothing fitted
to the recordings. Prints top-1 over all rows, over the rows of ``--apart`` labels and over the
rest, to show how much of a model's real-audio error is its label prior (EXPERIMENTS.md, session 9).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

from timbrescope.data.specs import open_dataset
from timbrescope.errors import reported
from timbrescope.inference import Recognizer
from timbrescope.train.loop import without_banks


def label_shares(corpus: str, exclude_banks: tuple[str, ...]) -> dict[str, float]:
    """Fraction of the train clips that hold each label."""
    examples = without_banks(open_dataset(corpus).split("train"), exclude_banks)
    counts = Counter(label for ex in examples for label in set(ex.labels))
    return {label: n / len(examples) for label, n in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--corpus", required=True, help="the corpus the model trained on")
    parser.add_argument("--exclude-banks", default="", help="as given to train")
    parser.add_argument("--apart", default="", help="labels reported apart from the rest")
    args = parser.parse_args()
    shares = label_shares(args.corpus, tuple(filter(None, args.exclude_banks.split(","))))
    apart = set(filter(None, args.apart.split(",")))
    manifest = Path(args.manifest)
    recognizer = Recognizer(args.checkpoint)
    hits = {group: Counter() for group in ("all", "apart", "rest")}
    for row in csv.DictReader(open(manifest)):
        scores = {d["label"]: d["score"] for d in recognizer.identify(str(manifest.parent / row["path"])).instruments}
        raw = max(scores, key=scores.get)
        divided = max(scores, key=lambda label: scores[label] / shares.get(label, 1.0))
        for group in ("all", "apart" if row["labels"] in apart else "rest"):
            hits[group].update(rows=1, raw=raw == row["labels"], divided=divided == row["labels"])
    print("| recordings | n | top-1 raw | top-1 prior-divided |\n|---|---|---|---|")
    for group, count in hits.items():
        if count["rows"]:
            print(f"| {group} | {count['rows']} | {count['raw'] / count['rows']:.3f} "
                  f"| {count['divided'] / count['rows']:.3f} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/label_prior.py"))
