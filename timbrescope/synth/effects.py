"""Recording-condition randomisation of a rendered mix, with pedalboard.

``draw_effects`` picks every random parameter in one step (a plain dict, stored in the manifest so an
experiment can see or switch off what was applied); ``apply_effects`` applies them deterministically.
pedalboard is used for everything because it is fast, has no run-time downloads, and covers room
reverb, EQ, microphone band-limiting, compression and a real MP3 codec in one library. With the ``extra``
sources, half of the reverbs are recorded rooms instead (``ROOM_IMPULSES``, convolved with scipy).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from timbrescope.audio.io import load
from timbrescope.synth.banks import not_installed

# Probability that each effect is applied to a clip.
PROBABILITY = {"eq": 0.7, "highpass": 0.3, "lowpass": 0.3, "reverb": 0.7, "compressor": 0.4,
               "noise": 0.5, "mp3": 0.25}


# Impulse responses of real rooms (Debian csoundqt-examples, LGPL-2.1+): name -> file.
ROOM_IMPULSES = {name: Path("/usr/share/csoundqt/Examples/SourceMaterials") / file for name, file in
                 (("stairwell", "Stairwell.wav"), ("dish", "dish.wav"), ("big_hall", "impulse_big_hall.wav"))}


def room_names() -> tuple[str, ...]:
    """The ``ROOM_IMPULSES`` (DataError naming the package when one is missing)."""
    missing = [str(path) for path in ROOM_IMPULSES.values() if not path.is_file()]
    if missing:
        raise not_installed(f"room impulse response {missing[0]}", "csoundqt-examples")
    return tuple(ROOM_IMPULSES)


def draw_effects(rng: np.random.Generator, rooms: tuple[str, ...] = ()) -> dict:
    """Random effect parameters for one clip (only the effects that were drawn appear); with ``rooms``
    (names of ``ROOM_IMPULSES``) half of the reverbs are one of those rooms."""
    chosen = {name for name, p in PROBABILITY.items() if rng.random() < p}
    params: dict = {}
    if "reverb" in chosen and rooms and rng.random() < 0.5:
        chosen.discard("reverb")
        params["room"] = {"name": str(rng.choice(rooms)), "wet": uniform_rounded(rng, 0.1, 0.6)}
    if "eq" in chosen:
        params["eq"] = {"low_shelf_db": uniform_rounded(rng, -6, 6), "high_shelf_db": uniform_rounded(rng, -9, 6),
                        "peak_hz": uniform_rounded(rng, 300, 4000), "peak_db": uniform_rounded(rng, -6, 6)}
    if "highpass" in chosen:
        params["highpass_hz"] = uniform_rounded(rng, 40, 250)
    if "lowpass" in chosen:
        params["lowpass_hz"] = uniform_rounded(rng, 3500, 10000)
    if "reverb" in chosen:
        params["reverb"] = {"room_size": uniform_rounded(rng, 0.1, 0.9), "wet": uniform_rounded(rng, 0.05, 0.45),
                            "damping": uniform_rounded(rng, 0.1, 0.9)}
    if "compressor" in chosen:
        params["compressor"] = {"threshold_db": uniform_rounded(rng, -30, -10), "ratio": uniform_rounded(rng, 2, 8)}
    if "noise" in chosen:
        params["noise"] = {"snr_db": uniform_rounded(rng, 20, 60), "colour": str(rng.choice(["white", "pink"])),
                           "seed": int(rng.integers(2**31))}
    if "mp3" in chosen:
        params["mp3_vbr_quality"] = int(rng.integers(2, 10))
    params["peak_dbfs"] = uniform_rounded(rng, -20, -1)
    return params


def apply_effects(y: np.ndarray, sr: int, params: dict) -> np.ndarray:
    """Apply ``params`` (from ``draw_effects``) to mono float32 ``y``; returns a new array, same length."""
    import pedalboard as pb

    if "room" in params:  # the room first: microphone, EQ and codec come after it
        y = _in_room(y, sr, params["room"])
    chain = []
    if "eq" in params:
        eq = params["eq"]
        chain += [pb.LowShelfFilter(cutoff_frequency_hz=200, gain_db=eq["low_shelf_db"]),
                  pb.HighShelfFilter(cutoff_frequency_hz=4000, gain_db=eq["high_shelf_db"]),
                  pb.PeakFilter(cutoff_frequency_hz=eq["peak_hz"], gain_db=eq["peak_db"], q=1.0)]
    if "highpass_hz" in params:
        chain.append(pb.HighpassFilter(cutoff_frequency_hz=params["highpass_hz"]))
    if "lowpass_hz" in params and params["lowpass_hz"] < sr / 2:
        chain.append(pb.LowpassFilter(cutoff_frequency_hz=params["lowpass_hz"]))
    if "reverb" in params:
        rv = params["reverb"]
        chain.append(pb.Reverb(room_size=rv["room_size"], wet_level=rv["wet"], dry_level=1 - rv["wet"],
                               damping=rv["damping"], width=0.0))
    if "compressor" in params:
        chain.append(pb.Compressor(threshold_db=params["compressor"]["threshold_db"],
                                   ratio=params["compressor"]["ratio"]))
    out = pb.Pedalboard(chain)(y[None, :].astype(np.float32), sr)[0] if chain else y.astype(np.float32)
    if "noise" in params:
        out = out + _noise(len(out), params["noise"], rms(out))
    if "mp3_vbr_quality" in params:
        out = pb.MP3Compressor(vbr_quality=params["mp3_vbr_quality"])(out[None, :], sr)[0]
    return normalise_peak(out[: len(y)], params["peak_dbfs"])


def _in_room(y: np.ndarray, sr: int, room: dict) -> np.ndarray:
    """``y`` mixed with its convolution by a room's impulse response (scaled to ``y``'s RMS), ``room["wet"]`` of it."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(y, _impulse(room["name"], sr))[: len(y)]
    level = rms(y) / (rms(wet) or 1.0)
    return ((1 - room["wet"]) * y + room["wet"] * level * wet).astype(np.float32)


@lru_cache(maxsize=8)
def _impulse(name: str, sr: int) -> np.ndarray:
    ir = load(ROOM_IMPULSES[name], sr)[0]
    onset = int(np.argmax(np.abs(ir)))  # from the direct sound on: the room adds no delay
    return ir[onset:]


def normalise_peak(y: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale ``y`` so its peak is ``peak_dbfs``; silence stays silence."""
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return (y * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32) if peak > 0 else y.astype(np.float32)


def _noise(n: int, spec: dict, signal_rms: float) -> np.ndarray:
    rng = np.random.default_rng(spec["seed"])
    white = rng.standard_normal(n)
    if spec["colour"] == "pink":  # 1/f power spectrum by shaping white noise in the frequency domain
        size = 1 << max(0, n - 1).bit_length()  # a power of two keeps the FFT fast
        spectrum = np.fft.rfft(white, size)
        spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
        white = np.fft.irfft(spectrum, size)[:n]
    noise = white / (rms(white) or 1.0)
    return (noise * signal_rms * 10 ** (-spec["snr_db"] / 20)).astype(np.float32)


def rms(y: np.ndarray) -> float:
    """Root-mean-square level of ``y`` (0 for an empty array)."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


def uniform_rounded(rng: np.random.Generator, low: float, high: float, digits: int = 3) -> float:
    """A uniform draw rounded to ``digits`` decimals, so manifests print short, exact values."""
    return round(float(rng.uniform(low, high)), digits)
