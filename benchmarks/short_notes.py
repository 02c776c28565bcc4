"""A short-note judge: real recorded notes let go early, as staccato notes and one-shots are.

Every note recording of a manifest (realdev's columns; e.g. the npm notes of `timbrescope fetch-banks`,
which no corpus trains on) is cut 0.2-1.0 s after its onset (a length drawn per note with ``--seed``)
and faded out over 50 ms, so a judge of long notes becomes one of short notes played by the same
instruments. Rendered training notes all sound 1.2 s or more, and a network that has heard no short
pitched note tends to call one a drum hit. The cut is made in the waveform, the release augmentation
of training (``timbrescope.augment.Release``) works on log-mel features.

    grep -v -E ',(bassoon|trombone),' build/npm-banks/MANIFEST.csv > build/npm-banks/MANIFEST-264.csv
    python benchmarks/short_notes.py --manifest build/npm-banks/MANIFEST-264.csv --out build/short-notes
    python benchmarks/realdev_accuracy.py --manifest build/short-notes/MANIFEST.csv --checkpoint M

The onset is the start of the first 10-ms frame within 30 dB of the recording's loudest
(``synth.render.sounding_intervals``, as the corpus finds a recorded clip's activity); a recording that is already
no longer than its cut, or silent, is kept whole. Writes FLAC files under ``--out`` (the manifest's paths) and
``--out``/MANIFEST.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from timbrescope.audio.io import load
from timbrescope.errors import reported
from timbrescope.fileio import atomic_write_text
from timbrescope.synth.render import sounding_intervals
from timbrescope.synth.npm_banks import MANIFEST_COLUMNS, csv_text

FADE_SECONDS = 0.05


def shortened(y: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """``y`` ``[samples]`` cut ``seconds`` after its onset, its last ``FADE_SECONDS`` faded out (half a cosine)."""
    sounding = sounding_intervals(y, sr, frame_seconds=0.01)
    if not sounding:
        return y
    end = round(sounding[0][0] * sr) + round(seconds * sr)
    if end >= len(y):
        return y
    out = y[:end].copy()
    fade = min(round(FADE_SECONDS * sr), end)
    out[end - fade:] *= 0.5 * (1 + np.cos(np.linspace(0, np.pi, fade, dtype=np.float32)))
    return out


def build(manifest: Path, out: Path, seed: int) -> int:
    """Write the shortened recordings of ``manifest``'s note rows and ``out``/MANIFEST.csv; the number of rows."""
    rng = np.random.default_rng(seed)
    with manifest.open(newline="") as table:
        rows = [row for row in csv.DictReader(table) if row["kind"] == "note"]
    kept = []
    for row in rows:
        y, sr = load(manifest.parent / row["path"], mono=True)
        short = shortened(y, sr, float(rng.uniform(0.2, 1.0)))
        path = Path(row["path"]).with_suffix(".flac")
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(out / path, short, sr)
        kept.append({**{k: row[k] for k in MANIFEST_COLUMNS}, "path": path.as_posix(),
                     "duration_s": f"{len(short) / sr:.3f}"})
    atomic_write_text(out / "MANIFEST.csv", csv_text(MANIFEST_COLUMNS, kept))
    return len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="a manifest of note recordings")
    parser.add_argument("--out", type=Path, required=True, help="folder for the short notes and MANIFEST.csv")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{args.out / 'MANIFEST.csv'}: {build(args.manifest, args.out, args.seed)} short notes")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/short_notes.py"))
