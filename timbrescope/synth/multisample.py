"""Multisampled instruments built once from Debian instrument engines and recordings (docs/sources/ENGINES.md).

Each instrument of ``INSTRUMENTS`` becomes an SFZ folder in the corpus's bank cache (notes as WAV files and
the ``.sfz`` that maps them), which the corpus then plays like any recorded SFZ library:

- ``jack``: an LV2 instrument hosted by ``jalv`` (mda EPiano and Piano, setBfree) or a JACK synth
  (``foo-yc20-cli``, bristol's Vox Continental engine with its text interface) on a private JACK server with
  the ``dummy`` driver, in freewheel mode where the engine allows: a JACK client plays every note and records
  the outputs, then sends all-notes-off; every note and the silence after the last one are checked;
- ``faust``: a Faust physical model of ``physmodels.lib`` compiled and played by PyPI ``dawdreamer`` (only
  those that networks trained without them hear as their label: ``benchmarks/faust_models.py``);
- ``reamp``: a clean direct-input electric guitar of the SFZ folders (train split only), played by sfizz;
- ``grandorgue``: the pipe samples of the GrandOrgue demo organ (WavPack, decoded by ``wvunpack``),
  stops layered as an organist registers them.

An instrument's ``chain`` of LV2 effects (guitarix pedals and amps, mda Combo/Leslie/Overdrive, setBfree's
``b_whirl``) runs offline through ``lv2apply`` on the whole take, and ``cabinet`` convolves it with one of
rakarrack's guitar-cabinet impulse responses.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import importlib.util
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import zipfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from timbrescope.errors import DataError
from timbrescope.fileio import atomic_write_text
from timbrescope.synth.banks import Bank
from timbrescope.synth.effects import rms
from timbrescope.taxonomy import PLAYABLE_RANGE

SAMPLE_RATE = 44_100
SILENT_DB = -60.0  # a note quieter than this (RMS over its slot), or a tail louder, fails the build
GRANDORGUE = Path("/usr/share/GrandOrgue/packages")
CABINETS = Path("/usr/share/rakarrack")
MDA = "http://drobilla.net/plugins/mda/"
GX = "http://guitarix.sourceforge.net/plugins/"
JACK_SERVER = "timbrescope"  # the private JACK server of the freewheeling engines (see _one_jack_server)
JACK_LIVE_SERVER = "timbrescope-live"  # the one of the engines that play in real time (bristol), beside it
JACK_METADATA = Path("/dev/shm") / f"jack_db-{os.getuid()}"  # JACK 2's metadata database (Berkeley DB)


@dataclass(frozen=True)
class Instrument:
    """One multisampled instrument. ``source`` is ``("jack", command, output ports, MIDI program or -1)``,
    ``("faust", physmodels.lib function, ((parameter, value), ...))``, ``("reamp",)`` or
    ``("grandorgue", stop, ...)``; ``keys`` the sampled MIDI notes (every ``step``),
    ``velocities`` the layers, ``hold``/``release`` each note's seconds before and after its note-off;
    ``chain`` LV2 effects as (URI, ((port, value), ...)); ``cabinet`` a rakarrack impulse response number;
    ``highest`` the highest MIDI note the engine sounds (bristol's Vox keyboard stops at 71); ``freewheel``
    whether a JACK engine renders faster than real time (bristol hangs or drops notes in freewheel mode)."""

    name: str
    label: str
    package: str
    licence: str
    source: tuple
    step: int = 3
    velocities: tuple[int, ...] = (100,)
    hold: float = 3.0
    release: float = 1.0
    chain: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    cabinet: int = 0
    highest: int = 127
    freewheel: bool = True

    @property
    def keys(self) -> list[int]:
        low, high = PLAYABLE_RANGE[self.label]
        high = min(high, self.highest)
        return list(range(low + (-low) % self.step, high + 1, self.step))  # the multiples of step in range


def _jalv(uri: str, **controls: float) -> tuple[str, ...]:
    return ("jalv", "-n", "instrument", "-x", *(f"-c{key}={value}" for key, value in controls.items()), uri)


_EPIANO = ("jack", _jalv(MDA + "EPiano"), ("instrument:left_out", "instrument:right_out"), -1)
_EPIANO_TREMOLO = ("jack", _jalv(MDA + "EPiano", modulation=0.75, rate=0.6), ("instrument:left_out",
                                                                               "instrument:right_out"), -1)
_SETBFREE = ("instrument:outL", "instrument:outR")
_YC20 = ("jack", ("foo-yc20-cli",), ("Foo YC20:output",), -1)


def _bristol(model: str, memory: int) -> tuple:
    """bristol's engine with its text interface (``-cli -window``: no X display), JACK audio and MIDI."""
    return ("jack", ("startBristol", model, "-load", str(memory), "-jack", "-midi", "jack", "-register", "vox",
                     "-cli", "-window"), ("vox:out_left", "vox:out_right"), -1)


_FAUST = dict(package="PyPI dawdreamer (Faust physmodels.lib)", licence="GPL-3.0 (dawdreamer); physmodels.lib "
              "declares none (see docs/sources/ENGINES.md)", velocities=(70, 110), step=2)
_VOX = dict(package="bristol", licence="GPL-3.0-or-later", highest=71, freewheel=False)
_GUITAR = dict(package="guitarix-lv2, rakarrack", licence="GPL-2.0-or-later (effects); the guitar's own", step=2,
               velocities=(70, 115), hold=3.5, release=0.5)
_TS9, _DS1, _MUFF = GX + "gxts9#ts9sim", GX + "gx_bossds1_#_bossds1_", GX + "gx_muff_#_muff_"
_CHUMP, _BIGCHUMP, _VIBROCHUMP = GX + "gx_redeye#chump", GX + "gx_redeye#bigchump", GX + "gx_redeye#vibrochump"
_JCM800, _STUDIO = GX + "gx_jcm800pre_#_jcm800pre_", GX + "gx_studiopre#studiopre"

INSTRUMENTS = (
    Instrument("mda_epiano", "electric_piano", "mda-lv2", "GPL-3.0-or-later", _EPIANO, velocities=(50, 85, 120)),
    Instrument("mda_epiano_combo", "electric_piano", "mda-lv2", "GPL-3.0-or-later", _EPIANO,
               velocities=(60, 110), chain=((MDA + "Combo", ()),)),
    Instrument("mda_epiano_leslie", "electric_piano", "mda-lv2", "GPL-3.0-or-later", _EPIANO_TREMOLO,
               velocities=(60, 110), chain=((MDA + "Overdrive", (("drive", 0.3),)), (MDA + "Leslie", ()))),
    Instrument("mda_piano", "piano", "mda-lv2", "GPL-3.0-or-later", ("jack", _jalv(MDA + "Piano"),
               ("instrument:left_out", "instrument:right_out"), -1), velocities=(50, 90, 120)),
    Instrument("setbfree_jazz", "organ", "setbfree", "GPL-2.0-or-later",
               ("jack", _jalv("http://gareus.org/oss/lv2/b_synth"), _SETBFREE, 0)),
    Instrument("setbfree_standard", "organ", "setbfree", "GPL-2.0-or-later",
               ("jack", _jalv("http://gareus.org/oss/lv2/b_synth"), _SETBFREE, 4)),
    Instrument("setbfree_gospel", "organ", "setbfree", "GPL-2.0-or-later",
               ("jack", _jalv("http://gareus.org/oss/lv2/b_synth"), _SETBFREE, 6)),
    Instrument("setbfree_blues", "organ", "setbfree", "GPL-2.0-or-later",
               ("jack", _jalv("http://gareus.org/oss/lv2/b_synth"), _SETBFREE, 8)),
    Instrument("yc20_combo", "organ", "foo-yc20", "GPL-3.0-or-later", _YC20),
    Instrument("yc20_whirl", "organ", "foo-yc20, setbfree", "GPL-3.0-or-later", _YC20,
               chain=(("http://gareus.org/oss/lv2/b_whirl#simple", ()),)),
    Instrument("vox_continental", "organ", source=_bristol("-vox", 0), **_VOX),
    Instrument("vox_continental_bright", "organ", source=_bristol("-vox", 2), **_VOX),
    Instrument("vox_super_whirl", "organ", source=_bristol("-voxM2", 0),
               chain=(("http://gareus.org/oss/lv2/b_whirl#simple", ()),), **_VOX),
    Instrument("faust_flute", "flute", source=("faust", "pm.flute_ui_MIDI", ()), **_FAUST),
    Instrument("faust_flute_open", "flute", source=("faust", "pm.flute_ui_MIDI", (("mouthPosition", 0.7),)),
               **_FAUST),
    Instrument("grandorgue_principals", "organ", "grandorgue-demo", "GPL-2.0-or-later OR CC-BY-SA-2.5",
               ("grandorgue", "Montre8", "Octavin2")),
    Instrument("grandorgue_flutes", "organ", "grandorgue-demo", "GPL-2.0-or-later OR CC-BY-SA-2.5",
               ("grandorgue", "Bourdon8", "FlHarm8")),
    Instrument("grandorgue_strings", "organ", "grandorgue-demo", "GPL-2.0-or-later OR CC-BY-SA-2.5",
               ("grandorgue", "Gamba8", "Bourdon8")),
    Instrument("grandorgue_reeds", "organ", "grandorgue-demo", "GPL-2.0-or-later OR CC-BY-SA-2.5",
               ("grandorgue", "Trompette8", "Hautbois8", "Montre8")),
    Instrument("guitar_clean", "electric_guitar", source=("reamp",), chain=((_STUDIO, ()),), cabinet=2, **_GUITAR),
    Instrument("guitar_crunch", "electric_guitar", source=("reamp",), chain=((_TS9, ()), (_CHUMP, ())),
               cabinet=1, **_GUITAR),
    Instrument("guitar_distortion", "electric_guitar", source=("reamp",), chain=((_DS1, ()), (_JCM800, ())),
               cabinet=3, **_GUITAR),
    Instrument("guitar_fuzz", "electric_guitar", source=("reamp",), chain=((_MUFF, ()), (_BIGCHUMP, ())),
               cabinet=5, **_GUITAR),
    Instrument("guitar_vibro", "electric_guitar", source=("reamp",), chain=((_VIBROCHUMP, ()),), cabinet=7,
               **_GUITAR),
)


# Clean direct-input electric guitars (SFZ banks of shared/trainbanks) that the ``reamp`` instruments play.
DI_GUITARS = ("strat_di:strat_di_low", "strat_di:strat_di_high")


def multisample_banks(cache: Path, banks: list[Bank], renderer_factory) -> list[Bank]:
    """The train banks of ``INSTRUMENTS``, built into ``cache`` on first use (one folder each, written under a
    temporary name and renamed when complete). The ``reamp`` ones play the ``DI_GUITARS`` found among
    ``banks`` (train split; none found: no reamp banks); ``renderer_factory(sr)`` makes the Renderer.
    The JACK instruments build one after another in two processes of their own, each with its JACK server: those
    that freewheel, and those that play in real time (bristol's, waiting on the clock), while this one builds the
    others."""
    by_name = {bank.name: bank for bank in banks if bank.split == "train"}
    guitars = [by_name[name] for name in DI_GUITARS if name in by_name]
    chosen = [instrument for instrument in INSTRUMENTS if instrument.source[0] != "reamp" or guitars]
    missing = [instrument for instrument in chosen if not _sfz(cache, instrument).is_file()]
    hosted = [instrument for instrument in missing if instrument.source[0] == "jack"]
    others = [instrument for instrument in missing if instrument.source[0] != "jack"]
    lanes = [lane for lane in ([i for i in hosted if i.freewheel], [i for i in hosted if not i.freewheel]) if lane]
    with ExitStack() as stack:
        built = [stack.enter_context(concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"))).submit(_build_each, lane, Path(cache))
            for lane in lanes]
        for instrument in others:
            _build(instrument, Path(cache) / instrument.name, guitars, renderer_factory)
        for lane in built:
            lane.result()
    return [Bank(instrument.name, _sfz(cache, instrument), "sfizz", "train", (instrument.label,), instrument.package,
                 instrument.licence) for instrument in chosen]


def _sfz(cache: Path, instrument: Instrument) -> Path:
    return Path(cache) / instrument.name / f"{instrument.name}.sfz"


def _build_each(instruments: list[Instrument], cache: Path) -> None:
    """``_build`` of each of ``instruments`` (no reamp ones) in turn: the JACK lane of ``multisample_banks``."""
    for instrument in instruments:
        _build(instrument, cache / instrument.name, [], None)


def _build(instrument: Instrument, folder: Path, guitars: list[Bank], renderer_factory) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{instrument.name}-", dir=folder.parent))
    try:
        if instrument.source[0] == "grandorgue":
            regions = _grandorgue(instrument.source[1:], work)
        else:
            slots = [(key, velocity) for key in instrument.keys for velocity in instrument.velocities]
            if instrument.source[0] == "jack":
                take = _effects(instrument, _jack_take(instrument, slots), work)
                regions = _cut(instrument, take, slots, work, "")
            elif instrument.source[0] == "faust":
                take = faust_take(instrument, slots)
                regions = _keyed_by_pitch(_cut(instrument, take, slots, work, ""), take, instrument, work)
            else:
                regions = []
                for guitar in guitars:  # each key from the first guitar that plays it: one key map
                    done = {region["key"] for region in regions}
                    take, played = _reamp_take(instrument, guitar, [s for s in slots if s[0] not in done],
                                               renderer_factory)
                    if played:
                        regions += _cut(instrument, _effects(instrument, take, work), played, work,
                                        guitar.name.replace(":", "_") + "_")
        atomic_write_text(work / f"{instrument.name}.sfz", _sfz_text(regions))
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def faust_take(instrument: Instrument, slots: list[tuple[int, int]]) -> np.ndarray:
    """Every (key, velocity) of ``slots`` played in turn by a Faust polyphonic voice: (samples,) float32 mono at
    ``SAMPLE_RATE``, one slot of ``hold + release`` seconds per note. Compiled and rendered in a fresh process:
    Faust's compiler aborts the whole process in one that has run an ONNX Runtime or PyTorch network."""
    if importlib.util.find_spec("dawdreamer") is None:
        raise DataError(f"{instrument.name} needs PyPI dawdreamer: pip install 'timbrescope[faust]'")
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as process:
        take = process.submit(_faust_render, instrument, slots).result()
    if take is None:
        raise DataError(f"{instrument.name}: Faust did not compile {instrument.source[1]}")
    return take


def _faust_render(instrument: Instrument, slots: list[tuple[int, int]]) -> np.ndarray | None:
    """``faust_take``'s render, in its own process; None if the model does not compile."""
    import dawdreamer

    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # its LLVM back end reports a harmless missing symbol there
    _, function, settings = instrument.source
    engine = dawdreamer.RenderEngine(SAMPLE_RATE, 512)
    faust = engine.make_faust_processor("faust")
    faust.num_voices = 4
    faust.set_dsp_string(f'import("stdfaust.lib"); process = {function};')
    if not faust.compile():
        return None
    index = {entry["name"].rsplit("/", 1)[-1]: entry["index"] for entry in faust.get_parameters_description()}
    for name, value in settings:
        faust.set_parameter(index[name], value)
    seconds = _slot_seconds(instrument)
    for i, (key, velocity) in enumerate(slots):
        faust.add_midi_note(key, velocity, i * seconds, instrument.hold)
    engine.load_graph([(faust, [])])
    engine.render(len(slots) * seconds)
    return engine.get_audio().mean(axis=0).astype(np.float32)[:round(len(slots) * seconds * SAMPLE_RATE)]


def _keyed_by_pitch(regions: list[dict], take: np.ndarray, instrument: Instrument, work: Path) -> list[dict]:
    """``regions`` (``_cut``'s, one per slot of ``take``) keyed by the pitch their key sounds (median YIN over
    the held second of its first velocity, rounded), not the one played: the Faust flute sounds up to 11
    semitones flat at the top. A key that sounds a pitch an earlier key already sounds is dropped, files
    included."""
    import librosa

    slot, sr = round(_slot_seconds(instrument) * SAMPLE_RATE), SAMPLE_RATE
    kept, sounding = [], {}
    for i, region in enumerate(regions):
        played = region["key"]
        if played not in sounding:
            y = take[i * slot:(i + 1) * slot]
            f0 = librosa.yin(y[sr // 4:5 * sr // 4], fmin=60, fmax=3000, sr=sr)
            key = int(round(float(librosa.hz_to_midi(np.median(f0)))))
            sounding[played] = None if key in sounding.values() else key
        if sounding[played] is None:
            (work / region["sample"]).unlink()
        else:
            kept.append({**region, "key": sounding[played]})
    return kept


def _slot_seconds(instrument: Instrument) -> float:
    return instrument.hold + instrument.release


def _jack_take(instrument: Instrument, slots: list[tuple[int, int]]) -> np.ndarray:
    """Every (key, velocity) of ``slots`` played in turn by a JACK instrument: (samples,) float32 mono."""
    import jack

    jack.set_error_function(lambda message: None)  # libjack's retries while the server starts
    jack.set_info_function(lambda message: None)
    _, command, outputs, program = instrument.source
    for program_name in ("jackd", command[0]):
        if not shutil.which(program_name):
            raise DataError(f"{instrument.name} needs {program_name}: install the Debian packages of `make setup` "
                            f"(jackd2, jalv, {instrument.package})")
    server = JACK_SERVER if instrument.freewheel else JACK_LIVE_SERVER
    slot = round(_slot_seconds(instrument) * SAMPLE_RATE)
    hold = round(instrument.hold * SAMPLE_RATE)
    lead = SAMPLE_RATE // 2  # the program change settles before the first note
    events = [(0, bytes([0xC0, program]))] if program >= 0 else []
    for i, (key, velocity) in enumerate(slots):
        events += [(lead + i * slot, bytes([0x90, key, velocity])), (lead + i * slot + hold, bytes([0x80, key, 0]))]
    end = lead + len(slots) * slot
    events.append((end, bytes([0xB0, 123, 0])))
    total = end + SAMPLE_RATE  # one second after all-notes-off must be silent
    recorded = np.zeros((len(outputs), total), np.float32)
    state = {"armed": False, "frame": 0, "next": 0}
    finished = threading.Event()
    env = {**os.environ, "JACK_DEFAULT_SERVER": server, "JACK_NO_AUDIO_RESERVATION": "1"}
    with _one_jack_server(server), tempfile.TemporaryDirectory() as home:  # foo-yc20-cli writes its settings in $HOME
        env["HOME"] = home
        processes = []
        try:
            with _jack_starting():
                processes.append(subprocess.Popen(["jackd", "--no-realtime", "-n", server, "-d", "dummy",
                                                   "-r", str(SAMPLE_RATE), "-p", "1024"], env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                  start_new_session=True))
                client = _connect(lambda: jack.Client("recorder", servername=server, no_start_server=True),
                                  f"jackd ({instrument.package})")
            # jalv quits when its standard input closes: keep it open until the end; a session of its own,
            # so that stopping it stops what it started (startBristol starts bristol and brighton)
            processes.append(subprocess.Popen(list(command), env=env, stdin=subprocess.PIPE,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True))
            midi = client.midi_outports.register("midi")
            inputs = [client.inports.register(f"in{i}") for i in range(len(outputs))]

            @client.set_process_callback
            def process(frames: int) -> None:
                midi.clear_buffer()
                if not state["armed"] or finished.is_set():
                    return
                start = state["frame"]
                while state["next"] < len(events) and events[state["next"]][0] < start + frames:
                    frame, message = events[state["next"]]
                    midi.write_midi_event(max(0, frame - start), message)
                    state["next"] += 1
                count = min(frames, total - start)
                for row, port in enumerate(inputs):
                    recorded[row, start:start + count] = port.get_array()[:count]
                state["frame"] = start + frames
                if state["frame"] >= total:
                    finished.set()

            with client:
                names = _connect(lambda: _ports(client, outputs), f"{command[0]} ({instrument.package})")
                # a client may register its ports before it activates (bristol): connect once it has
                _connect(lambda: _wire(client, names, inputs, midi), f"{command[0]} ({instrument.package})")
                state["armed"] = True
                if instrument.freewheel:
                    client.set_freewheel(True)
                if not finished.wait(600):
                    raise DataError(f"{instrument.name}: the JACK render did not finish within 10 min")
                if instrument.freewheel:
                    client.set_freewheel(False)
        finally:
            for process in reversed(processes):
                _stop(process)
    mono = recorded.mean(axis=0)
    _check_silent_after(instrument, mono[end + SAMPLE_RATE // 2:])
    return mono[lead:end]


def _stop(process: subprocess.Popen) -> None:
    """Stop ``process`` and every process of its session (it leads one): SIGTERM, then SIGKILL after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the whole group has gone
            pass
        try:
            process.wait(5)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait()


@contextmanager
def _machine_lock(name: str):
    """Hold the machine-wide lock ``name`` (a file in the temporary folder) until the block ends."""
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _one_jack_server(server: str):
    """Hold a machine-wide lock while the JACK server ``server`` runs. JACK's shared-memory registry has room for
    a few server names and keeps a name after its server has gone, so a fresh name per render fills it (then no
    server starts); two names (``JACK_SERVER``, ``JACK_LIVE_SERVER``), each taken by one render at a time, reuse
    their entries."""
    return _machine_lock(server)


@contextmanager
def _jack_starting():
    """Hold a machine-wide lock while a JACK server starts and its first client connects, after clearing a stale
    metadata database: the servers of one user share the database, and one starting beside another must not
    clear it while the other is opening it (once connected, a server has it mapped, and it is kept)."""
    with _machine_lock(f"{JACK_SERVER}-starting"):
        clear_stale_metadata(JACK_METADATA)
        yield


def clear_stale_metadata(folder: Path) -> None:
    """Remove JACK's metadata database ``folder`` when no process has it mapped. A JACK process killed while it
    held the database's lock leaves the lock taken, and every later JACK client and server then waits on it for
    ever; JACK makes the folder anew."""
    if not folder.is_dir():
        return
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            if str(folder) in maps.read_text(errors="replace"):
                return
        except OSError:  # the process has gone, or is another user's
            continue
    shutil.rmtree(folder, ignore_errors=True)


def _ports(client, outputs: tuple[str, ...]) -> dict:
    """The instrument's audio outputs and its MIDI input, once they all exist (else KeyError)."""
    prefix = outputs[0].split(":")[0] + ":"
    present = {port.name: port for port in client.get_ports(prefix)}
    if not all(name in present for name in outputs):
        raise KeyError(prefix)
    midi = [port.name for port in present.values() if port.is_midi and port.is_input]
    if not midi:
        raise KeyError(prefix)
    return {"audio": list(outputs), "midi": midi[0]}


def _wire(client, names: dict, inputs: list, midi) -> None:
    """Connect the instrument's audio outputs to ``inputs`` and ``midi`` to its MIDI input (each once)."""
    for name, port in zip(names["audio"], inputs):
        if name not in [other.name for other in port.connections]:
            client.connect(name, port)
    if names["midi"] not in [other.name for other in midi.connections]:
        client.connect(midi, names["midi"])


def _connect(attempt, what: str, seconds: float = 20.0):
    """``attempt()``'s result once it stops failing (JACK servers and clients start asynchronously); a DataError
    once it has failed, or blocked, for ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _within(attempt, max(deadline - time.monotonic(), 1.0))  # a last try gets a second too
        except TimeoutError:
            raise DataError(f"{what} did not start: it was still waiting after {seconds:g} s") from None
        except Exception as error:  # jack.JackOpenError, or KeyError while ports are missing
            if time.monotonic() > deadline:
                raise DataError(f"{what} did not start: {error}") from None
            time.sleep(0.2)


def _within(call, seconds: float):
    """``call()``'s result, or TimeoutError if it has not returned within ``seconds`` (it is then left blocked in a
    daemon thread: libjack can wait for ever on a lock)."""
    result = {}

    def run() -> None:
        try:
            result["value"] = call()
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError
    if "error" in result:
        raise result["error"]
    return result["value"]


def _reamp_take(instrument: Instrument, guitar: Bank, slots: list[tuple[int, int]], renderer_factory):
    """The notes of ``slots`` that ``guitar`` can play, rendered dry by sfizz one slot each."""
    from timbrescope.synth.material import Note, Part

    renderer = renderer_factory(SAMPLE_RATE)
    low, high = renderer.pitch_range(guitar, instrument.label)
    played = [(key, velocity) for key, velocity in slots if low <= key <= high]
    seconds = _slot_seconds(instrument)
    take = np.concatenate([renderer.render(guitar, Part(instrument.label, [Note(key, velocity, 0.0,
                                                                                  instrument.hold)]), None, seconds)
                           for key, velocity in played])
    return take, played


def _effects(instrument: Instrument, take: np.ndarray, work: Path) -> np.ndarray:
    """``take`` through the instrument's LV2 chain (lv2apply) and cabinet impulse response, mono."""
    if not instrument.chain and not instrument.cabinet:
        return take
    take = take * (0.5 / (float(np.abs(take).max()) or 1.0))  # pedals and amps expect a hot signal
    path = work / ".take.wav"
    for uri, controls in instrument.chain:
        sf.write(path, take, SAMPLE_RATE, subtype="FLOAT")
        command = ["lv2apply", "-i", str(path), "-o", str(path.with_suffix(".out.wav"))]
        for port, value in controls:
            command += ["-c", port, str(value)]
        result = subprocess.run(command + [uri], capture_output=True, text=True)
        if result.returncode != 0 or not path.with_suffix(".out.wav").is_file():
            raise DataError(f"{instrument.name}: lv2apply {uri} failed: {result.stderr.strip()[-200:]}")
        processed, _ = sf.read(path.with_suffix(".out.wav"), dtype="float32", always_2d=True)
        take = processed.mean(axis=1)[:len(take)]
    path.unlink(missing_ok=True)
    path.with_suffix(".out.wav").unlink(missing_ok=True)
    if instrument.cabinet:
        from scipy.signal import fftconvolve

        response, sr = sf.read(CABINETS / f"{instrument.cabinet}.wav", dtype="float32", always_2d=True)
        if sr != SAMPLE_RATE:
            raise DataError(f"cabinet response {instrument.cabinet}.wav is {sr} Hz, not {SAMPLE_RATE}")
        take = fftconvolve(take, response.mean(axis=1))[:len(take)].astype(np.float32)
    return take


def _cut(instrument: Instrument, take: np.ndarray, slots: list[tuple[int, int]], work: Path,
         prefix: str) -> list[dict]:
    """One FLAC file per slot of ``take`` (levels scaled together so the loudest peak is -6 dBFS); SFZ regions."""
    slot = round(_slot_seconds(instrument) * SAMPLE_RATE)
    peak = float(np.abs(take).max()) or 1.0
    regions = []
    for i, (key, velocity) in enumerate(slots):
        note = take[i * slot:(i + 1) * slot] * (0.5 / peak)
        if _level(note) < SILENT_DB:
            raise DataError(f"{instrument.name}: note {key} velocity {velocity} rendered silent")
        name = f"{prefix}{key:03d}_v{velocity:03d}.flac"
        sf.write(work / name, note.astype(np.float32), SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        regions.append({"sample": name, "key": key, "velocity": velocity, "group": ""})
    return regions


def _level(y: np.ndarray) -> float:
    """RMS level in dBFS."""
    return 20 * np.log10(rms(y) + 1e-12)


def _check_silent_after(instrument: Instrument, tail: np.ndarray) -> None:
    level = _level(tail)
    if level > SILENT_DB:
        raise DataError(f"{instrument.name}: sound after all-notes-off ({level:.0f} dBFS): a note hung")


def _grandorgue(stops: tuple[str, ...], work: Path) -> list[dict]:
    """The pipes of ``stops`` from the GrandOrgue demo package, decoded to WAV; one region per pipe."""
    packages = sorted(GRANDORGUE.glob("*.orgue"))
    if not packages or not shutil.which("wvunpack"):
        raise DataError("GrandOrgue demo organ not found: install the Debian packages grandorgue-demo and wavpack")
    regions = []
    with zipfile.ZipFile(packages[0]) as archive:
        for stop in stops:
            members = sorted(name for name in archive.namelist() if name.startswith(f"{stop}/") and
                             name.endswith(".wav"))
            for member in members:
                key = int(Path(member).name.split("-")[0])
                packed = work / f".{stop}-{key}.wv"
                packed.write_bytes(archive.read(member))
                name = f"{stop}_{key:03d}.wav"
                result = subprocess.run(["wvunpack", "-q", "-y", str(packed), "-o", str(work / name)],
                                        capture_output=True, text=True)
                packed.unlink()
                if result.returncode != 0:
                    raise DataError(f"wvunpack {member}: {result.stderr.strip()[-200:]}")
                regions.append({"sample": name, "key": key, "velocity": 100, "group": stop})
    return regions


def _sfz_text(regions: list[dict]) -> str:
    """SFZ regions: each group's samples cover the keys halfway to their neighbours, velocity layers split
    halfway between layers; groups (organ stops) sound together."""
    lines = ["<control> default_path=./", "<global> ampeg_release=0.15", ""]
    for group in sorted({region["group"] for region in regions}):
        mine = [region for region in regions if region["group"] == group]
        keys = sorted({region["key"] for region in mine})
        velocities = sorted({region["velocity"] for region in mine})
        lines.append(f"<group> // {group or 'notes'}")
        for region in sorted(mine, key=lambda r: (r["key"], r["velocity"])):
            k, v = keys.index(region["key"]), velocities.index(region["velocity"])
            lokey = 0 if k == 0 else (keys[k - 1] + region["key"]) // 2 + 1
            hikey = 127 if k == len(keys) - 1 else (region["key"] + keys[k + 1]) // 2
            lovel = 1 if v == 0 else (velocities[v - 1] + region["velocity"]) // 2 + 1
            hivel = 127 if v == len(velocities) - 1 else (region["velocity"] + velocities[v + 1]) // 2
            lines.append(f"<region> sample={region['sample']} pitch_keycenter={region['key']} lokey={lokey} "
                         f"hikey={hikey} lovel={lovel} hivel={hivel}")
    return "\n".join(lines) + "\n"
