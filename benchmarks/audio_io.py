"""Decode + resample speed (x real time) and peak RSS of `stream` (and `load`) per format, on one core.

Usage: python benchmarks/audio_io.py [--minutes 60] [--workdir DIR]
A 1-hour 44.1 kHz stereo recording-like signal is written as 16-bit WAV, FLAC and MP3 (libsndfile), and
encoded with PyAV (FFmpeg) as AAC in M4A (160 kbit/s) and Opus in WebM (48 kHz, 128 kbit/s); each is
streamed to 16 kHz mono. Each measurement runs in a fresh process pinned to one core (``taskset -c 0``),
so that peak RSS belongs to that measurement alone and decoding cannot borrow a second core.
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import child
from machine import describe

from timbrescope.errors import reported

TARGET_SR = 16_000
SOURCE_SR = 44_100

_MEASURE = """
import json, re, sys, time
from timbrescope.audio import load, stream
path, mode = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if mode == "stream":
    samples = sum(len(block) for block in stream(path, {sr}, block_seconds=10.0))
else:
    samples = len(load(path, sr={sr})[0])
seconds = time.perf_counter() - start
# VmHWM is this process's own peak (ru_maxrss would include the parent's, inherited across exec).
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({{"seconds": seconds, "samples": samples, "peak_rss_mb": peak_kb / 1024}}))
""".format(sr=TARGET_SR)


def write_test_files(folder: Path, minutes: int) -> dict[str, Path]:
    """The signal (tones + noise, stereo) in every benchmarked format."""
    rng = np.random.default_rng(0)
    t = np.arange(SOURCE_SR * 60) / SOURCE_SR
    minute = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], axis=1)
    minute = (minute + 0.05 * rng.standard_normal(minute.shape)).astype(np.float32)
    paths = {"WAV 16-bit": folder / "hour.wav", "FLAC": folder / "hour.flac", "MP3": folder / "hour.mp3"}
    for path in paths.values():
        with sf.SoundFile(path, "w", SOURCE_SR, 2) as out:
            for _ in range(minutes):
                out.write(minute)
    paths["AAC (M4A)"] = _encode(folder / "hour.m4a", "aac", SOURCE_SR, minute, minutes, 160_000)
    paths["Opus (WebM)"] = _encode(folder / "hour.webm", "libopus", 48_000, minute, minutes, 128_000)
    return paths


def _encode(path: Path, codec: str, rate: int, minute: np.ndarray, minutes: int, bit_rate: int) -> Path:
    import av
    import soxr

    block = soxr.resample(minute, SOURCE_SR, rate).astype(np.float32)
    with av.open(str(path), "w") as out:
        sound = out.add_stream(codec, rate=rate, layout="stereo")
        sound.codec_context.bit_rate = bit_rate
        convert = av.AudioResampler(format=sound.codec_context.format.name, layout="stereo", rate=rate)
        pts = 0
        for _ in range(minutes):
            for start in range(0, len(block), rate):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block[start:start + rate].T), format="fltp",
                                                   layout="stereo")
                frame.sample_rate, frame.pts = rate, pts
                pts += frame.samples
                for converted in convert.resample(frame):
                    out.mux(sound.encode(converted))
        out.mux(sound.encode())
    return path


def measure(path: Path, mode: str) -> dict:
    result = child.run(["taskset", "-c", "0", sys.executable, "-c", _MEASURE, str(path), mode])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        paths = write_test_files(Path(tmp), args.minutes)
        print(f"audio I/O: {args.minutes} min, {SOURCE_SR} Hz stereo -> {TARGET_SR} Hz mono; "
              f"{describe()}, Python {platform.python_version()}\n")
        print("| file | mode | wall s | x real time | peak RSS MB |")
        print("|---|---|---|---|---|")
        for name, path in paths.items():
            for mode in ("stream", "load") if name == "WAV 16-bit" else ("stream",):
                measure(path, mode)  # warm the page cache so that disk speed is not measured
                row = measure(path, mode)
                # lossy codecs add their encoder delay/padding: a few ms
                assert abs(row["samples"] - args.minutes * 60 * TARGET_SR) < 0.2 * TARGET_SR, row
                speed = args.minutes * 60 / row["seconds"]
                print(f"| {name} | {mode} | {row['seconds']:.2f} | {speed:,.0f} | {row['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    started = time.perf_counter()
    code = reported(main, "benchmarks/audio_io.py")
    if not code:
        print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s)")
    sys.exit(code)
