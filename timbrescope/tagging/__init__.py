"""Tagging a whole music library: ``tag(paths, out, ...)`` -> one row per file in a Parquet, CSV or
JSON-lines table (``table`` has the columns), resumable and safe to kill, on worker processes or a Ray
cluster (``engines``)."""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from timbrescope.errors import ParameterError
from timbrescope.fileio import ensure_writable_folder
from timbrescope.inference import Recognizer, audio_files
from timbrescope.tagging.engines import run_local, run_ray
from timbrescope.tagging.rows import model_name
from timbrescope.tagging.table import Store, output_format, stat


@dataclass
class Summary:
    """What a run did: files tagged now, skipped (already in the output, unchanged), failed (rows with an
    error), hours of audio tagged now, and how many files of the whole output detect each label."""

    tagged: int = 0
    skipped: int = 0
    failed: int = 0
    hours: float = 0.0
    per_label: Counter = field(default_factory=Counter)
    rows: int = 0


def tag(paths: list[str], out: str | os.PathLike, workers: int | None = None, segments: str | os.PathLike | None = None,
        checkpoint: str | None = None, engine: str = "local", address: str | None = None, quiet: bool = True,
        progress: Callable[[int, int, float], None] | None = None) -> Summary:
    """Tag the audio files of ``paths`` (folders walked) into ``out`` (and their segments into
    ``segments``). Files already in ``out`` with the same size and mtime and no error are skipped; the
    others are tagged by ``workers`` processes (default: the cores) or, with ``engine="ray"``, on the
    Ray cluster at ``address``. ``progress(done, total, seconds of audio)`` follows the local engine."""
    out = Path(out)
    segments = Path(segments) if segments is not None else None
    for path in (out, segments):
        if path is not None:
            output_format(path)
            ensure_writable_folder(path.parent)
    if engine not in ("local", "ray"):
        raise ParameterError(f"--engine must be local or ray, got {engine!r}")
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {workers}")
    files = [str(Path(p).absolute()) for p in audio_files(paths)]
    with _only_run(out):
        return _tag(files, out, segments, workers, checkpoint, engine, address, quiet, progress)


@contextmanager
def _only_run(out: Path):
    """Hold ``OUT.lock`` (an advisory lock the kernel releases when the process dies, SIGKILL included)
    so that a second run writing ``out`` at the same time stops with an error."""
    lock = Path(f"{out}.lock")
    handle = open(lock, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ParameterError(f"{out}: another tag run is writing it; wait for it or use another --out") from None
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


def _tag(files: list[str], out: Path, segments: Path | None, workers: int | None, checkpoint: str | None,
         engine: str, address: str | None, quiet: bool, progress) -> Summary:
    recognizer = Recognizer(checkpoint)
    model = model_name(recognizer)
    store = Store(out, segments, recognizer.labels)
    done = store.done()
    if other := sorted({m for _, _, m in done.values()} - {model}):
        raise ParameterError(f"{out} holds rows of model {other[0]}, not {model}; use another --out")
    todo = [f for f in files if f not in done or done[f][:2] != stat(f)]
    summary = Summary(skipped=len(files) - len(todo))
    seconds = [0.0]

    def emit(row: dict, found: list[dict]) -> None:
        store.add(row, found)
        summary.tagged += 1
        summary.failed += row["error"] is not None
        seconds[0] += row["duration"] or 0.0
        if progress:
            progress(summary.tagged, len(todo), seconds[0])

    if todo and engine == "local":
        run_local(todo, checkpoint, workers or os.cpu_count() or 1, emit)
    elif todo:
        run_ray(todo, checkpoint, workers, address, store.ray_folder(), quiet)
    rows = store.finish(files)
    if engine == "ray":  # its rows came through Parquet files, not emit()
        now = set(todo)
        mine = [row for row in rows.select(["path", "error", "duration"]).to_pylist() if row["path"] in now]
        summary.tagged, summary.failed = len(mine), sum(row["error"] is not None for row in mine)
        seconds[0] = sum(row["duration"] or 0.0 for row in mine)
    summary.hours, summary.rows = seconds[0] / 3600, len(rows)
    summary.per_label = Counter(label for labels in rows["detected"].to_pylist() for label in labels)
    return summary
