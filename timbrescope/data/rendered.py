"""A rendered corpus (``timbrescope synth`` output) as a dataset: exact labels and segments per clip,
the bank split (train, validation, test) of the corpus, composer and piece kept as metadata."""

from __future__ import annotations

from pathlib import Path

from timbrescope.data.dataset import Dataset, Example
from timbrescope.synth.corpus import read_manifest

_METADATA = ("composer", "piece", "banks", "sources", "parts")


def load_dataset(folder: Path) -> Dataset:
    folder = Path(folder)
    examples = [Example(id=row["id"], split=row["split"], labels=tuple(row["instruments"]),
                        path=folder / row["audio"], duration=row["duration"], segments=tuple(row["segments"]),
                        metadata={key: row.get(key) for key in _METADATA})
                for row in read_manifest(folder)]
    return Dataset(folder.name, folder, examples, "rendered by timbrescope synth")
