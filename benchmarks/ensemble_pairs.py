"""Top-1 of models averaged, on a manifest of single-label recordings (held-out libraries, real notes).

Usage: python benchmarks/ensemble_pairs.py [--manifest build/npm-banks/MANIFEST-264.csv] CKPT CKPT [CKPT ...]
(without ``--manifest``: realdev, reported only, as ``realdev_accuracy.py``).
Scores each recording once per model (`Recognizer.identify`, as `realdev_accuracy.py`), averages the clip
scores of a set of models over the union of their labels (a label only one model has keeps that model's score)
and scores members and sets with the evaluator's top-1 rule. A clip score is the maximum over 5-s windows, so a set
here is the mean of maxima, where an `ensemble` model file takes the maximum of its windows' means: the two agree on
recordings of one window (5 s or less) and may differ by a little on longer ones. Prints Markdown: each pair, its
gain over its members' mean, the mean gain, the mean top-1 of sets of 1, 2, 4 and all models (every set, or
``SUBSETS`` random ones): how far averaging goes, and each label's top-1 for all models averaged. Models already trained,
averaged without training them again (a recipe trains a shipped average with `[model] members`).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

import numpy as np

from timbrescope.data.specs import open_dataset
from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import Scored, score_examples, single_label_predictions
from timbrescope.inference import Recognizer

SUBSETS = 200  # at most this many sets of one size are scored (drawn at random, seed 0, when there are more)


def subsets(names: list[str], size: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Every set of ``size`` of ``names`` (in order), or ``SUBSETS`` random ones when there are more."""
    every = list(itertools.combinations(names, size))
    if len(every) <= SUBSETS:
        return every
    return [tuple(sorted(rng.choice(names, size, replace=False), key=names.index)) for _ in range(SUBSETS)]


def names_of(paths: list[str]) -> list[str]:
    """Each model's name in the tables: its file's stem, or the path as given where two stems are the same."""
    stems = [Path(path).stem for path in paths]
    if len(set(paths)) < len(paths):
        raise SystemExit("error: a model is named twice")
    return [stem if stems.count(stem) == 1 else path for stem, path in zip(stems, paths)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", default="../shared/realdev/MANIFEST.csv")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    named = names_of(args.models)
    examples = open_dataset(f"manifest:{args.manifest}").sample("all", None, 0)
    recognizers = [Recognizer(path) for path in args.models]
    labels = sorted({label for r in recognizers for label in r.labels})
    scores = {}
    for path, recognizer, name in zip(args.models, recognizers, named):
        scored, skipped = score_examples(recognizer, examples)
        if skipped:
            raise SystemExit(f"error: {len(skipped)} recordings could not be scored, e.g. {skipped[0]}")
        full = np.full((len(examples), len(labels)), np.nan)
        full[:, [labels.index(label) for label in recognizer.labels]] = scored.scores
        scores[name] = full
    targets = sorted({t for ex in examples for t in ex.labels})

    def hits(*names: str) -> tuple[np.ndarray, np.ndarray]:
        """The true label of each single-label recording, and whether the names' averaged scores rank it first."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a label no member has: all-NaN column
            mean = np.nan_to_num(np.nanmean([scores[n] for n in names], axis=0), nan=-1.0)
        truth, predicted, _, _ = single_label_predictions(Scored(examples, mean, []), targets, labels)
        return np.array(truth), np.array(truth) == np.array(predicted)

    def top1(*names: str) -> float:
        return float(hits(*names)[1].mean())

    alone = {name: top1(name) for name in scores}
    print(f"{len(examples)} recordings of {args.manifest}\n")
    print("| model | top-1 |\n|---|---|")
    for name, value in alone.items():
        print(f"| {name} | {value:.3f} |")
    pairs = {(a, b): top1(a, b) for a, b in itertools.combinations(scores, 2)}
    rows = sorted(((value, value - (alone[a] + alone[b]) / 2, a, b) for (a, b), value in pairs.items()),
                  reverse=True)
    print("\n| pair | top-1 | gain over the members' mean |\n|---|---|---|")
    for pair, gain, a, b in rows:
        print(f"| {a} + {b} | {pair:.3f} | {gain:+.3f} |")
    print(f"\nmean gain over {len(rows)} pairs: {np.mean([r[1] for r in rows]):+.3f} "
          f"({min(r[1] for r in rows):+.3f} to {max(r[1] for r in rows):+.3f})")
    names, rng = list(scores), np.random.default_rng(0)
    print("\n| models averaged | sets | mean top-1 | range |\n|---|---|---|---|")
    for size in sorted(size for size in {1, 2, 4, len(names)} if size <= len(names)):
        values = [top1(*chosen) for chosen in subsets(names, size, rng)]
        print(f"| {size} | {len(values)} | {np.mean(values):.3f} | {min(values):.3f}-{max(values):.3f} |")
    truth, together = hits(*names)
    apart = np.mean([hits(name)[1] for name in names], axis=0)  # [recordings]: share of models right alone
    print(f"\n| label | recordings | top-1, all {len(names)} averaged | top-1, mean of one model |\n|---|---|---|---|")
    for label in sorted(set(truth)):
        rows = truth == label
        print(f"| {label} | {rows.sum()} | {together[rows].mean():.2f} | {apart[rows].mean():.2f} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/ensemble_pairs.py"))
