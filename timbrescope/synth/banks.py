"""Sound banks: the General-MIDI soundfonts from Debian packages and folders of SFZ libraries.

Split rule (documented in docs/CORPUS.md): the csound GM bank is the **test** bank and TimGM6mb the
**validation** bank; neither is ever used for training or model selection. Every other bank
(FluidR3, MuseScore General, user soundfonts, SFZ libraries) is a **train** bank.

An SFZ folder is described by a ``BANKS.csv`` (columns ``library,sfz,label``; the format of
``shared/trainbanks``); without one, each ``*.sfz`` (not ``*.orig.sfz``) whose parent folder or file
stem is a taxonomy label is used with that label. A ``CLIPS.csv`` beside it (columns
``library,path,labels,kind``) adds recorded clips (phrases, chords, notes, hits without a key map): one
``clip`` bank per library and label.

Held-out banks (``HOLDOUT``): for each label with two or more recorded sources, one library (or one
library's clips of that label) is never trained on; its split is ``holdout``, the real validation set
that recipes are chosen on (``synth.holdout``, docs/MODEL.md).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from timbrescope.errors import DataError
from timbrescope.fileio import atomic_write_text
from timbrescope.taxonomy import canonical_label, labels, renderable_labels

SPLITS = ("train", "validation", "test")

# Recorded banks held out of training (bank names as ``sfz_banks`` gives them): one library per label
# that has two or more recorded sources in ``shared/trainbanks``; the rest of the label stays in training.
HOLDOUT = frozenset({
    "vcsl_kit", "solfege_jennifer", "uiowa_bb_clarinet", "pastabass:pastabass_fetuccine",
    "pastabass:pastabass_spaghetti", "medley_solos_clips:electric_guitar", "medley_solos_clips:flute",
    "uiowa_steinway_b", "medley_solos_clips:saxophone", "kyster_nylon_open_strings:acoustic_guitar",
    "kay_5string_banjo", "tamtam_notes:tamtam_cello", "tamtam_notes:tamtam_marimba",
    "tamtam_notes:tamtam_harmonium", "versilian_pizz_strings", "medley_solos_clips:trumpet",
    "uiowa_iat_single_notes:tuba", "medley_solos_clips:violin",
})


@dataclass(frozen=True)
class Bank:
    """One sound bank. ``engine`` is "fluidsynth" (GM .sf2/.sf3), "sfizz" (one SFZ instrument),
    "timidity" (a GUS patch set), "stk" (the STK's physical models) or "festival" (a Festival diphone
    voice that sings).

    An engine "clip" bank plays recorded clips of one label: ``path`` is the folder and ``clips`` the
    clip files relative to it.

    ``labels`` are what it can play: every GM-renderable label for a soundfont, one label for an SFZ.
    """

    name: str
    path: Path
    engine: str
    split: str
    labels: tuple[str, ...]
    package: str = ""
    licence: str = ""
    clips: tuple[str, ...] = ()


# (name, file, Debian package, split)
GM_SOUNDFONTS = (
    ("fluidr3", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm", "train"),
    ("musescore", "/usr/share/sounds/sf3/MuseScore_General_Full.sf3", "musescore-general-soundfont", "train"),
    ("timgm6mb", "/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont", "validation"),
    ("csound", "/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont", "test"),
)


def not_installed(what: str, package: str) -> DataError:
    """The one-line error for a file of a Debian package that is not there."""
    return DataError(f"{what} not found: install the Debian package {package} "
                     f"(apt-get install {package}, or run `make setup`)")


# More soundfonts of Debian packages, train banks of the ``extra`` sources: (name, file, package, labels);
# a drum-kit-only soundfont plays its kit from preset 0 of bank 0 or 128 (whichever it has).
EXTRA_SOUNDFONTS = (
    ("a320u", "/usr/share/sounds/sf2/A320U.sf2", "denemo-data", None),
    ("avl_black_pearl", "/usr/lib/lv2/avldrums.lv2/Black_Pearl_4_LV2.sf2", "avldrums.lv2-soundfont", ("drum_kit",)),
    ("avl_red_zeppelin", "/usr/lib/lv2/avldrums.lv2/Red_Zeppelin_4_LV2.sf2", "avldrums.lv2-soundfont",
     ("drum_kit",)),
)


def extra_soundfont_banks() -> list[Bank]:
    """The ``EXTRA_SOUNDFONTS`` as train banks (DataError naming the package of a missing one)."""
    banks = []
    for name, path, package, playable in EXTRA_SOUNDFONTS:
        if not Path(path).is_file():
            raise not_installed(f"soundfont {path}", package)
        banks.append(Bank(name, Path(path), "fluidsynth", "train", playable or tuple(renderable_labels()), package))
    return banks


# Recorded clips of Debian packages, train banks of the ``extra`` sources: (library, folder, package, licence,
# ((file pattern, label), ...)). One ``clip`` bank per library and label, as for a ``CLIPS.csv``.
DEBIAN_CLIPS = (
    ("lmms_samples", "/usr/share/lmms/samples/instruments", "lmms-common", "GPL-2+", (
        ("cello01.ogg", "cello"), ("church_organ0*.ogg", "organ"), ("e_organ01.ogg", "organ"),
        ("e_piano_accord0*.ogg", "electric_piano"), ("flute01.ogg", "flute"), ("piano0*.ogg", "piano"),
        ("steel_guitar01.ogg", "acoustic_guitar"), ("steel_guitar_*_distorted01.ogg", "electric_guitar"),
        ("trumpet01.ogg", "trumpet"), ("violin_*.ogg", "violin"), ("bassslap0*.ogg", "electric_bass"))),
    ("sonic_pi_samples", "/usr/share/sonic-pi/samples", "sonic-pi-samples", "CC0-1.0", (
        ("guit_*.flac", "electric_guitar"), ("ambi_piano.flac", "piano"))),
    ("csoundqt_examples", "/usr/share/csoundqt/Examples/SourceMaterials", "csoundqt-examples", "LGPL-2.1+", (
        ("BassGuitarC.wav", "electric_bass"), ("BratscheMono.wav", "viola"), ("Class*Guit*.wav", "acoustic_guitar"),
        ("flute.wav", "flute"), ("violins.wav", "string_ensemble"))),
    ("belofilms_guitar_strums", "/usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums",
     "hydrogen-drumkits-effects", "CC-BY-3.0", (("*.flac", "acoustic_guitar"),)),
)


def debian_clip_banks() -> list[Bank]:
    """The ``DEBIAN_CLIPS`` as clip banks (DataError naming the package of a missing folder or pattern)."""
    banks = []
    for library, folder, package, licence, patterns in DEBIAN_CLIPS:
        grouped: dict[str, list[str]] = {}
        for pattern, label in patterns:
            found = sorted(path.name for path in Path(folder).glob(pattern))
            if not found:
                raise not_installed(f"{folder}/{pattern}", package)
            grouped.setdefault(label, []).extend(found)
        banks += [Bank(f"{library}:{label}", Path(folder), "clip", _split(f"{library}:{label}"), (label,), package,
                       licence, tuple(clips)) for label, clips in grouped.items()]
    return banks


def sinsy_bank() -> Bank:
    """Sinsy's singing voice (PyPI ``pysinsy``, the NITech SONG070 F001 voice of a real singer, CC-BY-3.0) as a
    train bank of ``voice``: sung melodies beside Festival's diphones."""
    return Bank("sinsy-nitech_f001", Path("pysinsy"), "sinsy", "train", ("voice",), "pysinsy (PyPI)", "CC-BY-3.0")


def gm_banks(extra_soundfonts: list[Path] = (), names: list[str] | None = None) -> list[Bank]:
    """The Debian GM soundfonts (all, or those in ``names``) plus user soundfonts (train split).

    A missing Debian soundfont raises DataError naming the package that provides it.
    """
    known = {name for name, *_ in GM_SOUNDFONTS}
    unknown = set(names or ()) - known
    if unknown:
        raise DataError(f"unknown soundfont name(s) {sorted(unknown)}; known: {sorted(known)}")
    banks = []
    for name, path, package, split in GM_SOUNDFONTS:
        if names is not None and name not in names:
            continue
        if not Path(path).is_file():
            raise not_installed(f"soundfont {path}", package)
        banks.append(Bank(name, Path(path), "fluidsynth", split, tuple(renderable_labels()), package))
    for path in map(Path, extra_soundfonts):
        if not path.is_file() or path.suffix.lower() not in (".sf2", ".sf3"):
            raise DataError(f"soundfont {path} not found or not a .sf2/.sf3 file")
        banks.append(Bank(path.stem, path, "fluidsynth", "train", tuple(renderable_labels())))
    return banks


def sfz_banks(folder: Path, holdout: bool = True) -> list[Bank]:
    """SFZ instruments and recorded clips found in ``folder``: train banks, or ``holdout`` for those in
    ``HOLDOUT`` (with ``holdout=False`` every bank trains: the shipped model's last step). A library with
    several ``.sfz`` names each bank ``library:stem``; clip banks are ``library:label``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"SFZ folder {folder} not found")
    index = folder / "BANKS.csv"
    if index.is_file():
        rows = _read_index(index, {"library", "sfz", "label"})
        per_library = Counter(row["library"] for row in rows)
        banks = []
        for row in rows:
            name = row["library"] if per_library[row["library"]] == 1 else f"{row['library']}:{Path(row['sfz']).stem}"
            banks.append(Bank(name, folder / row["sfz"], "sfizz", _split(name), (canonical_label(row["label"]),),
                              licence=row.get("licence", "")))
    else:
        banks = []
        for sfz in sorted(folder.rglob("*.sfz")):
            guess = next((name for name in (sfz.parent.name, sfz.stem) if name in labels()), None)
            if guess and not sfz.name.endswith(".orig.sfz"):
                banks.append(Bank(sfz.stem, sfz, "sfizz", _split(sfz.stem), (guess,)))
    banks += clip_banks(folder)
    absent = [str(bank.path) for bank in banks if not bank.path.is_file() and bank.engine == "sfizz"]
    absent += [str(folder / clip) for bank in banks for clip in bank.clips if not (folder / clip).is_file()]
    if absent:
        raise DataError(f"{folder}: SFZ or clip file(s) listed but missing: {', '.join(absent[:5])}")
    if not banks:
        raise DataError(f"{folder}: no SFZ instrument found (need BANKS.csv or <label>/<name>.sfz)")
    return banks if holdout else [replace(bank, split="train") for bank in banks]


def clip_banks(folder: Path) -> list[Bank]:
    """One ``clip`` bank per library and label of ``folder/CLIPS.csv`` (none without that file)."""
    index = Path(folder) / "CLIPS.csv"
    if not index.is_file():
        return []
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in _read_index(index, {"library", "path", "labels"}):
        for label in filter(None, row["labels"].split(";")):
            grouped.setdefault((row["library"], canonical_label(label)), []).append(row)
    return [Bank(f"{library}:{label}", Path(folder), "clip", _split(f"{library}:{label}"), (label,),
                 licence=rows[0].get("licence", ""), clips=tuple(row["path"] for row in rows))
            for (library, label), rows in sorted(grouped.items())]


def _read_index(path: Path, columns: set[str]) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = columns - set(rows[0] if rows else ())
    if missing:
        raise DataError(f"{path}: missing column(s) {sorted(missing)}")
    return rows


def _split(name: str) -> str:
    return "holdout" if name in HOLDOUT else "train"


FREEPATS_CONFIG = Path("/etc/timidity/freepats.cfg")
HYDROGEN_KITS = Path("/usr/share/hydrogen/data/drumkits")

# Hydrogen instrument names -> General-MIDI percussion key; the first rule that matches wins.
_HYDROGEN_KEYS = (("kick", 36), ("bass drum", 36), ("bd", 36), ("rim", 37), ("stick", 37), ("clap", 39),
                  ("snare", 38), ("sd", 38), ("pedal", 44), ("open", 46), ("closed", 42), ("hat", 42),
                  ("hh", 42), ("ride", 51), ("crash", 49), ("splash", 55), ("china", 52), ("cowbell", 56),
                  ("floor", 41), ("tom low", 45), ("low tom", 45), ("tom mid", 47), ("mid tom", 47),
                  ("tom hi", 50), ("high tom", 50), ("hi tom", 50), ("tom", 48), ("cymbal", 49))


def freepats_bank() -> Bank:
    """The freepats GUS patch set, rendered by TiMidity++ (a train bank)."""
    if not FREEPATS_CONFIG.is_file():
        raise DataError(f"{FREEPATS_CONFIG} not found: install the Debian packages freepats and timidity")
    return Bank("freepats", FREEPATS_CONFIG, "timidity", "train", tuple(renderable_labels()), "freepats")


STK_DEMO = Path("/usr/bin/stk-demo")
# The STK model that plays each label (Debian stk 4.6; names as stk-demo takes them).
STK_INSTRUMENTS = {
    "saxophone": "Saxofony", "clarinet": "Clarinet", "flute": "Flute", "recorder": "Recorder", "trumpet": "Brass",
    "violin": "Bowed", "viola": "Bowed", "cello": "Bowed", "acoustic_guitar": "Plucked", "sitar": "Sitar",
    "mandolin": "Mandolin", "electric_piano": "Rhodey", "tubular_bells": "TubeBell", "organ": "BeeThree",
    "voice": "VoicForm", "marimba": "ModalBar",
}


def stk_bank() -> Bank:
    """The STK physical models (a train bank); ``STK_INSTRUMENTS`` says which label each plays."""
    if not STK_DEMO.is_file():
        raise DataError(f"{STK_DEMO} not found: install the Debian package stk")
    return Bank("stk", STK_DEMO, "stk", "train", tuple(STK_INSTRUMENTS), "stk")


# Engines whose banks are recordings of real instruments or voices, or a voice trained on a real singer
# (drawn first, see corpus._pick_source).
RECORDED_ENGINES = ("sfizz", "festival", "sinsy", "clip")

TEXT2WAVE = Path("/usr/bin/text2wave")
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
# Festival diphone voices (real recorded diphones, LPC resynthesis) that sing in its singing mode:
# voice name -> (Debian package, language, lowest and highest MIDI note it sings).
FESTIVAL_VOICES = {
    "kal_diphone": ("festvox-kallpc16k", "english", 40, 67),
    "ked_diphone": ("festvox-kdlpc16k", "english", 40, 67),
    "pc_diphone": ("festvox-itapc16k", "italian", 40, 67),
    "lp_diphone": ("festvox-italp16k", "italian", 52, 71),  # Festival 2.5 crashes on notes from C5 up
}


def festival_banks() -> list[Bank]:
    """One train bank per Festival voice of ``FESTIVAL_VOICES``, each playing ``voice``: sung melodies
    from recorded human diphones, the solo singing voice that the GM choir pads lack."""
    if not TEXT2WAVE.is_file():
        raise DataError(f"{TEXT2WAVE} not found: install the Debian package festival")
    banks = []
    for voice, (package, language, *_) in FESTIVAL_VOICES.items():
        if not (FESTIVAL_VOICE_DIR / language / voice).is_dir():
            raise DataError(f"Festival voice {voice} not found: install the Debian package {package}")
        banks.append(Bank(f"festival-{voice}", FESTIVAL_VOICE_DIR / language / voice, "festival", "train",
                          ("voice",), package))
    return banks


def hydrogen_banks(cache: Path, kits: Path = HYDROGEN_KITS) -> list[Bank]:
    """Real drum recordings from Hydrogen drum kits, each converted once into an SFZ file in ``cache``.

    Instruments are mapped to General-MIDI percussion keys by name; velocity layers are kept.
    """
    if not kits.is_dir():
        raise DataError(f"{kits} not found: install the Debian package hydrogen-drumkits")
    cache.mkdir(parents=True, exist_ok=True)
    banks = []
    clip_folders = {Path(folder) for _, folder, *_ in DEBIAN_CLIPS}
    for kit_file in sorted(kits.glob("*/drumkit.xml")):
        if kit_file.parent in clip_folders:  # a "kit" of guitar strums: recorded clips, not drums
            continue
        sfz = cache / f"hydrogen_{kit_file.parent.name.replace(' ', '_')}.sfz"
        if not sfz.exists():
            text = _hydrogen_to_sfz(kit_file)
            if not text:
                continue
            atomic_write_text(sfz, text)
        banks.append(Bank(sfz.stem, sfz, "sfizz", "train", ("drum_kit",), "hydrogen-drumkits"))
    return banks


def _hydrogen_to_sfz(kit_file: Path) -> str:
    """SFZ text for a Hydrogen drumkit.xml ('' if no instrument maps to a GM key)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(kit_file).getroot()
    namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    lines = [f"<control> default_path={kit_file.parent}/", ""]
    used_keys = set()
    for instrument in root.iter(f"{namespace}instrument"):
        name = (instrument.findtext(f"{namespace}name") or "").lower()
        key = next((k for word, k in _HYDROGEN_KEYS if word in name), None)
        if key is None or key in used_keys:
            continue
        layers = instrument.findall(f".//{namespace}layer") or [instrument]
        regions = []
        for layer in layers:
            sample = layer.findtext(f"{namespace}filename")
            if not sample or not (kit_file.parent / sample).is_file():
                continue
            low = float(layer.findtext(f"{namespace}min") or 0.0)
            high = float(layer.findtext(f"{namespace}max") or 1.0)
            regions.append(f"<region> sample={sample} key={key} lovel={max(1, round(low * 127))} "
                           f"hivel={max(1, round(high * 127))}")
        if regions:
            used_keys.add(key)
            lines += regions
    return "\n".join(lines) + "\n" if used_keys else ""
