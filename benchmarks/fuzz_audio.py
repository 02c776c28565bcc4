"""Coverage-guided fuzzing of the audio loader with atheris (libFuzzer), outside CI.

Usage: python benchmarks/fuzz_audio.py [--seconds 3600] [--corpus build/fuzz-corpus]
Seeds: one valid file of every container the loader reads (made in the corpus folder by the test
corpus's builders). Each input is written to a file and decoded with ``load`` and ``info``; anything
but audio or ``AudioError`` (and ``ParameterError`` for nonsense lengths) is a finding: the input is
saved under ``<corpus>/findings`` and fuzzing goes on. Prints executions, coverage and findings.
Needs ``pip install atheris``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from timbrescope.audio import info, load
    from timbrescope.errors import AudioError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from audio_corpus import ENCODED, GOOD, build  # noqa: E402

STATE = {"runs": 0, "findings": 0}


def seed(corpus: Path) -> None:
    """One file per container of the test corpus, as raw seeds."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    with tempfile.TemporaryDirectory() as scratch:
        kinds = {k: GOOD[k] for k in ("wav_pcm16", "wav_float", "flac", "ogg_vorbis", "mp3", "aiff")}
        for path in [*build(kinds, Path(scratch) / "good").values(),
                     *build(ENCODED, Path(scratch) / "encoded").values()]:
            data = path.read_bytes()
            (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--corpus", type=Path, default=Path("build/fuzz-corpus"))
    args = parser.parse_args()
    seed(args.corpus)
    findings = args.corpus.parent / "fuzz-findings"
    findings.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="timbrescope-fuzz-"))
    target = scratch / "input.bin"
    started = time.monotonic()

    def one_input(data: bytes) -> None:
        STATE["runs"] += 1
        target.write_bytes(data)
        for read in (info, load):
            try:
                read(target)
            except AudioError:
                pass
            except Exception as exc:  # a finding: keep the input, go on
                STATE["findings"] += 1
                name = f"{type(exc).__name__}-{hashlib.sha1(data).hexdigest()[:12]}"
                (findings / name).write_bytes(data)
                print(f"finding {name}: {exc!r}"[:300], file=sys.stderr, flush=True)
        if STATE["runs"] % 5000 == 0:
            print(f"{STATE['runs']} executions, {STATE['findings']} findings, "
                  f"{time.monotonic() - started:.0f} s", flush=True)

    atheris.Setup([sys.argv[0], str(args.corpus), f"-max_total_time={args.seconds}", "-rss_limit_mb=2048",
                   "-timeout=10", "-max_len=65536", "-print_final_stats=1"], one_input)
    try:
        atheris.Fuzz()
    finally:
        print(f"done: {STATE['runs']} executions, {STATE['findings']} findings", flush=True)


if __name__ == "__main__":
    main()
