"""Does a candidate training source hold recordings that are also in ../shared/realdev?

realdev is for validation only, so a sample library that republishes some of its recordings must not
be trained on. Every audio file under the given folders is compared with every realdev recording by
the peak of their normalised cross-correlation (mono, 16 kHz, the first 2 s after leading silence,
differentiated twice so that upper partials and noise count, not the fundamental). In the checks of
docs/CORPUS.md one take, re-encoded, trimmed or re-levelled, scored 0.63-0.99, while different
instruments at one pitch scored up to 0.57 (a loud electric-piano note against a horn), so a file
that reaches ``--threshold`` is a lead to look at, not a verdict. Prints, per folder, the best match
and how many files reach the threshold.

    python benchmarks/realdev_overlap.py /tmp/packages/* --threshold 0.5"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import librosa
import numpy as np

from timbrescope.audio import info
from timbrescope.errors import DataError, reported

SAMPLE_RATE = 16000
SECONDS = 2.0
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".aif", ".aiff"}


def onset_excerpt(path: Path) -> np.ndarray:
    """``[SECONDS * SAMPLE_RATE]`` float32 of unit energy: mono, resampled, leading silence trimmed, padded.
    A file that cannot be decoded raises ``AudioError`` (``info`` reads its header first)."""
    info(path)
    audio, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True, duration=8.0)
    audio, _ = librosa.effects.trim(audio, top_db=40)
    audio = np.diff(audio, n=2)  # +12 dB per octave: upper partials and noise, not the fundamental, decide
    excerpt = np.zeros(int(SECONDS * SAMPLE_RATE), np.float32)
    audio = audio[:len(excerpt)]
    excerpt[:len(audio)] = audio
    return excerpt / (np.linalg.norm(excerpt) + 1e-12)


def peak_correlations(candidate: np.ndarray, references_fft: np.ndarray, n_fft: int) -> np.ndarray:
    """Peak |cross-correlation| of one excerpt with every reference: ``[references]`` in [0, 1]."""
    return np.abs(np.fft.irfft(references_fft * np.fft.rfft(candidate[::-1], n_fft), n_fft)).max(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of candidate audio (searched recursively)")
    parser.add_argument("--realdev", type=Path, default=Path("../shared/realdev/MANIFEST.csv"))
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    if not args.realdev.is_file():
        raise DataError(f"realdev manifest {args.realdev} not found")
    with open(args.realdev, newline="") as fh:
        rows = list(csv.DictReader(fh))
    n_fft = 2 * int(SECONDS * SAMPLE_RATE)
    references_fft = np.stack([np.fft.rfft(onset_excerpt(args.realdev.parent / row["path"]), n_fft) for row in rows])
    print("| folder | files | files >= threshold | best match (correlation, candidate ~ realdev file) |")
    print("|---|---|---|---|")
    for folder in args.folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            print(f"| {folder.name} | 0 | – | – |")
            continue
        best = []
        for path in files:
            scores = peak_correlations(onset_excerpt(path), references_fft, n_fft)
            top = int(scores.argmax())
            best.append((float(scores[top]), path.name, rows[top]["path"]))
        best.sort(reverse=True)
        hits = sum(score >= args.threshold for score, *_ in best)
        score, name, match = best[0]
        print(f"| {folder.name} | {len(files)} | {hits} | {score:.2f}, {name} ~ {match} |", flush=True)


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/realdev_overlap.py"))
