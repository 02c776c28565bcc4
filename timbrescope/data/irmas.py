"""IRMAS (Bosch et al., 2012): instrument recognition in musical audio signals, 11 instruments.

Format facts (from the dataset page https://www.upf.edu/web/mtg/irmas and mirdata's loader):
``IRMAS-TrainingData/<code>/`` holds 6,705 three-second 44.1 kHz stereo excerpts per predominant
instrument ``<code>`` (cel, cla, flu, gac, gel, org, pia, sax, tru, vio, voi), named like
``008__[cel][nod][cla]0058__1.wav``: the bracketed tags are the instrument, then (optionally) ``dru``
or ``nod`` (with or without drums), then the genre (cou_fol, cla, pop_roc, lat_sou, jaz_blu);
``__N`` numbers the excerpts of one source excerpt. ``IRMAS-TestingData-Part{1,2,3}/`` hold longer
excerpts ``<name>.wav`` with ``<name>.txt`` listing every instrument present, one code per line.
Training is single-label (the predominant instrument), testing multi-label. A validation split is
carved from training by source excerpt (the name without ``__N``).
"""

from __future__ import annotations

import re
from pathlib import Path

from timbrescope.data.dataset import Dataset, Example, carve_split, mapped_target, require_files

NAME = "irmas"
TITLE = "IRMAS"
URL = "https://www.upf.edu/web/mtg/irmas"
LICENCE = "CC BY-NC-SA 3.0"
CITATION = ("Bosch, Janer, Fuhrmann, Herrera: A Comparison of Sound Segregation Techniques for Predominant "
            "Instrument Recognition in Musical Audio Signals, ISMIR 2012")
EXAMPLE = "timbrescope train --data irmas:~/data/IRMAS --out irmas.ckpt"
TRAINING = "IRMAS-TrainingData"
GENRES = {"cou_fol", "cla", "pop_roc", "lat_sou", "jaz_blu"}
_TAG = re.compile(r"\[([a-z_]+)\]")


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    testing = sorted(p for p in root.glob("IRMAS-TestingData*") if p.is_dir())
    if not (root / TRAINING).is_dir() and not testing:
        require_files(TITLE, root, [f"{TRAINING}/ (or IRMAS-TestingData-Part1/)"], URL)
    examples, problems = [], []
    for path in sorted((root / TRAINING).glob("*/*.wav")):
        tags = _TAG.findall(path.name)
        target = mapped_target(NAME, path.parent.name)
        if not tags or target is None:
            problems.append(f"{path.relative_to(root)}: not an IRMAS training file name")
            continue
        group = path.stem.rsplit("__", 1)[0]
        examples.append(Example(
            id=path.stem, split=carve_split(group), labels=(target,), path=path,
            metadata={"genre": next((t for t in tags if t in GENRES), None),
                      "drums": True if "dru" in tags else False if "nod" in tags else None}))
    for folder in testing:
        for text in sorted(folder.rglob("*.txt")):
            wav = text.with_suffix(".wav")
            try:
                codes = [line.strip() for line in text.read_text().splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{text.relative_to(root)}: {exc}")
                continue
            targets = [mapped_target(NAME, code) for code in codes]
            if not codes or None in targets:
                problems.append(f"{text.relative_to(root)}: unknown instrument code in {codes}")
                continue
            examples.append(Example(id=text.stem, split="test", labels=tuple(sorted(set(targets))), path=wav,
                                    metadata={"part": folder.name}))
    return Dataset(TITLE, root, examples, CITATION, LICENCE, URL, problems)
