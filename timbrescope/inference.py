"""Checkpoint -> model -> clip scores, frame scores and segments, for a file or an array of any length.

Every setting below comes from the model file (``timeline.DecisionRule`` and the thresholds saved with
it; the defaults are named here). The recording is cut into windows of the training clip length
(5 s), streamed from disk in constant
memory and run through the network in batches. Window clip probabilities give the recording's
instrument scores (maximum over windows: an instrument that plays anywhere is in the recording);
frame probabilities (every 40 ms) give the timeline: a label plays in the frames of the windows
that detect it (clip probability at its clip threshold) where its smoothed frame probability
reaches its frame threshold (``timeline.active_frames``; both thresholds tuned on the validation
bank, the frame ones for the best frame F1 of exactly these timelines). Windows below
-60 dBFS RMS count as silence (all scores 0), because normalisation would otherwise amplify the
noise floor. A recording's remainder is analysed as the last 5 s of the recording; only inputs
shorter than 5 s are padded, with silence.

Two backends compute the probabilities: ONNX Runtime for an exported ``.onnx`` model (the shipped
default: the numpy log-mel front-end, then the network; PyTorch is never imported, which saves its
1.3-3 s import in every CLI run), and PyTorch for a ``.ckpt`` checkpoint.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
from threadpoolctl import threadpool_limits

from timbrescope.audio import AudioInfo, is_audio_path, resample, stream
from timbrescope.errors import AudioError, ModelError, ParameterError
from timbrescope.features import FrontendConfig, log_mel
from timbrescope.intervals import join_intervals, runs
from timbrescope.taxonomy import SOURCES, TAXONOMY_VERSION, families, source_of, target_family
from timbrescope.timeline import DecisionRule, active_frames

BATCH_WINDOWS = 8  # windows per forward pass: larger is barely faster and costs ~15 MB per window
COMPUTE_THREADS = max(1, min(4, os.cpu_count() or 1))  # batches computed at once


def default_model_path() -> Path:
    """The pretrained model shipped inside the package (its PyTorch checkpoint)."""
    return Path(str(resources.files("timbrescope") / "models" / "pretrained" / "timbrenet-default.ckpt"))


def default_onnx_path() -> Path:
    """The shipped model exported to ONNX (``timbrescope export``), which ``Recognizer()`` runs."""
    return default_model_path().with_suffix(".onnx")


def tune_process() -> None:
    """Process-wide settings that make long runs faster, for programs that own their process (the CLI
    calls it; a library user may): ``Recognizer`` itself changes nothing outside its own objects.

    glibc keeps up to 128 MB of freed heap for reuse (mmap threshold 32 MB, trim threshold 128 MB):
    every batch allocates and frees ~25 MB of arrays; returned to the system each time, they
    page-fault back in: ~0.8 s of system time per hour of audio (a 1-hour file 3.8-4.4 s -> 2.8-3.2 s
    through the CLI). Does nothing where the C library has no ``mallopt``. And PyTorch, when it is
    already loaded, flushes denormal numbers to zero (they slow CPU convolutions by 10-20 %)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(True)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


class _OnnxNetwork:
    """An exported model on ONNX Runtime: waveform windows -> numpy log-mel -> probabilities."""

    batches_at_once = COMPUTE_THREADS  # one ONNX Runtime thread per batch

    def __init__(self, path: Path):
        import onnxruntime  # imported here: a PyTorch checkpoint never needs it

        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        # One thread per run, not spinning between runs: batches run on COMPUTE_THREADS threads of
        # their own, beside decoding and resampling (spinning threads steal their cores)
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            # the key ``models.onnx_export.METADATA_KEY`` writes (that module imports PyTorch)
            meta = json.loads(self.session.get_modelmeta().custom_metadata_map["timbrescope"])
        except Exception as exc:  # ONNX Runtime raises its own types for a file that is not a model
            raise ModelError(f"{path}: not a timbrescope ONNX model ({type(exc).__name__})") from None
        if meta["taxonomy_version"] != TAXONOMY_VERSION:
            raise ModelError(f"{path}: trained on taxonomy v{meta['taxonomy_version']}, this timbrescope "
                             f"uses v{TAXONOMY_VERSION}; export a matching model")
        self.meta = {**meta, "path": str(path)}
        self.labels = list(meta["config"]["labels"])
        self.frontend = FrontendConfig(**meta["config"]["frontend"])
        # the time between two output frames ("frame_seconds" in files exported before session 19)
        self.sample_rate, self.hop_seconds = meta["sample_rate"], meta.get("hop_seconds", meta.get("frame_seconds"))
        self.frame_level, self.composers = meta["frame_level"], list(meta["composers"])
        self.network = None  # no PyTorch module behind it

    def probabilities(self, windows: np.ndarray) -> list[np.ndarray]:
        """``[clip [batch, labels], frames [batch, frames, labels]]`` (+ composers) of ``[batch, samples]``."""
        return self.session.run(None, {"log_mel": log_mel(windows, self.frontend)})

    def score_features(self, features: np.ndarray) -> np.ndarray:
        raise ModelError(f"{self.meta['path']}: an ONNX model scores audio, not precomputed features")


class _TorchNetwork:
    """A PyTorch checkpoint (batch norm folded into the convolutions): windows -> probabilities."""

    batches_at_once = 1  # PyTorch spreads each batch over the cores itself (two at once: 15 % slower)

    def __init__(self, path: Path):
        import torch  # imported here: the shipped ONNX model never needs it

        from timbrescope.models.checkpoint import load_checkpoint
        from timbrescope.models.fusion import fuse_batchnorm

        self._torch = torch
        network, self.meta = load_checkpoint(path)
        self.network = fuse_batchnorm(network)
        self.labels = list(network.labels)
        self.sample_rate, self.frame_level, self.hop_seconds = network.sample_rate, network.frame_level, network.hop_seconds
        self.composers = list(getattr(network, "composers", []))

    def probabilities(self, windows: np.ndarray) -> list[np.ndarray]:
        with self._torch.inference_mode():
            out = self.network(self._torch.from_numpy(windows))
            scores = [self.network.probabilities(out["clip_logits"]).numpy(),
                      self.network.probabilities(out["frame_logits"]).numpy()]
            if "composer_logits" in out:
                scores.append(self._torch.softmax(out["composer_logits"], dim=-1).numpy())
        return scores

    def score_features(self, features: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            logits = self.network.forward_features(self._torch.from_numpy(np.asarray(features, np.float32)))
            return self.network.probabilities(logits["clip_logits"]).numpy()


_blas_lock = threading.Lock()
_blas_holders = 0  # identify calls now running in this process
_blas_limit = None  # their shared threadpool limit, undone by the last one to finish


@contextmanager
def blas_on_one_thread():
    """Hold NumPy's BLAS to one thread while inside. The limit is process-wide, so calls that overlap
    (e.g. identify in several threads of a web server) share one: the first sets it and the last to
    finish restores the caller's setting."""
    global _blas_holders, _blas_limit
    with _blas_lock:
        if _blas_holders == 0:
            _blas_limit = threadpool_limits(1, user_api="blas")
        _blas_holders += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0:
                _blas_limit.restore_original_limits()


@dataclass
class Result:
    """What ``Recognizer.identify`` returns; ``to_dict`` is the JSON contract of ``timbrescope identify``."""

    path: str | None
    duration: float
    model: str
    instruments: list[dict]
    families: list[dict]
    segments: list[dict]
    frames: np.ndarray | None = field(default=None, repr=False)
    frame_times: np.ndarray | None = field(default=None, repr=False)
    labels: list[str] = field(default_factory=list, repr=False)
    thresholds: dict[str, float] = field(default_factory=dict, repr=False)
    composers: list[dict] | None = None
    active: np.ndarray | None = field(default=None, repr=False)  # bool [frames, labels]: the timeline's frames
    warnings: list[str] = field(default_factory=list)  # what decoding noticed (a file that ends early)
    sources: list[dict] = field(default_factory=list)  # acoustic/electronic/synthetic: each one's best label score
    format: str | None = field(default=None, repr=False)  # the decoded file's format (WAV, mp3, ...); None for an array

    def detected(self) -> list[dict]:
        """Instruments whose score reaches their threshold, highest first."""
        return [item for item in self.instruments if item["score"] >= self.thresholds[item["label"]]]

    def to_dict(self, frames: bool = False) -> dict:
        instruments = [{**item, "detected": item["score"] >= self.thresholds[item["label"]]} for item in self.instruments]
        result = {"path": self.path, "duration": round(self.duration, 3), "model": self.model,
                  "instruments": instruments, "families": self.families, "sources": self.sources,
                  "segments": self.segments, "warnings": self.warnings}
        if self.composers is not None:  # models with a composer head only
            result["composers"] = self.composers
        if frames:
            result["frames"] = np.round(self.frames, 4).tolist()
            result["frame_times"] = np.round(self.frame_times, 3).tolist()
        return result


class Recognizer:
    """Loads a model once and identifies instruments: the shipped model by default (on ONNX Runtime),
    an exported ``.onnx`` model, or a PyTorch ``.ckpt`` checkpoint.

    ``threshold`` overrides every per-label threshold stored in the model: the clip thresholds that
    decide which instruments are detected and the frame thresholds that draw their timelines (models
    saved without frame thresholds use their clip thresholds for both). ``strict`` turns decoding
    warnings (a file that ends before its header says) into ``AudioError``. ``threads``: batches of
    windows an ONNX model computes at once (default: one per core, at most 4; 1 where processes of
    their own share the cores, as ``tag``'s workers do).
    """

    def __init__(self, model: str | os.PathLike | None = None, threshold: float | None = None,
                 strict: bool = False, threads: int | None = None):
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ParameterError(f"threshold must be in 0..1, got {threshold}")
        if threads is not None and threads < 1:
            raise ParameterError(f"threads must be at least 1, got {threads}")
        self.model_path = Path(model) if model is not None else default_onnx_path()
        self.strict = strict
        if self.model_path.suffix == ".onnx":
            if not self.model_path.is_file():
                raise ModelError(f"{self.model_path}: no such model")
            self._backend: _OnnxNetwork | _TorchNetwork = _OnnxNetwork(self.model_path)
        else:
            self._backend = _TorchNetwork(self.model_path)
        self.meta, self.network = self._backend.meta, self._backend.network
        self.threads = threads if threads is not None and self.model_path.suffix == ".onnx" else self._backend.batches_at_once
        self.labels: list[str] = self._backend.labels
        stored = self.meta["thresholds"]
        stored_frames = self.meta.get("frame_thresholds", stored)
        self.thresholds = {label: float(threshold if threshold is not None else stored[i])
                           for i, label in enumerate(self.labels)}
        self.frame_thresholds = {label: float(threshold if threshold is not None else stored_frames[i])
                                 for i, label in enumerate(self.labels)}
        self.sample_rate, self.hop_seconds = self._backend.sample_rate, self._backend.hop_seconds
        self.composers: list[str] = self._backend.composers
        self.rule = DecisionRule.from_dict(self.meta.get("decision"))
        self._frames_per_window = max(1, int(self.rule.window_seconds / self.hop_seconds + 1e-6))  # whole frames
        self._window = round(self.rule.window_seconds * self.sample_rate) if self.sample_rate else 0
        # windows advance by their whole frames: 5 s at 40-ms frames, 4.97 s at a 512-sample hop (107, not 107.7)
        self._step = min(self._window, round(self._frames_per_window * self.hop_seconds * self.sample_rate)
                         ) if self.sample_rate else 0

    @property
    def frame_level(self) -> bool:
        """Whether frame scores carry time resolution (else one frame per 5-s window)."""
        return self._backend.frame_level

    @property
    def takes_audio(self) -> bool:
        """False for a model fitted on a dataset's precomputed features (see ``score_features``)."""
        return self.sample_rate is not None

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Clip probabilities ``[n, labels]`` of precomputed feature vectors ``[n, dim]``."""
        return self._backend.score_features(features)

    def identify(self, source: str | os.PathLike | BinaryIO | np.ndarray, sr: int | None = None,
                 progress: Callable[[float], None] | None = None) -> Result:
        """Identify the instruments in a file (a path or a binary file object, streamed) or in a
        mono/multichannel array at ``sr`` Hz. The result's duration is the decoded length.
        ``progress(seconds)`` is called with the seconds decoded so far after each block of audio
        (a minute); an exception it raises stops the analysis and propagates."""
        if not self.takes_audio:
            raise ModelError(f"{self.model_path}: this model was fitted on precomputed features, not audio")
        if isinstance(source, np.ndarray):
            if sr is None:
                raise ParameterError("an array needs its sample rate: identify(array, sr=...)")
            y = np.asarray(source, np.float32)
            y = y.mean(axis=0) if y.ndim == 2 else y
            if y.ndim != 1 or not len(y) or not np.isfinite(y).all():
                raise AudioError("array: need non-empty finite audio of shape (n,) or (channels, n)")
            y = resample(y, sr, self.sample_rate)
            return self._run(iter([y]), None, [], progress)
        found: list[str] = []
        headers: list[AudioInfo] = []
        blocks = stream(source, self.sample_rate, 60.0, strict=self.strict, warnings=found, opened=headers.append)
        path = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
        result = self._run(blocks, path if isinstance(path, str) else None, found, progress)
        result.format = headers[0].format
        return result

    def _run(self, blocks, path: str | None, found: list[str], progress: Callable[[float], None] | None) -> Result:
        clip_probs, frame_probs, composer_probs = [], [], []
        samples = [0]

        def counted(blocks):
            for block in blocks:
                samples[0] += len(block)
                yield block
                if progress is not None:
                    progress(samples[0] / self.sample_rate)

        def collect(done: Future) -> None:
            clips, frames, composers = done.result()
            clip_probs.extend(clips)
            frame_probs.extend(frames)
            composer_probs.extend(composers)

        # Batches run on threads of their own (the front-end and both backends release the GIL),
        # collected in order, at most two per thread in flight so memory stays constant. NumPy's
        # OpenBLAS stays on one thread: its own threads for each batch's mel product spin between
        # products and take the cores from the batches and the decoder (an hour of audio: 2.0 s of
        # batches -> 1.15 s on 2 cores).
        threads = self.threads
        with blas_on_one_thread(), ThreadPoolExecutor(threads) as pool:
            in_flight: deque[Future] = deque()
            batch: list[tuple[np.ndarray, float, bool]] = []
            for window in self._windows(counted(blocks)):
                batch.append(window)
                if len(batch) == BATCH_WINDOWS:
                    in_flight.append(pool.submit(self._forward, batch))
                    batch = []
                    while len(in_flight) > 2 * threads:
                        collect(in_flight.popleft())
            if batch:
                in_flight.append(pool.submit(self._forward, batch))
            while in_flight:
                collect(in_flight.popleft())
        duration = samples[0] / self.sample_rate
        n_frames = max(1, round(duration / self.hop_seconds))
        frames = np.concatenate(frame_probs)[:n_frames]
        clip = [round(float(score), 4) for score in np.max(np.stack(clip_probs), axis=0)]
        instruments = sorted(({"label": label, "family": target_family(label), "score": clip[i]}
                              for i, label in enumerate(self.labels)), key=lambda item: -item["score"])
        family_list = _grouped(instruments, lambda item: item["family"], families())
        source_list = _grouped(instruments, lambda item: source_of(item["label"]), list(SOURCES))
        times = np.arange(len(frames)) * self.hop_seconds
        clip_thresholds, frame_thresholds = self.threshold_arrays()
        detected = np.concatenate([np.broadcast_to(window >= clip_thresholds, window_frames.shape)
                                   for window, window_frames in zip(clip_probs, frame_probs)])[:n_frames]
        active = active_frames(frames, detected, frame_thresholds, self.rule.smooth_frames)
        composers = None
        if self.composers:
            mean = np.mean(composer_probs, axis=0)
            composers = sorted(({"label": name, "score": round(float(mean[i]), 4)} for i, name in enumerate(self.composers)),
                               key=lambda item: -item["score"])
        return Result(path, duration, self.meta["path"] if self.model_path != default_onnx_path() else "default",
                      instruments, family_list, self._segments(frames, active), frames, times, self.labels,
                      self.thresholds, composers, active, list(found), source_list)

    def _windows(self, blocks):
        """Regroup audio blocks into (window, seconds of new audio, new audio is at the end) triples:
        windows of the training length, one step apart (the seconds of a window's whole frames: the window
        itself at 40-ms frames). A recording's remainder becomes the last full-length window ending at the
        recording's end (overlapping the one before); only a recording shorter than one window is padded,
        with silence, as rendered clips end in silence too."""
        carry, previous = np.zeros(0, np.float32), None
        for block in blocks:
            carry = np.concatenate([carry, block])
            while len(carry) >= self._window:
                previous = carry[: self._window]
                yield previous, self._step / self.sample_rate, False
                carry = carry[self._step:]
        if len(carry):
            seconds = len(carry) / self.sample_rate
            if previous is None:
                yield np.pad(carry, (0, self._window - len(carry))), seconds, False
            else:  # carry holds the previous window's overlap, so the step before it completes a window
                yield np.concatenate([previous[: self._step], carry])[-self._window:], seconds, True

    def _forward(self, windows: list[tuple[np.ndarray, float, bool]]) -> tuple[list, list, list]:
        """Run equal-length windows as one batch: their clip probabilities, the frame probabilities
        of their new audio and, for models with a composer head, their composer probabilities."""
        clips, frames, *composers = self._backend.probabilities(np.stack([w for w, *_ in windows]))
        frames = frames[:, : self._frames_per_window]
        clip_probs, frame_probs = [], []
        for i, (w, seconds, at_end) in enumerate(windows):
            keep = min(self._frames_per_window, max(1, round(seconds / self.hop_seconds)))
            new = slice(self._frames_per_window - keep, None) if at_end else slice(0, keep)
            samples = max(1, round(seconds * self.sample_rate))
            real = w[-samples:] if at_end else w[:samples]
            silent = 10 * np.log10(float(np.dot(real, real)) / len(real) + 1e-24) < self.rule.silence_dbfs  # mean power
            clip_probs.append(np.zeros_like(clips[i]) if silent else clips[i])
            frame_probs.append(np.zeros_like(frames[i, new]) if silent else frames[i, new])
        return clip_probs, frame_probs, list(composers[0]) if composers else []

    def threshold_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The clip and frame thresholds ``[labels]``, in the order of ``labels``."""
        return (np.array([self.thresholds[label] for label in self.labels]),
                np.array([self.frame_thresholds[label] for label in self.labels]))

    def _segments(self, frames: np.ndarray, active: np.ndarray) -> list[dict]:
        """Runs of each label's ``active`` frames (``timeline.active_frames``), gaps under the rule's 0.5 s joined,
        runs under 0.2 s dropped; a segment's score is its mean frame probability."""
        segments = []
        gap = round(self.rule.merge_gap_seconds / self.hop_seconds)
        shortest = round(self.rule.min_segment_seconds / self.hop_seconds)
        for j in np.flatnonzero(active.any(axis=0)):
            label = self.labels[j]
            for a, b in join_intervals(runs(active[:, j]), gap):
                if b - a >= shortest:
                    segments.append({"label": label, "start": round(a * self.hop_seconds, 3),
                                     "end": round(b * self.hop_seconds, 3),
                                     "score": round(float(frames[a:b, j].mean()), 4)})
        return sorted(segments, key=lambda s: (s["start"], s["label"]))


def _grouped(instruments: list[dict], group: Callable[[dict], str], order: list[str]) -> list[dict]:
    """``[{"label": group, "score": its best member's score}]``, best first (ties in ``order``)."""
    best: dict[str, float] = {}
    for item in instruments:
        best[group(item)] = max(best.get(group(item), 0.0), item["score"])
    return sorted(({"label": name, "score": best[name]} for name in order if name in best), key=lambda g: -g["score"])


def identify(source: str | os.PathLike | np.ndarray, sr: int | None = None, model: str | None = None) -> Result:
    """Shortcut: ``Recognizer(model).identify(source, sr)``."""
    return Recognizer(model).identify(source, sr)


def audio_files(paths: list[str]) -> list[str]:
    """Expand directories (recursively, sorted) into the audio files they hold (by name; broken symbolic
    links too, so that they are reported); files pass through. A folder without any audio file is an
    ``AudioError``."""
    found = []
    for path in paths:
        if Path(path).is_dir():
            inside = sorted(str(p) for p in Path(path).rglob("*")
                            if (p.is_file() or p.is_symlink() and not p.is_dir()) and is_audio_path(p))
            if not inside:
                raise AudioError(f"no audio files under {path}")
            found += inside
        else:
            found.append(path)
    return found
