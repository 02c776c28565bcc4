"""Instrument and family top-1 accuracy on real recordings, per label, with the confusion matrix and the model labels
behind its `other` column.

Usage: python benchmarks/realdev_accuracy.py [--manifest ../shared/realdev/MANIFEST.csv] [--checkpoint CKPT]
Scores every row of the manifest (single-label files; drum-kit pieces count as `drum_kit` through the
taxonomy) with `timbrescope.evaluate`, the code behind `timbrescope evaluate`. A top label outside the
manifest's labels counts as wrong (open set); "mean over labels" is each label's top-1 (recall) averaged, so that a
label with many recordings weighs as much as one with few. Prints Markdown for docs/BENCHMARKS.md. These recordings
are for validation only: nothing is trained, tuned or chosen on them.
"""

from __future__ import annotations

import argparse
import sys
import time

from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import evaluate
from timbrescope.inference import Recognizer

BARS = {"instrument": 0.60, "family": 0.75, "detection": 0.70}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", default="../shared/realdev/MANIFEST.csv")
    parser.add_argument("--checkpoint", default=None, help="checkpoint or .onnx (default: the shipped model)")
    args = parser.parse_args()
    recognizer = Recognizer(args.checkpoint)
    started = time.perf_counter()
    metrics, _ = evaluate(f"manifest:{args.manifest}", recognizer, "all")
    seconds = time.perf_counter() - started
    single, family = metrics["single_label"], metrics["grouped"]["single_label"]
    print(f"model `{recognizer.model_path.name}`, {single['examples']} recordings of {args.manifest}, "
          f"{seconds:.0f} s\n")
    print("| view | top-1 | top-3 | top-1, mean over labels | bar |\n|---|---|---|---|---|")
    for view, result in (("instrument", single), ("family", family)):
        print(f"| {view} | {result['accuracy']:.3f} | {result.get('top3_accuracy', float('nan')):.3f} "
              f"| {result['macro']['recall']:.3f} "
              f"| {BARS[view]:.2f} ({'met' if result['accuracy'] >= BARS[view] else 'not met'}) |")
    detection = metrics["detection"]
    print(f"\nDetection at the model's clip thresholds (every label of the model): precision "
          f"{detection['precision']:.3f}, recall {detection['recall']:.3f}, **micro-F1 {detection['f1']:.3f}** "
          f"(bar {BARS['detection']:.2f}, {'met' if detection['f1'] >= BARS['detection'] else 'not met'}); "
          f"{detection['detections']} detections for {detection['labels']} labels")
    print("\n| label | recordings | top-1 (recall) | precision |\n|---|---|---|---|")
    for label, row in single["per_class"].items():
        print(f"| {label} | {row['support']} | {row['recall']:.2f} | {row['precision']:.2f} |")
    confusion = single["confusion"]
    labels = confusion["labels"]
    print("\nConfusion (rows: true label, columns: top label; `other`: a label outside the manifest's)\n")
    print("| true \\ top | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for label, counts in zip(labels, confusion["counts"]):
        if sum(counts):
            print(f"| {label} | " + " | ".join(str(c) if c else "." for c in counts) + " |")
    if single["outside"]:
        print("\nThe model's top labels behind `other`: " + "; ".join(
            f"{target}: " + ", ".join(f"{label} {n}" for label, n in found.items())
            for target, found in single["outside"].items()))


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/realdev_accuracy.py"))
