"""Medley-solos-DB (Lostanlen & Cella, 2016): 21,571 three-second solo clips of 8 instruments.

Format facts (from Zenodo record 3464194 and mirdata's loader): ``Medley-solos-DB_metadata.csv`` with
the header ``subset,instrument,instrument_id,song_id,uuid4`` (subset: training, validation or test)
and the clips ``Medley-solos-DB_<subset>-<instrument_id>_<uuid4>.wav`` (22,050 Hz mono, 65,536
samples). The CSV may lie at the root or in ``annotation/``, the clips at the root or in ``audio/``.
Native splits are kept (training -> train).
"""

from __future__ import annotations

import csv
from pathlib import Path

from timbrescope.data.dataset import Dataset, Example, mapped_target, require_files

NAME = "medley_solos_db"
TITLE = "Medley-solos-DB"
URL = "https://zenodo.org/record/3464194"
LICENCE = "CC BY 4.0"
CITATION = ("Lostanlen, Cella: Deep Convolutional Networks on the Pitch Spiral for Musical Instrument "
            "Recognition, ISMIR 2016")
EXAMPLE = "timbrescope evaluate --data medley_solos_db:~/data/Medley-solos-DB --out report/"
METADATA = "Medley-solos-DB_metadata.csv"
_SUBSETS = {"training": "train", "validation": "validation", "test": "test"}


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    metadata = next((p for p in (root / METADATA, root / "annotation" / METADATA) if p.is_file()), None)
    if metadata is None:
        require_files(TITLE, root, [METADATA], URL)
    audio = root / "audio" if (root / "audio").is_dir() else root
    examples, problems = [], []
    with open(metadata, newline="", encoding="utf-8") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            try:
                target = mapped_target(NAME, row["instrument"])
                subset = row["subset"]
                if target is None or subset not in _SUBSETS:
                    raise ValueError(f"instrument {row['instrument']!r}, subset {subset!r}")
                name = f"Medley-solos-DB_{subset}-{int(row['instrument_id'])}_{row['uuid4']}.wav"
                examples.append(Example(id=row["uuid4"], split=_SUBSETS[subset], labels=(target,), path=audio / name,
                                        metadata={"song_id": int(row["song_id"])}))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{metadata.name}, line {number}: bad row ({exc})")
    return Dataset(TITLE, root, examples, CITATION, LICENCE, URL, problems)
