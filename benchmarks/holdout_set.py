"""Build the real validation set of held-out recorded libraries (``timbrescope.synth.holdout``).

Usage: python benchmarks/holdout_set.py [--trainbanks ../shared/trainbanks] [--out build/holdout]
Then score a model on it: python benchmarks/realdev_accuracy.py --manifest build/holdout/MANIFEST.csv
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from timbrescope.errors import reported
from timbrescope.synth.holdout import build_holdout_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trainbanks", type=Path, default=Path("../shared/trainbanks"))
    parser.add_argument("--out", type=Path, default=Path("build/holdout"))
    args = parser.parse_args()
    rows = build_holdout_set(args.trainbanks, args.out)
    print(f"{len(rows)} recordings in {args.out / 'MANIFEST.csv'}\n\n| bank | label | recordings |\n|---|---|---|")
    for (bank, label), count in sorted(Counter((row["source"], row["labels"]) for row in rows).items()):
        print(f"| {bank} | {label} | {count} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/holdout_set.py"))
