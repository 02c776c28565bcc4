"""Where the files are tagged: worker processes on this machine, or actors on a Ray cluster.

Both run ``rows.tag_file`` with one model loaded per worker, and hand every finished file to the
caller's ``emit(row, segments)`` (local) or write it where ``table.Store`` finds it (Ray).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

from timbrescope.errors import ParameterError
from timbrescope.inference import Recognizer, tune_process
from timbrescope.tagging.rows import tag_file

_recognizer: Recognizer | None = None  # a worker process's model


def _start(checkpoint: str | None, cores=None) -> None:
    """Load a worker's model; with ``cores`` (a queue of CPU ids), pin the worker to one core, its
    batches on one thread: two workers on two cores then tag ~1.35x as many 10-s files as when the
    scheduler moves their threads around (each one's decoding, resampling and batches stay on its core)."""
    global _recognizer
    _recognizer = Recognizer(checkpoint, threads=1 if cores is not None else None)
    tune_process()
    if cores is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cores.get()})


def _tag(path: str) -> tuple[dict, list[dict]]:
    return tag_file(_recognizer, path)


def run_local(files: list[str], checkpoint: str | None, workers: int,
              emit: Callable[[dict, list[dict]], None]) -> None:
    """Tag ``files`` in ``workers`` processes (each loads the model once; 1: in this process)."""
    if workers == 1:
        _start(checkpoint)
        for path in files:
            emit(*_tag(path))
        return
    # a few files per hand-out when there are many (less inter-process traffic), one at a time at the end
    chunk = max(1, min(8, len(files) // (workers * 16)))
    context = multiprocessing.get_context("spawn")
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = None
    if 1 < workers <= len(available):  # one core each
        cores = context.Queue()
        for core in available[:workers]:
            cores.put(core)
    with context.Pool(workers, _start, (checkpoint, cores)) as pool:
        for row, segments in pool.imap_unordered(_tag, files, chunksize=chunk):
            emit(row, segments)


class _RayTagger:
    """A Ray Data actor: one model, batches of paths -> rows and segments as JSON text."""

    def __init__(self, checkpoint: str | None):
        _start(checkpoint)

    def __call__(self, batch: dict) -> dict:
        tagged = [_tag(str(path)) for path in batch["path"]]
        return {"row": [json.dumps(row) for row, _ in tagged], "segments": [json.dumps(s) for _, s in tagged]}


def run_ray(files: list[str], checkpoint: str | None, workers: int | None, address: str | None, folder: Path,
            quiet: bool) -> None:
    """Tag ``files`` on a Ray cluster (``address``; None starts a local instance): Ray Data over the
    file list, ``workers`` actors (default: one per CPU of the cluster) with one model each, their
    rows written as Parquet files under ``folder`` (on storage every node shares)."""
    if quiet:  # Ray Data's own progress and info lines (read when ray.data configures its logging)
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    try:
        import ray
    except ImportError:
        raise ParameterError('--engine ray needs Ray: pip install "timbrescope[distributed]"') from None
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR if quiet else logging.WARNING)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = not quiet
        actors = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        dataset = ray.data.from_items([{"path": path} for path in files],
                                      override_num_blocks=max(1, min(len(files), 4 * actors)))
        tagged = dataset.map_batches(_RayTagger, fn_constructor_args=(checkpoint,), batch_size=4,
                                     compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
        tagged.write_parquet(str(folder))
    finally:
        ray.shutdown()
