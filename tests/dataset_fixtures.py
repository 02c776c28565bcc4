"""Tiny copies of the public datasets in their native layouts (file names, folders, CSV headers, JSON keys,
audio formats), with tones for audio. ``broken=True`` removes one audio file and corrupts another."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sr: int, freq: float, harmonics: int = 4, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * freq * k * t) / k**(1.5 if harmonics > 3 else 0.5) for k in range(1, harmonics + 1))
    y = (0.3 * y / np.abs(y).max()).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def write(path: Path, y: np.ndarray, sr: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr, **kwargs)
    return path


def _break(missing: Path, corrupt: Path) -> None:
    missing.unlink()
    corrupt.write_bytes(b"RIFF\x00\x00not really audio" * 8)


def nsynth(root: Path, broken: bool = False) -> dict:
    """3 splits x (2 bass + 2 brass + 1 organ) notes; examples.json keyed by note_str."""
    files = []
    for folder in ("nsynth-train", "nsynth-valid", "nsynth-test"):
        notes = {}
        for i, (family, family_id, source) in enumerate([("bass", 0, "synthetic"), ("bass", 0, "electronic"),
                                                          ("brass", 1, "acoustic"), ("brass", 1, "acoustic"),
                                                          ("organ", 6, "electronic")]):
            pitch = 40 + 7 * i
            note_str = f"{family}_{source}_{i:03d}-{pitch:03d}-100"
            notes[note_str] = {
                "note": i, "note_str": note_str, "instrument": i, "instrument_str": f"{family}_{source}_{i:03d}",
                "pitch": pitch, "velocity": 100, "sample_rate": 16000, "qualities": [0] * 10, "qualities_str": [],
                "instrument_family": family_id, "instrument_family_str": family,
                "instrument_source": ["acoustic", "electronic", "synthetic"].index(source),
                "instrument_source_str": source}
            harmonics = {"bass": 2, "brass": 8, "organ": 5}[family]
            files.append(write(root / folder / "audio" / f"{note_str}.wav",
                               tone(4.0, 16000, 440 * 2 ** ((pitch - 69) / 12), harmonics), 16000, subtype="PCM_16"))
        (root / folder / "examples.json").write_text(json.dumps(notes))
    if broken:
        _break(files[0], files[1])
    return {"examples": 15, "train": 5, "missing": files[0] if broken else None, "corrupt": files[1] if broken else None}


IRMAS_TRAIN = [("cel", f"{n:03d}__[cel][nod][cla]{n:04d}__{k}.wav") for n in range(1, 7) for k in (1, 2)] + \
              [("vio", f"{n:03d}__[vio][dru][pop_roc]{n:04d}__{k}.wav") for n in range(11, 17) for k in (1, 2)]


def irmas(root: Path, broken: bool = False) -> dict:
    """24 training excerpts (cello, violin; 3 s, 44.1 kHz stereo) and 2 multi-label test excerpts."""
    files = []
    for code, name in IRMAS_TRAIN:
        freq, harmonics = (130.8, 3) if code == "cel" else (659.3, 7)
        files.append(write(root / "IRMAS-TrainingData" / code / name, tone(3.0, 44100, freq, harmonics, 2), 44100,
                           subtype="PCM_16"))
    test = root / "IRMAS-TestingData-Part1" / "Part1"
    for name, codes in [("01 - Song-1", ["cel", "vio"]), ("02 - Other-3", ["vio"])]:
        y = tone(8.0, 44100, 659.3, 7, 2) + (tone(8.0, 44100, 130.8, 3, 2) if "cel" in codes else 0)
        files.append(write(test / f"{name}.wav", y, 44100, subtype="PCM_16"))
        (test / f"{name}.txt").write_text("".join(f"{c}\t\n" for c in codes))
    if broken:  # a test excerpt whose .txt remains, and a training excerpt
        _break(files[-1], files[2])
    return {"examples": 26, "missing": files[-1] if broken else None, "corrupt": files[2] if broken else None}


MEDLEY = [("training", "violin", 7), ("training", "flute", 3)] * 4 + [("validation", "violin", 7),
          ("validation", "flute", 3), ("test", "violin", 7), ("test", "flute", 3)]


def medley_solos_db(root: Path, broken: bool = False) -> dict:
    """12 clips (65,536 samples at 22,050 Hz) over the three native subsets; metadata in annotation/."""
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    files = []
    with open(root / "annotation" / "Medley-solos-DB_metadata.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subset", "instrument", "instrument_id", "song_id", "uuid4"])
        for i, (subset, instrument, instrument_id) in enumerate(MEDLEY):
            uuid = f"{i:08x}-0000-4000-8000-{i:012x}"
            writer.writerow([subset, instrument, instrument_id, 100 + i, uuid])
            freq, harmonics = (659.3, 7) if instrument == "violin" else (880.0, 1)
            y = tone(65536 / 22050, 22050, freq, harmonics)[:65536]
            files.append(write(root / "audio" / f"Medley-solos-DB_{subset}-{instrument_id}_{uuid}.wav", y, 22050))
    if broken:
        _break(files[0], files[1])
    return {"examples": len(MEDLEY), "missing": files[0] if broken else None, "corrupt": files[1] if broken else None}


MUSICNET = {"train": ["1727", "1728", "1729", "1730", "1733"], "test": ["2106"]}


def musicnet(root: Path, broken: bool = False) -> dict:
    """6 recordings of 12 s (44.1 kHz mono): violin (program 41) throughout, cello (43) in the second half."""
    base = root / "musicnet"
    files = []
    for split, ids in MUSICNET.items():
        for track in ids:
            y = tone(12.0, 44100, 659.3, 7)
            y[6 * 44100:] += tone(6.0, 44100, 130.8, 3)
            files.append(write(base / f"{split}_data" / f"{track}.wav", y, 44100, subtype="PCM_16"))
            (base / f"{split}_labels").mkdir(parents=True, exist_ok=True)
            with open(base / f"{split}_labels" / f"{track}.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value"])
                for k in range(12):
                    writer.writerow([k * 44100, (k + 1) * 44100, 41, 76, k, 1.0, "Quarter"])
                writer.writerow([6 * 44100, 12 * 44100, 43, 48, 6, 6.0, "Whole"])
    with open(base / "musicnet_metadata.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "composer", "composition", "movement", "ensemble", "source", "transcriber",
                         "catalog_name", "seconds"])
        for track in MUSICNET["train"] + MUSICNET["test"]:
            writer.writerow([track, "Beethoven", "Duo", "1. Allegro", "Violin and Cello", "x", "y", "Op. 1", 12])
    if broken:
        _break(files[0], files[1])
    return {"examples": 6, "missing": files[0] if broken else None, "corrupt": files[1] if broken else None}


OPENMIC = {"train": ["000046_3840", "000135_483840", "000139_119040", "000141_153600", "000144_30720",
                     "000145_46080", "000203_3840", "000219_3840"],
           "test": ["000193_15360", "000194_46080"]}


def openmic2018(root: Path, broken: bool = False) -> dict:
    """10 ten-second OGG clips; each annotated for violin and (for half of them) piano only."""
    (root / "partitions").mkdir(parents=True, exist_ok=True)
    classes = ["accordion", "banjo", "bass", "cello", "clarinet", "cymbals", "drums", "flute", "guitar",
               "mallet_percussion", "mandolin", "organ", "piano", "saxophone", "synthesizer", "trombone", "trumpet",
               "ukulele", "violin", "voice"]
    (root / "class-map.json").write_text(json.dumps({c: i for i, c in enumerate(classes)}))
    keys = OPENMIC["train"] + OPENMIC["test"]
    files = []
    with open(root / "openmic-2018-aggregated-labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample_key", "instrument", "relevance", "num_responses"])
        for i, key in enumerate(keys):
            violin = i % 2 == 0
            writer.writerow([key, "violin", 0.8 if violin else 0.1, 3])
            if i % 4 < 2:
                writer.writerow([key, "piano", 0.2, 3])
            y = tone(10.0, 44100, 659.3, 7) if violin else tone(10.0, 44100, 261.6, 2)
            files.append(write(root / "audio" / key[:3] / f"{key}.ogg", y, 44100, format="OGG", subtype="VORBIS"))
    for split, ids in OPENMIC.items():
        (root / "partitions" / f"split01_{split}.csv").write_text("".join(f"{k}\n" for k in ids))
    rng = np.random.default_rng(0)
    y_true = np.full((len(keys), 20), 0.5, np.float32)
    np.savez(root / "openmic-2018.npz", X=rng.random((len(keys), 10, 128)).astype(np.float32), Y_true=y_true,
             Y_mask=np.zeros((len(keys), 20), bool), sample_key=np.array(keys))
    if broken:
        _break(files[0], files[1])
    return {"examples": len(keys), "missing": files[0] if broken else None, "corrupt": files[1] if broken else None}


def uiowa_mis(root: Path, broken: bool = False) -> dict:
    """120 features per note, 3 classes separable by their means; ``broken`` truncates the test labels."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 300), ("test", 30)):
        labels = np.arange(n) % 3
        data = rng.normal(size=(n, 120)).astype(np.float32) + labels[:, None] * 2.0
        np.save(root / f"uiowa_{split}_data.npy", data)
        np.save(root / f"uiowa_{split}_labels.npy", labels[: n - 1] if broken and split == "test" else labels)
    return {"examples": 330}


def folder(root: Path, broken: bool = False) -> dict:
    """root/<label>/x.flac for violin, cello (as 'Cello') and the alias 'snare drum'."""
    files = []
    for label, freq, harmonics in (("violin", 659.3, 7), ("Cello", 130.8, 3), ("snare drum", 200.0, 12)):
        for k in range(8):
            files.append(write(root / label / f"take{k}.flac", tone(2.0, 22050, freq * (1 + k / 50), harmonics), 22050))
    if broken:  # nothing indexes a label folder's files, so a missing file cannot be told: only a corrupt one
        files[1].write_bytes(b"fLaC not really audio")
    return {"examples": 24, "missing": None, "corrupt": files[1] if broken else None}


def manifest(root: Path, broken: bool = False) -> dict:
    """A JSON-lines manifest with splits and segments: violin solos, and duets where a cello enters at 3 s."""
    rows = []
    for i in range(10):
        y = tone(6.0, 22050, 659.3, 7)
        segments = [{"label": "violin", "start": 0.0, "end": 6.0}]
        if i % 2:
            y[22050 * 3:] += tone(3.0, 22050, 130.8, 3)
            segments.append({"label": "cello", "start": 3.0, "end": 6.0})
        path = write(root / "audio" / f"take{i}.wav", y, 22050)
        rows.append({"path": f"audio/{path.name}", "labels": sorted({s["label"] for s in segments}),
                     "split": "train" if i < 6 else "validation" if i < 8 else "test", "segments": segments})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"examples": 10}


ALL = {"nsynth": nsynth, "irmas": irmas, "medley_solos_db": medley_solos_db, "musicnet": musicnet,
       "openmic2018": openmic2018, "uiowa_mis": uiowa_mis, "folder": folder, "manifest": manifest}


def spec(name: str, root: Path) -> str:
    """The data spec that names the fixture built in ``root``."""
    return f"manifest:{root / 'manifest.jsonl'}" if name == "manifest" else f"{name}:{root}"
