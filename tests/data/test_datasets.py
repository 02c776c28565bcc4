import json
from pathlib import Path

import numpy as np
import pytest

import dataset_fixtures as fixtures
from conftest import train_args
from timbrescope.cli import main
from timbrescope.data.clips import SkipLog, clip_examples, decode_batches
from timbrescope.data.dataset import Dataset, Example, carve_split, merge_segments, window
from timbrescope.data.specs import open_dataset
from timbrescope.errors import DataError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every fixture dataset, clean and broken: {(name, broken): (root, facts)}."""
    out = {}
    for name, make in fixtures.ALL.items():
        for broken in (False, True):
            root = tmp_path_factory.mktemp(f"{name}-{'broken' if broken else 'clean'}")
            out[name, broken] = root, make(root, broken)
    return out


def _open(built, name, broken=False):
    root, facts = built[name, broken]
    return open_dataset(fixtures.spec(name, root)), root, facts


@pytest.mark.parametrize("name", list(fixtures.ALL))
def test_clean_fixture_loads_with_native_splits_and_nothing_to_report(built, name):
    dataset, root, facts = _open(built, name)
    assert len(dataset.examples) == facts["examples"]
    assert {"train", "validation"} <= set(dataset.splits())
    report = dataset.validate()
    assert report["missing"] == [] and report["unreadable"] == [] and report["annotation_problems"] == []
    assert sum(report["splits"].values()) == facts["examples"]


@pytest.mark.parametrize("name", [n for n in fixtures.ALL if n not in ("uiowa_mis", "manifest")])
def test_broken_fixture_reports_the_missing_and_the_corrupt_file(built, name):
    dataset, root, facts = _open(built, name, broken=True)
    report = dataset.validate()
    assert report["missing"] == ([str(facts["missing"])] if facts["missing"] else [])
    assert len(report["unreadable"]) == 1 and report["unreadable"][0].startswith(str(facts["corrupt"]))


def test_nsynth_families_splits_and_metadata(built):
    dataset, root, _ = _open(built, "nsynth")
    assert [len(dataset.split(s)) for s in ("train", "validation", "test")] == [5, 5, 5]
    first = dataset.split("train")[0]
    assert first.labels == ("bass",) and first.id == "bass_electronic_001-047-100" and first.metadata["source"] == "electronic" and first.metadata["pitch"] == 47
    assert dataset.label_counts()["train"] == {"bass": 2, "brass": 2, "organ": 1}  # organ is an exact label
    assert first.load_audio(16000).shape == (64000,)


def test_irmas_single_label_training_multi_label_testing(built):
    dataset, root, _ = _open(built, "irmas")
    train = {ex.id: ex for ex in dataset.split("train") + dataset.split("validation")}
    ex = train["001__[cel][nod][cla]0001__1"]
    assert ex.labels == ("cello",) and ex.metadata == {"genre": "cla", "drums": False}
    assert train["011__[vio][dru][pop_roc]0011__2"].metadata == {"genre": "pop_roc", "drums": True}
    # the excerpts of one source excerpt never straddle train and validation
    for n in range(1, 7):
        assert train[f"{n:03d}__[cel][nod][cla]{n:04d}__1"].split == train[f"{n:03d}__[cel][nod][cla]{n:04d}__2"].split
    assert {ex.id: ex.labels for ex in dataset.split("test")} == {"01 - Song-1": ("cello", "violin"),
                                                                 "02 - Other-3": ("violin",)}


def test_medley_solos_db_keeps_native_subsets(built):
    dataset, root, _ = _open(built, "medley_solos_db")
    assert [len(dataset.split(s)) for s in ("train", "validation", "test")] == [8, 2, 2]
    assert dataset.split("test")[0].labels == ("violin",) and dataset.split("test")[1].labels == ("flute",)
    assert dataset.split("train")[0].load_audio(22050).shape == (65536,)


def test_musicnet_segments_from_notes_and_composer(built):
    dataset, root, _ = _open(built, "musicnet")
    track = dataset.split("test")[0]
    assert track.id == "2106" and track.labels == ("cello", "violin") and track.metadata["composer"] == "Beethoven"
    # twelve one-second violin notes merge into one segment; times are samples / 44100
    assert track.segments == ({"label": "violin", "start": 0.0, "end": 12.0},
                              {"label": "cello", "start": 6.0, "end": 12.0})
    windows = window(track, 5.0)
    assert [(w.offset, w.labels) for w in windows] == [(0.0, ("violin",)), (5.0, ("cello", "violin")),
                                                       (7.0, ("cello", "violin"))]
    assert windows[1].segments[1] == {"label": "cello", "start": 1.0, "end": 5.0}


def test_openmic_unannotated_labels_are_unknown_not_negative(built):
    dataset, root, _ = _open(built, "openmic2018")
    ex = {ex.id: ex for ex in dataset.examples}
    assert ex["000046_3840"].labels == ("violin",) and ex["000046_3840"].known == ("piano", "violin")
    assert ex["000135_483840"].labels == () and ex["000135_483840"].known == ("piano", "violin")
    assert ex["000139_119040"].known == ("violin",) and not ex["000139_119040"].is_known("piano")
    assert ex["000046_3840"].features.shape == (128,)
    assert ex["000046_3840"].path == root / "audio" / "000" / "000046_3840.ogg"


def test_uiowa_is_features_only_and_broken_arrays_are_reported(built):
    dataset, root, _ = _open(built, "uiowa_mis")
    assert not dataset.has_audio and dataset.examples[0].features.shape == (120,)
    assert dataset.examples[0].labels == ("uiowa_0",)
    with pytest.raises(DataError, match="precomputed features, not audio"):
        dataset.examples[0].load_audio(16000)
    broken, _, _ = _open(built, "uiowa_mis", broken=True)
    assert "test" not in broken.splits() and "do not match" in broken.problems[0]


def test_folder_and_manifest_labels(built):
    dataset, root, _ = _open(built, "folder")
    assert set(dataset.label_counts()["train"]) == {"cello", "drum_kit", "violin"}  # 'snare drum' is the kit
    dataset, root, _ = _open(built, "manifest")
    ex = dataset.split("test")[1]
    assert ex.labels == ("cello", "violin") and ex.segments[1] == {"label": "cello", "start": 3.0, "end": 6.0}


def test_csv_manifest_resolves_paths_aliases_and_errors(tmp_path):
    (tmp_path / "m.csv").write_text("source,path,labels\nx,a/kick.wav,kick_drum\ny,b.wav,Violin;piano;brass\n")
    dataset = open_dataset(tmp_path / "m.csv")
    assert dataset.examples[0].path == tmp_path / "a" / "kick.wav" and dataset.examples[0].labels == ("drum_kit",)
    assert dataset.examples[1].labels == ("brass", "piano", "violin") and dataset.examples[1].metadata == {"source": "y"}
    assert len(dataset.split("all")) == 2
    (tmp_path / "bad.csv").write_text("path,labels\na.wav,kazoo\n")
    with pytest.raises(DataError, match="bad.csv, line 2: unknown instrument label or family 'kazoo'"):
        open_dataset(tmp_path / "bad.csv")
    (tmp_path / "nolabels.csv").write_text("path\na.wav\n")
    with pytest.raises(DataError, match="missing column"):
        open_dataset(tmp_path / "nolabels.csv")


@pytest.mark.parametrize("name, expected", [
    ("nsynth", "nsynth-train/examples.json"), ("irmas", "IRMAS-TrainingData/"),
    ("medley_solos_db", "Medley-solos-DB_metadata.csv"), ("musicnet", "train_labels/"),
    ("openmic2018", "openmic-2018-aggregated-labels.csv"), ("uiowa_mis", "uiowa_train_data.npy")])
def test_missing_dataset_says_what_was_expected_where_and_where_to_get_it(tmp_path, name, expected):
    with pytest.raises(DataError, match=r"is incomplete: expected .*" + expected.replace(".", r"\.") + ".*download"):
        open_dataset(f"{name}:{tmp_path}")
    with pytest.raises(DataError, match="is not a folder; download"):
        open_dataset(f"{name}:{tmp_path / 'absent'}")


def test_unknown_spec_and_empty_split(tmp_path):
    with pytest.raises(DataError, match="unknown data spec 'kazoo:/x'"):
        open_dataset("kazoo:/x")
    (tmp_path / "m.csv").write_text("path,labels,split\na.wav,violin,train\n")
    with pytest.raises(DataError, match=r"no example in split 'test' \(splits: train\)"):
        open_dataset(tmp_path / "m.csv").split("test")
    (tmp_path / "empty.csv").write_text("path,labels\n")
    with pytest.raises(DataError, match="no rows"):
        open_dataset(tmp_path / "empty.csv")


def test_corrupt_files_are_skipped_and_counted_when_decoding(built):
    dataset, root, facts = _open(built, "medley_solos_db", broken=True)
    skipped = SkipLog()
    batches = list(decode_batches(dataset.examples, 22050, 3.0, skipped, batch=5))
    assert sum(len(b[1]) for b in batches) == len(dataset.examples) - 2 and len(skipped) == 2
    assert all(audio.shape[1] == 66150 for audio, _ in batches)
    kept = [ex for _, examples in batches for ex in examples]  # in order, each cut or padded to 3 s
    assert [ex.id for ex in kept] == [ex.id for ex in dataset.examples if ex.id not in skipped.failures]
    audio = np.concatenate([audio for audio, _ in batches])
    for row, ex in zip(audio, kept):
        y = ex.load_audio(22050)[:66150]
        np.testing.assert_array_equal(row, np.pad(y, (0, 66150 - len(y))))


def test_windowing_keeps_short_clips_and_cuts_long_ones(tmp_path):
    fixtures.write(tmp_path / "long.wav", np.zeros(22050 * 12, np.float32), 22050)
    long = Example("x", "train", ("violin",), tmp_path / "long.wav")
    short = Example("y", "train", ("violin",), tmp_path / "long.wav", duration=3.0)
    clips = clip_examples([long, short], 5.0)
    assert [(c.id, c.offset, c.duration) for c in clips] == [("x@0", 0.0, 5.0), ("x@1", 5.0, 5.0), ("x@2", 7.0, 5.0),
                                                            ("y", 0.0, 3.0)]
    assert merge_segments([{"label": "a", "start": 0, "end": 1}, {"label": "a", "start": 1.02, "end": 2},
                           {"label": "a", "start": 3, "end": 4}]) == (
        {"label": "a", "start": 0, "end": 2}, {"label": "a", "start": 3, "end": 4})
    assert carve_split("same key") == carve_split("same key") and carve_split("k", 1.0) == "validation"


def test_datasets_cli_list_and_validate(built, capsys):
    assert main(["datasets", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in fixtures.ALL if name not in ("folder", "manifest"))
    root, _ = built["musicnet", False]
    assert main(["datasets", "validate", "musicnet", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"] == {"train": 4, "validation": 1, "test": 1}
    root, _ = built["musicnet", True]
    assert main(["datasets", "validate", "musicnet", str(root)]) == 2
    captured = capsys.readouterr()
    assert "missing: " in captured.out and "unreadable: " in captured.out and "2 problem(s)" in captured.err
    assert main(["datasets", "validate", "nsynth", str(root / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("timbrescope: error: NSynth: ")


@pytest.mark.parametrize("name", [n for n in fixtures.ALL if n != "uiowa_mis"])
def test_train_one_tiny_epoch_and_evaluate_on_every_audio_spec(built, name, tmp_path):
    from timbrescope.evaluate.evaluation import evaluate
    from timbrescope.inference import Recognizer
    from timbrescope.train.loop import TrainConfig, train

    root, _ = built[name, True]  # the broken copy: its missing and corrupt files are skipped and counted
    spec = fixtures.spec(name, root)
    summary = train(spec, tmp_path / "m.ckpt", TrainConfig(epochs=1, batch_size=4, patience=1))
    dataset = open_dataset(spec)
    report = dataset.validate()
    broken_train_files = {p for p in report["missing"] + [u.split(": ")[0] for u in report["unreadable"]]
                          if any(str(ex.path) == p for ex in dataset.examples if ex.split in ("train", "validation"))}
    assert summary["skipped_files"] >= len(broken_train_files) and summary["epochs_run"] == 1
    recognizer = Recognizer(tmp_path / "m.ckpt")
    annotated = {t for ex in dataset.split("train") for t in (*ex.labels, *(ex.known or ()))}
    assert recognizer.labels == sorted(annotated)
    metrics, _ = evaluate(spec, recognizer, split="test")
    assert metrics["examples"] + len(metrics["skipped"]) == len(dataset.split("test"))
    assert 0.0 <= metrics["multi_label"]["f1_micro"] <= 1.0 and metrics["not_scored"] == []


@pytest.mark.parametrize("model", ["mfcc-mlp", "logreg", "knn"])
def test_feature_models_train_and_evaluate_on_precomputed_features(built, model, tmp_path, capsys):
    from timbrescope.evaluate.evaluation import evaluate
    from timbrescope.inference import Recognizer

    root, _ = built["uiowa_mis", False]
    assert main(train_args(f"uiowa_mis:{root}", tmp_path / "m.ckpt", f"model.name={model}", "schedule.epochs=150",
                           "schedule.patience=150", "optimiser.batch_size=64")) == 0
    recognizer = Recognizer(tmp_path / "m.ckpt")
    assert recognizer.labels == ["uiowa_0", "uiowa_1", "uiowa_2"] and not recognizer.takes_audio
    metrics, _ = evaluate(f"uiowa_mis:{root}", recognizer, split="test")
    assert metrics["examples"] == 30 and metrics["single_label"]["accuracy"] >= 0.9  # the classes are separable
    assert "frames" not in metrics and "grouped" not in metrics  # no timelines, no taxonomy families
    capsys.readouterr()
    assert main(train_args(f"uiowa_mis:{root}", tmp_path / "t.ckpt", "model.name=timbrenet")) == 2
    assert "holds precomputed features, not audio; models that use them: adaboost, knn, logreg" in capsys.readouterr().err


def test_sample_is_a_seeded_random_subset_in_dataset_order():
    examples = [Example(f"clip{i:02d}", "train" if i < 40 else "test", ("piano",)) for i in range(50)]
    dataset = Dataset("ordered", Path("."), examples)
    drawn = dataset.sample("train", 10, seed=3)
    assert len(drawn) == 10 and drawn == sorted(drawn, key=lambda ex: ex.id)
    assert drawn == dataset.sample("train", 10, seed=3) != dataset.sample("train", 10, seed=4)
    assert drawn != examples[:10] and all(ex.split == "train" for ex in drawn)  # not the first ten
    assert dataset.sample("train", None) == dataset.sample("train", 100) == examples[:40]


def test_intervals_join_within_the_gap_and_runs_are_found():
    from timbrescope.intervals import join_intervals, runs

    assert join_intervals([(3.0, 4.0), (0.0, 1.0), (1.05, 2.0), (0.5, 0.8)], 0.1) == [(0.0, 2.0), (3.0, 4.0)]
    assert join_intervals([(0.0, 1.0), (1.2, 2.0)], 0.1) == [(0.0, 1.0), (1.2, 2.0)]
    assert runs(np.array([1, 1, 0, 1, 0, 0, 1], bool)) == [(0, 2), (3, 4), (6, 7)] and runs(np.zeros(3, bool)) == []
