"""MusicNet (Thickstun et al., 2017): 330 classical recordings with 1.3 M aligned note labels.

Format facts (from https://zenodo.org/record/5120004 and the dataset's README): ``musicnet/`` holds
``train_data/<id>.wav`` and ``test_data/<id>.wav`` (44.1 kHz mono), ``train_labels/<id>.csv`` and
``test_labels/<id>.csv`` with the header ``start_time,end_time,instrument,note,start_beat,end_beat,
note_value`` (times are sample indices at 44.1 kHz; ``instrument`` is a 1-based General-MIDI program),
and ``musicnet_metadata.csv`` with ``id,composer,composition,movement,ensemble,source,transcriber,
catalog_name,seconds``. The folder given may be the one that holds ``musicnet/`` or ``musicnet/``
itself. Each recording is one example with frame-level activity from its notes (training windows
it into clips); composer and ensemble are kept. Validation is carved from train by recording.
"""

from __future__ import annotations

import csv
from pathlib import Path

from timbrescope.data.dataset import Dataset, Example, carve_split, mapped_target, merge_segments, require_files

NAME = "musicnet"
TITLE = "MusicNet"
URL = "https://zenodo.org/record/5120004"
LICENCE = "CC BY 4.0"
CITATION = ("Thickstun, Harchaoui, Kakade: Learning Features of Music from Scratch, ICLR 2017")
EXAMPLE = "timbrescope train --data musicnet:~/data/musicnet --out musicnet.ckpt"
METADATA = "musicnet_metadata.csv"
LABEL_RATE = 44_100


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    if (root / "musicnet").is_dir() and not (root / "train_labels").is_dir():
        root = root / "musicnet"
    if not any((root / f"{split}_labels").is_dir() for split in ("train", "test")):
        require_files(TITLE, root, ["train_data/", "train_labels/", "test_data/", "test_labels/"], URL)
    metadata = _metadata(root / METADATA) if (root / METADATA).is_file() else {}
    examples, problems = [], []
    for split in ("train", "test"):
        for labels_path in sorted((root / f"{split}_labels").glob("*.csv"), key=lambda p: p.stem):
            try:
                segments = _read_notes(labels_path)
            except (OSError, KeyError, ValueError) as exc:
                problems.append(f"{labels_path.relative_to(root)}: {exc}")
                continue
            track = labels_path.stem
            info = metadata.get(track, {})
            examples.append(Example(
                id=track, split=carve_split(track) if split == "train" else "test",
                labels=tuple(sorted({s["label"] for s in segments})), path=root / f"{split}_data" / f"{track}.wav",
                segments=segments, metadata={key: info.get(key) for key in ("composer", "composition", "ensemble")}))
    return Dataset(TITLE, root, examples, CITATION, LICENCE, URL, problems)


def _read_notes(path: Path) -> tuple[dict, ...]:
    with open(path, newline="", encoding="utf-8") as fh:
        notes = []
        for row in csv.DictReader(fh):
            target = mapped_target(NAME, str(int(row["instrument"])))
            if target is None:
                continue  # a GM program we have no label for
            notes.append({"label": target, "start": int(row["start_time"]) / LABEL_RATE,
                          "end": int(row["end_time"]) / LABEL_RATE})
    if not notes:
        raise ValueError("no note with a known instrument")
    return merge_segments(notes)


def _metadata(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}
