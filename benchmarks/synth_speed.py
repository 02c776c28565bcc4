"""Rendering speed of the corpus builder on one core: seconds of audio rendered per second of CPU.

Usage: python benchmarks/synth_speed.py [--clips 150] [--sfz DIR]
Loads the `default` preset's banks once (timed separately: soundfonts, probing every bank), then
renders the same clips in-process with and without effects, and prints Markdown for
docs/BENCHMARKS.md. The goal is >= 200x real time per core; a whole build on 2 cores is timed by
running `timbrescope synth --preset default` itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from machine import describe

from timbrescope.errors import reported
from timbrescope.synth.corpus import BANK_CACHE, ClipJob, Settings, bank_coverage, render_clip, resolve_preset
from timbrescope.synth.render import Renderer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=150)
    parser.add_argument("--sfz", action="append", default=[])
    args = parser.parse_args()
    preset = replace(resolve_preset("default"), clips={"train": args.clips})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        banks = Settings(preset, seed=7, sfz_dirs=tuple(args.sfz)).banks(out / BANK_CACHE)
        renderer = Renderer(preset.sample_rate)
        coverage, _ = bank_coverage(banks, renderer)
        setup = time.perf_counter() - started
        print(f"synth speed, one core: {args.clips} clips of 5 s from the default preset's train banks "
              f"({len(banks)} banks{', with SFZ' if args.sfz else ''}); {describe()}\n")
        print(f"set-up (load every bank, probe every program): {setup:.1f} s, once per worker\n")
        print("| effects | audio s | CPU-wall s | x real time per core |\n|---|---|---|---|")
        for effects in (False, True):
            settings = Settings(preset, seed=7, effects=effects, sfz_dirs=tuple(args.sfz))
            started = time.perf_counter()
            for index in range(args.clips):
                render_clip(ClipJob("train", index), settings, banks, coverage, renderer, out)
            seconds = time.perf_counter() - started
            audio = args.clips * preset.clip_seconds
            print(f"| {'on' if effects else 'off'} | {audio:.0f} | {seconds:.1f} | **{audio / seconds:.0f}** |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/synth_speed.py"))
