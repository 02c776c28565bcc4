"""Throughput of `timbrescope tag` on this machine against single-file `identify` throughput x cores.

Usage: python benchmarks/tag_throughput.py [--short 1000] [--long 10] [--long-minutes 60] [--engines local ray]
Writes SHORT 10-s files and LONG files of LONG-MINUTES (22.05 kHz mono 16-bit WAV: tones and noise) to a
temp folder, then measures:
- the baseline: a warm `Recognizer.identify` over the same files one after another, pinned to one core
  (taskset), in files/s and hours of audio per second; x the cores is the goal's reference;
- `tag --workers CORES` (local engine) and `tag --engine ray` on the same files: wall time (start-up
  included), files/s, hours of audio per second, the share of the reference, the steady rate (files/s
  between the first and the last file tagged, from the output's `tagged` column: start-up excluded) and
  its share, and the peak RSS of each worker process.
Prints Markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import soundfile as sf

import child

from timbrescope.errors import reported

SR = 22050

_BASELINE = """
import sys, time
from timbrescope.inference import Recognizer, tune_process
paths = sys.argv[1:]
recognizer = Recognizer()
tune_process()
recognizer.identify(paths[0])
started = time.perf_counter()
seconds = sum(recognizer.identify(p).duration for p in paths)
print(time.perf_counter() - started, seconds)
"""


def write_files(folder: Path, count: int, seconds: float, name: str) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(SR * 60)) / SR
    minute = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 523 * t)).astype(np.float32)
    paths = []
    for i in range(count):
        path = folder / f"{name}-{i:04d}.wav"
        with sf.SoundFile(path, "w", SR, 1, "PCM_16") as out:
            left = seconds
            while left > 0:
                n = int(min(60, left) * SR)
                out.write(minute[:n] + 0.02 * rng.standard_normal(n).astype(np.float32))
                left -= n / SR
        paths.append(path)
    return paths


def baseline(paths: list[Path]) -> tuple[float, float]:
    """(seconds, seconds of audio) of a warm Recognizer over ``paths`` on one core."""
    done = child.run(["taskset", "-c", "0", sys.executable, "-c", _BASELINE, *map(str, paths)])
    wall, audio = map(float, done.stdout.split())
    return wall, audio


def run_tag(folder: Path, out: Path, *options: str) -> tuple[float, dict[int, int]]:
    """Wall seconds of a `tag` run and the peak RSS (bytes) of each of its worker processes."""
    command = [sys.executable, "-m", "timbrescope", "tag", str(folder), "--out", str(out), "--quiet", *options]
    peaks: dict[int, int] = {}
    with child.started(command, stdout=subprocess.DEVNULL) as (process, failed):
        started = time.perf_counter()

        def watch() -> None:
            parent = psutil.Process(process.pid)
            while process.poll() is None:
                try:
                    for worker in parent.children(recursive=True):
                        peaks[worker.pid] = max(peaks.get(worker.pid, 0), worker.memory_info().rss)
                except psutil.Error:
                    pass
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        process.wait()
        watcher.join()
        wall = time.perf_counter() - started
        if process.returncode:
            raise failed()
    return wall, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", type=int, default=1000)
    parser.add_argument("--long", type=int, default=10)
    parser.add_argument("--long-minutes", type=float, default=60)
    parser.add_argument("--engines", nargs="+", default=["local", "ray"])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("short", "long"):
            (tmp / name).mkdir()
        sets = {"short": write_files(tmp / "short", args.short, 10.0, "s"),
                "long": write_files(tmp / "long", args.long, 60 * args.long_minutes, "l")}
        print(f"### `tag` throughput ({cores} cores; {args.short} files of 10 s, {args.long} of "
              f"{args.long_minutes:g} min; 22.05 kHz mono WAV)\n")
        print("| files | run | wall | files/s | hours of audio / s | of identify x cores | steady files/s (share) "
              "| peak RSS per worker |")
        print("|---|---|---|---|---|---|---|---|")
        for name, paths in sets.items():
            wall, audio = baseline(paths)
            reference = len(paths) / wall * cores
            print(f"| {name} | `identify` warm, one core (reference: x {cores}) | {wall:.1f} s | "
                  f"{len(paths) / wall:.2f} | {audio / 3600 / wall:.3f} | - | - | - |")
            for engine in args.engines:
                options = ["--workers", str(cores)] + (["--engine", "ray"] if engine == "ray" else [])
                out = tmp / f"{name}-{engine}.parquet"
                wall, peaks = run_tag(tmp / name, out, *options)
                tagged = pq.read_table(out)["tagged"].to_pylist()
                steady = (len(tagged) - 1) / (max(tagged) - min(tagged)) if len(tagged) > 2 else float("nan")
                workers = sorted(peaks.values(), reverse=True)[:cores]
                print(f"| {name} | `tag --engine {engine} --workers {cores}` | {wall:.1f} s | {len(paths) / wall:.2f} | "
                      f"{audio / 3600 / wall:.3f} | {len(paths) / wall / reference:.0%} | "
                      f"{steady:.2f} ({steady / reference:.0%}) | {', '.join(f'{p / 2**20:.0f}' for p in workers)} MB |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/tag_throughput.py"))
