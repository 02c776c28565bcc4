"""Musical material as note events: single notes, idiomatic random phrases and drum patterns.

Times are in seconds from the start of the clip; pitches are MIDI note numbers; velocities 1-127.
Every generator takes a ``numpy.random.Generator`` and is deterministic given its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from timbrescope.intervals import join_intervals
from timbrescope.taxonomy import FAMILIES, PLAYABLE_RANGE

# Instruments that play chords in the phrase generator.
POLYPHONIC = frozenset({*FAMILIES["keyboard"], "organ", "accordion", "acoustic_guitar", "electric_guitar",
                        "banjo", "mandolin", "ukulele", "harp", "string_ensemble", "brass_section",
                        "synth_pad", "vibraphone", "marimba"})
# Instruments whose notes sustain while held (expression and vibrato through MIDI controllers apply).
SUSTAINED = frozenset({"organ", "accordion", "harmonica", *FAMILIES["bowed_string"], *FAMILIES["brass"],
                       *FAMILIES["reed"], *FAMILIES["flute"], "voice", "synth_lead", "synth_pad"})

# How long (seconds) a struck note of these instruments stays audible; longer notes are cut there so
# that labels follow the sound, not the score.
DECAY_SECONDS = {"xylophone": 0.3, "marimba": 0.5, "glockenspiel": 1.0, "celesta": 1.0, "timpani": 1.5}

# General-MIDI percussion keys used by the drum patterns.
_CHORDS = ((4, 7), (3, 7), (7, 12), (5, 9), (4, 7, 11))  # intervals above the melody note

KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH, LOW_TOM, HIGH_TOM = 36, 38, 42, 46, 51, 49, 45, 50


@dataclass(frozen=True)
class Note:
    """One note: ``start``/``end`` in seconds, ``pitch`` a MIDI note, ``velocity`` 1-127."""

    pitch: int
    velocity: int
    start: float
    end: float


@dataclass(frozen=True)
class Control:
    """A MIDI controller change (``number`` 0-127, or -1 for pitch bend in cents) at ``time`` seconds."""

    time: float
    number: int
    value: int


@dataclass(frozen=True)
class Take:
    """A stretch of a recorded clip placed in a corpus clip: ``clip`` (path in its bank) from ``offset``
    seconds on, sounding from ``start`` to ``end`` seconds of the corpus clip."""

    clip: str
    offset: float
    start: float
    end: float


@dataclass
class Part:
    """What one instrument plays in a clip: note events, or (``take``) a recorded clip whose notes are the
    stretches where it sounds."""

    label: str
    notes: list[Note]
    controls: list[Control] = field(default_factory=list)
    material: str = "phrase"
    merge_gap: float = 0.1
    take: Take | None = None

    def within(self, low: int, high: int) -> Part:
        """The same part without the notes outside ``low``..``high`` (a bank's mapped keys)."""
        return replace(self, notes=[n for n in self.notes if low <= n.pitch <= high])

    def active_intervals(self, merge_gap: float | None = None) -> list[tuple[float, float]]:
        """Sounding intervals (note on to note off), joining gaps shorter than ``merge_gap`` seconds
        (default: the part's own, 0.1 s; a drum groove keeps playing between its hits)."""
        merge_gap = self.merge_gap if merge_gap is None else merge_gap
        return join_intervals(((note.start, note.end) for note in self.notes), merge_gap)


def single_note(label: str, rng: np.random.Generator, start: float, end: float,
                pitch_range: tuple[int, int] | None = None) -> Part:
    """One note anywhere in ``pitch_range`` (default: the instrument's range), random dynamic and length."""
    low, high = pitch_range or PLAYABLE_RANGE[label]
    length = float(rng.uniform(0.3, 1.0)) * (end - start)
    notes = playable_notes(label, [Note(int(rng.integers(low, high + 1)), int(rng.integers(30, 128)), start,
                                   start + length)])
    return Part(label, notes, expression_controls(label, rng, start, notes[0].end), material="note")


def drum_hit(rng: np.random.Generator, start: float, end: float) -> Part:
    """One hit of a single kit piece (kick, snare, hi-hat, tom, cymbal), left to ring."""
    key = int(rng.choice([KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH, LOW_TOM, HIGH_TOM]))
    note = Note(key, int(rng.integers(30, 128)), start, min(end, start + 0.5))
    return Part("drum_kit", [note], material="note", merge_gap=0.6)


def phrase(label: str, rng: np.random.Generator, start: float, end: float,
           pitch_range: tuple[int, int] | None = None) -> Part:
    """An idiomatic random phrase: a pitch walk in ``pitch_range`` (default: the instrument's range) at a
    random tempo, with articulation, repeated notes, rests, chords for polyphonic instruments and a
    dynamic level with small accents."""
    low, high = pitch_range or PLAYABLE_RANGE[label]
    beat = 60.0 / float(rng.uniform(60, 180))
    subdivision = [beat * f for f in (0.25, 0.5, 1.0, 1.5, 2.0)]
    weights = np.array([0.15, 0.35, 0.3, 0.1, 0.1])
    articulation = float(rng.choice([0.35, 0.7, 0.95, 1.02]))  # staccato ... legato
    level = int(rng.integers(45, 115))
    centre = int(rng.integers(low, high + 1))
    pitch = centre
    notes: list[Note] = []
    t = start
    while t < end - 0.05:
        step = float(rng.choice(subdivision, p=weights))
        if rng.random() < 0.12:  # a rest
            t += step
            continue
        if rng.random() > 0.2:  # else: repeat the note
            pitch = int(np.clip(pitch + rng.choice([-7, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 7]), low, high))
            pitch += int(np.clip(centre - pitch, -2, 2)) if abs(pitch - centre) > 12 else 0
        velocity = int(np.clip(level + rng.integers(-12, 13), 1, 127))
        note_end = min(end, t + step * articulation)
        chord = [0]
        if label in POLYPHONIC and rng.random() < 0.35:
            chord = [0, *_CHORDS[int(rng.integers(len(_CHORDS)))]]
        notes += [Note(pitch + interval, velocity, t, note_end) for interval in chord if pitch + interval <= high]
        t += step
    if not notes:
        return single_note(label, rng, start, end, pitch_range)
    return Part(label, playable_notes(label, notes), expression_controls(label, rng, start, end))


def playable_notes(label: str, notes: list[Note]) -> list[Note]:
    """Cut notes to what sounds: at the instrument's decay, and before a repeat of the same key
    (a note-off would otherwise silence the repeat, since both share one MIDI key)."""
    decay = DECAY_SECONDS.get(label, np.inf)
    notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    next_onset: dict[int, float] = {}
    result = []
    for note in reversed(notes):
        end = min(note.end, note.start + decay, next_onset.get(note.pitch, np.inf) - 0.005)
        next_onset[note.pitch] = note.start
        if end > note.start:
            result.append(Note(note.pitch, note.velocity, note.start, end))
    return result[::-1]


def drum_pattern(rng: np.random.Generator, start: float, end: float) -> Part:
    """A groove on the GM drum kit: kick/snare backbeat, hats or ride, fills and crashes."""
    beat = 60.0 / float(rng.uniform(70, 170))
    hat = int(rng.choice([CLOSED_HAT, CLOSED_HAT, OPEN_HAT, RIDE]))
    hat_step = beat / float(rng.choice([1, 2, 4]))
    notes: list[Note] = []
    t = start
    while t < end - 0.01:
        notes.append(Note(hat, int(rng.integers(50, 100)), t, t + 0.1))
        t += hat_step
    t, count = start, 0
    while t < end - 0.01:
        if count % 2 == 0 or rng.random() < 0.15:
            notes.append(Note(KICK, int(rng.integers(80, 127)), t, t + 0.1))
        if count % 2 == 1:
            notes.append(Note(SNARE, int(rng.integers(70, 127)), t, t + 0.1))
        if count % 8 == 7 and rng.random() < 0.5:
            notes += [Note(int(rng.choice([LOW_TOM, HIGH_TOM])), 100, t + beat * f, t + beat * f + 0.1)
                      for f in (0.25, 0.5, 0.75) if t + beat * f < end]
        if count % 8 == 0 and rng.random() < 0.3:
            notes.append(Note(CRASH, int(rng.integers(80, 120)), t, t + 0.1))
        t += beat
        count += 1
    return Part("drum_kit", notes, material="drums", merge_gap=0.6)


def expression_controls(label: str, rng: np.random.Generator, start: float, end: float) -> list[Control]:
    """Expression swells (CC11), vibrato depth (CC1) for sustained instruments; a slight detune for all."""
    controls = [Control(start, -1, int(rng.integers(-15, 16)))]  # detune, cents
    if label in SUSTAINED:
        controls.append(Control(start, 1, int(rng.choice([0, 0, 30, 60, 90]))))
        for t in np.linspace(start, end, 6):
            controls.append(Control(float(t), 11, int(rng.integers(70, 128))))
    return controls
