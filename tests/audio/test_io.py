import io
import os
import re
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from timbrescope.audio import info, load, resample, stream
from timbrescope.errors import AudioError, ParameterError

from audio_corpus import BAD, ENCODED, GOOD, SR, WARNED, build, tone


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every kind of the audio corpus, built once: {"bad": {kind: path}, "good": …, "warned": …, "encoded": …}."""
    folder = tmp_path_factory.mktemp("corpus")
    return {name: build(kinds, folder / name)
            for name, kinds in (("bad", BAD), ("good", GOOD), ("warned", WARNED), ("encoded", ENCODED))}


def test_corpus_has_at_least_40_kinds():
    assert len(BAD) + len(WARNED) + len(GOOD) + len(ENCODED) >= 40


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_raises_audio_error_naming_file_and_reason(kind, corpus):
    if kind == "no_read_permission" and os.geteuid() == 0:
        pytest.skip("root reads a file without read permission")
    path = corpus["bad"][kind]
    reason = BAD[kind][1]
    for read in (info, lambda p: load(p), lambda p: list(stream(p, SR))):
        with pytest.raises(AudioError, match=reason) as caught:
            read(path)
        assert str(caught.value).startswith(str(path).replace("\n", "\\n"))
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", sorted(WARNED))
def test_files_that_end_early_decode_what_is_there_with_a_warning(kind, corpus):
    path, reason = corpus["warned"][kind], WARNED[kind][1]
    loaded, streamed = [], []
    y, sr = load(path, warnings=loaded)
    total = sum(len(block) for block in stream(path, sr, block_seconds=0.5, warnings=streamed))
    assert total == len(y) > 0 and np.isfinite(y).all()
    if reason is None:  # no declared length to fall short of
        assert loaded == streamed == []
        return
    assert len(loaded) == 1 and loaded == streamed
    assert re.search(reason, loaded[0]) and "\n" not in loaded[0]
    with pytest.raises(AudioError, match=reason):
        load(path, strict=True)
    with pytest.raises(AudioError, match=reason):
        list(stream(path, sr, strict=True))


def test_truncated_mp3_warning_states_both_lengths(corpus):
    found = []
    y, sr = load(corpus["warned"]["truncated_mp3"], warnings=found)
    promised, ends = map(float, re.findall(r"(\d+\.\d+) s", found[0]))
    assert promised == pytest.approx(4.0, abs=0.1) and ends == pytest.approx(len(y) / sr, abs=1e-3) and ends < 2.5


@pytest.mark.parametrize("kind", sorted(ENCODED))
def test_real_world_encodings_decode_through_ffmpeg(kind, corpus):
    path, (_, rate, channels) = corpus["encoded"][kind], ENCODED[kind]
    meta = info(path)
    assert (meta.sample_rate, meta.channels) == (rate, channels) and meta.duration == pytest.approx(1.0, abs=0.1)
    found = []
    y, sr = load(path, warnings=found)
    assert sr == rate and found == [] and len(y) / sr == pytest.approx(1.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * sr / len(y) == pytest.approx(440, abs=5)
    y16 = np.concatenate(list(stream(path, 16_000, block_seconds=0.25)))
    assert len(y16) == -(-len(y) * 16_000 // rate)


def test_file_objects_and_pipes_decode_like_paths(corpus):
    for path in (corpus["good"]["wav_pcm16"], corpus["encoded"]["m4a_aac"]):
        want, sr = load(path)
        with open(path, "rb") as fh:
            np.testing.assert_array_equal(load(fh)[0], want)
        np.testing.assert_array_equal(load(io.BytesIO(path.read_bytes()))[0], want)
        read, write = os.pipe()
        os.write(write, path.read_bytes())  # under the 64-KiB pipe buffer
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            assert not pipe.seekable()
            np.testing.assert_array_equal(np.concatenate(list(stream(pipe, sr))), want)
    with pytest.raises(AudioError, match="^<stream>: a text file, not audio$"):
        load(io.BytesIO(b"hello\n" * 100))


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_good_input_header_and_samples(kind, corpus):
    path = corpus["good"][kind]
    _, rate, channels, frames = GOOD[kind]
    meta = info(path)
    assert (meta.sample_rate, meta.channels, meta.frames) == (rate, channels, frames)
    assert meta.duration == pytest.approx(frames / rate)
    y, sr = load(path)
    assert sr == rate and y.dtype == np.float32 and y.ndim == 1
    assert np.all(np.abs(y) <= 1.0)
    y16, sr16 = load(path, sr=16_000)
    assert sr16 == 16_000 and len(y16) == -(-frames * 16_000 // rate)
    blocks = list(stream(path, 16_000, block_seconds=0.25))
    assert sum(len(b) for b in blocks) == len(y16)
    assert all(len(b) == 4000 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 4000


@pytest.mark.parametrize("kind", ["wav_pcm16", "wav_pcm24", "wav_pcm32", "wav_float", "flac", "aiff"])
def test_lossless_formats_return_the_written_samples(kind, corpus):
    y, _ = load(corpus["good"][kind])
    np.testing.assert_allclose(y, tone(), atol=2.0 / 2**15)


def test_unsigned_8bit_is_centred_and_scaled(corpus):
    y, _ = load(corpus["good"]["wav_unsigned_8bit"])
    np.testing.assert_allclose(y, tone(), atol=2.0 / 2**7)


def test_lossy_formats_keep_the_tone(corpus):
    for kind in ("mp3", "ogg_vorbis"):
        y, _ = load(corpus["good"][kind])
        spectrum = np.abs(np.fft.rfft(y))
        assert np.argmax(spectrum) * SR / len(y) == pytest.approx(440, abs=2)


def test_silence_and_single_sample_are_valid(corpus):
    y, _ = load(corpus["good"]["silence"])
    assert not y.any()
    y, sr = load(corpus["good"]["one_sample"])
    assert y.tolist() == [0.25] and sr == SR
    y, _ = load(corpus["good"]["one_sample"], sr=8000)
    assert len(y) == 1


def test_downmix_averages_channels_and_mono_false_keeps_them(tmp_path):
    left, right = tone(), tone(freq=1000.0)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    y, _ = load(path)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)
    both, _ = load(path, mono=False)
    assert both.shape == (2, SR)
    np.testing.assert_allclose(both[1], right, atol=1e-6)
    both16, _ = load(path, sr=8000, mono=False)
    assert both16.shape == (2, 8000)


def test_offset_and_duration_select_a_region(tmp_path):
    ramp = np.linspace(-1, 1, SR, dtype=np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, SR, subtype="FLOAT")
    y, _ = load(path, offset=0.5, duration=0.25)
    np.testing.assert_array_equal(y, ramp[8000:12000])
    with pytest.raises(ParameterError, match="beyond the end"):
        load(path, offset=2.0)
    with pytest.raises(ParameterError, match="duration must be"):
        load(path, duration=0)


def test_resampling_keeps_frequency_and_exact_length():
    y = tone(44_100, freq=1000.0, sr=44_100)
    out = resample(y, 44_100, 16_000)
    assert len(out) == 16_000
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=1)


@pytest.mark.parametrize("rate", [0, 10, 10**7, 16000.5])
def test_absurd_target_rates_are_rejected(rate, corpus):
    with pytest.raises(ParameterError, match="sr must be an integer"):
        load(corpus["good"]["wav_pcm16"], sr=rate)


def test_one_hour_file_streams_in_constant_memory(tmp_path):
    rate, seconds = 8000, 3600
    path = tmp_path / "hour.wav"
    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as out:
        minute = np.stack([tone(rate * 60, sr=rate), -tone(rate * 60, sr=rate) * 0.5], axis=1)
        for _ in range(seconds // 60):
            out.write(minute)
    tracemalloc.start()
    total, blocks = 0, 0
    for block in stream(path, 16_000, block_seconds=10.0):
        total += len(block)
        blocks += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == seconds * 16_000 and blocks == 360
    decoded_size = seconds * 16_000 * 4
    assert peak < 20 * 2**20 < decoded_size / 10


def test_closing_a_stream_early_stops_its_decoder_thread(corpus):
    import threading

    before = threading.active_count()
    blocks = stream(corpus["good"]["wav_pcm16"], 16_000, block_seconds=0.1)
    first = next(blocks)
    blocks.close()
    assert len(first) == 1600 and threading.active_count() == before
