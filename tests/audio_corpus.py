"""A corpus of valid and invalid audio files, built in a temp folder, with the outcome each must give.

``BAD`` maps a kind to (builder, regex the AudioError message must match); ``WARNED`` maps a kind that
decodes up to where its audio ends to (builder, regex of the warning); ``GOOD`` maps a kind to
(builder, expected sample rate, expected channels, expected frames); ``ENCODED`` maps a real-world
encoding made with PyAV (FFmpeg) to (builder, sample rate, channels): its length is the codec's.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16_000


def tone(n: int = SR, freq: float = 440.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """A float32 sine of ``n`` samples."""
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def _write(path: Path, data: np.ndarray, sr: int = SR, **kwargs) -> Path:
    sf.write(path, data, sr, **kwargs)
    return path


def _cut(source: Path, path: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _patch(source: Path, path: Path, offset: int, fmt: str, value: int) -> Path:
    data = bytearray(source.read_bytes())
    data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))
    return path


def _wav(d: Path) -> Path:
    return _write(d / "_ref.wav", tone(), subtype="PCM_16")


def _with_bad_sample(d: Path, name: str, value: float) -> Path:
    y = tone()
    y[123] = value
    return _write(d / name, y, subtype="FLOAT")


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _symlink(d: Path) -> Path:
    link = d / "dangling.wav"
    link.symlink_to(d / "does-not-exist.wav")
    return link


def _symlink_loop(d: Path) -> Path:
    (d / "a.wav").symlink_to(d / "b.wav")
    (d / "b.wav").symlink_to(d / "a.wav")
    return d / "a.wav"


def _unreadable(d: Path) -> Path:
    path = _write(d / "locked.wav", tone())
    path.chmod(0)
    return path


def encode(path: Path, codec: str, rate: int = SR, layout: str = "mono", container: str | None = None,
           options: dict | None = None, video: bool = False, audio: bool = True, seconds: float = 1.0) -> Path:
    """Encode one second of the 440-Hz tone with PyAV (FFmpeg): ``codec`` in the container the file name
    (or ``container``) says, with a small video stream first when ``video``."""
    import av

    y = tone(round(rate * seconds), sr=rate)
    with av.open(str(path), "w", format=container, options=options or {}) as out:
        picture = out.add_stream("mpeg4", rate=10) if video else None
        sound = out.add_stream(codec, rate=rate, layout=layout,
                               options={"strict": "-2"} if codec == "vorbis" else {}) if audio else None
        if picture:
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
            for i in range(round(seconds * 10)):
                frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
                frame.pts = i
                out.mux(picture.encode(frame))
            out.mux(picture.encode())
        if sound:
            if codec == "wmav2":
                sound.codec_context.bit_rate = 64_000
            size = sound.codec_context.frame_size or 1024
            convert = av.AudioResampler(format=sound.codec_context.format.name, layout=layout, rate=rate)
            for start in range(0, len(y), size):
                frame = av.AudioFrame.from_ndarray(y[None, start:start + size], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = rate, start
                for converted in convert.resample(frame):
                    out.mux(sound.encode(converted))
            out.mux(sound.encode())
    return path


def _m4a(d: Path, name: str = "_ref.m4a", faststart: bool = True) -> Path:
    return encode(d / name, "aac", options={"movflags": "+faststart"} if faststart else None)


def _zeroed(source: Path, path: Path, start: float = 0.3) -> Path:
    """``source`` with every byte from ``start`` (a share of the file) on set to zero."""
    data = bytearray(source.read_bytes())
    data[int(len(data) * start):] = bytes(len(data) - int(len(data) * start))
    path.write_bytes(bytes(data))
    return path


def _directory(d: Path) -> Path:
    (d / "folder.wav").mkdir()
    return d / "folder.wav"


BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda d: d / "missing.wav", "no such file"),
    "directory": (_directory, "is a directory"),
    "empty": (lambda d: _bytes(d / "empty.wav", b""), "empty file"),
    "random_bytes": (lambda d: _bytes(d / "noise.wav", np.random.default_rng(0).bytes(4096)), "not a recognised audio format"),
    "text_file": (lambda d: _bytes(d / "notes.wav", b"not audio\n" * 50), "a text file, not audio"),
    "png_image": (lambda d: _bytes(d / "image.wav", b"\x89PNG\r\n\x1a\n" + bytes(200)), "no audio stream"),
    "midi_file": (lambda d: _bytes(d / "song.mid", b"MThd\0\0\0\x06\0\0\0\x01\0\x60MTrk\0\0\0\0"), "MIDI file"),
    "m4a_header_only": (lambda d: _bytes(d / "song.m4a", b"\0\0\0\x20ftypM4A \0\0\0\0" + bytes(300)),
                        "not a recognised audio format"),
    "zero_byte_m4a": (lambda d: _bytes(d / "empty.m4a", b""), "empty file"),
    "m4a_cut_before_its_index": (lambda d: _cut(_m4a(d, faststart=False), d / "cut.m4a"),
                                 "not a recognised audio format"),
    "encrypted_m4a": (lambda d: encode(d / "protected.m4a", "aac", options={
        "encryption_scheme": "cenc-aes-ctr", "encryption_key": "00112233445566778899aabbccddeeff",
        "encryption_kid": "00112233445566778899aabbccddeeff"}), "encrypted \\(DRM\\) audio cannot be decoded"),
    "video_without_audio": (lambda d: encode(d / "silent-film.mp4", "", video=True, audio=False), "no audio stream"),
    "mp3_id3_tag_only": (lambda d: _bytes(d / "tag.mp3", b"ID3\x04\0\0\0\0\0\x0aTIT2\0\0\0\x02\0\0\0x"),
                         "not a recognised audio format|no audio"),
    "corrupt_aac": (lambda d: _zeroed(_m4a(d), d / "zeroed.m4a", start=0.05), "no audio frame|corrupt|unsupported audio codec"),
    "zero_channels_header": (lambda d: _patch(_wav(d), d / "nochan.wav", 22, "<H", 0), "no channels|corrupt"),
    "absurd_sample_rate": (lambda d: _patch(_wav(d), d / "rate3.wav", 24, "<I", 3), "absurd sample rate 3 Hz"),
    "unsupported_codec": (lambda d: _patch(_wav(d), d / "mpeg_in_wav.wav", 20, "<H", 0x55),
                          "not a recognised audio format|corrupt"),
    "header_only": (lambda d: _cut(_wav(d), d / "header_only.wav", keep=44 / 32044), "zero length"),
    "zero_length": (lambda d: _write(d / "zero.wav", np.zeros(0, np.float32)), "zero length"),
    "nan_samples": (lambda d: _with_bad_sample(d, "nan.wav", np.nan), "NaN or infinite"),
    "inf_samples": (lambda d: _with_bad_sample(d, "inf.wav", np.inf), "NaN or infinite"),
    "broken_symlink": (_symlink, "broken symbolic link"),
    "symlink_loop": (_symlink_loop, "symbolic link loop"),
    "no_read_permission": (_unreadable, "cannot be read"),
    "newline_in_name_not_audio": (lambda d: _bytes(d / "two\nlines.wav", b"just text\n" * 20),
                                  "a text file, not audio"),
    "fifo": (lambda d: (os.mkfifo(d / "pipe.wav"), d / "pipe.wav")[1], "not a regular file"),
}

WARNED: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "truncated_wav": (lambda d: _cut(_wav(d), d / "cut.wav"), "lying header|truncated"),
    "lying_header_data_size": (lambda d: _patch(_wav(d), d / "liar.wav", 40, "<I", 10**8), "lying header"),
    "wav_header_then_a_few_bytes": (lambda d: _bytes(d / "short.wav", _wav(d).read_bytes()[:44] + b"hello" * 10),
                                    "lying header"),
    "truncated_flac": (lambda d: _cut(_write(d / "_ref.flac", tone(4 * SR)), d / "cut.flac"), "truncated|corrupt"),
    "truncated_mp3": (lambda d: _cut(_write(d / "_ref.mp3", tone(4 * SR)), d / "cut.mp3"), "truncated"),
    # Ogg declares no length (libsndfile reads it from the last page): a cut one is just shorter
    "truncated_ogg": (lambda d: _cut(_write(d / "_ref.ogg", tone(20 * SR)), d / "cut.ogg"), None),
    "truncated_m4a": (lambda d: _cut(encode(d / "_ref.m4a", "aac", seconds=4.0, options={"movflags": "+faststart"}),
                                     d / "cut.m4a"), "truncated|corrupt"),
}

GOOD: dict[str, tuple[Callable[[Path], Path], int, int, int]] = {
    "wav_pcm16": (lambda d: _write(d / "pcm16.wav", tone(), subtype="PCM_16"), SR, 1, SR),
    "wav_pcm24": (lambda d: _write(d / "pcm24.wav", tone(), subtype="PCM_24"), SR, 1, SR),
    "wav_pcm32": (lambda d: _write(d / "pcm32.wav", tone(), subtype="PCM_32"), SR, 1, SR),
    "wav_float": (lambda d: _write(d / "float.wav", tone(), subtype="FLOAT"), SR, 1, SR),
    "wav_unsigned_8bit": (lambda d: _write(d / "u8.wav", tone(), subtype="PCM_U8"), SR, 1, SR),
    "flac": (lambda d: _write(d / "a.flac", tone()), SR, 1, SR),
    "ogg_vorbis": (lambda d: _write(d / "a.ogg", tone()), SR, 1, SR),
    "mp3": (lambda d: _write(d / "a.mp3", tone()), SR, 1, SR),
    "aiff": (lambda d: _write(d / "a.aiff", tone()), SR, 1, SR),
    "eight_channels": (lambda d: _write(d / "eight.wav", np.tile(tone()[:, None], (1, 8))), SR, 8, SR),
    "rate_8k": (lambda d: _write(d / "r8k.wav", tone(8000, sr=8000), sr=8000), 8000, 1, 8000),
    "rate_192k": (lambda d: _write(d / "r192k.wav", tone(192_000, sr=192_000), sr=192_000), 192_000, 1, 192_000),
    "wrong_extension": (lambda d: _write(d / "really_flac.wav", tone(), format="FLAC"), SR, 1, SR),
    "non_ascii_name": (lambda d: _write(d / "ñandú — 音楽.wav", tone()), SR, 1, SR),
    "silence": (lambda d: _write(d / "silence.wav", np.zeros(SR, np.float32)), SR, 1, SR),
    "one_sample": (lambda d: _write(d / "one.wav", np.array([0.25], np.float32)), SR, 1, 1),
    "newline_in_name": (lambda d: _write(d / "take\none.wav", tone()), SR, 1, SR),
}

ENCODED: dict[str, tuple[Callable[[Path], Path], int, int]] = {
    "m4a_aac": (lambda d: encode(d / "a.m4a", "aac"), SR, 1),
    "m4a_alac": (lambda d: encode(d / "a.m4a", "alac"), SR, 1),
    "webm_opus": (lambda d: encode(d / "a.webm", "libopus", rate=48_000), 48_000, 1),
    "mkv_opus": (lambda d: encode(d / "a.mkv", "libopus", rate=48_000), 48_000, 1),
    "mkv_vorbis": (lambda d: encode(d / "b.mkv", "vorbis", rate=44_100, layout="stereo"), 44_100, 2),
    "wma": (lambda d: encode(d / "a.wma", "wmav2", rate=22_050, container="asf"), 22_050, 1),
    "ac3": (lambda d: encode(d / "a.ac3", "ac3", rate=48_000), 48_000, 1),
    "amr_nb": (lambda d: encode(d / "a.amr", "libopencore_amrnb", rate=8_000), 8_000, 1),
    "mp3_lame_header": (lambda d: encode(d / "lame.mp3", "libmp3lame"), SR, 1),
    "mp3_no_lame_header": (lambda d: encode(d / "plain.mp3", "libmp3lame", container="mp3",
                                            options={"write_xing": "0"}), SR, 1),
    "mp4_video_with_audio": (lambda d: encode(d / "clip.mp4", "aac", video=True), SR, 1),
    "mov_video_with_audio": (lambda d: encode(d / "clip.mov", "aac", video=True), SR, 1),
    "aac_in_mkv_named_wav": (lambda d: encode(d / "misnamed.wav", "aac", container="matroska"), SR, 1),
}


def build(kinds: dict, folder: Path) -> dict[str, Path]:
    """Create every file of ``kinds`` in ``folder`` (one sub-folder per kind); return kind -> path."""
    paths = {}
    for kind, (builder, *_) in kinds.items():
        sub = folder / kind
        os.makedirs(sub, exist_ok=True)
        paths[kind] = builder(sub)
    return paths
