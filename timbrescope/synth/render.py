"""Render a ``Part`` with a ``Bank``: FluidSynth for GM soundfonts, sfizz for SFZ instruments,
TiMidity++ for the freepats patch set, the STK's physical models (``stk-demo``) for the STK bank,
Festival's singing mode (``text2wave -mode singing``) for its diphone voices, and recorded clips
(``clip`` banks) placed as they were recorded.

One ``Renderer`` per worker process keeps one synthesiser per bank, each bank loaded once
(a compressed .sf3 takes seconds to load). Output is mono float32 at the renderer's rate;
effects (reverb, chorus) of the engines are off: recording conditions are added later, on the mix.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from timbrescope.audio import load
from timbrescope.errors import DataError
from timbrescope.intervals import join_intervals, runs
from timbrescope.synth.banks import FESTIVAL_VOICES, STK_INSTRUMENTS, TEXT2WAVE, Bank
from timbrescope.synth.material import Note, Part, Take
from timbrescope.taxonomy import GM_DRUM_CHANNEL, PLAYABLE_RANGE, programs_for

_PITCH_BEND_CENTS = 200.0  # GM default bend range: +-2 semitones over +-8192
_SFIZZ_BLOCK = 512
_FLUID_BLOCK = 64
_FLUID_POLYPHONY = 256  # voices in one FluidSynth instance's pool
_SFIZZ_DEFAULT_CONTROLS = ((1, 0), (11, 127))  # (CC, value) the parts set (material.expression_controls)
_SFIZZ_SETTLE_BLOCKS = 32  # silent blocks after that reset: in session 32 two `default` builds differed in 1,351 of
# 17,000 clips without them, in 104 with them (CORPUS.md, "Reproducibility"; tests/synth/test_synth.py)
_RANDOM_OPCODE = re.compile(r"\b\w+_random=\S+")  # SFZ opcodes that vary each note at random
_INCLUDE = re.compile(r'#include\s+"([^"]+)"')  # an SFZ preprocessor include
_COMMENT = re.compile(r"/\*.*?\*/|(?:^|(?<=\s))//[^\n]*", re.DOTALL)  # SFZ comments: /* … */ and // to the line's end
_SFIZZ_SAMPLE_QUALITY = 2  # 0 nearest, 1 linear, 2 polynomial, 3-10 sinc
FESTIVAL_BEAT_SCALE = 0.837  # seconds Festival's singing mode plays per nominal second (tests/test_synth.py)


def _bend(cents: int) -> int:
    """A MIDI pitch-bend value (-8192..8191) for a detune in cents."""
    return int(np.clip(cents / _PITCH_BEND_CENTS * 8192, -8192, 8191))


def _events(part: Part, sr: int) -> list[tuple[int, int, str, tuple]]:
    """(sample time, order, kind, args) for every note and controller, sorted; note-offs first at ties."""
    events = [(round(c.time * sr), 1, "cc", (c.number, c.value)) for c in part.controls]
    for note in part.notes:
        events.append((round(note.start * sr), 2, "on", (note.pitch, note.velocity)))
        events.append((round(note.end * sr), 0, "off", (note.pitch,)))
    return sorted(events, key=lambda e: e[:2])


class _FluidSynthBank:
    """One FluidSynth instance with one soundfont loaded."""

    def __init__(self, bank: Bank, sr: int):
        import fluidsynth

        self._fs = fluidsynth.Synth(samplerate=float(sr), gain=0.6)
        for key, value in (("synth.reverb.active", 0), ("synth.chorus.active", 0),
                           ("synth.polyphony", _FLUID_POLYPHONY)):
            self._fs.setting(key, value)
        self._sfid = self._fs.sfload(str(bank.path))
        if self._sfid < 0:
            raise DataError(f"{bank.path}: corrupt or unreadable soundfont")
        self._drum_bank = 0 if bank.labels == ("drum_kit",) and not self._fs.sfpreset_name(self._sfid, 128, 0) else 128
        self._write_float = fluidsynth.cfunc(
            "fluid_synth_write_float", ctypes.c_int, ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
            ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
            ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))
        self._reset_preset = self._route(0 if self.has_program(0) else None)[1:]  # (bank number, preset)
        self._reset_voices()

    def has_program(self, program: int | None) -> bool:
        channel, bank_number, preset = self._route(program)
        return self._fs.program_select(channel, self._sfid, bank_number, preset) == 0

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        fs = self._fs
        channel, bank_number, preset = self._route(program)
        fs.program_select(channel, self._sfid, bank_number, preset)
        # FluidSynth renders in blocks of 64 and keeps a part-block between calls: render whole blocks
        # so that every part starts on a block boundary and sounds the same whatever came before.
        padded = -(-n // _FLUID_BLOCK) * _FLUID_BLOCK
        out = np.zeros((2, padded), np.float32)
        position = 0
        for time, _, kind, args in _events(part, sr) + [(padded, 9, "end", ())]:
            time = min(time, padded)
            if time > position:
                self._write(out, position, time)
                position = time
            if kind == "on":
                fs.noteon(channel, *args)
            elif kind == "off":
                fs.noteoff(channel, *args)
            elif kind == "cc" and args[0] == -1:
                fs.pitch_bend(channel, _bend(args[1]))
            elif kind == "cc":
                fs.cc(channel, *args)
        self._reset_voices()
        return out[:, :n].mean(axis=0)

    def _reset_voices(self) -> None:
        """Sound (nearly) every voice of the pool with the same chord, then silence them all. A FluidSynth voice
        carries state from its last note into the first milliseconds of its next one (up to 0.004 of full
        scale), so without this a part would depend on what the instance played before it, and a corpus on how
        its clips were shared out among workers."""
        fs = self._fs
        self._silence()
        for channel in range(16):
            fs.program_select(channel, self._sfid, *self._reset_preset)
            for key in range(128):
                if fs.get_active_voice_count() >= _FLUID_POLYPHONY - 8:  # room for a key's layers: no stealing
                    break
                fs.noteon(channel, key, 100)
        self._write(np.zeros((2, _FLUID_BLOCK), np.float32), 0, _FLUID_BLOCK)
        self._silence()

    def _silence(self) -> None:
        """Stop every voice now and render until none is left, so that nothing leaks into the next part."""
        self._fs.system_reset()
        for channel in range(16):
            self._fs.all_sounds_off(channel)
        scratch = np.zeros((2, _FLUID_BLOCK), np.float32)
        for _ in range(1000):
            self._write(scratch, 0, _FLUID_BLOCK)
            if self._fs.get_active_voice_count() == 0:
                return

    def _write(self, out: np.ndarray, start: int, stop: int) -> None:
        left, right = out[0, start:stop], out[1, start:stop]
        self._write_float(self._fs.synth, stop - start, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)

    def _route(self, program: int | None) -> tuple[int, int, int]:
        """(channel, bank number, preset): the drum kit is bank 128 (or, in a kit-only soundfont, bank 0)
        on channel 10."""
        return (GM_DRUM_CHANNEL, self._drum_bank, 0) if program is None else (0, 0, program)


def _ram_based_sfz(sfz: Path, folder: Path) -> Path:
    """An SFZ file in ``folder`` that plays ``sfz`` with every sample held in memory.

    sfizz preloads only the start of each sample and streams the rest from a background thread,
    which does not wait for it even when freewheeling: while other instruments load, a note can fall
    silent after its first fraction of a second (tests/test_synth.py). The ``hint_ram_based`` control
    opcode loads whole samples; the wrapper is a copy of the file's text in a mirror of its folder (links
    to each entry), so that sample paths resolve as before and the library itself is not touched.

    The copy, with the files it includes written into it, leaves out the opcodes that vary each note at random
    (``fil_random``, ``amp_random``, ``offset_random``, …): sfizz draws them from a generator nobody can seed, so
    a note would depend on how many notes its process had played before (two libraries:
    ``versilian_pizz_strings``' ``fil_random``, and the Ixox flute's ``offset_random`` on legato notes, in a file
    it includes).
    """
    for entry in sfz.parent.iterdir():
        (folder / entry.name).symlink_to(entry.resolve())
    text = _RANDOM_OPCODE.sub("", _with_includes(sfz, sfz.parent))
    wrapper = folder / ".timbrescope-ram-based.sfz"
    wrapper.write_text("<control> hint_ram_based=1\n" + text, errors="surrogateescape")
    return wrapper


def _with_includes(sfz: Path, root: Path, depth: int = 0) -> str:
    """The text of ``sfz`` with each ``#include "path"`` replaced by that file's text, recursively (paths are
    relative to the instrument's folder ``root``, as sfizz reads them; a missing file is left for sfizz to report)."""
    if depth > 16:
        raise DataError(f"{sfz}: #include nested more than 16 deep")

    def inline(match: re.Match) -> str:
        included = root / match.group(1)
        return _with_includes(included, root, depth + 1) if included.is_file() else match.group(0)

    return _INCLUDE.sub(inline, _COMMENT.sub("", sfz.read_text(errors="surrogateescape")))


class _SfizzBank:
    """One sfizz instance with one SFZ instrument loaded, all its samples in memory."""

    def __init__(self, bank: Bank, sr: int):
        import pysfizz

        self._synth = pysfizz.Synth(sample_rate=sr, block_size=_SFIZZ_BLOCK)
        # Freewheeling (offline) rendering defaults to the best, 10x slower sinc interpolation; the
        # polynomial one is plenty for training audio.
        self._synth._synth.set_sample_quality(_SFIZZ_SAMPLE_QUALITY)
        self._mirror = tempfile.TemporaryDirectory(prefix="timbrescope-sfz-")
        if not self._synth.load_sfz_file(_ram_based_sfz(bank.path, Path(self._mirror.name))):
            raise DataError(f"{bank.path}: corrupt SFZ instrument or missing samples")
        self.keys = set(self._synth.playable_keys)

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        raw = self._synth._synth
        events = iter(_events(part, sr))
        pending = next(events, None)
        blocks = []
        for block_start in range(0, n, _SFIZZ_BLOCK):
            while pending is not None and pending[0] < block_start + _SFIZZ_BLOCK:
                time, _, kind, args = pending
                delay = max(0, time - block_start)
                if kind == "on" and args[0] in self.keys:
                    raw.note_on(delay, args[0], args[1])
                elif kind == "off":
                    raw.note_off(delay, args[0], 0)
                elif kind == "cc" and args[0] == -1:
                    raw.pitch_wheel(delay, _bend(args[1]))
                elif kind == "cc":
                    raw.cc(delay, args[0], args[1])
                pending = next(events, None)
            left, right = raw.render_block()
            blocks.append((np.asarray(left) + np.asarray(right)) * 0.5)
        raw.all_sound_off()
        while raw.get_num_active_voices():  # let released voices die so the next part starts clean
            raw.render_block()
        raw.pitch_wheel(0, 0)  # and from the controllers' defaults, as a fresh instance does: sfizz glides from
        for number, value in _SFIZZ_DEFAULT_CONTROLS:  # a controller's last value to its next one
            raw.cc(0, number, value)
        for _ in range(_SFIZZ_SETTLE_BLOCKS):  # sfizz's controller smoothing reaches the defaults
            raw.render_block()
        return np.concatenate(blocks)[:n].astype(np.float32)


class _TimidityBank:
    """TiMidity++ with a GUS patch set (freepats): another bank *and* another synthesis engine.

    Each part is written as a MIDI file and rendered by the ``timidity`` program (no Python binding
    exists); its own reverb and chorus are off, and so is its voice reduction (``-k 0``), which would
    drop voices when the machine is busy. Its output depends on where the process's memory lies (a part
    with chords and a bent pitch rendered ten times gave three results), so it runs with address-space
    randomisation off (``setarch -R``) where the system allows that.
    """

    def __init__(self, bank: Bank, sr: int):
        if shutil.which("timidity") is None:
            raise DataError("timidity not found: install the Debian packages timidity and freepats")
        if not bank.path.is_file():
            raise DataError(f"{bank.path} not found: install the Debian package freepats")
        self._config = bank.path
        self._programs = _timidity_programs(bank.path)
        self._prefix = _fixed_addresses()

    def has_program(self, program: int | None) -> bool:
        """TiMidity++ plays a substitute for a program its configuration lacks: count only real ones."""
        return program in self._programs

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        import mido

        channel = GM_DRUM_CHANNEL if program is None else 0
        ticks_per_second = 960  # 480 ticks per beat at 120 bpm
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
        if program is not None:
            track.append(mido.Message("program_change", program=program, channel=channel, time=0))
        last = 0
        for time, _, kind, args in _events(part, sr):
            tick = round(time / sr * ticks_per_second)
            delta, last = tick - last, tick
            if kind == "on":
                track.append(mido.Message("note_on", note=args[0], velocity=args[1], channel=channel, time=delta))
            elif kind == "off":
                track.append(mido.Message("note_off", note=args[0], velocity=0, channel=channel, time=delta))
            elif args[0] == -1:
                bend = _bend(args[1])
                track.append(mido.Message("pitchwheel", pitch=bend, channel=channel, time=delta))
            else:
                track.append(mido.Message("control_change", control=args[0], value=args[1], channel=channel,
                                          time=delta))
        return _run_program(
            "part.mid", lambda midi: mido.MidiFile(tracks=[track], ticks_per_beat=480).save(midi),
            lambda midi, wav: [*self._prefix, "timidity", "-c", str(self._config), "-Ow", "--output-mono",
                               "-s", str(sr), "-EFreverb=0", "-EFchorus=0", "-k", "0", "-o", str(wav), str(midi)],
            f"timidity on {self._config}", n)


class _StkBank:
    """The Synthesis ToolKit's physical and FM models through its ``stk-demo`` program (Debian ``stk``):
    each part is written as a SKINI score (note on/off with delta times in seconds) and rendered by
    the model that ``STK_INSTRUMENTS`` names for its label; pitch bends and controllers are not sent."""

    def __init__(self, bank: Bank, sr: int):
        if not bank.path.is_file():
            raise DataError(f"{bank.path} not found: install the Debian package stk")
        self._program = bank.path

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        lines, last = [], 0.0
        for time, _, kind, args in _events(part, sr):
            if kind == "cc":
                continue
            seconds = time / sr
            word, velocity = ("NoteOn", args[1]) if kind == "on" else ("NoteOff", 64)
            lines.append(f"{word} {seconds - last:.6f} 1 {args[0]} {velocity}")
            last = seconds
        return _run_program(
            "part.ski", lambda score: score.write_text("\n".join(lines) + "\n"),
            lambda score, wav: [str(self._program), STK_INSTRUMENTS[part.label], "-s", str(sr), "-n", "8",
                                "-ow", str(wav), "-if", str(score)],
            f"stk-demo on {part.label}", n)


class _FestivalBank:
    """A Festival diphone voice singing a part (one syllable per note, monophonic: a note ends where
    the next begins) through ``text2wave -mode singing``; the syllable of each note is a function of
    its pitch and start, so rendering stays deterministic. Festival's singing mode plays every beat
    ``FESTIVAL_BEAT_SCALE`` of the nominal 60/BPM seconds (measured: 0.837), which the tempo undoes."""

    SYLLABLES = {"english": ("la", "da", "na", "ma", "oh", "ah", "ooh", "love", "you", "night", "heart", "home",
                             "sky", "free", "dream", "sun", "day", "go", "see", "me", "way", "blue"),
                 "italian": ("la", "ma", "no", "si", "mi", "do", "re", "sol", "a", "o", "per", "te", "tu",
                             "ciel", "mar", "cor", "ben", "non", "fa", "va")}
    NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

    def __init__(self, bank: Bank, sr: int):
        self._voice = bank.path.name
        _, self._language, low, high = FESTIVAL_VOICES[self._voice]
        self.keys = range(low, high + 1)

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        words = self.SYLLABLES[self._language]
        beats = 60.0 * FESTIVAL_BEAT_SCALE
        lines, now = [], 0.0
        for pitch, start, end in _sung(part):
            if start > now + 0.01:
                lines.append(f'<REST BEATS="{start - now:.3f}"></REST>')
            # Festival's octave numbers run one above scientific pitch (its G4 sings MIDI 55).
            name = f"{self.NAMES[pitch % 12]}{pitch // 12}"
            word = words[(pitch * 7 + round(start * 1000)) % len(words)]
            lines.append(f'<DURATION BEATS="{end - start:.3f}"><PITCH NOTE="{name}">{word}</PITCH></DURATION>')
            now = end
        if not lines:
            return np.zeros(n, np.float32)
        score = ('<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
                 f'"Singing.v0_1.dtd" []>\n<SINGING BPM="{beats:.3f}">\n' + "\n".join(lines) + "\n</SINGING>\n")
        return _run_program(
            "part.xml", lambda path: path.write_text(score),
            lambda path, wav: [str(TEXT2WAVE), "-mode", "singing", "-eval", f"(voice_{self._voice})",
                               "-F", str(sr), "-o", str(wav), str(path)],
            f"festival ({self._voice}) on {part.label}", n)


def _sung(part: Part) -> list[tuple[int, float, float]]:
    """A part as one voice sings it: (pitch, start, end) in seconds, a note ending where the next begins,
    notes shorter than 50 ms left out."""
    notes = sorted(part.notes, key=lambda note: note.start)
    sung = []
    for i, note in enumerate(notes):
        end = min(note.end, notes[i + 1].start) if i + 1 < len(notes) else note.end
        if end - note.start >= 0.05:
            sung.append((note.pitch, note.start, end))
    return sung


class _SinsyBank:
    """Sinsy (PyPI ``pysinsy``): HMM singing synthesis with the NITech SONG070 F001 voice, trained on a real
    female singer. A part becomes a MusicXML score at 60 BPM (a quarter note is one second) in one measure
    long enough to hold it, one Japanese syllable per note (a function of pitch and start, so rendering
    stays deterministic); Sinsy sings at 48 kHz, resampled to the corpus rate."""

    SYLLABLES = ("ら", "あ", "の", "ま", "さ", "か", "た", "な", "は", "や", "お", "る", "み", "そ", "こ", "ね")
    STEPS = (("C", 0), ("C", 1), ("D", 0), ("D", 1), ("E", 0), ("F", 0), ("F", 1), ("G", 0), ("G", 1), ("A", 0),
             ("A", 1), ("B", 0))
    DIVISIONS = 480  # per quarter note, i.e. per second
    keys = range(55, 80)  # G3-G5

    def __init__(self, bank: Bank, sr: int):
        self._synthesize = _sinsy()

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        if not _sung(part):
            return np.zeros(n, np.float32)
        import soxr

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "part.xml"
            path.write_text(self._score(part, n / sr), encoding="utf-8")
            try:
                audio, rate = _silenced(self._synthesize, str(path))
            except RuntimeError as exc:
                raise DataError(f"sinsy on {part.label} failed: {exc}") from None
        audio = np.asarray(audio, np.float64) / 32768.0
        if not np.isfinite(audio).all() or np.abs(audio).max(initial=0.0) > 2.0:
            raise DataError(f"sinsy diverged on a {part.label} part ({len(part.notes)} notes)")
        return _fit(soxr.resample(audio, rate, sr), n)

    def _score(self, part: Part, seconds: float) -> str:
        """The part as MusicXML lasting at least ``seconds``."""
        notes, now = [], 0.0
        for pitch, start, end in _sung(part):
            if start > now + 0.01:
                notes.append(f"<note><rest/><duration>{round((start - now) * self.DIVISIONS)}</duration></note>")
            step, alter = self.STEPS[pitch % 12]
            syllable = self.SYLLABLES[(pitch * 7 + round(start * 1000)) % len(self.SYLLABLES)]
            notes.append(f"<note><pitch><step>{step}</step>{'<alter>1</alter>' if alter else ''}"
                         f"<octave>{pitch // 12 - 1}</octave></pitch><duration>{round((end - start) * self.DIVISIONS)}"
                         f"</duration><lyric><text>{syllable}</text></lyric></note>")
            now = end
        beats = int(np.ceil(max(now, seconds))) + 1  # Sinsy sings the measure's length, no more
        notes.append(f"<note><rest/><duration>{round((beats - now) * self.DIVISIONS)}</duration></note>")  # a full
        # measure: Sinsy warns on a short one
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1"><part-list><score-part id="P1">'
                f'<part-name>voice</part-name></score-part></part-list><part id="P1"><measure number="1"><attributes>'
                f'<divisions>{self.DIVISIONS}</divisions><time><beats>{beats}</beats><beat-type>4</beat-type></time>'
                '</attributes><direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>60'
                '</per-minute></metronome></direction-type><sound tempo="60"/></direction>' + "".join(notes)
                + "</measure></part></score-partwise>\n")


def _silenced(call, *args):
    """``call(*args)`` with file descriptors 1 and 2 sent to /dev/null: Sinsy's C++ core prints a warning
    line per score ("[WARN] The first note is not rest") that would break every progress bar."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1), os.dup2(sink, 2)
        return call(*args)
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, sink):
            os.close(fd)


def _sinsy():
    """A ``synthesize(musicxml_path) -> (samples, rate)`` of Sinsy with its bundled voice, global variance off on
    the voice's mel-cepstrum: with it on, the synthesis filter blew up (samples to 1e72, for a few ms around a
    note's end) in 15 of 39 test notes; with it off, in none of 300 notes and phrases (EXPERIMENTS.md, session 27).
    The import's deprecation warnings of pkg_resources are silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pysinsy
        except ImportError:
            raise DataError("Sinsy singing needs pysinsy: pip install 'timbrescope[sing]' "
                            "(it builds with cmake and g++)") from None
    voice = Path(pysinsy.get_default_htsvoice()).read_bytes()
    if b"USE_GV[MCP]:1" not in voice:
        raise DataError("pysinsy's bundled voice has no mel-cepstrum global variance to turn off: an unknown version")
    sinsy = pysinsy.Sinsy()
    sinsy.setLanguages("j", pysinsy.get_default_dic_dir())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "voice.htsvoice"
        path.write_bytes(voice.replace(b"USE_GV[MCP]:1", b"USE_GV[MCP]:0", 1))  # same length: offsets hold
        if not sinsy.loadVoices(str(path)):
            raise DataError("pysinsy could not load its bundled voice")

    def synthesize(score: str):
        sinsy.loadScoreFromMusicXML(score)
        try:
            return sinsy.synthesize()
        finally:
            sinsy.clearScore()

    return synthesize


def _run_program(score_name: str, write_score, command, what: str, n: int) -> np.ndarray:
    """Write a score with ``write_score(path)``, run ``command(score, wav)`` (a program that renders it to
    a WAV file) in a temporary folder, and return the audio cut or padded to ``n`` samples."""
    with tempfile.TemporaryDirectory() as tmp:
        score, wav = Path(tmp) / score_name, Path(tmp) / "part.wav"
        write_score(score)
        done = subprocess.run(command(score, wav), capture_output=True, text=True)
        if done.returncode != 0 or not wav.exists():
            raise DataError(f"{what} failed: {done.stderr.strip()[-200:]}")
        audio, _ = sf.read(wav, dtype="float32")
    return _fit(audio, n)


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    """``audio`` as float32, cut or padded with silence to ``n`` samples."""
    out = np.zeros(n, np.float32)
    out[: min(n, len(audio))] = audio[:n]
    return out


class _ClipBank:
    """Recorded clips of one label, each decoded once at the renderer's rate."""

    def __init__(self, bank: Bank, sr: int):
        self._bank, self._sr, self._audio = bank, sr, {}

    def audio(self, clip: str) -> np.ndarray:
        if clip not in self._audio:
            self._audio[clip] = load(self._bank.path / clip, self._sr)[0]
        return self._audio[clip]

    def render(self, part: Part, program: int | None, n: int, sr: int) -> np.ndarray:
        take = part.take
        begin, stop = round(take.start * sr), min(n, round(take.end * sr))
        first = round(take.offset * sr)
        audio = self.audio(take.clip)[first:first + max(0, stop - begin)].copy()
        fade = min(len(audio), round(0.02 * sr))
        audio[len(audio) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        out = np.zeros(n, np.float32)
        out[begin:begin + len(audio)] = audio
        return out


def sounding_intervals(y: np.ndarray, sr: int, floor_db: float = 30.0, gap: float = 0.15,
                       frame_seconds: float = 0.02) -> list[tuple[float, float]]:
    """Where a recording sounds, in seconds: frames of ``frame_seconds`` within ``floor_db`` of its loudest
    frame (and above -70 dBFS), runs joined across gaps shorter than ``gap`` seconds."""
    hop = max(1, round(frame_seconds * sr))
    frames = len(y) // hop
    if frames == 0:
        return []
    power = (y[: frames * hop].reshape(frames, hop).astype(np.float64) ** 2).mean(axis=1)
    level = 10 * np.log10(power + 1e-12)
    active = level > max(level.max() - floor_db, -70.0)
    return join_intervals(((a * hop / sr, b * hop / sr) for a, b in runs(active)), gap)


def _fixed_addresses() -> list[str]:
    """The command prefix that runs a program with address-space randomisation off (``setarch -R``), or
    none where ``setarch`` is missing or the system refuses it (some container sandboxes do)."""
    if shutil.which("setarch") is None:
        return []
    prefix = ["setarch", platform.machine(), "-R"]
    return prefix if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0 else []


def _timidity_programs(config: Path) -> set[int]:
    """Program numbers of tone bank 0 in a TiMidity++ configuration file."""
    programs, in_bank0 = set(), False
    for line in config.read_text(errors="replace").splitlines():
        words = line.split()
        if words[:1] in (["bank"], ["drumset"]):
            in_bank0 = words == ["bank", "0"]
        elif in_bank0 and words and words[0].isdigit():
            programs.add(int(words[0]))
    return programs


class Renderer:
    """Renders parts with any bank; banks are loaded on first use and kept."""

    def __init__(self, sr: int):
        self.sr = sr
        self._loaded: dict[tuple[str, str], _FluidSynthBank | _SfizzBank | _TimidityBank | _StkBank | _FestivalBank | _SinsyBank | _ClipBank] = {}

    def _engine(self, bank: Bank) -> _FluidSynthBank | _SfizzBank | _TimidityBank | _StkBank | _FestivalBank | _SinsyBank | _ClipBank:
        key = (bank.engine, str(bank.path), bank.name)
        if key not in self._loaded:
            self._loaded[key] = _ENGINES[bank.engine](bank, self.sr)
        return self._loaded[key]

    def programs(self, bank: Bank, label: str) -> list[int | None]:
        """The programs of ``bank`` that play ``label``: GM program numbers, or [None] for the
        drum kit and for SFZ instruments (which play one thing)."""
        if bank.engine in ("sfizz", "stk", "festival", "sinsy", "clip") or label == "drum_kit":
            return [None] if label in bank.labels else []
        engine = self._engine(bank)
        return [p.number for p in programs_for(label) if engine.has_program(p.number)]

    def pitch_range(self, bank: Bank, label: str) -> tuple[int, int]:
        """The notes ``bank`` can play for ``label``: the label's range, narrowed to an SFZ's mapped keys
        or a singing voice's range."""
        low, high = PLAYABLE_RANGE[label]
        if bank.engine in ("sfizz", "festival", "sinsy") and label != "drum_kit":
            keys = self._engine(bank).keys
            low, high = max(low, min(keys)), min(high, max(keys))
        return low, high

    def recorded_part(self, bank: Bank, rng: np.random.Generator, start: float, end: float) -> Part:
        """A part of a ``clip`` bank: one of its clips placed at ``start`` and cut at ``end`` (seconds; a clip
        longer than that starts at a random point half of the time), its notes where the clip sounds."""
        clip = bank.clips[int(rng.integers(len(bank.clips)))]
        y = self._engine(bank).audio(clip)
        length = min(len(y) / self.sr, end - start)
        spare = len(y) / self.sr - length
        offset = round(float(rng.uniform(0, spare)), 3) if spare > 0.5 and rng.random() < 0.5 else 0.0
        take = Take(clip, offset, start, round(start + length, 3))
        window = y[round(offset * self.sr):round((offset + length) * self.sr)]
        notes = [Note(60, 100, round(start + a, 3), round(start + b, 3))
                 for a, b in sounding_intervals(window, self.sr)]
        return Part(bank.labels[0], notes, material="recorded", take=take)

    def render(self, bank: Bank, part: Part, program: int | None, seconds: float) -> np.ndarray:
        """The part as mono float32, ``round(seconds * sr)`` samples."""
        return self._engine(bank).render(part, program, round(seconds * self.sr), self.sr)


_ENGINES = {"fluidsynth": _FluidSynthBank, "sfizz": _SfizzBank, "timidity": _TimidityBank, "stk": _StkBank,
            "festival": _FestivalBank, "sinsy": _SinsyBank, "clip": _ClipBank}
