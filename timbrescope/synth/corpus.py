"""Build a rendered corpus: clips of 1-6 instruments with exact labels, written with a manifest.

Layout of an output folder::

    corpus.json            preset, seed, settings, counts; "complete": true once finished
    manifest.jsonl         one row per clip, sorted by split and index (see docs/CORPUS.md)
    audio/<split>/<id>.flac            the clip (mono, 16-bit FLAC)
    audio/<split>/<id>.<label>.flac    dry stems, with --stems
    .progress.jsonl        rows of finished clips while a build runs (resume reads it)

Every clip is a pure function of (seed, split, index), so the same seed gives byte-identical
manifests whatever the number of workers, and a killed build resumes where it stopped: a clip is
recorded only after its audio file has been renamed into place.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from timbrescope.errors import DataError, ParameterError
from timbrescope.fileio import atomic_write, atomic_write_text, ensure_writable_folder
from timbrescope.synth.banks import (RECORDED_ENGINES, SPLITS, Bank, debian_clip_banks, extra_soundfont_banks,
                                     festival_banks, freepats_bank, gm_banks, hydrogen_banks, sfz_banks, sinsy_bank,
                                     stk_bank)
from timbrescope.synth.effects import (ROOM_IMPULSES, apply_effects, draw_effects, normalise_peak, rms, room_names,
                                      uniform_rounded)
from timbrescope.synth.material import SNARE, Note, Part, drum_hit, drum_pattern, phrase, single_note
from timbrescope.synth.multisample import multisample_banks
from timbrescope.synth.render import Renderer
from timbrescope.synth.scores import excerpt
from timbrescope.taxonomy import TAXONOMY_VERSION, family_of, gm_program, programs_for

MANIFEST = "manifest.jsonl"
CORPUS_INFO = "corpus.json"
PROGRESS = ".progress.jsonl"
BANK_CACHE = ".banks"
FEW_CLIPS = 12


@dataclass(frozen=True)
class Preset:
    """How much to render and how. ``clips`` is the number of clips per split."""

    name: str
    clips: dict[str, int]
    clip_seconds: float = 5.0
    max_instruments: int = 6
    sample_rate: int = 22_050
    soundfonts: tuple[str, ...] = ("fluidr3", "musescore", "timgm6mb", "csound")
    solo_share: float = 0.35
    single_note_share: float = 0.5
    sfz_share: float = 0.5
    score_share: float = 0.25
    freepats: bool = True
    hydrogen_drumkits: bool = True


PRESETS = {
    "tiny": Preset("tiny", {"train": 12, "validation": 4, "test": 4}, clip_seconds=3.0, max_instruments=3,
                   soundfonts=("fluidr3", "timgm6mb", "csound"), freepats=False, hydrogen_drumkits=False),
    "small": Preset("small", {"train": 480, "validation": 60, "test": 60}),
    "default": Preset("default", {"train": 15_000, "validation": 1_000, "test": 1_000}),
    # one instrument playing one note (a kit piece's single hit) per clip, as in note datasets and most real
    # multisample libraries: more distinct notes to train on, and a larger single-note validation bank
    "notes": Preset("notes", {"train": 10_000, "validation": 2_000, "test": 1_000}, solo_share=1.0,
                    single_note_share=1.0, score_share=0.0),
}


@dataclass(frozen=True)
class Settings:
    """Everything that determines the corpus besides the preset (saved in corpus.json)."""

    preset: Preset
    seed: int
    effects: bool = True
    stems: bool = False
    sfz_dirs: tuple[str, ...] = ()
    soundfonts: tuple[str, ...] = ()
    stk: bool = False  # add the STK physical models as a train bank
    festival: bool = False  # add Festival's singing diphone voices as train banks (voice)
    extra: bool = False  # add the extra Debian sources: soundfonts, recorded clips, multisampled engines, room IRs
    sinsy: bool = False  # add Sinsy's singing voice (PyPI pysinsy) as a train bank (voice)
    holdout: bool = True  # keep banks.HOLDOUT out of training (False: train on them too, the shipped model)

    def banks(self, cache: Path) -> list[Bank]:
        """Every bank these settings use; generated bank files (Hydrogen kits as SFZ) go to ``cache``."""
        banks = gm_banks([Path(p) for p in self.soundfonts], names=list(self.preset.soundfonts))
        if self.preset.freepats:
            banks.append(freepats_bank())
        if self.preset.hydrogen_drumkits:
            banks += hydrogen_banks(cache)
        if self.festival:
            banks += festival_banks()
        if self.stk:
            banks.append(stk_bank())
        for folder in self.sfz_dirs:
            banks += sfz_banks(Path(folder), holdout=self.holdout)
        if self.extra:
            room_names()  # fail before any rendering if the room impulse responses are missing (clips then
            # draw from ROOM_IMPULSES without checking the files again)
            banks += extra_soundfont_banks() + debian_clip_banks()
            banks += multisample_banks(cache, banks, Renderer)
        if self.sinsy:
            banks.append(sinsy_bank())
        return banks

    def to_json(self) -> dict:
        return {"preset": asdict(self.preset), "seed": self.seed, "effects": self.effects, "stems": self.stems,
                "sfz_dirs": [Path(d).name for d in self.sfz_dirs],
                "soundfonts": [Path(p).name for p in self.soundfonts], "taxonomy_version": TAXONOMY_VERSION,
                **({"stk": True} if self.stk else {}),  # absent when off: older corpora stay resumable
                **({"festival": True} if self.festival else {}),
                **({"extra": True} if self.extra else {}),
                **({"sinsy": True} if self.sinsy else {}),
                **({} if self.holdout else {"holdout": False})}


@dataclass(frozen=True)
class ClipJob:
    split: str
    index: int

    @property
    def clip_id(self) -> str:
        return f"{self.split}-{self.index:06d}"


def build_corpus(out: Path, settings: Settings, workers: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Render (or finish rendering) the corpus described by ``settings`` into ``out``.

    Returns the corpus summary (also written to corpus.json). ``progress(done, total)`` is called
    after each clip.
    """
    out = Path(out)
    ensure_writable_folder(out)
    banks = settings.banks(out / BANK_CACHE)
    info_path = out / CORPUS_INFO
    wanted = json.loads(json.dumps(settings.to_json()))  # as it reads back from corpus.json
    if info_path.exists():
        existing = json.loads(info_path.read_text())
        if existing.get("settings") != wanted:
            raise DataError(f"{out} already holds a corpus built with other settings; choose an empty folder")
        if existing.get("complete"):
            return existing
    atomic_write_text(info_path, json.dumps({"settings": wanted, "complete": False}, indent=1) + "\n")

    coverage, gaps = bank_coverage(banks, Renderer(settings.preset.sample_rate))
    done = _read_progress(out)
    jobs = [ClipJob(split, i) for split in SPLITS for i in range(settings.preset.clips.get(split, 0))]
    todo = [job for job in jobs if job.clip_id not in done]
    total = len(jobs)
    with open(out / PROGRESS, "a") as log:
        for row in _render_all(todo, settings, banks, coverage, out, workers):
            log.write(json.dumps(row, sort_keys=True) + "\n")
            log.flush()
            os.fsync(log.fileno())
            done[row["id"]] = row
            if progress:
                progress(len(done), total)

    rows = [done[job.clip_id] for job in jobs]
    atomic_write_text(out / MANIFEST, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    summary = {"settings": wanted, "complete": True, "bank_gaps": gaps, **summarise(rows)}
    atomic_write_text(info_path, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    (out / PROGRESS).unlink()
    return summary


def summarise(rows: list[dict]) -> dict:
    """Clips per split, total hours, and clips per label in each split."""
    per_label: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for row in rows:
        per_label[row["split"]].update(row["instruments"])
    return {"clips": dict(Counter(row["split"] for row in rows)),
            "hours": round(sum(row["duration"] for row in rows) / 3600, 3),
            "label_counts": {split: dict(sorted(c.items())) for split, c in per_label.items() if c}}


def bank_coverage(banks: list[Bank], renderer: Renderer) -> tuple[dict[str, dict[str, list]], list[str]]:
    """Which programs of each bank audibly play each label: ``{bank: {label: [program, ...]}}``,
    and the gaps (``"bank: label (why)"``) where a bank cannot play a label it should."""
    coverage: dict[str, dict[str, list]] = {}
    gaps = []
    for bank in banks:
        coverage[bank.name] = {}
        if bank.engine == "clip":  # recordings sound by construction
            coverage[bank.name] = {label: [None] for label in bank.labels}
            continue
        for label in bank.labels:
            low, high = renderer.pitch_range(bank, label)  # an SFZ's mapped keys may be a few notes
            probe = Part(label, [Note(SNARE if label == "drum_kit" else (low + high) // 2, 100, 0.0, 0.4)])
            programs = renderer.programs(bank, label)
            audible = [p for p in programs if np.abs(renderer.render(bank, probe, p, 0.5)).max() > 1e-4]
            if audible:
                coverage[bank.name][label] = audible
            else:
                gaps.append(f"{bank.name}: {label} ({'silent' if programs else 'no program'})")
    return coverage, gaps


def read_manifest(folder: Path) -> list[dict]:
    """The rows of a finished corpus."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder}: no {MANIFEST}; build one with `timbrescope synth --out {folder}`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _render_all(jobs: list[ClipJob], settings: Settings, banks: list[Bank], coverage: dict, out: Path,
                workers: int) -> Iterator[dict]:
    if not jobs:
        return
    setup = (settings, banks, coverage, out)
    if workers <= 1:
        _init_worker(*setup)
        yield from map(_render_job, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=setup) as pool:
        futures = [pool.submit(_render_job, job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool:
            raise DataError("a rendering worker died; run the same command again to resume") from None
        finally:
            for future in futures:
                future.cancel()


_worker: dict = {}


def _init_worker(settings: Settings, banks: list[Bank], coverage: dict, out: Path) -> None:
    if sys.platform.startswith("linux"):  # end with the build: a killed `synth` leaves no worker rendering on
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # prctl(PR_SET_PDEATHSIG, SIGTERM)
    _worker.update(settings=settings, banks=banks, coverage=coverage, out=out,
                   renderer=Renderer(settings.preset.sample_rate))


def _render_job(job: ClipJob) -> dict:
    w = _worker
    return render_clip(job, w["settings"], w["banks"], w["coverage"], w["renderer"], w["out"])


def render_clip(job: ClipJob, settings: Settings, banks: list[Bank], coverage: dict, renderer: Renderer,
                out: Path) -> dict:
    """Render one clip (audio files written atomically) and return its manifest row."""
    preset = settings.preset
    seed = int(np.random.SeedSequence([settings.seed, SPLITS.index(job.split), job.index]).generate_state(1)[0])
    rng = np.random.default_rng(seed)
    split_banks = [bank for bank in banks if bank.split == job.split]
    playable = sorted({label for bank in split_banks for label in coverage[bank.name]})
    if not playable:
        raise DataError(f"no sound bank can play anything for the {job.split} split")
    seconds, sr = preset.clip_seconds, preset.sample_rate
    piece, score_parts = None, []
    if rng.random() < preset.score_share:
        piece, score_parts = excerpt(rng, playable, seconds, preset.max_instruments)
    if score_parts:
        labels = [part.label for part in score_parts]
    else:
        piece = None
        count = 1 if rng.random() < preset.solo_share else int(rng.integers(2, preset.max_instruments + 1))
        labels = [str(x) for x in rng.choice(playable, size=min(count, len(playable)), replace=False)]
    parts_info, stems, parts = [], [], []
    predominant = len(labels) > 1 and rng.random() < 0.3
    for position, label in enumerate(labels):
        bank, program = _pick_source(label, split_banks, coverage, rng, preset.sfz_share)
        pitch_range = renderer.pitch_range(bank, label)
        start, end = (0.0, seconds) if piece else _active_window(rng, seconds)
        if bank.engine == "clip":
            part = renderer.recorded_part(bank, rng, start, end)
        elif piece:  # a voice the bank's keys cannot play becomes a phrase, so every part sounds
            part = score_parts[position].within(*pitch_range)
            part = part if part.notes else phrase(label, rng, start, end, pitch_range)
        elif len(labels) == 1 and rng.random() < preset.single_note_share:
            part = drum_hit(rng, start, end) if label == "drum_kit" else single_note(label, rng, start, end,
                                                                                   pitch_range)
        elif label == "drum_kit":
            part = drum_pattern(rng, start, end)
        else:
            part = phrase(label, rng, start, end, pitch_range)
        audio = renderer.render(bank, part, program, seconds)
        gain_db = (0.0 if position == 0 else uniform_rounded(rng, -18, -6, 2)) if predominant else uniform_rounded(rng, -6, 0, 2)
        stems.append(level_stem(audio, gain_db))
        parts.append(part)
        parts_info.append({"label": label, "bank": bank.name, "program": program, "material": part.material,
                           "gain_db": gain_db, "source": _source(label, program),
                           **({"recording": part.take.clip} if part.take else {})})
    effects = draw_effects(rng, tuple(ROOM_IMPULSES) if settings.extra else ()) if settings.effects else None
    mix = np.sum(stems, axis=0)
    mix = apply_effects(mix, sr, effects) if effects else normalise_peak(mix, -3.0)
    folder = out / "audio" / job.split
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write_audio(folder / f"{job.clip_id}.flac", mix, sr)
    if settings.stems:
        for info, stem in zip(parts_info, stems):
            _atomic_write_audio(folder / f"{job.clip_id}.{info['label']}.flac", stem, sr)
    segments = sorted(({"label": part.label, "start": round(a, 3), "end": round(min(b, seconds), 3)}
                       for part in parts for a, b in part.active_intervals() if a < seconds),
                      key=lambda s: (s["start"], s["label"]))
    instruments = sorted({info["label"] for info in parts_info})
    return {"id": job.clip_id, "audio": f"audio/{job.split}/{job.clip_id}.flac", "split": job.split,
            "index": job.index, "sample_rate": sr, "duration": seconds, "instruments": instruments,
            "families": sorted({family_of(label) for label in instruments}),
            "sources": {info["label"]: info["source"] for info in parts_info}, "segments": segments,
            "parts": parts_info, "banks": sorted({info["bank"] for info in parts_info}),
            "composer": piece.composer if piece else None, "piece": piece.name if piece else None,
            "seed": seed, "effects": effects}


def _pick_source(label: str, banks: list[Bank], coverage: dict, rng: np.random.Generator,
                 sfz_share: float) -> tuple[Bank, int | None]:
    """A bank and program that play ``label``: a bank of real recordings (SFZ samples, recorded clips,
    Festival's recorded diphones) with probability ``sfz_share`` where one exists, else any covering bank
    and one of its programs for the label. A clip bank of fewer than ``FEW_CLIPS`` clips weighs (and
    lowers the recorded share) in proportion, so that one recording is not repeated in every clip."""
    candidates = [bank for bank in banks if label in coverage[bank.name]]
    recorded = [bank for bank in candidates if bank.engine in RECORDED_ENGINES]
    gm = [bank for bank in candidates if bank.engine not in RECORDED_ENGINES]
    weights = np.array([min(1.0, len(bank.clips) / FEW_CLIPS) if bank.engine == "clip" else 1.0
                        for bank in recorded])
    if recorded and (not gm or rng.random() < sfz_share * min(1.0, weights.sum())):
        return recorded[int(rng.choice(len(recorded), p=weights / weights.sum()))], None
    bank = gm[int(rng.integers(len(gm)))]
    programs = coverage[bank.name][label]
    return bank, programs[int(rng.integers(len(programs)))]


def _source(label: str, program: int | None) -> str:
    """acoustic / electronic / synthetic: the GM program's, or for the drum kit and SFZ instruments
    the source of the label's first GM program (real recordings of an electric bass are electronic)."""
    if program is not None:
        return gm_program(program).source
    return next((p.source for p in programs_for(label)), "acoustic")


def _active_window(rng: np.random.Generator, seconds: float) -> tuple[float, float]:
    """Where a part plays: the whole clip, or (instruments entering and leaving) a sub-interval >= 1 s."""
    if rng.random() >= 0.4 or seconds <= 1.5:
        return 0.0, seconds
    length = float(rng.uniform(1.0, seconds))
    start = float(rng.uniform(0, seconds - length))
    return round(start, 3), round(start + length, 3)


def level_stem(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale a stem to an RMS of -20 dBFS (over its non-silent part) plus ``gain_db``."""
    loud = audio[np.abs(audio) > 1e-4]
    level = rms(loud) if len(loud) else 1.0
    return (audio * (10 ** ((-20 + gain_db) / 20) / level)).astype(np.float32)


def _read_progress(out: Path) -> dict[str, dict]:
    """Rows of clips already finished (a half-written last line, from a kill, is ignored)."""
    rows = {}
    path = out / PROGRESS
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (out / row["audio"]).is_file():
                rows[row["id"]] = row
    return rows


def _atomic_write_audio(path: Path, y: np.ndarray, sr: int) -> None:
    atomic_write(path, lambda tmp: sf.write(tmp, np.clip(y, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16"))


def resolve_preset(name: str, clip_seconds: float | None = None) -> Preset:
    """A named preset, optionally with another clip length."""
    if name not in PRESETS:
        raise ParameterError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if clip_seconds is not None:
        if not 0.5 <= clip_seconds <= 60:
            raise ParameterError(f"clip length must be 0.5..60 seconds, got {clip_seconds}")
        preset = replace(preset, clip_seconds=clip_seconds)
    return preset
