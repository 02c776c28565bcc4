"""Audio reading: header info, whole-file/region loading and constant-memory streaming.

Decoding is libsndfile's (through soundfile) where it reads the file: WAV/RF64/W64 (8/16/24/32-bit
integer and float PCM, A-law, µ-law, IMA ADPCM), FLAC, OGG/Vorbis, OGG/Opus, MP3 and AIFF. Everything
else that FFmpeg decodes goes through PyAV (FFmpeg inside its wheel): M4A/MP4 (AAC, ALAC), WebM/MKV
(Opus, Vorbis), WMA, AC-3, AMR and the first audio stream of video files. Resampling is soxr's ("HQ").

A source is a path or a binary file object (a web upload, a pipe). The decoded length is the truth:
a file that ends before its header says, or whose decoder stops at corrupt data, is decoded up to
there and gets a **warning** (appended to the ``warnings`` list a caller passes), or an ``AudioError``
with ``strict=True``. Compressed formats whose header length is an estimate (MP3's, a container's)
warn only when the shortfall is over ``ESTIMATE_TOLERANCE``. Undecodable data (nothing decodes, NaN or
Inf samples, absurd rates) is always an ``AudioError`` whose message starts with the file name.
Silence and one-sample files are valid. Lengths are exact: ``n`` decoded frames at ``orig_sr``
resampled to ``sr`` give ``ceil(n * sr / orig_sr)`` samples, from ``load`` and ``stream`` alike.
"""

from __future__ import annotations

import errno
import math
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from timbrescope.errors import AudioError, ParameterError

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".rf64", ".w64",
     ".m4a", ".m4b", ".mp4", ".aac", ".alac", ".webm", ".mkv", ".mka", ".wma", ".asf", ".ac3", ".amr",
     ".mov", ".3gp", ".caf"})
ESTIMATE_TOLERANCE = 0.05  # an estimated length may be this share (or 0.25 s) longer than the decoded one

Source = Union[str, os.PathLike, BinaryIO]

# Subtypes read as integers (cheaper than libsndfile's float conversion) and their full scale.
_INTEGER_READ = {
    "PCM_S8": ("int16", 2.0**15), "PCM_U8": ("int16", 2.0**15), "PCM_16": ("int16", 2.0**15),
    "ULAW": ("int16", 2.0**15), "ALAW": ("int16", 2.0**15), "IMA_ADPCM": ("int16", 2.0**15),
    "MS_ADPCM": ("int16", 2.0**15), "PCM_24": ("int32", 2.0**31), "PCM_32": ("int32", 2.0**31),
}
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
_ESTIMATED_FORMATS = frozenset({"MP3", "MPEG", "OGG"})  # libsndfile's frame count there is an estimate
_COMPRESSED_FORMATS = _ESTIMATED_FORMATS | {"FLAC"}
# libsndfile logs "data : <declared> (should be <present>)" when a WAV/AIFF data chunk is cut short.
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_READ_BLOCK_FRAMES = 1 << 18
_AV_BLOCK_FRAMES = 1 << 16
_TAIL_FRAMES = 4096
_DRM_TAGS = frozenset({"drms", "enca"})  # sample entries of protected audio (FairPlay, CENC)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: ``duration`` in seconds (an estimate for compressed formats),
    ``sample_rate`` in Hz; ``warnings`` about the header (a lying data size)."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        """One human-readable line."""
        return (f"{self.path}: {self.duration:.3f} s, {self.sample_rate} Hz, {self.channels} ch, "
                f"{self.format} {self.subtype}")


class _Report:
    """Where the warnings of one decode go: ``into`` (a caller's list), or an AudioError when strict."""

    def __init__(self, name: str, strict: bool, into: list[str] | None):
        self.name, self.strict, self.into = name, strict, into

    def warn(self, message: str) -> None:
        if self.strict:
            raise AudioError(f"{self.name}: {message}")
        if self.into is not None and message not in self.into:
            self.into.append(message)

    def shortfall(self, promised: int, decoded: int, rate: int, estimated: bool) -> None:
        """The audio ended after ``decoded`` of the ``promised`` frames."""
        if decoded == 0:
            raise AudioError(f"{self.name}: no audio frame could be decoded")
        missing = promised - decoded
        if estimated and missing <= max(ESTIMATE_TOLERANCE * promised, 0.25 * rate):
            return
        self.warn(f"truncated: header promises {promised / rate:.3f} s, audio ends at {decoded / rate:.3f} s")


def info(source: Source) -> AudioInfo:
    """Read a file's header (a container's, for PyAV formats) and check that it describes usable audio.

    For libsndfile's uncompressed formats the last few thousand frames are decoded, which catches files
    cut short after the header (a warning in ``AudioInfo.warnings``); float files are scanned whole for
    NaN and Inf samples. Compressed formats are not decoded: their duration may be an estimate.
    """
    found: list[str] = []
    with _open(source, _Report(_name(source), False, found)) as f:
        if f.kind == "sndfile" and f.handle.format not in _COMPRESSED_FORMATS:
            handle = f.handle
            checked = handle.frames if handle.subtype in _FLOAT_SUBTYPES else min(handle.frames, _TAIL_FRAMES)
            f.seek(handle.frames - checked)
            for _ in f.blocks(checked, mono=True):
                pass
        elif f.kind == "av":
            next(f.blocks(1, mono=True))  # one packet: a stream that decodes nothing fails here
        return _header(f, found)


def _header(f: _Decoder, found: list[str]) -> AudioInfo:
    """An open file's ``AudioInfo``."""
    return AudioInfo(f.name, f.frames / f.rate, f.rate, f.channels, f.frames, f.format, f.subtype, tuple(found))


def load(source: Source, sr: int | None = None, mono: bool = True, offset: float = 0.0,
         duration: float | None = None, strict: bool = False,
         warnings: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Decode a file (or the region ``offset`` .. ``offset + duration`` seconds) into memory.

    Returns ``(y, sr)``: ``y`` is float32 in [-1, 1], shape ``(n,)`` when ``mono`` else
    ``(channels, n)``; ``sr`` is the requested rate, or the file's when ``sr`` is None. Warnings
    (truncation, a lying header) are appended to ``warnings``; ``strict`` makes them errors.
    """
    if offset < 0 or not math.isfinite(offset):
        raise ParameterError(f"offset must be a finite number of seconds >= 0, got {offset}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ParameterError(f"duration must be a finite number of seconds > 0, got {duration}")
    if sr is not None:
        _check_rate(sr, "sr")
    with _open(source, _Report(_name(source), strict, warnings)) as f:
        start = round(offset * f.rate)
        if start >= f.frames and not f.estimated:
            raise ParameterError(
                f"{f.name}: offset {offset} s is at or beyond the end of the audio ({f.frames / f.rate:.3f} s)")
        wanted = None if duration is None else max(1, round(duration * f.rate))
        f.seek(start)
        y = list(f.blocks(wanted, mono))
        if not y:
            raise ParameterError(f"{f.name}: offset {offset} s is at or beyond the end of the audio")
        y, orig_sr = np.concatenate(y), f.rate
    if sr is not None and sr != orig_sr:
        y, orig_sr = resample(y, orig_sr, sr), sr
    return (y if mono else np.ascontiguousarray(y.T)), orig_sr


def stream(source: Source, sr: int, block_seconds: float = 10.0, strict: bool = False,
           warnings: list[str] | None = None,
           opened: Callable[[AudioInfo], None] | None = None) -> Iterator[np.ndarray]:
    """Yield a file as mono float32 blocks at ``sr`` Hz, never holding the whole file in memory.

    Every block has ``round(block_seconds * sr)`` samples except the last, which is shorter
    (and non-empty). Memory stays constant whatever the file's length. Warnings as for ``load``.
    ``opened(header)`` is called once the file is open, before the first block (its header, unchecked).
    """
    _check_rate(sr, "sr")
    block = round(block_seconds * sr)
    if block < 1:
        raise ParameterError(f"block_seconds must give at least one sample at {sr} Hz, got {block_seconds}")
    with _open(source, _Report(_name(source), strict, warnings)) as f:
        if opened is not None:
            opened(_header(f, []))
        decoded = _prefetch(f.blocks(None, mono=True))
        try:  # decoding and resampling each in a thread of their own, ahead of the consumer
            resampled = decoded if f.rate == sr else _prefetch(_resample_stream(decoded, f.rate, sr))
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


def _name(source: Source) -> str:
    """How messages name a source: its path, or a file object's name (``<stream>`` without one), with
    line breaks escaped so that every message stays one line."""
    name = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
    name = name if isinstance(name, str) else "<stream>"
    return name.replace("\n", "\\n").replace("\r", "\\r")


class _Decoder:
    """An open source: ``rate``, ``channels``, ``frames`` (the header's; ``estimated`` when it is a
    guess), ``format``/``subtype``, and ``blocks`` of decoded float32 audio from the current position."""

    kind = ""

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SndFile(_Decoder):
    kind = "sndfile"

    def __init__(self, handle: sf.SoundFile, source, name: str, report: _Report):
        self.handle, self.source, self.name, self.report = handle, source, name, report
        self.rate, self.channels, self.frames = handle.samplerate, handle.channels, handle.frames
        self.format, self.subtype = handle.format, handle.subtype
        self.estimated = handle.format in _ESTIMATED_FORMATS
        if self.channels < 1:
            raise AudioError(f"{name}: corrupt header (no channels)")
        if self.frames == 0:
            raise AudioError(f"{name}: contains no audio samples (zero length)")
        short = _SHORT_CHUNK.search(handle.extra_info)
        if short and int(short.group(1)) > int(short.group(2)):
            report.warn(f"lying header: it declares {short.group(1)} bytes of audio data but the file holds "
                        f"{short.group(2)}")

    def close(self) -> None:
        self.handle.close()

    def seek(self, frame: int) -> None:
        try:
            self.handle.seek(frame)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{self.name}: corrupt or truncated audio data (cannot seek: {exc})") from None

    def blocks(self, frames: int | None, mono: bool) -> Iterator[np.ndarray]:
        """Up to ``frames`` frames (all that remain when None) as blocks ``(n,)`` or ``(n, channels)``."""
        f = self.handle
        dtype, scale = _INTEGER_READ.get(f.subtype, ("float32", 1.0))
        start = f.tell()
        promised = f.frames - start if frames is None else min(frames, f.frames - start)
        buffer = np.empty((max(1, min(promised, _READ_BLOCK_FRAMES)), f.channels), dtype)
        check_finite = f.subtype in _FLOAT_SUBTYPES
        done = 0
        while done < promised:
            try:
                raw = f.read(min(len(buffer), promised - done), dtype=dtype, out=buffer)
            except (sf.LibsndfileError, RuntimeError):
                yield from self._rescue(start + done, None if frames is None else promised - done, mono)
                return
            if len(raw) == 0:
                break
            block = _downmix(raw, scale) if mono else raw.astype(np.float32) * np.float32(1.0 / scale)
            if check_finite and not np.isfinite(block).all():
                raise AudioError(
                    f"{self.name}: contains NaN or infinite samples near {(start + done) / f.samplerate:.3f} s")
            done += len(raw)
            yield block
        if done < promised:
            self.report.shortfall(start + promised, start + done, f.samplerate, self.estimated)

    def _rescue(self, frame: int, frames: int | None, mono: bool) -> Iterator[np.ndarray]:
        """libsndfile stopped at corrupt data (a cut FLAC loses its sync): FFmpeg decodes on from
        ``frame`` as far as the data goes; it reports the shortfall, or the corruption, as a warning."""
        if not isinstance(self.source, Path):
            self.source.seek(0)
        try:
            rescue = _AvFile(self.source, self.name, self.report, expected=self.frames)
        except AudioError:
            rescue = None
        if rescue is None or rescue.rate != self.rate:
            if frame == 0:
                raise AudioError(f"{self.name}: corrupt audio data")
            self.report.warn(f"corrupt audio data after {frame / self.rate:.3f} s; decoded up to there")
            return
        with rescue:
            rescue.seek(frame)
            yield from rescue.blocks(frames, mono)


class _AvFile(_Decoder):
    """The first audio stream of anything FFmpeg opens (PyAV)."""

    kind = "av"

    def __init__(self, source, name: str, report: _Report, expected: int | None = None):
        import av

        source = str(source) if isinstance(source, Path) else source
        self.name, self.report, self._av = name, report, av
        try:
            self.container = av.open(source, mode="r", metadata_errors="ignore")
        except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
            raise AudioError(f"{name}: {_av_reason(exc)}") from None
        try:
            streams = self.container.streams.audio
            if not streams:
                raise AudioError(f"{name}: no audio stream")
            self.stream = streams[0]
            codec = self.stream.codec_context
            if codec is None:
                raise AudioError(f"{name}: unsupported audio codec (no decoder)")
            if _codec_tag(codec) in _DRM_TAGS or codec.name in ("none", "") or _protected(source):
                raise AudioError(f"{name}: encrypted (DRM) audio cannot be decoded")
            self.rate = int(self.stream.sample_rate or codec.sample_rate or 0)
            if not MIN_SAMPLE_RATE <= self.rate <= MAX_SAMPLE_RATE:
                raise AudioError(f"{name}: absurd sample rate {self.rate} Hz in the header "
                                 f"(expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})")
            self.channels = max(1, int(codec.channels or 1))
            seconds = (float(self.stream.duration * self.stream.time_base) if self.stream.duration
                       else (self.container.duration or 0) / av.time_base)
            self.frames = expected if expected is not None else max(0, round(seconds * self.rate))
            self.format, self.subtype, self.estimated = self.container.format.name, codec.name, True
        except BaseException:
            self.container.close()
            raise
        self._skip = 0

    def close(self) -> None:
        self.container.close()

    def seek(self, frame: int) -> None:
        self._skip = frame  # decoded and dropped: exact, and regions of compressed files are rare

    def blocks(self, frames: int | None, mono: bool) -> Iterator[np.ndarray]:
        av = self._av
        convert = av.AudioResampler(format="fltp")
        skip, left, done = self._skip, frames, 0
        pending: list[np.ndarray] = []  # planar float32 (channels, n) pieces: codec frames are small,
        count = 0  # so they are checked, downmixed and handed on together, _AV_BLOCK_FRAMES at a time
        try:
            for packet in self.container.demux(self.stream):
                for frame in packet.decode():
                    for planes in self._planes(frame, convert):
                        if skip:
                            planes, skip = planes[:, skip:], max(0, skip - planes.shape[1])
                        if left is not None:
                            planes = planes[:, :left]
                            left -= planes.shape[1]
                        if planes.shape[1]:
                            pending.append(planes)
                            count += planes.shape[1]
                        if count >= _AV_BLOCK_FRAMES or (left == 0 and count):
                            done += count
                            yield self._block(pending, mono)
                            pending, count = [], 0
                        if left == 0:
                            return
        except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
            if done + count == 0 and not self._skip:
                raise AudioError(f"{self.name}: {_av_reason(exc)}") from None
            if count:
                done += count
                yield self._block(pending, mono)
            self.report.warn(f"corrupt audio data after {(self._skip + done) / self.rate:.3f} s; decoded up to there")
            return
        if count:
            done += count
            yield self._block(pending, mono)
        if done == 0 and not self._skip:
            raise AudioError(f"{self.name}: no audio frame could be decoded")
        if left is None and self.frames:
            self.report.shortfall(self.frames, self._skip + done, self.rate, estimated=True)

    def _planes(self, frame, convert) -> Iterator[np.ndarray]:
        """A decoded frame as planar float32 ``(channels, n)`` (float frames are read as they are)."""
        layout = frame.format.name
        for plain in [frame] if layout in ("fltp", "flt") else convert.resample(frame):
            data = plain.to_ndarray()
            if plain.format.name == "flt":  # packed: (1, n * channels)
                data = data.reshape(-1, len(plain.layout.channels)).T
            if len(data) != self.channels:  # a stream that changes its layout keeps the first channel count
                data = np.resize(data, (self.channels, data.shape[1]))
            yield data

    def _block(self, pending: list[np.ndarray], mono: bool) -> np.ndarray:
        """Joined pieces as float32 ``(n,)`` (mono) or ``(n, channels)``."""
        planes = np.concatenate(pending, axis=1).astype(np.float32, copy=False)
        if not np.isfinite(planes).all():
            raise AudioError(f"{self.name}: contains NaN or infinite samples")
        if mono:
            return planes.mean(axis=0, dtype=np.float32) if len(planes) > 1 else planes[0]
        return np.ascontiguousarray(planes.T)


def _protected(source) -> bool:
    """Whether an MP4-family file carries a protection scheme box ('sinf' with 'schm': CENC, FairPlay),
    looked for in its first and last MiB (where the 'moov' box lies)."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                return _has_scheme(fh)
        position = source.tell()
        try:
            return _has_scheme(source)
        finally:
            source.seek(position)
    except (OSError, ValueError, AttributeError):
        return False


def _has_scheme(fh) -> bool:
    head = fh.read(8)
    if head[4:8] != b"ftyp":  # not the MP4 family: nothing more is read
        return False
    head += fh.read((1 << 20) - 8)
    fh.seek(0, os.SEEK_END)
    fh.seek(max(0, fh.tell() - (1 << 20)))
    tail = fh.read(1 << 20)
    return any(b"sinf" in part and b"schm" in part for part in (head, tail))


def _codec_tag(codec) -> str:
    """The stream's four-character codec tag, lower case ('' when it is not text: PyAV raises)."""
    try:
        return (codec.codec_tag or "").lower()
    except UnicodeDecodeError:
        return ""


def _av_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "encrypt" in text or "drm" in text:
        return "encrypted (DRM) audio cannot be decoded"
    if "invalid data" in text or "could not find" in text or "end of file" in text:
        return "not a recognised audio format, or corrupt data"
    return f"corrupt or unsupported audio ({getattr(exc, 'strerror', None) or exc})"


def _open(source: Source, report: _Report) -> _Decoder:
    """Open ``source`` with libsndfile, else PyAV, after checking it exists and holds usable audio."""
    name = report.name
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        try:
            if not p.exists():
                raise AudioError(f"{name}: {_why_missing(p)}")
            if p.is_dir():
                raise AudioError(f"{name}: is a directory, not an audio file")
            if not p.is_file():
                raise AudioError(f"{name}: not a regular file")
            size = p.stat().st_size
            with open(p, "rb") as fh:
                head = fh.read(512)
        except OSError as exc:  # a symlink loop, no permission, a name the system refuses
            raise AudioError(f"{name}: cannot be read ({exc.strerror or exc})") from None
        if size == 0:
            raise AudioError(f"{name}: empty file")
        opened = p
    else:
        source = _seekable(source)
        head = source.read(512)
        source.seek(0)
        if not head:
            raise AudioError(f"{name}: empty file")
        opened = source
    if head[:4] == b"MThd":
        raise AudioError(f"{name}: a MIDI file holds notes, not audio")
    try:
        handle = sf.SoundFile(opened)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        handle = None
    if handle is not None and handle.frames == 0 and handle.format in _COMPRESSED_FORMATS:
        handle.close()  # libsndfile found no length (a cut Ogg): FFmpeg decodes what is there
        handle = None
    if handle is not None:
        if not MIN_SAMPLE_RATE <= handle.samplerate <= MAX_SAMPLE_RATE:
            handle.close()
            raise AudioError(f"{name}: absurd sample rate {handle.samplerate} Hz in the header "
                             f"(expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})")
        try:
            return _SndFile(handle, opened, name, report)
        except AudioError:
            handle.close()
            raise
    if not isinstance(opened, Path):
        opened.seek(0)
    if _is_text(head):
        raise AudioError(f"{name}: a text file, not audio")
    return _AvFile(opened, name, report)


def _why_missing(p: Path) -> str:
    if not p.is_symlink():
        return "no such file"
    try:
        os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "broken symbolic link"


def _seekable(fileobj: BinaryIO) -> BinaryIO:
    """``fileobj`` itself when it can seek, else its bytes spooled to a temporary file (a pipe)."""
    try:
        if fileobj.seekable():
            return fileobj
    except (AttributeError, ValueError):
        pass
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    shutil.copyfileobj(fileobj, spool)
    spool.seek(0)
    return spool


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _downmix(raw: np.ndarray, scale: float) -> np.ndarray:
    """Average the channels of ``raw`` (shape ``(n, channels)``) into float32 ``(n,)`` in [-1, 1]."""
    mono = raw[:, 0].astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf samples are reported by the caller
        for channel in range(1, raw.shape[1]):
            mono += raw[:, channel]
        mono *= np.float32(1.0 / (scale * raw.shape[1]))
    return mono


def _resample_stream(blocks: Iterator[np.ndarray], orig_sr: int, sr: int) -> Iterator[np.ndarray]:
    """Resample mono blocks on the fly; the total is exactly ``ceil(frames * sr / orig_sr)`` for the
    ``frames`` that were decoded."""
    resampler = soxr.ResampleStream(orig_sr, sr, 1, dtype="float32", quality="HQ")
    consumed = produced = 0
    for block in blocks:
        consumed += len(block)
        out = resampler.resample_chunk(block)[: _resampled_length(consumed, orig_sr, sr) - produced]
        produced += len(out)
        yield out
    tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
    yield _fit_length(tail, _resampled_length(consumed, orig_sr, sr) - produced)


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
