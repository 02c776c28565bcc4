"""Fixed-length clips for networks: window long examples, decode a batch at a time, skip corrupt files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from timbrescope.data.dataset import Example, window
from timbrescope.errors import TimbrescopeError

CLIP_SECONDS = 5.0  # the length networks train on and inference analyses windows of


@dataclass
class SkipLog:
    """Examples that could not be decoded (missing or corrupt audio): reported and counted, never fatal."""

    failures: dict[str, str] = field(default_factory=dict)  # example id -> why

    @property
    def reasons(self) -> list[str]:
        return [f"{key}: {why}" for key, why in self.failures.items()]

    def __len__(self) -> int:
        return len(self.failures)


def clip_examples(examples: list[Example], seconds: float) -> list[Example]:
    """Examples no longer than ``seconds``: long recordings cut into windows (see ``dataset.window``).
    Examples of unknown length whose header cannot be read are kept whole (decoding reports them)."""
    out = []
    for ex in examples:
        if ex.path is None or (ex.duration is not None and ex.duration <= seconds):
            out.append(ex)
            continue
        try:
            out.extend(window(ex, seconds))
        except TimbrescopeError:
            out.append(ex)
    return out


def decode_batches(examples: list[Example], sample_rate: int, seconds: float, skipped: SkipLog,
                   batch: int = 64) -> Iterator[tuple[np.ndarray, list[Example]]]:
    """``(audio float32 [n, seconds * sample_rate], the n examples)`` a batch at a time, each clip cut or
    padded with silence; an example that fails to decode is added to ``skipped`` and left out."""
    length = round(seconds * sample_rate)
    for start in range(0, len(examples), batch):
        audio, kept = [], []
        for ex in examples[start:start + batch]:
            try:
                y = ex.load_audio(sample_rate)[:length]
            except TimbrescopeError as exc:
                skipped.failures[ex.id] = str(exc)
                continue
            audio.append(np.pad(y, (0, length - len(y))))
            kept.append(ex)
        if kept:
            yield np.stack(audio), kept
