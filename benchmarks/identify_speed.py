"""End-to-end speed of `timbrescope identify` (decode, resample, model, segments, JSON) and its memory.

Usage: python benchmarks/identify_speed.py [--minutes 60] [--checkpoint CKPT]
Measures, on this machine: a 1-hour 44.1 kHz stereo WAV through the CLI (x real time, peak RSS), the
CLI on a 10-s clip (process start and model load included), and a warm in-process
`Recognizer.identify` on the same clip. Prints Markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import child
from machine import describe

from timbrescope.errors import reported

_WRITE = """
import sys, numpy as np, soundfile as sf
path, seconds = sys.argv[1], float(sys.argv[2])
sr = 44100
t = np.arange(sr * 60) / sr
rng = np.random.default_rng(0)
minute = np.stack([0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t),
                   0.2 * np.sin(2 * np.pi * 330 * t)], axis=1) + 0.02 * rng.standard_normal((sr * 60, 2))
with sf.SoundFile(path, "w", sr, 2, "PCM_16") as out:
    left = seconds
    while left > 0:
        n = int(min(60, left) * sr)
        out.write(minute[:n])
        left -= n / sr
"""


def cli(paths: list[Path], model: str | None) -> tuple[float, list[dict]]:
    command = [sys.executable, "-m", "timbrescope.cli", "identify", "--json", *map(str, paths)]
    command += ["--checkpoint", model] if model else []
    started = time.perf_counter()
    done = child.run(command)
    return time.perf_counter() - started, [json.loads(line) for line in done.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        long, clip = Path(tmp) / "long.wav", Path(tmp) / "clip.wav"
        child.run([sys.executable, "-c", _WRITE, str(long), str(args.minutes * 60)])
        child.run([sys.executable, "-c", _WRITE, str(clip), "10"])
        cli([clip], args.checkpoint)  # warm the page cache and Python's bytecode cache
        seconds, rows = cli([long], args.checkpoint)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        clip_seconds, _ = cli([clip], args.checkpoint)
        from timbrescope.inference import Recognizer

        recognizer = Recognizer(args.checkpoint)
        recognizer.identify(clip)
        started = time.perf_counter()
        for _ in range(5):
            recognizer.identify(clip)
        warm = (time.perf_counter() - started) / 5
    duration = rows[0]["duration"]
    print(f"identify speed: {args.minutes:g} min 44.1 kHz stereo WAV, model {rows[0]['model']}; {describe()}\n")
    print("| measurement | value |\n|---|---|")
    print(f"| {args.minutes:g}-min file through the CLI | {seconds:.1f} s = **{duration / seconds:,.0f}x real time** |")
    print(f"| peak RSS of the CLI process | **{peak_mb:.0f} MB** |")
    print(f"| 10-s clip through the CLI (start-up and model load included) | {clip_seconds:.2f} s |")
    print(f"| 10-s clip, warm `Recognizer.identify` | {warm * 1000:.0f} ms |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/identify_speed.py"))
