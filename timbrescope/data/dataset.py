"""The interface every data source shares: ``Example``, ``Dataset`` and windowing of long recordings.

An example's ``labels`` are *targets*: taxonomy labels, or family names where a dataset only tells
the family (NSynth's ``brass``), or the dataset's own class names where it has no map (UIowa ids).
``known`` lists the targets that were annotated at all (OpenMIC-2018 is partially labelled): a target
outside ``known`` is unknown, neither present nor absent, and is masked in training and evaluation.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from timbrescope.audio import info, load
from timbrescope.errors import DataError, TimbrescopeError
from timbrescope.intervals import join_intervals
from timbrescope.taxonomy import dataset_map

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One labelled recording or region of one; audio is decoded only by ``load_audio``.

    ``offset``/``duration`` (seconds) select a region of ``path`` (``duration`` None: to the end);
    ``segments`` (``{"label", "start", "end"}`` in seconds from ``offset``) are known activity;
    ``features`` hold precomputed features for datasets without audio.
    """

    id: str
    split: str
    labels: tuple[str, ...]
    path: Path | None = None
    offset: float = 0.0
    duration: float | None = None
    segments: tuple[dict, ...] | None = None
    known: tuple[str, ...] | None = None
    features: np.ndarray | None = field(default=None, compare=False, repr=False)
    metadata: dict = field(default_factory=dict, compare=False, repr=False)

    def load_audio(self, sr: int) -> np.ndarray:
        """Mono float32 ``[samples]`` at ``sr`` Hz (AudioError if the file is missing or corrupt)."""
        if self.path is None:
            raise DataError(f"{self.id}: this dataset holds precomputed features, not audio")
        y, _ = load(self.path, sr=sr, offset=self.offset, duration=self.duration)
        return y

    def is_known(self, target: str) -> bool:
        """Whether the presence or absence of ``target`` was annotated."""
        return self.known is None or target in self.known


@dataclass
class Dataset:
    """Examples of every split, with the dataset's provenance. ``problems`` are annotation files that
    could not be read while indexing (each skipped and counted, never fatal)."""

    name: str
    root: Path
    examples: list[Example]
    citation: str = ""
    licence: str = ""
    url: str = ""
    problems: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Example]:
        """The examples of split ``name`` (``all``: every example); DataError naming the splits there
        are if it is empty."""
        chosen = [ex for ex in self.examples if name in (ex.split, "all")]
        if not chosen:
            raise DataError(f"{self.name} at {self.root}: no example in split {name!r} "
                            f"(splits: {', '.join(self.splits()) or 'none'})")
        return chosen

    def sample(self, name: str, limit: int | None, seed: int = 0) -> list[Example]:
        """At most ``limit`` examples of split ``name``, drawn at random (seeded) and kept in dataset
        order: the first N would be biased where a dataset is ordered by label (IRMAS folders)."""
        chosen = self.split(name)
        if limit is None or limit >= len(chosen):
            return chosen
        keep = np.sort(np.random.default_rng(seed).permutation(len(chosen))[:max(limit, 0)])
        return [chosen[i] for i in keep]

    def splits(self) -> list[str]:
        present = {ex.split for ex in self.examples}
        return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))

    @property
    def has_audio(self) -> bool:
        return any(ex.path is not None for ex in self.examples)

    def label_counts(self) -> dict[str, dict[str, int]]:
        """Split -> target -> number of examples where it is present."""
        return {s: dict(sorted(Counter(t for ex in self.examples if ex.split == s for t in ex.labels).items()))
                for s in self.splits()}

    def validate(self) -> dict:
        """Check every audio file: counts per split and label, and the missing and unreadable files."""
        missing, unreadable, seen = [], [], set()
        for ex in self.examples:
            if ex.path is None or ex.path in seen:
                continue
            seen.add(ex.path)
            if not ex.path.is_file():
                missing.append(str(ex.path))
                continue
            try:
                info(ex.path)
            except TimbrescopeError as exc:
                unreadable.append(f"{ex.path}: {exc}")
        return {"dataset": self.name, "root": str(self.root), "examples": len(self.examples),
                "splits": {s: len([ex for ex in self.examples if ex.split == s]) for s in self.splits()},
                "label_counts": self.label_counts(), "missing": missing, "unreadable": unreadable,
                "annotation_problems": list(self.problems)}


def carve_split(key: str, validation: float = 0.1, test: float = 0.0) -> str:
    """Deterministic split for datasets without one: hash ``key`` (a song or group id, so that parts of
    one recording never straddle two splits) into train, validation or test."""
    position = zlib.crc32(key.encode()) / 2**32
    return "validation" if position < validation else "test" if position < validation + test else "train"


def window(example: Example, seconds: float, hop: float | None = None) -> list[Example]:
    """Cut a long example into windows of ``seconds`` every ``hop`` (default: ``seconds``); the last
    window ends at the recording's end."""
    hop = hop or seconds
    length = example_length(example)
    if length <= seconds:
        return [replace(example, duration=length)]
    starts = list(np.arange(0.0, length - seconds, hop)) + [length - seconds]
    return [region(example, float(start), seconds, i) for i, start in enumerate(starts)]


def example_length(example: Example) -> float:
    """Seconds of audio an example spans (reads the file header when the dataset did not say)."""
    return example.duration if example.duration is not None else info(example.path).duration - example.offset


def region(example: Example, start: float, seconds: float, number: int) -> Example:
    """The part ``start .. start + seconds`` (seconds from the example's start) as example ``id@number``:
    segments are clipped to it and, where activity is known, its labels are the targets active in it."""
    segments, labels = None, example.labels
    if example.segments is not None:
        segments = tuple({**s, "start": round(max(s["start"] - start, 0.0), 4),
                          "end": round(min(s["end"] - start, seconds), 4)}
                         for s in example.segments if s["end"] > start and s["start"] < start + seconds)
        labels = tuple(sorted({s["label"] for s in segments}))
    return replace(example, id=f"{example.id}@{number}", offset=example.offset + start, duration=seconds,
                   segments=segments, labels=labels)


def require_files(name: str, root: Path, expected: Iterable[str], url: str) -> None:
    """Raise one DataError naming what is missing where, and where the dataset can be had."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{name}: {root} is not a folder; download {name} from {url} and unpack it there")
    absent = [rel for rel in expected if not (root / rel).exists()]
    if absent:
        raise DataError(f"{name}: {root} is incomplete: expected {', '.join(absent)} there; "
                        f"download {name} from {url} and unpack it there")


def mapped_target(dataset: str, name: str) -> str | None:
    """Our target for a dataset's label (a label, or a family for coarse entries); None if unmapped."""
    entry = dataset_map(dataset).get(name)
    return None if entry is None else entry.label or entry.family


def merge_segments(segments: Iterable[dict], gap: float = 0.05) -> tuple[dict, ...]:
    """Join each label's segments that overlap or lie within ``gap`` seconds (notes -> activity)."""
    by_label: dict[str, list[tuple[float, float]]] = {}
    for seg in segments:
        by_label.setdefault(seg["label"], []).append((seg["start"], seg["end"]))
    merged = [{"label": label, "start": start, "end": end}
              for label, spans in by_label.items() for start, end in join_intervals(spans, gap)]
    return tuple(sorted(merged, key=lambda s: (s["start"], s["end"], s["label"])))
