"""Manifests of the user's own recordings: a CSV or a JSON-lines file, one row per recording.

Columns (CSV) or keys (JSONL): ``path`` (relative to the manifest's folder, or absolute) and ``labels``
(CSV: taxonomy labels, aliases or family names separated by ``;``; JSONL: a list or that string);
optional ``split`` (train, validation, test), ``start`` and ``duration`` in seconds (a region of the
file), and in JSONL ``segments`` (``[{"label", "start", "end"}, ...]``, seconds from ``start``). Other
columns are kept as metadata. Without a ``split``, rows are split 80/10/10 by path (``--split all``
evaluates every row). ``shared/realdev/MANIFEST.csv`` is such a CSV.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from timbrescope.data.dataset import Dataset, Example, carve_split
from timbrescope.errors import DataError, ParameterError
from timbrescope.taxonomy import canonical_target

_RESERVED = {"path", "labels", "split", "start", "duration", "segments"}
SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "test": "test"}


def load_dataset(path: Path) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    rows = _read_jsonl(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv(path)
    if not rows:
        raise DataError(f"{path}: the manifest has no rows")
    examples = []
    for number, row in rows:
        where = f"{path}, line {number}"
        try:
            labels = row["labels"].split(";") if isinstance(row["labels"], str) else list(row["labels"])
            targets = tuple(sorted({canonical_target(name) for name in labels if name.strip()}))
            segments = row.get("segments")
            if segments is not None:
                segments = tuple({"label": canonical_target(s["label"]), "start": float(s["start"]),
                                  "end": float(s["end"])} for s in segments)
            split = SPLIT_NAMES[row["split"]] if row.get("split") else carve_split(row["path"], 0.1, 0.1)
            examples.append(Example(
                id=row["path"], split=split, labels=targets, path=(path.parent / row["path"]).resolve(),
                offset=float(row.get("start") or 0.0), duration=float(row["duration"]) if row.get("duration") else None,
                segments=segments, metadata={k: v for k, v in row.items() if k not in _RESERVED}))
        except ParameterError as exc:
            raise DataError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: bad row ({type(exc).__name__}: {exc}); split must be one of "
                            f"{', '.join(SPLIT_NAMES)}") from None
    return Dataset(path.name, path, examples)


def _read_csv(path: Path) -> list[tuple[int, dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "labels"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))} (need path and labels)")
        return list(enumerate(reader, start=2))


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}, line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not {"path", "labels"} <= set(row):
            raise DataError(f"{path}, line {number}: each line needs an object with path and labels")
        rows.append((number, row))
    return rows
