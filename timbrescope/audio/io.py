"""Audio reading: header info, whole-file/region loading and constant-memory streaming.

Decoding is libsndfile's (through soundfile): WAV/RF64/W64 (8/16/24/32-bit integer and float PCM,
A-law, µ-law, IMA ADPCM), FLAC, OGG/Vorbis, OGG/Opus, MP3 and AIFF. MP4/M4A (AAC, ALAC) is not
decoded; the error says so. Resampling is soxr's ("HQ" quality).

Every failure is an ``AudioError`` whose message starts with the file name and states the reason.
Silence and one-sample files are valid. Lengths are exact: a file of ``n`` frames at ``orig_sr``
resampled to ``sr`` gives ``ceil(n * sr / orig_sr)`` samples, from ``load`` and ``stream`` alike.
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from timbrescope.errors import AudioError, ParameterError

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".rf64", ".w64"})

# Subtypes read as integers (cheaper than libsndfile's float conversion) and their full scale.
_INTEGER_READ = {
    "PCM_S8": ("int16", 2.0**15), "PCM_U8": ("int16", 2.0**15), "PCM_16": ("int16", 2.0**15),
    "ULAW": ("int16", 2.0**15), "ALAW": ("int16", 2.0**15), "IMA_ADPCM": ("int16", 2.0**15),
    "MS_ADPCM": ("int16", 2.0**15), "PCM_24": ("int32", 2.0**31), "PCM_32": ("int32", 2.0**31),
}
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
# libsndfile logs "data : <declared> (should be <present>)" when a WAV/AIFF data chunk is cut short.
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_READ_BLOCK_FRAMES = 1 << 18
_TAIL_FRAMES = 4096


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: ``duration`` in seconds, ``sample_rate`` in Hz."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    def describe(self) -> str:
        """One human-readable line."""
        return (f"{self.path}: {self.duration:.3f} s, {self.sample_rate} Hz, {self.channels} ch, "
                f"{self.format} {self.subtype}")


def info(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header and check that it describes usable audio.

    Only the last few thousand frames are decoded, which catches files cut short after the header;
    float files (where reading is a copy, not a decode) are scanned whole for NaN and Inf samples.
    """
    with _open(path) as f:
        checked = f.frames if f.subtype in _FLOAT_SUBTYPES else min(f.frames, _TAIL_FRAMES)
        _seek(f, path, f.frames - checked)
        for _ in _read_blocks(f, path, checked, mono=True):
            pass
        return AudioInfo(str(path), f.frames / f.samplerate, f.samplerate, f.channels, f.frames,
                         f.format, f.subtype)


def load(path: str | os.PathLike, sr: int | None = None, mono: bool = True, offset: float = 0.0,
         duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file (or the region ``offset`` .. ``offset + duration`` seconds) into memory.

    Returns ``(y, sr)``: ``y`` is float32 in [-1, 1], shape ``(n,)`` when ``mono`` else
    ``(channels, n)``; ``sr`` is the requested rate, or the file's when ``sr`` is None.
    """
    if offset < 0 or not math.isfinite(offset):
        raise ParameterError(f"offset must be a finite number of seconds >= 0, got {offset}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ParameterError(f"duration must be a finite number of seconds > 0, got {duration}")
    if sr is not None:
        _check_rate(sr, "sr")
    with _open(path) as f:
        start = round(offset * f.samplerate)
        if start >= f.frames:
            raise ParameterError(
                f"{path}: offset {offset} s is at or beyond the end of the audio ({f.frames / f.samplerate:.3f} s)")
        stop = f.frames if duration is None else min(f.frames, start + max(1, round(duration * f.samplerate)))
        _seek(f, path, start)
        y = np.concatenate(list(_read_blocks(f, path, stop - start, mono)))
        orig_sr = f.samplerate
    if sr is not None and sr != orig_sr:
        y, orig_sr = resample(y, orig_sr, sr), sr
    return (y if mono else np.ascontiguousarray(y.T)), orig_sr


def stream(path: str | os.PathLike, sr: int, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Yield a file as mono float32 blocks at ``sr`` Hz, never holding the whole file in memory.

    Every block has ``round(block_seconds * sr)`` samples except the last, which is shorter
    (and non-empty). Memory stays constant whatever the file's length.
    """
    _check_rate(sr, "sr")
    block = round(block_seconds * sr)
    if block < 1:
        raise ParameterError(f"block_seconds must give at least one sample at {sr} Hz, got {block_seconds}")
    with _open(path) as f:
        decoded = _prefetch(_read_blocks(f, path, f.frames, mono=True))
        try:  # decoding and resampling each in a thread of their own, ahead of the consumer
            resampled = decoded if f.samplerate == sr else _prefetch(
                _resample_stream(decoded, f.samplerate, sr, f.frames))
            try:
                yield from _rechunk(resampled, block)
            finally:
                resampled.close()  # joins the resampling thread first ...
        finally:
            decoded.close()  # ... then the decoding thread, before the file closes


def resample(y: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    """Resample ``y`` (shape ``(n,)`` or ``(n, channels)``) from ``orig_sr`` to ``sr`` Hz.

    The result has exactly ``ceil(n * sr / orig_sr)`` samples along the first axis.
    """
    _check_rate(orig_sr, "orig_sr")
    _check_rate(sr, "sr")
    if orig_sr == sr:
        return y.astype(np.float32, copy=False)
    out = soxr.resample(y.astype(np.float32, copy=False), orig_sr, sr, quality="HQ")
    return _fit_length(out, _resampled_length(len(y), orig_sr, sr))


def is_audio_path(path: str | os.PathLike) -> bool:
    """True when the file name has an extension we decode (used to walk folders)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _check_rate(rate: int, name: str) -> None:
    if not (isinstance(rate, (int, np.integer)) and MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE):
        raise ParameterError(
            f"{name} must be an integer in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {rate!r}")


def _resampled_length(n: int, orig_sr: int, sr: int) -> int:
    return -(-n * sr // orig_sr)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` along axis 0 to ``n`` samples (soxr's edges differ by a few)."""
    if len(y) >= n:
        return y[:n]
    pad = np.zeros((n - len(y),) + y.shape[1:], np.float32)
    return np.concatenate([y, pad])


def _open(path: str | os.PathLike) -> sf.SoundFile:
    """Open ``path`` for reading after checking it exists, is a file and holds usable audio."""
    p = Path(path)
    if not p.exists():
        reason = "broken symbolic link" if p.is_symlink() else "no such file"
        raise AudioError(f"{path}: {reason}")
    if p.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        size = p.stat().st_size
        f = sf.SoundFile(p)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: {_why_unreadable(p, exc)}") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        f.close()
        raise AudioError(f"{path}: empty file")
    try:
        _check_header(f, path)
    except AudioError:
        f.close()
        raise
    return f


def _check_header(f: sf.SoundFile, path: str | os.PathLike) -> None:
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{path}: absurd sample rate {f.samplerate} Hz in the header "
                         f"(expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})")
    if f.frames == 0:
        raise AudioError(f"{path}: contains no audio samples (zero length)")
    short = _SHORT_CHUNK.search(f.extra_info)
    if short and int(short.group(1)) > int(short.group(2)):
        raise AudioError(f"{path}: truncated or lying header: it declares {short.group(1)} bytes of "
                         f"audio data but the file holds {short.group(2)}")


def _why_unreadable(p: Path, exc: sf.LibsndfileError) -> str:
    """Turn libsndfile's open error into a reason a user can act on."""
    with open(p, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty file"
    if head[4:8] == b"ftyp":
        return "MP4/M4A audio (AAC/ALAC) is not supported; convert it to WAV, FLAC or MP3"
    if head[:4] == b"MThd":
        return "a MIDI file holds notes, not audio"
    if head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt ":
        tag = int.from_bytes(head[20:22], "little")
        if tag not in (1, 3, 6, 7, 0xFFFE):
            return f"unsupported WAV codec (format tag 0x{tag:04x}): {exc.error_string}"
        return f"corrupt WAV header ({exc.error_string})"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "a text file, not audio"
        except UnicodeDecodeError:
            pass
    message = exc.error_string
    if "not recognised" in message:
        return "not a recognised audio format"
    return f"corrupt or unsupported audio ({message})"


def _seek(f: sf.SoundFile, path: str | os.PathLike, frame: int) -> None:
    try:
        f.seek(frame)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: corrupt or truncated audio data (cannot seek: {exc})") from None


def _read_blocks(f: sf.SoundFile, path: str | os.PathLike, frames: int, mono: bool) -> Iterator[np.ndarray]:
    """Yield ``frames`` frames from the current position as float32 blocks, ``(n,)`` or ``(n, channels)``.

    Raises AudioError for corrupt data, NaN/Inf samples, or a file that ends before ``frames``.
    """
    dtype, scale = _INTEGER_READ.get(f.subtype, ("float32", 1.0))
    buffer = np.empty((min(frames, _READ_BLOCK_FRAMES), f.channels), dtype)
    check_finite = f.subtype in _FLOAT_SUBTYPES
    start = f.tell()
    done = 0
    while done < frames:
        try:
            raw = f.read(min(len(buffer), frames - done), dtype=dtype, out=buffer)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{path}: corrupt or truncated audio data ({exc})") from None
        if len(raw) == 0:
            break
        block = _downmix(raw, scale) if mono else raw.astype(np.float32) * np.float32(1.0 / scale)
        if check_finite and not np.isfinite(block).all():
            raise AudioError(
                f"{path}: contains NaN or infinite samples near {(start + done) / f.samplerate:.3f} s")
        done += len(raw)
        yield block
    if done < frames:
        raise AudioError(f"{path}: truncated: the header promises {f.frames / f.samplerate:.3f} s "
                         f"but the audio ends at {(start + done) / f.samplerate:.3f} s")


def _downmix(raw: np.ndarray, scale: float) -> np.ndarray:
    """Average the channels of ``raw`` (shape ``(n, channels)``) into float32 ``(n,)`` in [-1, 1]."""
    mono = raw[:, 0].astype(np.float32)
    for channel in range(1, raw.shape[1]):
        mono += raw[:, channel]
    mono *= np.float32(1.0 / (scale * raw.shape[1]))
    return mono


def _resample_stream(blocks: Iterator[np.ndarray], orig_sr: int, sr: int, frames: int) -> Iterator[np.ndarray]:
    """Resample mono blocks on the fly; the total is exactly ``ceil(frames * sr / orig_sr)``."""
    resampler = soxr.ResampleStream(orig_sr, sr, 1, dtype="float32", quality="HQ")
    expected = _resampled_length(frames, orig_sr, sr)
    produced = 0
    for block in blocks:
        out = resampler.resample_chunk(block)[: expected - produced]
        produced += len(out)
        yield out
    tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
    yield _fit_length(tail, expected - produced)


def _prefetch(items: Iterator[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """Run ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    Decoding, resampling and the consumer's work then overlap (soundfile, soxr, SciPy's FFT and
    ONNX Runtime release the GIL). Errors are re-raised in the consumer; closing the consumer
    stops and joins the thread.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=produce, name="timbrescope-decode", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _rechunk(blocks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Regroup 1-D blocks of any sizes into blocks of exactly ``size`` (the last may be shorter)."""
    pending: list[np.ndarray] = []
    count = 0
    for block in blocks:
        pending.append(block)
        count += len(block)
        if count >= size:
            joined = np.concatenate(pending)
            full = len(joined) // size * size
            yield from (joined[i:i + size] for i in range(0, full, size))
            pending, count = [joined[full:]], len(joined) - full
    if count:
        yield np.concatenate(pending)
