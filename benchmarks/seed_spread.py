"""How far the seed alone moves a real-audio judge: each member of ensemble checkpoints scored on its own.

Usage: python benchmarks/seed_spread.py [--manifest build/holdout/MANIFEST.csv] CKPT [CKPT ...]
Each CKPT is an `ensemble` checkpoint whose members are one recipe on one corpus with different seeds (`[model]
members = N`). Every member is written out as a checkpoint of its own, with the ensemble's thresholds (top-1 does
not depend on them), and scored like the ensemble by `timbrescope evaluate`'s code on the manifest's single-label
recordings: top-1 and top-1 averaged over labels. Prints Markdown: one row per checkpoint, then the spread of a
single network between seeds (the root-mean-square difference of two members over sqrt 2, over all checkpoints'
member pairs), which sets the scale of a rule's margins (docs/notebook/EXPERIMENTS.md, session 56).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import evaluate
from timbrescope.inference import Recognizer
from timbrescope.models.checkpoint import load_checkpoint, save_checkpoint
from timbrescope.timeline import DecisionRule


def member_checkpoints(path: Path, out: Path) -> list[Path]:
    """Each member of the ensemble at ``path`` as a checkpoint in ``out``, with the ensemble's thresholds and rule."""
    model, meta = load_checkpoint(path)
    if meta["model"] != "ensemble":
        raise SystemExit(f"error: {path} is a {meta['model']} checkpoint, not an ensemble")
    written = []
    for i, (member, spec) in enumerate(zip(model.members, model.config["members"]), 1):
        written.append(out / f"{path.stem}-member{i}.ckpt")
        save_checkpoint(written[-1], member, spec["model"], meta["thresholds"], meta["frame_thresholds"], {},
                        DecisionRule.from_dict(meta.get("decision")))
    return written


def top1(model: Path, manifest: str) -> tuple[float, float]:
    """Top-1 of ``model`` on the manifest's single-label recordings, and top-1 averaged over their labels."""
    metrics, _ = evaluate(f"manifest:{manifest}", Recognizer(model), "all")
    single = metrics["single_label"]
    return single["accuracy"], single["macro"]["recall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", default="build/holdout/MANIFEST.csv")
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args()
    differences = []  # [(top-1, label average)] of every two members of one checkpoint
    print(f"Members scored alone on {args.manifest}\n")
    print("| checkpoint | members: top-1 / over labels | the ensemble |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for path in args.checkpoints:
            members = [top1(member, args.manifest) for member in member_checkpoints(path, Path(folder))]
            together = top1(path, args.manifest)
            differences += [(a[0] - b[0], a[1] - b[1]) for a, b in itertools.combinations(members, 2)]
            print(f"| {path.stem} | " + ", ".join(f"{t:.3f} / {m:.3f}" for t, m in members)
                  + f" | {together[0]:.3f} / {together[1]:.3f} |")
    spread = np.sqrt(np.mean(np.square(differences), axis=0) / 2)
    print(f"\nA single network's standard deviation between seeds, from {len(differences)} member pairs: top-1 "
          f"{spread[0]:.4f}, over labels {spread[1]:.4f}; of a difference between two averages of two independent "
          f"networks, about the same (twice the variance of one average, half a network's each).")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/seed_spread.py"))
