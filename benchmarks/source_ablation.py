"""How much each sound source adds on real recordings: train one model (the default network, or a
quicker registry model as a proxy) on equal-size subsets of a rendered corpus's training split, each
without the clips that use one source and all with the same number of clips per number of
instruments, and score every run on real recordings (validation only) and on the rendered test bank.

Usage: python benchmarks/source_ablation.py --corpus DIR --realdev MANIFEST [--model random-forest]
       [--clips 5000] [--epochs 6] [--out DIR] [--sources "real SFZ libraries,freepats"]
Sources are groups of banks: fluidr3, musescore, freepats, stk (with --stk), hydrogen kits, festival voices,
the extra sources (A320U, Sonivox, AVL kits, mda EPiano/Piano, setBfree, YC-20, GrandOrgue pipes, amped DI
guitar, Sinsy, Debian recorded clips), and of `--sfz ../shared/trainbanks`: its first 7 SFZ libraries, the SFZ libraries added in
session 19, and its recorded clips. With --holdout MANIFEST each run is also scored on the held-out libraries.
Prints a Markdown table for docs/BENCHMARKS.md; realdev is never used to choose anything here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from timbrescope.data.specs import open_dataset
from timbrescope.errors import reported
from timbrescope.evaluate.evaluation import evaluate
from timbrescope.inference import Recognizer
from timbrescope.train.loop import TrainConfig, train

GM_AND_ENGINES = {"fluidr3", "musescore", "freepats", "stk"}
FIRST_LIBRARIES = {"salamander_grand_v16", "jlearman_martin_hd28", "karoryfer_killerbass", "versilian_pizz_strings",
                   "ixox_flute", "ganjo_banjo", "sonicpi_drumkit"}  # shared/trainbanks before session 19


# the sources of `synth --extra` (and --soundfont sonivox, --sinsy), by bank-name prefix
EXTRA_GROUPS = (("a320u", "A320U"), ("sonivox", "Sonivox"), ("avl_", "AVL kits"), ("mda_", "mda EPiano/Piano"),
                ("setbfree_", "setBfree"), ("yc20_", "YC-20"), ("grandorgue_", "GrandOrgue pipes"),
                ("guitar_", "amped DI guitar"), ("sinsy", "Sinsy"), ("lmms_samples", "Debian recorded clips"),
                ("sonic_pi_samples", "Debian recorded clips"), ("csoundqt_examples", "Debian recorded clips"),
                ("belofilms_guitar_strums", "Debian recorded clips"))


def source_of(part: dict) -> str:
    """The source group of a part of a corpus manifest row."""
    bank = part["bank"]
    if bank in GM_AND_ENGINES:
        return bank
    if bank.startswith("hydrogen_"):
        return "hydrogen kits"
    if bank.startswith("festival-"):
        return "festival voices"
    for prefix, group in EXTRA_GROUPS:
        if bank.startswith(prefix):
            return group
    if "recording" in part:
        return "recorded clips"
    return "first 7 SFZ libraries" if bank in FIRST_LIBRARIES else "new SFZ libraries"


def stratum_quota(pools: list[list], clips: int) -> dict[int, int]:
    """Clips to draw per number of instruments, the same for every pool: a pool without a big source
    is mostly clips with few instruments, and that mix (not the source) would otherwise decide how
    well a run does on single-instrument recordings."""
    strata = {len(ex.labels) for pool in pools for ex in pool}
    common = {k: min(sum(len(ex.labels) == k for ex in pool) for pool in pools) for k in strata}
    scale = min(1.0, clips / max(1, sum(common.values())))
    return {k: int(n * scale) for k, n in common.items()}


def sample_strata(pool: list, quota: dict[int, int]) -> list:
    """``quota[k]`` clips with k instruments drawn from ``pool`` (seeded), in corpus order."""
    rng = np.random.default_rng(0)
    chosen = []
    for k, n in sorted(quota.items()):
        stratum = [i for i, ex in enumerate(pool) if len(ex.labels) == k]
        chosen += [stratum[j] for j in rng.permutation(len(stratum))[:n]]
    return [pool[i] for i in sorted(chosen)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--realdev", required=True, help="data spec of the real recordings (all rows scored)")
    parser.add_argument("--clips", type=int, default=5000,
                        help="at most this many training clips per run (equal for all runs)")
    parser.add_argument("--model", default="timbrenet", help="registry name of the model trained in every run")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of a network (ignored by classical models)")
    parser.add_argument("--out", type=Path, default=Path("out/ablation"))
    parser.add_argument("--holdout", default=None, help="manifest of the held-out libraries (benchmarks/holdout_set.py)")
    parser.add_argument("--sources", default=None,
                        help="comma-separated source groups to leave out one at a time (default: every one)")
    args = parser.parse_args()
    dataset = open_dataset(args.corpus)
    train_examples = dataset.split("train")
    rest = [ex for ex in dataset.examples if ex.split != "train"]
    sources = {ex.id: {source_of(part) for part in ex.metadata["parts"]} for ex in train_examples}
    groups = sorted({s for found in sources.values() for s in found})
    conditions = ["nothing"] + (groups if args.sources is None else [g.strip() for g in args.sources.split(",")])
    pools = {removed: [ex for ex in train_examples if removed not in sources[ex.id]] for removed in conditions}
    for removed in [r for r, pool in pools.items() if not pool]:
        print(f"without {removed}: no training clip left, skipped", flush=True)
        del pools[removed]
    quota = stratum_quota(list(pools.values()), args.clips)
    cache: dict = {}
    rows = []
    for removed, pool in pools.items():
        chosen = sample_strata(pool, quota)
        started = time.perf_counter()
        checkpoint = args.out / f"{args.model}-without-{removed.replace(' ', '-')}.ckpt"
        summary = train(replace(dataset, examples=chosen + rest), checkpoint,
                        TrainConfig(model=args.model, epochs=args.epochs, patience=args.epochs),
                        feature_cache=cache)
        recognizer = Recognizer(checkpoint)
        real, _ = evaluate(args.realdev, recognizer, "all")
        test, _ = evaluate(dataset, recognizer, "test")
        held, _ = evaluate(f"manifest:{args.holdout}", recognizer, "all") if args.holdout else ({}, None)
        rows.append({"removed": removed, "pool": len(pool), "clips": len(chosen), "valid_map": summary["valid_map"],
                     "test_map": test.get("multi_label", {}).get("map"),
                     "real_top1": real.get("single_label", {}).get("accuracy"),
                     "real_family_top1": real.get("grouped", {}).get("single_label", {}).get("accuracy"),
                     "real_map": real.get("multi_label", {}).get("map"),
                     "holdout_top1": held.get("single_label", {}).get("accuracy"),
                     "holdout_family_top1": held.get("grouped", {}).get("single_label", {}).get("accuracy"),
                     "minutes": round((time.perf_counter() - started) / 60, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.model}, {sum(quota.values())} training clips per run (by number of instruments: {quota}; "
          f"{args.epochs} epochs for a network); "
          f"realdev: {args.realdev}\n")
    print("| without | clips available | validation mAP | test-bank mAP | held-out top-1 | held-out family top-1 "
          "| realdev top-1 | realdev family top-1 | realdev mAP |\n|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [_fmt(row[key]) for key in ("valid_map", "test_map", "holdout_top1", "holdout_family_top1",
                                            "real_top1", "real_family_top1", "real_map")]
        print(f"| {row['removed']} | {row['pool']:,} | " + " | ".join(cells) + " |")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/source_ablation.py"))
