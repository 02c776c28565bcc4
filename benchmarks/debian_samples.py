"""A third real-audio judge: the recorded instrument samples of two Debian packages, as a manifest.

`lmms-common` (GPL-2+, share/lmms/samples/instruments) and `sonic-pi-samples` (CC0 files from
Freesound, per its copyright file) carry 27 readable recordings of 11 labels, several of which
(electric guitar, electric piano, violin, piano, voice) no other legal judge has. None of them is in
the packages the corpus presets train on (whether a General-MIDI soundfont re-uses one is not
checked). Too few to decide on alone (one recording is 0.037 of top-1): a figure reported beside the
npm notes. The LMMS notes' origins are not stated in the package's copyright file, so "recorded" is
assumed from their names. **Since session 22 `synth --extra` trains on these recordings** (all but
`ambi_choir`; `synth.banks.DEBIAN_CLIPS`), so this judge only judges models trained without `--extra`.

    python benchmarks/debian_samples.py --out build/debian-samples
    python benchmarks/realdev_accuracy.py --manifest build/debian-samples/MANIFEST.csv

Downloads the two packages with `apt-get download` (no root needed) into ``--out``/debs, unpacks
them with `dpkg-deb -x` and copies the files below; MANIFEST.csv has realdev's columns.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

from timbrescope.errors import reported
from timbrescope.fileio import atomic_write_text
from timbrescope.synth.npm_banks import MANIFEST_COLUMNS, csv_text

LMMS = ("lmms-common", "usr/share/lmms/samples/instruments", "GPL-2+")
SONIC_PI = ("sonic-pi-samples", "usr/share/sonic-pi/samples", "CC0-1.0")

# (package, file, label, kind); harpsichord01.ogg of lmms-common is left out: libsndfile cannot read it.
RECORDINGS = (
    (SONIC_PI, "ambi_choir.flac", "voice", "note"),
    (SONIC_PI, "ambi_piano.flac", "piano", "note"),
    (LMMS, "bassslap01.ogg", "electric_bass", "note"),
    (LMMS, "bassslap02.ogg", "electric_bass", "note"),
    (LMMS, "cello01.ogg", "cello", "note"),
    (LMMS, "church_organ01.ogg", "organ", "note"),
    (LMMS, "church_organ02.ogg", "organ", "note"),
    (LMMS, "church_organ03.ogg", "organ", "note"),
    (LMMS, "church_organ04.ogg", "organ", "note"),
    (LMMS, "e_organ01.ogg", "organ", "note"),
    (LMMS, "e_piano_accord01.ogg", "electric_piano", "note"),
    (LMMS, "e_piano_accord02.ogg", "electric_piano", "note"),
    (LMMS, "flute01.ogg", "flute", "note"),
    (SONIC_PI, "guit_e_fifths.flac", "electric_guitar", "phrase"),
    (SONIC_PI, "guit_e_slide.flac", "electric_guitar", "phrase"),
    (SONIC_PI, "guit_em9.flac", "electric_guitar", "phrase"),
    (SONIC_PI, "guit_harmonics.flac", "electric_guitar", "phrase"),
    (LMMS, "piano01.ogg", "piano", "note"),
    (LMMS, "piano02.ogg", "piano", "note"),
    (LMMS, "steel_guitar01.ogg", "acoustic_guitar", "note"),
    (LMMS, "steel_guitar_heavy_distorted01.ogg", "electric_guitar", "note"),
    (LMMS, "steel_guitar_medium_distorted01.ogg", "electric_guitar", "note"),
    (LMMS, "steel_guitar_slight_distorted01.ogg", "electric_guitar", "note"),
    (LMMS, "trumpet01.ogg", "trumpet", "note"),
    (LMMS, "violin_double_stop01.ogg", "violin", "note"),
    (LMMS, "violin_fingered01.ogg", "violin", "note"),
    (LMMS, "violin_pizzicato01.ogg", "violin", "note"),
)


def fetch_package(name: str, debs: Path) -> Path:
    """The package's .deb in ``debs``, downloaded by `apt-get download` if not already there."""
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        done = subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{name}_*.deb"))
        if done.returncode != 0 or not found:
            reason = (done.stderr.strip().splitlines() or ["no .deb written"])[-1]
            sys.exit(f"error: apt-get download {name} failed: {reason}")
    return found[-1]


def build(out: Path) -> int:
    """Copy the recordings into ``out`` and write ``out``/MANIFEST.csv; the number of rows."""
    rows = []
    with tempfile.TemporaryDirectory() as unpacked:
        for package, _, _ in (LMMS, SONIC_PI):
            subprocess.run(["dpkg-deb", "-x", str(fetch_package(package, out / "debs")), unpacked], check=True)
        for (package, folder, licence), name, label, kind in RECORDINGS:
            source = Path(unpacked, folder, name)
            if not source.is_file():
                sys.exit(f"error: {package} holds no {folder}/{name}")
            shutil.copyfile(source, out / name)
            values = (package, name, label, kind, f"{sf.info(out / name).duration:.3f}", licence)
            rows.append(dict(zip(MANIFEST_COLUMNS, values)))
    atomic_write_text(out / "MANIFEST.csv", csv_text(MANIFEST_COLUMNS, rows))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the recordings and MANIFEST.csv")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{args.out / 'MANIFEST.csv'}: {build(args.out)} recordings")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/debian_samples.py"))
