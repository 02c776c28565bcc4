import re

import pytest

from timbrescope import taxonomy as tx
from timbrescope.errors import ParameterError

REQUIRED = {
    "keyboard": {"piano", "electric_piano", "harpsichord", "clavinet", "celesta"},
    "mallet": {"glockenspiel", "vibraphone", "marimba", "xylophone", "tubular_bells"},
    "guitar": {"acoustic_guitar", "electric_guitar", "banjo", "mandolin", "ukulele", "sitar"},
    "bowed_string": {"violin", "viola", "cello", "contrabass", "string_ensemble"},
    "brass": {"trumpet", "trombone", "french_horn", "tuba", "brass_section"},
    "reed": {"clarinet", "oboe", "english_horn", "bassoon", "saxophone"},
    "flute": {"flute", "piccolo", "recorder", "pan_flute"},
    "percussion": {"drum_kit", "timpani"},
    "synth": {"synth_lead", "synth_pad", "synth_bass"},
}


def test_required_families_and_labels_are_present():
    for family, members in REQUIRED.items():
        assert members <= set(tx.FAMILIES[family])
        assert all(tx.family_of(label) == family for label in members)
    assert len(tx.labels()) == len(set(tx.labels())) == 46
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in tx.labels() + tx.families())


def test_every_label_has_a_playable_range():
    assert set(tx.PLAYABLE_RANGE) == set(tx.labels())
    assert all(0 <= low < high <= 127 for low, high in tx.PLAYABLE_RANGE.values())


def test_general_midi_map_covers_128_programs_with_sources():
    assert [p.number for p in tx.GM_PROGRAMS] == list(range(128))
    assert all(p.source in tx.SOURCES for p in tx.GM_PROGRAMS)
    assert all(p.label is None or p.label in tx.labels() for p in tx.GM_PROGRAMS)
    assert tx.gm_program(0).label == "piano" and tx.gm_program(0).source == "acoustic"
    assert tx.gm_program(33).label == "electric_bass" and tx.gm_program(33).source == "electronic"
    assert tx.gm_program(81).label == "synth_lead" and tx.gm_program(81).source == "synthetic"
    assert {p.number for p in tx.programs_for("saxophone")} == {64, 65, 66, 67}
    assert tx.GM_DRUM_KIT.label == "drum_kit"
    with pytest.raises(ParameterError, match="0..127"):
        tx.gm_program(128)


def test_renderable_labels_exclude_instruments_general_midi_lacks():
    renderable = set(tx.renderable_labels())
    assert {"piano", "violin", "drum_kit", "synth_pad"} <= renderable
    assert not {"mandolin", "ukulele"} & renderable


def test_aliases_and_unknown_labels():
    assert tx.canonical_label("Kick Drum") == "drum_kit"
    assert tx.canonical_label("electric-guitar") == "electric_guitar"
    assert tx.family_of("hi_hat") == "percussion"
    with pytest.raises(ParameterError, match="unknown instrument label 'kazoo'"):
        tx.canonical_label("kazoo")


@pytest.mark.parametrize("dataset,count", [("nsynth", 11), ("irmas", 11), ("medley_solos_db", 8),
                                           ("openmic2018", 20), ("musicnet", 128), ("uiowa_mis", 10)])
def test_dataset_maps_point_into_the_taxonomy(dataset, count):
    mapping = tx.dataset_map(dataset)
    assert len(mapping) == count
    for entry in mapping.values():
        assert not (entry.label and entry.family), "an entry is exact or coarse, never both"
        assert entry.label is None or entry.label in tx.labels()
        assert entry.family is None or entry.family in tx.families()


def test_coarse_dataset_labels_name_a_family_not_a_guess():
    openmic = tx.dataset_map("openmic2018")
    assert openmic["guitar"].coarse and openmic["guitar"].family == "guitar"
    assert openmic["mallet_percussion"].resolved_family == "mallet"
    assert openmic["cymbals"].label == openmic["drums"].label == "drum_kit"
    assert tx.dataset_map("irmas")["gac"].label == "acoustic_guitar"
    assert tx.dataset_map("musicnet")["41"].label == "violin"
    assert tx.dataset_map("nsynth")["vocal"].label == "voice"
    with pytest.raises(ParameterError, match="known: nsynth"):
        tx.dataset_map("audioset")


def test_docs_taxonomy_is_the_generated_text():
    from pathlib import Path

    doc = Path(__file__).parents[1] / "docs" / "TAXONOMY.md"
    assert doc.read_text() == tx.to_markdown(), "regenerate with: timbrescope taxonomy > docs/TAXONOMY.md"
    assert "| 40 | Violin | violin | acoustic |" in doc.read_text()


def test_each_label_has_the_source_most_of_its_programs_have():
    source_of = tx.source_of
    assert {label: source_of(label) for label in tx.labels() if source_of(label) != "acoustic"} == {
        "electric_piano": "electronic", "clavinet": "electronic", "organ": "electronic",
        "electric_guitar": "electronic", "electric_bass": "electronic", "synth_lead": "synthetic",
        "synth_pad": "synthetic", "synth_bass": "synthetic"}
    assert source_of("Drum Kit") == "acoustic" and source_of("ukulele") == "acoustic"
    assert source_of("synth") == "synthetic" and source_of("brass") == "acoustic"  # family targets (NSynth's)
    assert set(map(source_of, tx.labels())) <= set(tx.SOURCES)
