"""NSynth (Engel et al., 2017): 305,979 four-second monophonic notes, 16 kHz, from 1,006 instruments.

Format facts (from the dataset page https://magenta.tensorflow.org/datasets/nsynth, "Files" and
"Example Features"): three archives unpack to ``nsynth-train/``, ``nsynth-valid/`` and ``nsynth-test/``,
each with ``examples.json`` (an object keyed by ``note_str``, e.g. ``"bass_synthetic_033-022-050"``, whose
values hold ``note``, ``note_str``, ``instrument``, ``instrument_str``, ``pitch``, ``velocity``,
``sample_rate``, ``qualities``, ``qualities_str``, ``instrument_family``, ``instrument_family_str``,
``instrument_source``, ``instrument_source_str``) and ``audio/<note_str>.wav`` (16-bit, 16 kHz, 4 s).
Targets are the 11 instrument families mapped to our taxonomy (coarse ones as families); source,
pitch and velocity are kept as metadata. Native splits: train, valid (-> validation), test.
"""

from __future__ import annotations

import json
from pathlib import Path

from timbrescope.data.dataset import Dataset, Example, mapped_target, require_files

NAME = "nsynth"
TITLE = "NSynth"
URL = "https://magenta.tensorflow.org/datasets/nsynth"
LICENCE = "CC BY 4.0"
CITATION = ("Engel, Resnick, Roberts, Dieleman, Eck, Simonyan, Norouzi: Neural Audio Synthesis of Musical Notes "
            "with WaveNet Autoencoders, ICML 2017")
EXAMPLE = "timbrescope datasets validate nsynth ~/data/nsynth"
_FOLDERS = {"nsynth-train": "train", "nsynth-valid": "validation", "nsynth-test": "test"}


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    present = [folder for folder in _FOLDERS if (root / folder / "examples.json").is_file()]
    if not present:
        require_files(TITLE, root, ["nsynth-train/examples.json (or nsynth-valid/, nsynth-test/)"], URL)
    examples, problems = [], []
    for folder in present:
        try:
            notes = json.loads((root / folder / "examples.json").read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{folder}/examples.json: {exc}")
            continue
        for note_str, note in sorted(notes.items()):
            try:
                target = mapped_target(NAME, note["instrument_family_str"])
                examples.append(Example(
                    id=note_str, split=_FOLDERS[folder], labels=(target,),
                    path=root / folder / "audio" / f"{note_str}.wav",
                    metadata={"source": note["instrument_source_str"], "pitch": int(note["pitch"]),
                              "velocity": int(note["velocity"]), "instrument": note["instrument_str"],
                              "qualities": note.get("qualities_str", [])}))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{folder}/examples.json, {note_str}: bad entry ({exc})")
    return Dataset(TITLE, root, examples, CITATION, LICENCE, URL, problems)
