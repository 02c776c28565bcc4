"""The extra sources of ``synth --extra``: multisampled instruments built from Debian engines (JACK/LV2,
GrandOrgue pipes, DI guitar through LV2 amps and a cabinet), the extra soundfonts, the Debian packages'
recorded clips and the recorded rooms of the reverb."""

import re
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from timbrescope.errors import DataError
from timbrescope.synth import multisample
from timbrescope.synth import banks as bank_module, effects
from timbrescope.synth.banks import Bank, debian_clip_banks, extra_soundfont_banks, hydrogen_banks, sinsy_bank
from timbrescope.synth.material import Note, Part
from timbrescope.synth.multisample import INSTRUMENTS, Instrument, multisample_banks
from timbrescope.synth.render import Renderer

pytestmark = pytest.mark.system  # runs jackd, jalv, startBristol, lv2apply, wvunpack, Faust


def _instrument(name: str, **changes) -> Instrument:
    return replace(next(i for i in INSTRUMENTS if i.name == name), **changes)


def _level(y: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(y ** 2)) + 1e-12))


def _play(bank: Bank, pitch: int, velocity: int = 100) -> np.ndarray:
    return Renderer(22_050).render(bank, Part(bank.labels[0], [Note(pitch, velocity, 0.0, 1.0)]), None, 1.5)


@pytest.fixture()
def only(monkeypatch):
    """Build just the given instruments."""
    def select(*instruments: Instrument) -> None:
        monkeypatch.setattr(multisample, "INSTRUMENTS", instruments)
    return select


def test_sfz_regions_split_keys_and_velocities_halfway():
    regions = [{"sample": f"{k}_{v}.flac", "key": k, "velocity": v, "group": ""} for k in (40, 46) for v in (60, 110)]
    text = multisample._sfz_text(regions)
    assert "sample=40_60.flac pitch_keycenter=40 lokey=0 hikey=43 lovel=1 hivel=85" in text
    assert "sample=46_110.flac pitch_keycenter=46 lokey=44 hikey=127 lovel=86 hivel=127" in text


def test_jack_instrument_is_rendered_headless_into_a_playable_sfz(tmp_path, only):
    organ = _instrument("setbfree_jazz", step=20)  # the multiples of 20 in the organ range: 40, 60, 80
    only(organ)
    [bank] = multisample_banks(tmp_path, [], Renderer)
    assert (bank.name, bank.engine, bank.split, bank.labels) == ("setbfree_jazz", "sfizz", "train", ("organ",))
    notes = sorted(path.name for path in (tmp_path / "setbfree_jazz").glob("*.flac"))
    assert notes == ["040_v100.flac", "060_v100.flac", "080_v100.flac"]
    for name in notes:
        y, sr = sf.read(tmp_path / "setbfree_jazz" / name)
        assert sr == 44_100 and len(y) == 4 * sr and _level(y[: sr]) > -40
    assert _level(_play(bank, 60)) > -45  # sfizz plays it between the sampled keys
    assert not any(tmp_path.glob(".setbfree_jazz-*"))  # the temporary build folder is gone
    # built once: a second call reuses the folder
    stamp = (tmp_path / "setbfree_jazz" / "setbfree_jazz.sfz").stat().st_mtime_ns
    multisample_banks(tmp_path, [], Renderer)
    assert (tmp_path / "setbfree_jazz" / "setbfree_jazz.sfz").stat().st_mtime_ns == stamp


def test_vox_continental_plays_in_real_time_below_its_top_key_and_leaves_no_process(tmp_path, only):
    """bristol plays in real time on a JACK server of its own while a freewheeling engine builds on the other."""
    vox = _instrument("vox_continental", step=12, hold=1.0, release=0.5)  # 36, 48, 60: the keys up to 71
    assert (vox.keys, vox.freewheel) == ([36, 48, 60], False)
    only(vox, _instrument("setbfree_jazz", step=20))
    bank, organ = multisample_banks(tmp_path, [], Renderer)
    assert bank.labels == ("organ",) and bank.package == "bristol"
    assert sorted(path.name for path in (tmp_path / organ.name).glob("*.flac")) == [
        "040_v100.flac", "060_v100.flac", "080_v100.flac"]
    for key in (36, 48, 60):
        y, sr = sf.read(tmp_path / "vox_continental" / f"{key:03d}_v100.flac")
        assert _level(y[: sr]) > -30 and _level(y[round(1.3 * sr):]) < _level(y[: sr]) - 20  # sounds, then stops
    # startBristol's engine and text interface ran in a session of their own, which was stopped whole
    assert subprocess.run(["pgrep", "-f", "bristol .*-register vox"], capture_output=True).stdout == b""


def test_faust_flute_is_keyed_by_the_pitch_it_sounds(tmp_path, only):
    flute = _instrument("faust_flute", step=12, velocities=(100,))  # plays 60, 72, 84, 96
    only(flute)
    [bank] = multisample_banks(tmp_path, [], Renderer)
    regions = dict(re.findall(r"sample=(\d+)_v100.flac pitch_keycenter=(\d+)", (tmp_path / "faust_flute" /
                                                                               "faust_flute.sfz").read_text()))
    keys = {int(played): int(sounding) for played, sounding in regions.items()}
    assert 60 in keys and 84 in keys and keys[84] < 84  # the model sounds flat at the top; the map says so
    y = _play(bank, keys[84])
    f0 = librosa.yin(y[2_205:22_050], fmin=200, fmax=3000, sr=22_050)
    assert abs(librosa.hz_to_midi(np.median(f0)) - keys[84]) < 0.7  # sfizz plays it at its own pitch


def test_electric_piano_through_an_lv2_effect_differs_from_the_dry_one(tmp_path, only):
    dry = _instrument("mda_epiano", step=40, velocities=(100,))
    wet = _instrument("mda_epiano_combo", step=40, velocities=(100,))
    only(dry, wet)
    multisample_banks(tmp_path, [], Renderer)
    a, _ = sf.read(tmp_path / "mda_epiano" / "080_v100.flac")
    b, _ = sf.read(tmp_path / "mda_epiano_combo" / "080_v100.flac")
    assert _level(a) > -50 and _level(b) > -50
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.9  # the amp simulation changed the sound


def test_di_guitar_is_reamped_through_pedal_amp_and_cabinet(tmp_path, only):
    # a clean "DI guitar": a decaying harmonic tone sampled at E3, mapped over the whole range
    sr = 44_100
    t = np.arange(2 * sr) / sr
    tone = sum(np.sin(2 * np.pi * 164.8 * h * t) / h for h in range(1, 6)) * np.exp(-2 * t) * 0.05
    di = tmp_path / "di"
    di.mkdir()
    sf.write(di / "e3.wav", tone, sr)
    (di / "di.sfz").write_text("<region> sample=e3.wav pitch_keycenter=52 lokey=40 hikey=70\n")
    guitar = Bank("strat_di:strat_di_low", di / "di.sfz", "sfizz", "train", ("electric_guitar",))
    crunch = _instrument("guitar_crunch", step=12, velocities=(100,))  # keys 48, 60, 72 (72 unplayable)
    only(crunch)
    [bank] = multisample_banks(tmp_path / "cache", [guitar], Renderer)
    folder = tmp_path / "cache" / "guitar_crunch"
    assert sorted(p.name for p in folder.glob("*.flac")) == ["strat_di_strat_di_low_048_v100.flac",
                                                            "strat_di_strat_di_low_060_v100.flac"]
    y, _ = sf.read(folder / "strat_di_strat_di_low_048_v100.flac")
    assert _level(y) > -40
    assert _level(_play(bank, 50)) > -50
    # a held-out guitar is never re-amped: without a train DI guitar there is no reamp bank
    held_out = replace(guitar, split="holdout")
    assert multisample_banks(tmp_path / "other", [held_out], Renderer) == []


def test_grandorgue_stops_are_decoded_and_layered(tmp_path, only):
    only(_instrument("grandorgue_flutes"))
    [bank] = multisample_banks(tmp_path, [], Renderer)
    text = (tmp_path / "grandorgue_flutes" / "grandorgue_flutes.sfz").read_text()
    assert text.count("<group>") == 2 and "Bourdon8_067.wav" in text and "FlHarm8_067.wav" in text
    assert _level(_play(bank, 67)) > -50  # soft flue pipes; the corpus levels every part


def test_a_missing_engine_is_a_one_line_error_and_leaves_nothing(tmp_path, only, monkeypatch):
    monkeypatch.setattr(multisample, "GRANDORGUE", tmp_path / "absent")
    only(_instrument("grandorgue_flutes"))
    with pytest.raises(DataError, match="install the Debian packages grandorgue-demo"):
        multisample_banks(tmp_path / "cache", [], Renderer)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_jack_engine_is_a_one_line_error_from_the_jack_lane_and_the_others_are_built(tmp_path, only):
    absent = replace(_instrument("yc20_combo"), name="absent_organ", source=("jack", ("no-such-engine",), (), -1))
    only(absent, _instrument("grandorgue_flutes"))
    with pytest.raises(DataError, match=r"^absent_organ needs no-such-engine: install the Debian packages of "
                                        r"`make setup` \(jackd2, jalv, foo-yc20\)$"):
        multisample_banks(tmp_path, [], Renderer)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["grandorgue_flutes"]  # built beside it; no debris


def test_a_note_that_hangs_after_all_notes_off_fails_the_build():
    with pytest.raises(DataError, match="a note hung"):
        multisample._check_silent_after(INSTRUMENTS[0], np.full(44_100, 0.01, np.float32))
    multisample._check_silent_after(INSTRUMENTS[0], np.zeros(44_100, np.float32))


def test_a_metadata_database_left_by_a_killed_jack_process_is_cleared_and_a_live_one_kept(tmp_path):
    folder = tmp_path / "jack_db-0"
    folder.mkdir()
    (folder / "__db.001").write_bytes(b"\0" * 4096)
    holder = subprocess.Popen([sys.executable, "-c", "import mmap, sys; f = open(sys.argv[1], 'r+b'); "
                               "m = mmap.mmap(f.fileno(), 0); print('mapped', flush=True); sys.stdin.read()",
                               str(folder / "__db.001")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "mapped\n"
    multisample.clear_stale_metadata(folder)
    assert (folder / "__db.001").exists()  # a live process has it: kept
    holder.kill()
    holder.wait()
    multisample.clear_stale_metadata(folder)
    assert not folder.exists()


def test_a_jack_call_that_blocks_for_ever_is_a_one_line_error():
    blocked = threading.Event()
    with pytest.raises(DataError, match=r"^jackd \(probe\) did not start: it was still waiting after 0.5 s$"):
        multisample._connect(blocked.wait, "jackd (probe)", seconds=0.5)
    assert multisample._connect(lambda: "ports", "jackd (probe)", seconds=0.5) == "ports"


def test_extra_soundfonts_play_their_labels():
    banks = {bank.name: bank for bank in extra_soundfont_banks()}
    assert banks["avl_black_pearl"].labels == ("drum_kit",) and len(banks["a320u"].labels) > 40
    renderer = Renderer(22_050)
    kick = renderer.render(banks["avl_red_zeppelin"], Part("drum_kit", [Note(36, 110, 0.0, 0.5)]), None, 1.0)
    assert _level(kick) > -40  # the kit-only soundfont's preset 0 of bank 0 plays on the drum channel
    assert renderer.programs(banks["a320u"], "organ")


def test_sinsy_sings_each_note_at_its_time_and_pitch():
    import librosa

    bank = sinsy_bank()
    part = Part("voice", [Note(60, 100, 0.5, 1.5), Note(67, 100, 2.5, 3.5)])
    y = Renderer(22_050).render(bank, part, None, 4.0)
    assert len(y) == 4 * 22_050
    seconds = lambda a, b: y[int(a * 22_050):int(b * 22_050)]  # noqa: E731
    assert _level(seconds(0.7, 1.3)) > -40 and _level(seconds(2.7, 3.3)) > -40
    assert _level(seconds(1.8, 2.3)) < _level(seconds(2.7, 3.3)) - 20  # the rest between them is quiet
    f0, voiced, _ = librosa.pyin(seconds(2.7, 3.3), fmin=200, fmax=600, sr=22_050)
    assert abs(12 * np.log2(np.nanmedian(f0[voiced]) / 392.0)) < 0.5  # G4, within half a semitone


def test_extra_and_sinsy_settings_add_every_new_source(tmp_path, only):
    from timbrescope.synth.corpus import Settings, resolve_preset

    only(_instrument("yc20_combo", step=24))
    settings = Settings(resolve_preset("tiny"), seed=0, extra=True, sinsy=True)
    names = {bank.name: bank for bank in settings.banks(tmp_path)}
    assert {"a320u", "avl_black_pearl", "avl_red_zeppelin", "sinsy-nitech_f001", "yc20_combo",
            "lmms_samples:organ", "belofilms_guitar_strums:acoustic_guitar"} <= set(names)
    assert names["yc20_combo"].engine == "sfizz" and names["sinsy-nitech_f001"].labels == ("voice",)
    assert settings.to_json()["extra"] is settings.to_json()["sinsy"] is True
    assert not {"extra", "sinsy"} & set(Settings(resolve_preset("tiny"), 0).to_json())  # older corpora resume


def test_debian_recorded_clips_are_clip_banks_of_their_labels():
    banks = {bank.name: bank for bank in debian_clip_banks()}
    organ = banks["lmms_samples:organ"]
    assert organ.engine == "clip" and organ.labels == ("organ",) and organ.split == "train"
    assert set(organ.clips) == {"church_organ01.ogg", "church_organ02.ogg", "church_organ03.ogg",
                                "church_organ04.ogg", "e_organ01.ogg"}
    assert banks["sonic_pi_samples:electric_guitar"].clips == ("guit_e_fifths.flac", "guit_e_slide.flac",
                                                             "guit_em9.flac", "guit_harmonics.flac")
    assert len(banks["belofilms_guitar_strums:acoustic_guitar"].clips) > 250
    part = Renderer(22_050).recorded_part(organ, np.random.default_rng(0), 0.0, 3.0)
    y = Renderer(22_050).render(organ, part, None, 3.0)
    assert len(y) == 3 * 22_050 and _level(y) > -50 and part.notes  # decoded, placed, notes where it sounds


def test_a_missing_debian_clip_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(bank_module, "DEBIAN_CLIPS", (("x", str(tmp_path), "lmms-common", "GPL-2+",
                                                       (("*.ogg", "organ"),)),))
    with pytest.raises(DataError, match="install the Debian package lmms-common"):
        debian_clip_banks()


def test_the_guitar_strum_kit_is_not_converted_as_drums(tmp_path):
    names = {bank.name for bank in hydrogen_banks(tmp_path)}
    assert names and not any("GuitarStrums" in name for name in names)


def test_a_recorded_room_reverberates_a_click_for_its_impulse_length():
    rng = np.random.default_rng(0)
    params = next(p for p in (effects.draw_effects(rng, effects.room_names()) for _ in range(50)) if "room" in p)
    assert params["room"]["name"] in effects.ROOM_IMPULSES and "reverb" not in params
    click = np.zeros(44_100, np.float32)
    click[100] = 1.0
    out = effects._in_room(click, 44_100, {"name": "big_hall", "wet": 0.5})
    assert out[100] > 0.4 and np.abs(out[22_050:]).max() > 1e-4  # the dry click, and the hall half a second on
    assert effects.draw_effects(np.random.default_rng(3)) == effects.draw_effects(np.random.default_rng(3), ())


def test_missing_room_impulses_name_their_package(monkeypatch, tmp_path):
    monkeypatch.setitem(effects.ROOM_IMPULSES, "dish", tmp_path / "dish.wav")
    with pytest.raises(DataError, match="csoundqt-examples"):
        effects.room_names()


def test_a_sinsy_render_that_diverges_is_refused(monkeypatch):
    from timbrescope.synth import render

    monkeypatch.setattr(render, "_silenced", lambda call, path: (np.full(48_000, 1000.0), 48_000))
    part = Part("voice", [Note(60, 100, 0.0, 0.5)])
    y = Renderer(22_050).render(sinsy_bank(), part, None, 1.0)
    assert len(y) == 22_050 and abs(float(np.median(y)) - 1000 / 32768) < 1e-3
    monkeypatch.setattr(render, "_silenced", lambda call, path: (np.full(48_000, 1e72), 48_000))  # a blown-up filter
    with pytest.raises(DataError, match="sinsy diverged"):
        Renderer(22_050).render(sinsy_bank(), part, None, 1.0)


@pytest.mark.parametrize("pitch,start,end", [(79, 1.1, 2.6), (79, 0.37, 1.87), (60, 0.37, 1.87), (64, 2.3, 4.3)])
def test_sinsy_sings_the_notes_its_filter_blew_up_on(pitch, start, end):
    # with the voice's global variance on the mel-cepstrum, each of these notes blew up (checked: this test fails then)
    y = Renderer(22_050).render(sinsy_bank(), Part("voice", [Note(pitch, 100, start, end)]), None, 4.0)
    assert np.isfinite(y).all() and np.abs(y).max() < 1.0 and _level(y[int(start * 22_050):int(end * 22_050)]) > -40
