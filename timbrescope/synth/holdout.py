"""The real validation set: recordings of the banks held out of training (``banks.HOLDOUT``).

Recipes, checkpoints and thresholds are chosen on it (with the rendered validation bank), never on
``shared/realdev``. Each held-out SFZ instrument plays ``NOTES`` single notes spread over its mapped
keys (dry, 4 s, velocity 100); each held-out clip bank gives its clips as they are. The folder holds
the audio and a ``MANIFEST.csv`` in realdev's columns plus ``split`` (every row ``validation``, the
split ``tune-thresholds`` reads), read with the ``manifest:`` data spec.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from timbrescope.errors import DataError
from timbrescope.fileio import atomic_write, atomic_write_text, ensure_writable_folder
from timbrescope.synth.banks import sfz_banks
from timbrescope.synth.material import CLOSED_HAT, CRASH, HIGH_TOM, KICK, LOW_TOM, OPEN_HAT, RIDE, SNARE, Note, Part
from timbrescope.synth.npm_banks import MANIFEST_COLUMNS, csv_text
from timbrescope.synth.render import Renderer

NOTES = 16
NOTE_SECONDS = 4.0
SAMPLE_RATE = 22_050
DRUM_KEYS = (KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH, LOW_TOM, HIGH_TOM)  # a kit plays one hit of each


def build_holdout_set(trainbanks: Path, out: Path) -> list[dict]:
    """Render the held-out SFZ notes into ``out`` and write ``out/MANIFEST.csv`` (held-out clips are
    listed where they lie, by paths relative to ``out``). Returns the manifest rows."""
    ensure_writable_folder(out)
    held = [bank for bank in sfz_banks(Path(trainbanks)) if bank.split == "holdout"]
    if not held:
        raise DataError(f"{trainbanks}: none of the held-out banks is there")
    renderer, rows = Renderer(SAMPLE_RATE), []
    for bank in held:
        label = bank.labels[0]
        if bank.engine == "clip":
            rows += [{"source": bank.name, "path": os.path.relpath(bank.path / clip, out), "labels": label,
                      "kind": "clip", "duration_s": f"{sf.info(bank.path / clip).duration:.3f}",
                      "licence": bank.licence, "split": "validation"} for clip in bank.clips]
            continue
        low, high = renderer.pitch_range(bank, label)
        pitches = DRUM_KEYS if label == "drum_kit" else sorted({round(p) for p in np.linspace(low, high, NOTES)})
        for pitch in pitches:
            part = Part(label, [Note(pitch, 100, 0.0, NOTE_SECONDS * 0.6)], material="note")
            audio = renderer.render(bank, part, None, NOTE_SECONDS)
            if np.abs(audio).max() < 1e-4:
                continue
            name = f"{bank.name.replace(':', '__')}/{pitch:03d}.flac"
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            peak = np.abs(audio).max()
            atomic_write(target, lambda tmp: sf.write(tmp, audio / peak * 0.5, SAMPLE_RATE, format="FLAC",
                                                      subtype="PCM_16"))
            rows.append({"source": bank.name, "path": name, "labels": label, "kind": "note",
                         "duration_s": f"{NOTE_SECONDS:.3f}", "licence": bank.licence, "split": "validation"})
    atomic_write_text(out / "MANIFEST.csv", csv_text((*MANIFEST_COLUMNS, "split"), rows))
    return rows
