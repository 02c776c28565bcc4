"""UIowa MIS feature set (Humphrey & Bello's dl4mir tutorial): 120 MFCC-like features per note, 10 classes.

Format facts (from the tutorial's data description): four NumPy files ``uiowa_train_data.npy``
(float ``[n, 120]``), ``uiowa_train_labels.npy`` (integer class ids ``[n]``, 0-9) and the same for
``test``. No audio: only the feature-based baselines (``mfcc-mlp`` and the classical models) can use
it. The class ids are published without instrument names, so targets are ``uiowa_<id>``.
Validation is carved from train by row index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from timbrescope.data.dataset import Dataset, Example, carve_split, require_files

NAME = "uiowa_mis"
TITLE = "UIowa MIS features"
URL = "https://github.com/ejhumphrey/dl4mir-tutorial"
LICENCE = "research use (University of Iowa Musical Instrument Samples)"
CITATION = "University of Iowa Electronic Music Studios: Musical Instrument Samples; features by Humphrey & Bello"
EXAMPLE = "timbrescope train --data uiowa_mis:~/data/uiowa --model mfcc-mlp --out uiowa.ckpt"


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    files = [f"uiowa_{split}_{kind}.npy" for split in ("train", "test") for kind in ("data", "labels")]
    require_files(TITLE, root, files, URL)
    examples, problems = [], []
    for split in ("train", "test"):
        try:
            data = np.load(root / f"uiowa_{split}_data.npy", allow_pickle=False)
            labels = np.load(root / f"uiowa_{split}_labels.npy", allow_pickle=False)
            if data.ndim != 2 or labels.shape != (len(data),):
                raise ValueError(f"shapes {data.shape} and {labels.shape} do not match [n, features] and [n]")
        except (OSError, ValueError) as exc:
            problems.append(f"uiowa_{split}_*.npy: {exc}")
            continue
        for i, (row, label) in enumerate(zip(data.astype(np.float32), labels)):
            key = f"{split}-{i:05d}"
            examples.append(Example(id=key, split=carve_split(key) if split == "train" else "test",
                                    labels=(f"uiowa_{int(label)}",), features=row))
    return Dataset(TITLE, root, examples, CITATION, LICENCE, URL, problems)
