"""Real music from the music21 corpus: excerpts of polyphonic scores with composer and piece labels.

A fixed, sorted catalogue of pieces (Bach chorales, Palestrina masses, Monteverdi madrigals, Josquin,
Haydn/Mozart/Beethoven string quartets) keeps corpora reproducible. Scores are parsed once per
process and reduced to plain note lists; an excerpt turns quarter notes into seconds at a random
tempo and hands each voice to an instrument whose range holds it (transposed by octaves if needed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from timbrescope.fileio import atomic_write_text
from timbrescope.synth.material import Note, Part, expression_controls, playable_notes
from timbrescope.taxonomy import PLAYABLE_RANGE

# (composer, suffixes kept, at most this many pieces); music21's corpus.getComposer names.
COMPOSERS = (("bach", (".mxl",), 60), ("palestrina", (".krn",), 30), ("monteverdi", (".mxl",), 20),
             ("josquin", (".abc",), 8), ("haydn", (".mxl",), 9), ("mozart", (".mxl",), 16),
             ("beethoven", (".mxl",), 22))


@dataclass(frozen=True)
class Piece:
    composer: str
    path: str

    @property
    def name(self) -> str:
        """The piece's corpus name, e.g. ``bach/bwv1.6`` or ``beethoven/opus18no1/movement1``."""
        inside = self.path.rsplit(f"/{self.composer}/", 1)[-1]
        return f"{self.composer}/{inside.rsplit('.', 1)[0]}"


@lru_cache(maxsize=1)
def catalogue() -> tuple[Piece, ...]:
    """Every piece timbrescope renders from, in a fixed order."""
    from music21 import corpus

    pieces = []
    for composer, suffixes, limit in COMPOSERS:
        paths = sorted(str(p) for p in corpus.getComposer(composer) if p.suffix in suffixes)
        pieces += [Piece(composer, path) for path in paths[:limit]]
    return tuple(pieces)


def cache_dir() -> Path:
    """Where parsed scores are kept between runs: $TIMBRESCOPE_CACHE, else ~/.cache/timbrescope."""
    root = os.environ.get("TIMBRESCOPE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "timbrescope"
    return Path(root).expanduser() / f"scores-music21-{_music21_version()}"


@lru_cache(maxsize=256)
def voices(piece: Piece) -> tuple[tuple[tuple[float, float, int], ...], ...]:
    """The piece's voices as (onset, duration, MIDI pitch) tuples in quarter notes; chords give all
    their pitches; empty voices are dropped. Parsing takes up to seconds, so results are cached on
    disk (see ``cache_dir``)."""
    cached = cache_dir() / f"{piece.name.replace('/', '__')}.json"
    if cached.is_file():
        return tuple(tuple(tuple(note) for note in voice) for voice in json.loads(cached.read_text()))
    from music21 import converter, stream

    score = converter.parse(piece.path)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    result = []
    for part in score.parts:
        notes = tuple((float(n.offset), float(n.quarterLength), p.midi)
                      for n in part.flatten().notes if n.quarterLength > 0 for p in n.pitches)
        if notes:
            result.append(notes)
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cached, json.dumps(result), shared=True)  # rendering workers may parse one score at once
    return tuple(result)


def _music21_version() -> str:
    from importlib.metadata import version

    return version("music21")


def excerpt(rng: np.random.Generator, playable: list[str], seconds: float,
            max_parts: int) -> tuple[Piece, list[Part]]:
    """A random excerpt of a random piece: up to ``max_parts`` voices, each played by a distinct
    label from ``playable`` whose range holds the voice (octave-transposed if needed)."""
    pieces = catalogue()
    piece = pieces[int(rng.integers(len(pieces)))]
    quarter = 60.0 / float(rng.uniform(50, 140))
    parts_notes = voices(piece)
    length_q = max(onset + dur for notes in parts_notes for onset, dur, _ in notes)
    start_q = float(rng.uniform(0, max(0.0, length_q - seconds / quarter)))
    chosen = rng.permutation(len(parts_notes))[:max_parts]
    parts, used = [], set()
    for index in sorted(chosen):
        window = [(onset, dur, pitch) for onset, dur, pitch in parts_notes[index]
                  if start_q <= onset < start_q + seconds / quarter]
        if not window:
            continue
        low, high = min(p for *_, p in window), max(p for *_, p in window)
        fits = [(label, shift) for label in playable if label not in used and label != "drum_kit"
                for shift in (0, -12, 12, -24, 24) if _holds(label, low + shift, high + shift)]
        if not fits:
            continue
        label, shift = fits[int(rng.integers(len(fits)))]
        used.add(label)
        velocity = int(rng.integers(50, 110))
        notes = [Note(pitch + shift, velocity, (onset - start_q) * quarter,
                      min(seconds, (onset - start_q + dur) * quarter)) for onset, dur, pitch in window]
        parts.append(Part(label, playable_notes(label, notes), expression_controls(label, rng, 0.0, seconds), material="score"))
    return piece, parts


def _holds(label: str, low: int, high: int) -> bool:
    lowest, highest = PLAYABLE_RANGE[label]
    return lowest <= low and high <= highest
