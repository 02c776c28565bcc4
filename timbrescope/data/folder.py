"""A folder of the user's own recordings, one sub-folder per label: ``ROOT/<label>/**/<file>``, or
``ROOT/<split>/<label>/**/<file>`` with split train, validation (or valid) and test.

Sub-folder names are taxonomy labels, aliases or family names (``violin``, ``Snare Drum``, ``brass``).
Without split folders, files are split 80/10/10 by path (``--split all`` evaluates every file).
"""

from __future__ import annotations

from pathlib import Path

from timbrescope.audio import is_audio_path
from timbrescope.data.dataset import Dataset, Example, carve_split
from timbrescope.data.manifest import SPLIT_NAMES
from timbrescope.errors import DataError, ParameterError
from timbrescope.taxonomy import canonical_target


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected one sub-folder of recordings per label)")
    split_dirs = {d: SPLIT_NAMES[d.name.lower()] for d in root.iterdir() if d.is_dir() and d.name.lower() in SPLIT_NAMES}
    groups = [(d, split) for d, split in split_dirs.items()] if split_dirs else [(root, None)]
    examples = []
    for base, split in groups:
        for label_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
            try:
                target = canonical_target(label_dir.name)
            except ParameterError as exc:
                raise DataError(f"{label_dir}: the folder name is not a label ({exc})") from None
            for path in sorted(p for p in label_dir.rglob("*") if p.is_file() and is_audio_path(p)):
                key = str(path.relative_to(root))
                examples.append(Example(id=key, split=split or carve_split(key, 0.1, 0.1), labels=(target,),
                                        path=path))
    if not examples:
        raise DataError(f"{root}: no audio file in label sub-folders (expected ROOT/<label>/<file>)")
    return Dataset(root.name, root, examples)
