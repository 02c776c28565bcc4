"""Property-based fuzzing of the loader: mutated, truncated and spliced files of every container give
audio or ``AudioError`` (``ParameterError`` never: no argument is wrong), never another exception,
never a hang."""

import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timbrescope.audio import info, load, stream
from timbrescope.errors import AudioError

from audio_corpus import ENCODED, GOOD, build

SEEDS = ("wav_pcm16", "wav_float", "flac", "ogg_vorbis", "mp3", "aiff")
CASE_SECONDS = 10  # a case that takes longer counts as a hang


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    paths = [*build({k: GOOD[k] for k in SEEDS}, folder / "good").values(),
             *build(ENCODED, folder / "encoded").values()]
    return [path.read_bytes() for path in paths]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "case.bin"


def _mutate(data: bytes, draw) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "splice"]))
    at = draw(st.integers(0, max(0, len(data) - 1)))
    if kind == "truncate":
        return data[:at]
    if kind == "flip":
        flips = draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=16))
        out = bytearray(data)
        for i in flips:
            out[i] ^= 1 << (i % 8)
        return bytes(out)
    if kind == "overwrite":
        junk = draw(st.binary(min_size=1, max_size=64))
        return data[:at] + junk + data[at + len(junk):]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=256)) + data[at:]
    return data[:at]  # splice: the caller appends another file's tail


class _Hang(Exception):
    pass


def _alarm(*_):
    raise _Hang


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_give_audio_or_audio_error(seeds, scratch, data):
    first = data.draw(st.sampled_from(range(len(seeds))))
    case = _mutate(seeds[first], data.draw)
    if data.draw(st.booleans()):
        other = seeds[data.draw(st.sampled_from(range(len(seeds))))]
        case += other[data.draw(st.integers(0, len(other))):]
    scratch.write_bytes(case)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        for read in (info, load, lambda p: np.concatenate(list(stream(p, 16_000)) or [np.zeros(0)])):
            try:
                out = read(scratch)
            except AudioError as exc:
                assert str(exc) and "\n" not in str(exc)
                continue
            if isinstance(out, tuple):
                y, sr = out
                assert y.dtype == np.float32 and y.ndim == 1 and len(y) > 0 and sr > 0
                assert np.isfinite(y).all()
    except _Hang:
        pytest.fail(f"decoding a {len(case)}-byte case took over {CASE_SECONDS} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Inputs the atheris harness (benchmarks/fuzz_audio.py) found: WAV headers with a codec tag that is not
# text, on which PyAV's ``codec_tag`` raised UnicodeDecodeError.
FOUND = (
    "524946462460000057415645666d742010000000ff000101003e0065007d2f000200100064617461007d00000000b5fff4",
    "5249464648fa000057415645666d74201000000083000100803e000000fa0000040020006661637404000000803e0000"
    "5045414b1000000001000000bbc5106b0000003f640000006461746100fa000000be717168be74be0f6f2dbe2f0eb0bd",
)


@pytest.mark.parametrize("hexed", FOUND)
def test_fuzz_findings_give_audio_or_audio_error(hexed, tmp_path):
    path = tmp_path / "found.wav"
    path.write_bytes(bytes.fromhex(hexed))
    for read in (info, load):
        try:
            read(path)
        except AudioError as exc:
            assert str(exc).startswith(str(path))
