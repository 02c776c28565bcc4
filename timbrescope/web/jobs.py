"""Bounded analysis work for the server: a fixed pool of worker threads sharing one ``Recognizer`` and a
bounded queue of jobs in front of it.

A job is one recording to identify. ``JobQueue.submit`` refuses a job with ``QueueFull`` (HTTP 503 with
``Retry-After``) when ``capacity`` jobs already wait, so the server never takes more work than it can
hold. A job running past ``timeout_seconds`` fails with a one-line error. Uploaded recordings are temp
files the job owns and deletes when it ends, whatever the outcome. Finished jobs are kept for
``keep_seconds`` (at most ``keep`` of them) for their results to be fetched.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from timbrescope.errors import TimbrescopeError
from timbrescope.inference import Recognizer, blas_on_one_thread


class QueueFull(TimbrescopeError):
    """Every queue place is taken (HTTP 503); ``retry_after`` seconds is when to try again."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class AnalysisTimeout(TimbrescopeError):
    """A job ran past the server's limit."""


@dataclass
class Job:
    """One recording to identify. ``name`` is for display only (an upload's name is never a path);
    ``expected`` is the header's duration in seconds, for progress."""

    name: str
    source: Path
    owned: bool
    expected: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "queued"  # queued, running, done or failed
    progress: float = 0.0  # 0..1
    result: dict | None = None
    error: str | None = None
    finished_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    _callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the job ends (at once if it has)."""
        with _callback_lock:
            if not self.done.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def public(self) -> dict:
        """The job as the API shows it."""
        state = {"id": self.id, "name": self.name, "status": self.status, "progress": round(self.progress, 3)}
        if self.result is not None:
            state["result"] = self.result
        if self.error is not None:
            state["error"] = self.error
        return state

    def _finish(self) -> None:
        self.finished_at = time.monotonic()
        with _callback_lock:
            self.done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


_callback_lock = threading.Lock()


class JobQueue:
    """``workers`` threads identifying queued jobs with ``recognizer``; at most ``capacity`` jobs wait."""

    def __init__(self, recognizer: Recognizer, workers: int, capacity: int, timeout_seconds: float,
                 keep: int = 1000, keep_seconds: float = 3600.0):
        self.recognizer, self.workers, self.capacity = recognizer, workers, capacity
        self.timeout_seconds, self.keep, self.keep_seconds = timeout_seconds, keep, keep_seconds
        self._queue: queue.Queue[Job | None] = queue.Queue(capacity)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._seconds = 1.0  # a running mean of job times, for Retry-After
        # NumPy's BLAS held to one thread from here, the creating thread: a limit set from a worker was seen not to
        # hold in the threads its identify starts (OpenBLAS), whose mel products then differ from the CLI's.
        self._blas = ExitStack()
        self._blas.enter_context(blas_on_one_thread())
        self._threads = [threading.Thread(target=self._work, name=f"identify-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, name: str, source: Path, owned: bool, expected: float) -> Job:
        """Queue a recording; ``owned`` sources are deleted when the job ends (or is refused)."""
        job = Job(name, source, owned, expected)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._discard(job)
            wait = math.ceil(self._seconds * (self.capacity + self.workers) / max(1, self.workers))
            raise QueueFull(f"the server is busy ({self.capacity} recordings wait); try again in {wait} s",
                            max(1, wait)) from None
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        """Stop the workers after their current jobs; queued jobs fail and their temp files go."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.status, job.error = "failed", "the server stopped"
                self._discard(job)
                job._finish()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._blas.close()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            started = time.monotonic()
            job.status = "running"

            def progress(seconds: float, job: Job = job) -> None:
                if time.monotonic() - started > self.timeout_seconds:
                    raise AnalysisTimeout(f"{job.name}: the analysis took over {self.timeout_seconds:g} s")
                job.progress = min(0.99, seconds / job.expected) if job.expected > 0 else 0.0

            try:
                result = self.recognizer.identify(job.source, progress=progress)
                result.path = job.name
                job.result, job.status, job.progress = result.to_dict(), "done", 1.0
            except TimbrescopeError as exc:
                job.error, job.status = str(exc).replace(str(job.source), job.name), "failed"
            except Exception as exc:  # a decoder or runtime failure must not kill the worker
                job.error, job.status = f"{job.name}: analysis failed ({type(exc).__name__})", "failed"
            finally:
                self._discard(job)
                self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - started)
                job._finish()

    def _discard(self, job: Job) -> None:
        if job.owned:
            job.source.unlink(missing_ok=True)

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id in list(self._jobs):
            job = self._jobs[job_id]
            old = job.finished_at is not None and now - job.finished_at > self.keep_seconds
            if old or (len(self._jobs) > self.keep and job.finished_at is not None):
                del self._jobs[job_id]
            elif len(self._jobs) <= self.keep:
                break
