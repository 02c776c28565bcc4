"""Instrument taxonomy v1: labels, families, General-MIDI map, playable ranges and dataset label maps.

Everything a model predicts is a *label* (lower-case snake_case, e.g. ``electric_guitar``); each label
belongs to exactly one *family* (e.g. ``guitar``). The taxonomy is versioned: checkpoints store
``TAXONOMY_VERSION`` and refuse to load under another one. docs/TAXONOMY.md is the human-readable copy.

Sources follow NSynth's definition: *acoustic* instruments are recorded from a physical instrument,
*electronic* ones are physical instruments picked up electrically (electric piano, guitar, bass, organ),
*synthetic* ones are produced by a synthesiser.
"""

from __future__ import annotations

from dataclasses import dataclass

from timbrescope.errors import ParameterError

TAXONOMY_VERSION = "1"

FAMILIES: dict[str, tuple[str, ...]] = {
    "keyboard": ("piano", "electric_piano", "harpsichord", "clavinet", "celesta"),
    "organ": ("organ",),
    "free_reed": ("accordion", "harmonica"),
    "mallet": ("glockenspiel", "vibraphone", "marimba", "xylophone", "tubular_bells"),
    "guitar": ("acoustic_guitar", "electric_guitar", "banjo", "mandolin", "ukulele", "sitar"),
    "bass": ("electric_bass",),
    "bowed_string": ("violin", "viola", "cello", "contrabass", "string_ensemble"),
    "harp": ("harp",),
    "brass": ("trumpet", "trombone", "french_horn", "tuba", "brass_section"),
    "reed": ("clarinet", "oboe", "english_horn", "bassoon", "saxophone"),
    "flute": ("flute", "piccolo", "recorder", "pan_flute"),
    "voice": ("voice",),
    "percussion": ("drum_kit", "timpani"),
    "synth": ("synth_lead", "synth_pad", "synth_bass"),
}

SOURCES = ("acoustic", "electronic", "synthetic")

_FAMILY_OF = {label: family for family, members in FAMILIES.items() for label in members}

# Names used by datasets and sample libraries for single drum-kit pieces; they all count as ``drum_kit``.
LABEL_ALIASES: dict[str, str] = {
    "kick_drum": "drum_kit",
    "bass_drum": "drum_kit",
    "snare_drum": "drum_kit",
    "hi_hat": "drum_kit",
    "tom_tom": "drum_kit",
    "cymbal": "drum_kit",
    "drums": "drum_kit",
}

# Playable range of each label as MIDI note numbers (lowest, highest), sounding pitch; used to render
# notes and phrases an instrument can actually play. For drum_kit it is the GM percussion key range.
PLAYABLE_RANGE: dict[str, tuple[int, int]] = {
    "piano": (21, 108), "electric_piano": (28, 103), "harpsichord": (29, 89), "clavinet": (29, 88),
    "celesta": (60, 108), "organ": (36, 96), "accordion": (41, 93), "harmonica": (60, 96),
    "glockenspiel": (79, 108), "vibraphone": (53, 89), "marimba": (45, 96), "xylophone": (65, 108),
    "tubular_bells": (60, 77), "acoustic_guitar": (40, 84), "electric_guitar": (40, 86),
    "banjo": (48, 81), "mandolin": (55, 88), "ukulele": (60, 81), "sitar": (48, 77),
    "electric_bass": (28, 67), "violin": (55, 103), "viola": (48, 91), "cello": (36, 76),
    "contrabass": (28, 67), "string_ensemble": (28, 96), "harp": (24, 103), "trumpet": (54, 82),
    "trombone": (40, 72), "french_horn": (34, 77), "tuba": (28, 58), "brass_section": (40, 82),
    "clarinet": (50, 91), "oboe": (58, 91), "english_horn": (52, 81), "bassoon": (34, 75),
    "saxophone": (36, 81), "flute": (60, 96), "piccolo": (74, 108), "recorder": (60, 96),
    "pan_flute": (60, 96), "voice": (40, 84), "drum_kit": (35, 81), "timpani": (38, 57),
    "synth_lead": (48, 96), "synth_pad": (36, 96), "synth_bass": (28, 60),
}


@dataclass(frozen=True)
class GMProgram:
    """One General-MIDI program (0-based ``number``) and what it is in our taxonomy.

    ``label`` is None where no taxonomy label fits (sound effects, instruments we do not model);
    such programs are never rendered as training data.
    """

    number: int
    name: str
    label: str | None
    source: str


_A, _E, _S = "acoustic", "electronic", "synthetic"
_GM_TABLE = [
    ("Acoustic Grand Piano", "piano", _A), ("Bright Acoustic Piano", "piano", _A),
    ("Electric Grand Piano", "electric_piano", _E), ("Honky-tonk Piano", "piano", _A),
    ("Electric Piano 1", "electric_piano", _E), ("Electric Piano 2", "electric_piano", _S),
    ("Harpsichord", "harpsichord", _A), ("Clavinet", "clavinet", _E),
    ("Celesta", "celesta", _A), ("Glockenspiel", "glockenspiel", _A),
    ("Music Box", None, _A), ("Vibraphone", "vibraphone", _A),
    ("Marimba", "marimba", _A), ("Xylophone", "xylophone", _A),
    ("Tubular Bells", "tubular_bells", _A), ("Dulcimer", None, _A),
    ("Drawbar Organ", "organ", _E), ("Percussive Organ", "organ", _E),
    ("Rock Organ", "organ", _E), ("Church Organ", "organ", _A),
    ("Reed Organ", "organ", _A), ("Accordion", "accordion", _A),
    ("Harmonica", "harmonica", _A), ("Tango Accordion", "accordion", _A),
    ("Acoustic Guitar (nylon)", "acoustic_guitar", _A), ("Acoustic Guitar (steel)", "acoustic_guitar", _A),
    ("Electric Guitar (jazz)", "electric_guitar", _E), ("Electric Guitar (clean)", "electric_guitar", _E),
    ("Electric Guitar (muted)", "electric_guitar", _E), ("Overdriven Guitar", "electric_guitar", _E),
    ("Distortion Guitar", "electric_guitar", _E), ("Guitar Harmonics", "electric_guitar", _E),
    ("Acoustic Bass", "contrabass", _A), ("Electric Bass (finger)", "electric_bass", _E),
    ("Electric Bass (pick)", "electric_bass", _E), ("Fretless Bass", "electric_bass", _E),
    ("Slap Bass 1", "electric_bass", _E), ("Slap Bass 2", "electric_bass", _E),
    ("Synth Bass 1", "synth_bass", _S), ("Synth Bass 2", "synth_bass", _S),
    ("Violin", "violin", _A), ("Viola", "viola", _A),
    ("Cello", "cello", _A), ("Contrabass", "contrabass", _A),
    ("Tremolo Strings", "string_ensemble", _A), ("Pizzicato Strings", "string_ensemble", _A),
    ("Orchestral Harp", "harp", _A), ("Timpani", "timpani", _A),
    ("String Ensemble 1", "string_ensemble", _A), ("String Ensemble 2", "string_ensemble", _A),
    ("Synth Strings 1", "synth_pad", _S), ("Synth Strings 2", "synth_pad", _S),
    ("Choir Aahs", "voice", _A), ("Voice Oohs", "voice", _A),
    ("Synth Voice", "synth_pad", _S), ("Orchestra Hit", None, _S),
    ("Trumpet", "trumpet", _A), ("Trombone", "trombone", _A),
    ("Tuba", "tuba", _A), ("Muted Trumpet", "trumpet", _A),
    ("French Horn", "french_horn", _A), ("Brass Section", "brass_section", _A),
    ("Synth Brass 1", "synth_lead", _S), ("Synth Brass 2", "synth_lead", _S),
    ("Soprano Sax", "saxophone", _A), ("Alto Sax", "saxophone", _A),
    ("Tenor Sax", "saxophone", _A), ("Baritone Sax", "saxophone", _A),
    ("Oboe", "oboe", _A), ("English Horn", "english_horn", _A),
    ("Bassoon", "bassoon", _A), ("Clarinet", "clarinet", _A),
    ("Piccolo", "piccolo", _A), ("Flute", "flute", _A),
    ("Recorder", "recorder", _A), ("Pan Flute", "pan_flute", _A),
    ("Blown Bottle", None, _A), ("Shakuhachi", None, _A),
    ("Whistle", None, _A), ("Ocarina", None, _A),
    *[(f"Lead {i} ({name})", "synth_lead", _S) for i, name in enumerate(
        ["square", "sawtooth", "calliope", "chiff", "charang", "voice", "fifths", "bass + lead"], 1)],
    *[(f"Pad {i} ({name})", "synth_pad", _S) for i, name in enumerate(
        ["new age", "warm", "polysynth", "choir", "bowed", "metallic", "halo", "sweep"], 1)],
    *[(f"FX {i} ({name})", None, _S) for i, name in enumerate(
        ["rain", "soundtrack", "crystal", "atmosphere", "brightness", "goblins", "echoes", "sci-fi"], 1)],
    ("Sitar", "sitar", _A), ("Banjo", "banjo", _A),
    ("Shamisen", None, _A), ("Koto", None, _A),
    ("Kalimba", None, _A), ("Bagpipe", None, _A),
    ("Fiddle", "violin", _A), ("Shanai", None, _A),
    ("Tinkle Bell", None, _A), ("Agogo", None, _A),
    ("Steel Drums", None, _A), ("Woodblock", None, _A),
    ("Taiko Drum", None, _A), ("Melodic Tom", "drum_kit", _A),
    ("Synth Drum", "drum_kit", _S), ("Reverse Cymbal", None, _S),
    ("Guitar Fret Noise", None, _A), ("Breath Noise", None, _A),
    ("Seashore", None, _A), ("Bird Tweet", None, _A),
    ("Telephone Ring", None, _E), ("Helicopter", None, _A),
    ("Applause", None, _A), ("Gunshot", None, _A),
]
GM_PROGRAMS: tuple[GMProgram, ...] = tuple(GMProgram(i, *row) for i, row in enumerate(_GM_TABLE))
assert len(GM_PROGRAMS) == 128, "the General-MIDI table must have 128 programs"

# Everything on MIDI channel 10 (index 9) is the GM percussion kit, whatever the program.
GM_DRUM_CHANNEL = 9
GM_DRUM_KIT = GMProgram(-1, "Standard Drum Kit (channel 10)", "drum_kit", _A)


@dataclass(frozen=True)
class DatasetLabel:
    """How one dataset label maps to the taxonomy.

    Exactly one of ``label`` and ``family`` says what we know: ``label`` when the dataset names an
    instrument we have, ``family`` alone when the dataset label is coarser than ours (we do not guess
    an instrument). Both None means the dataset label has no counterpart here.
    """

    dataset_label: str
    label: str | None = None
    family: str | None = None
    note: str = ""

    @property
    def coarse(self) -> bool:
        """True where the dataset only tells the family."""
        return self.label is None and self.family is not None

    @property
    def resolved_family(self) -> str | None:
        """The family, known for both exact and coarse entries."""
        return _FAMILY_OF[self.label] if self.label else self.family


def _exact(name: str, label: str, note: str = "") -> DatasetLabel:
    return DatasetLabel(name, label=label, note=note)


def _coarse(name: str, family: str, note: str = "") -> DatasetLabel:
    return DatasetLabel(name, family=family, note=note)


def _musicnet_map() -> dict[str, DatasetLabel]:
    """MusicNet labels instruments with 1-based General-MIDI program numbers."""
    return {str(p.number + 1): DatasetLabel(str(p.number + 1), label=p.label, note=p.name)
            for p in GM_PROGRAMS}


DATASET_MAPS: dict[str, dict[str, DatasetLabel]] = {
    # NSynth instrument_family_str (11 families); source is kept separately (instrument_source_str).
    "nsynth": {m.dataset_label: m for m in [
        _coarse("bass", "bass", "NSynth 'bass' also holds synthesised basses (our synth_bass)"),
        _coarse("brass", "brass"), _coarse("flute", "flute"), _coarse("guitar", "guitar"),
        _coarse("keyboard", "keyboard"), _coarse("mallet", "mallet"),
        _exact("organ", "organ"), _coarse("reed", "reed"),
        _coarse("string", "bowed_string", "NSynth 'string' is bowed and plucked orchestral strings"),
        _exact("synth_lead", "synth_lead"), _exact("vocal", "voice"),
    ]},
    "irmas": {m.dataset_label: m for m in [
        _exact("cel", "cello"), _exact("cla", "clarinet"), _exact("flu", "flute"),
        _exact("gac", "acoustic_guitar"), _exact("gel", "electric_guitar"), _exact("org", "organ"),
        _exact("pia", "piano"), _exact("sax", "saxophone"), _exact("tru", "trumpet"),
        _exact("vio", "violin"), _exact("voi", "voice"),
    ]},
    "medley_solos_db": {m.dataset_label: m for m in [
        _exact("clarinet", "clarinet"), _exact("distorted electric guitar", "electric_guitar"),
        _exact("female singer", "voice"), _exact("flute", "flute"), _exact("piano", "piano"),
        _exact("tenor saxophone", "saxophone"), _exact("trumpet", "trumpet"), _exact("violin", "violin"),
    ]},
    "musicnet": _musicnet_map(),
    "openmic2018": {m.dataset_label: m for m in [
        _exact("accordion", "accordion"), _exact("banjo", "banjo"),
        _coarse("bass", "bass", "OpenMIC 'bass' covers electric and upright bass"),
        _exact("cello", "cello"), _exact("clarinet", "clarinet"),
        _exact("cymbals", "drum_kit"), _exact("drums", "drum_kit"), _exact("flute", "flute"),
        _coarse("guitar", "guitar", "acoustic or electric, not told apart"),
        _coarse("mallet_percussion", "mallet"), _exact("mandolin", "mandolin"), _exact("organ", "organ"),
        _exact("piano", "piano"), _exact("saxophone", "saxophone"),
        _coarse("synthesizer", "synth"), _exact("trombone", "trombone"), _exact("trumpet", "trumpet"),
        _exact("ukulele", "ukulele"), _exact("violin", "violin"), _exact("voice", "voice"),
    ]},
    # The UIowa MIS feature set (Humphrey & Bello, dl4mir tutorial) stores class ids 0-9 without names;
    # no source we found names them, so they stay unmapped until the user supplies names.
    "uiowa_mis": {str(i): DatasetLabel(str(i), note="class name not published with the feature set")
                  for i in range(10)},
}


def labels() -> list[str]:
    """All taxonomy labels in a fixed order (family by family)."""
    return list(_FAMILY_OF)


def families() -> list[str]:
    """All family names in a fixed order."""
    return list(FAMILIES)


def family_of(label: str) -> str:
    """The family of a label (aliases such as ``kick_drum`` accepted)."""
    return _FAMILY_OF[canonical_label(label)]


def canonical_label(name: str) -> str:
    """Normalise a label name: lower-case, spaces/hyphens to underscores, aliases resolved.

    Raises ParameterError for a name that is neither a label nor an alias.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = LABEL_ALIASES.get(key, key)
    if key not in _FAMILY_OF:
        raise ParameterError(f"unknown instrument label {name!r}; known labels: {', '.join(labels())}")
    return key


def canonical_target(name: str) -> str:
    """A dataset target: a label (aliases resolved) or, where a dataset only tells the family, a family
    name. Families that share their name with a label (organ, harp, voice, flute) read as the label."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in FAMILIES and LABEL_ALIASES.get(key, key) not in _FAMILY_OF:
        return key
    try:
        return canonical_label(key)
    except ParameterError:
        raise ParameterError(f"unknown instrument label or family {name!r}; known labels: {', '.join(labels())}; "
                             f"families: {', '.join(FAMILIES)}") from None


def target_family(target: str) -> str:
    """The family of a target (a label or a family name)."""
    return target if target in FAMILIES and target not in _FAMILY_OF else _FAMILY_OF[target]


def target_members(target: str) -> list[str]:
    """The labels a target stands for: itself, or every label of a family target."""
    return list(FAMILIES[target]) if target in FAMILIES and target not in _FAMILY_OF else [target]


def source_of(target: str) -> str:
    """How a label's sound is usually made, in NSynth's classes (``SOURCES``): the most common source
    among the General-MIDI programs that render it (organ: electronic, 3 of 5; electric piano:
    electronic, 2 of 3; drum kit: the acoustic channel-10 kit), acoustic for a label no program renders
    (mandolin, ukulele). A family target (a model trained on NSynth's families has them as labels):
    the most common source of its labels."""
    target = canonical_target(target)
    members = target_members(target)
    if members != [target]:
        found = [source_of(label) for label in members]
    elif target == GM_DRUM_KIT.label:
        found = [GM_DRUM_KIT.source]
    else:
        found = [p.source for p in programs_for(target)] or [_A]
    return max(SOURCES, key=found.count)


def gm_program(number: int) -> GMProgram:
    """The General-MIDI program ``number`` (0-127)."""
    if not 0 <= number < 128:
        raise ParameterError(f"General-MIDI program must be in 0..127, got {number}")
    return GM_PROGRAMS[number]


def programs_for(label: str) -> list[GMProgram]:
    """Every GM program that renders ``label`` (several give timbre variety)."""
    return [p for p in GM_PROGRAMS if p.label == label]


def renderable_labels() -> list[str]:
    """Labels the General-MIDI corpus can produce: those some program (or the drum kit) maps to."""
    mapped = {p.label for p in GM_PROGRAMS if p.label} | {GM_DRUM_KIT.label}
    return [label for label in labels() if label in mapped]


def dataset_map(dataset: str) -> dict[str, DatasetLabel]:
    """The label map of a supported public dataset."""
    try:
        return DATASET_MAPS[dataset]
    except KeyError:
        raise ParameterError(
            f"no label map for dataset {dataset!r}; known: {', '.join(DATASET_MAPS)}") from None


def to_markdown() -> str:
    """The whole taxonomy as Markdown (docs/TAXONOMY.md is this text; a test keeps them equal)."""
    lines = [f"# Taxonomy v{TAXONOMY_VERSION}", "",
             "Generated by `timbrescope taxonomy`; do not edit by hand. Labels are what models predict; "
             "every label belongs to one family. Sources follow NSynth: acoustic, electronic (a physical "
             "instrument picked up electrically), synthetic.", "",
             "## Labels and families", "", "| family | labels | playable range (MIDI notes) |", "|---|---|---|"]
    for family, members in FAMILIES.items():
        ranges = ", ".join(f"{label} {PLAYABLE_RANGE[label][0]}-{PLAYABLE_RANGE[label][1]}" for label in members)
        lines.append(f"| {family} | {', '.join(members)} | {ranges} |")
    lines += ["", "Aliases accepted on input (single drum-kit pieces count as the kit): "
              + ", ".join(f"`{alias}` -> `{label}`" for alias, label in LABEL_ALIASES.items()) + ".",
              "", "## General MIDI", "",
              f"Channel 10 (any program) is `{GM_DRUM_KIT.label}` ({GM_DRUM_KIT.source}). Programs are 0-based; "
              "programs without a label are never rendered.", "",
              "| program | name | label | source |", "|---|---|---|---|"]
    lines += [f"| {p.number} | {p.name} | {p.label or '-'} | {p.source} |" for p in GM_PROGRAMS]
    lines += ["", "Labels the General-MIDI corpus can produce: " + ", ".join(renderable_labels()) + ".",
              "", "## Dataset label maps", "",
              "`label` is an exact instrument; `family only` marks a dataset label that is coarser than ours "
              "(we do not guess an instrument); `-` means no counterpart."]
    for dataset, mapping in DATASET_MAPS.items():
        lines += ["", f"### {dataset}", "", "| dataset label | label | family only | note |", "|---|---|---|---|"]
        lines += [f"| {m.dataset_label} | {m.label or '-'} | {m.family if m.coarse else '-'} | {m.note} |"
                  for m in mapping.values()]
    return "\n".join(lines) + "\n"
