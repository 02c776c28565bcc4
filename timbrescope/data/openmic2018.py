"""OpenMIC-2018 (Humphrey, Durand & McFee, 2018): 20,000 ten-second clips, 20 partially labelled classes.

Format facts (from https://zenodo.org/record/1432913, the cosmir/openmic-2018 README and mirdata's
loader): ``openmic-2018-aggregated-labels.csv`` with the header ``sample_key,instrument,relevance,
num_responses`` (relevance in [0, 1]; > 0.5 means present), ``class-map.json`` (instrument -> index),
``partitions/split01_train.csv`` and ``split01_test.csv`` (one sample key per line, no header),
``audio/<first 3 characters of the key>/<sample_key>.ogg`` and ``openmic-2018.npz`` (``X`` VGGish
features ``[n, 10, 128]``, ``Y_true``, ``Y_mask``, ``sample_key``). Each clip is annotated for a few
classes only: the others are **unknown** (``Example.known``), masked in training and evaluation, never
negatives. The npz's time-averaged VGGish features are kept as ``Example.features`` when present.
Validation is carved from split01_train.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from timbrescope.data.dataset import Dataset, Example, carve_split, mapped_target, require_files

NAME = "openmic2018"
TITLE = "OpenMIC-2018"
URL = "https://zenodo.org/record/1432913"
LICENCE = "CC BY 4.0"
CITATION = "Humphrey, Durand, McFee: OpenMIC-2018: An Open Dataset for Multiple Instrument Recognition, ISMIR 2018"
EXAMPLE = "timbrescope evaluate --data openmic2018:~/data/openmic-2018 --out report/"
LABELS = "openmic-2018-aggregated-labels.csv"
PARTITIONS = ("partitions/split01_train.csv", "partitions/split01_test.csv")
FEATURES = "openmic-2018.npz"


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    require_files(TITLE, root, [LABELS, *PARTITIONS], URL)
    relevance: dict[str, dict[str, float]] = defaultdict(dict)
    problems = []
    with open(root / LABELS, newline="", encoding="utf-8") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            try:
                target = mapped_target(NAME, row["instrument"].strip().replace(" ", "_"))
                if target is None:
                    raise ValueError(f"unknown instrument {row['instrument']!r}")
                scores = relevance[row["sample_key"]]
                scores[target] = max(scores.get(target, 0.0), float(row["relevance"]))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{LABELS}, line {number}: bad row ({exc})")
    features = _features(root / FEATURES) if (root / FEATURES).is_file() else {}
    examples = []
    for partition in PARTITIONS:
        keys = [line.strip() for line in (root / partition).read_text().splitlines() if line.strip()]
        for key in keys:
            scores = relevance.get(key, {})
            split = "test" if partition.endswith("test.csv") else carve_split(key)
            examples.append(Example(
                id=key, split=split, labels=tuple(sorted(t for t, r in scores.items() if r > 0.5)),
                path=root / "audio" / key[:3] / f"{key}.ogg", known=tuple(sorted(scores)),
                features=features.get(key), metadata={"relevance": scores}))
    return Dataset(TITLE, root, examples, CITATION, LICENCE, URL, problems)


def _features(path: Path) -> dict[str, np.ndarray]:
    """Sample key -> time-averaged VGGish features ``[128]``."""
    with np.load(path, allow_pickle=False) as data:
        return {str(key): x.mean(axis=0).astype(np.float32) for key, x in zip(data["sample_key"], data["X"])}
