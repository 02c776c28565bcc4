import json
import math

import numpy as np
import pytest
import torch

from timbrescope.cli import main
from timbrescope.data.dataset import Dataset, Example
from timbrescope.errors import DataError, ModelError
from timbrescope.evaluate.evaluation import _group_ranking, evaluate
from timbrescope.evaluate.metrics import (best_thresholds, frame_metrics, mean_average_precision,
                                          multi_label_metrics, single_label_metrics)
from timbrescope.inference import Recognizer, default_model_path

from browser import headless_chromium
from dataset_fixtures import manifest, nsynth, tone, write


def test_mean_average_precision_by_hand_and_absent_labels():
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    score = np.array([[0.9, 0.1, 0.2], [0.8, 0.7, 0.1], [0.3, 0.2, 0.9], [0.1, 0.9, 0.5]])
    # label 0: positives ranked 1st and 3rd -> AP = (1/1 + 2/3) / 2; label 1: positive ranked 2nd -> 1/2
    assert mean_average_precision(truth, score) == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    assert math.isnan(mean_average_precision(np.zeros((2, 2)), np.ones((2, 2))))
    # masking the example that outranks label 1's positive makes its AP 1
    mask = np.ones_like(truth, bool)
    mask[3, 1] = False
    assert mean_average_precision(truth, score, mask) == pytest.approx(((1 + 2 / 3) / 2 + 1.0) / 2)


def test_best_thresholds_separate_classes_and_default_for_absent():
    truth = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    score = np.array([[0.8, 0.3], [0.6, 0.2], [0.4, 0.9], [0.1, 0.1]])
    thresholds = best_thresholds(truth, score, default=0.5)
    assert 0.4 < thresholds[0] <= 0.6 and thresholds[1] == 0.5


def test_single_label_metrics_by_hand():
    truth = ["violin", "violin", "drum_kit", "viola"]
    predicted = ["violin", "viola", "drum_kit", "other"]
    result = single_label_metrics(truth, predicted, [True, True, True, False], ["drum_kit", "viola", "violin"])
    assert result["accuracy"] == 0.5 and result["top3_accuracy"] == 0.75
    # violin: precision 1/1, recall 1/2; viola: precision 0/1, recall 0/1; drum_kit: 1/1, 1/1
    assert result["per_class"]["violin"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3, abs=1e-5),
                                             "support": 2}
    assert result["macro"]["recall"] == pytest.approx((1 + 0 + 0.5) / 3, abs=1e-5)
    assert result["micro"]["precision"] == pytest.approx(2 / 3, abs=1e-5)  # 'other' is no class: 2 of 3 right
    assert result["confusion"]["labels"] == ["drum_kit", "viola", "violin", "other"]
    assert result["confusion"]["counts"][1] == [0, 0, 0, 1] and result["confusion"]["normalised"][2] == [0, 0.5, 0.5, 0]


def test_multi_label_metrics_by_hand_and_edge_cases():
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    score = np.array([[0.9, 0.2, 0.1], [0.6, 0.7, 0.2], [0.3, 0.4, 0.3]])
    pred = score >= 0.5
    result = multi_label_metrics(["a", "b", "never"], truth, score, pred)
    assert result["exact_match"] == pytest.approx(2 / 3, abs=1e-5)  # the third example misses b
    assert result["hamming_loss"] == pytest.approx(1 / 9, abs=1e-5)
    assert result["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 1), abs=1e-5)  # tp 3, fn 1, fp 0
    assert result["per_label"]["never"] == {"positives": 0, "known": 3, "ap": None, "roc_auc": None, "f1": 0.0}
    assert result["f1_macro"] == pytest.approx((1 + 2 / 3) / 2, abs=1e-5)  # labels with positives only
    assert result["map"] == pytest.approx(1.0)
    nothing = multi_label_metrics(["a"], np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)))
    assert nothing["map"] is None and nothing["f1_micro"] == 0.0 and nothing["exact_match"] == 1.0
    json.dumps(nothing, allow_nan=False)  # defined values only, never NaN
    partial = multi_label_metrics(["a", "b"], truth[:, :2], score[:, :2], pred[:, :2],
                                  np.array([[1, 0], [1, 1], [1, 1]], bool))
    assert partial["fully_annotated_examples"] == 2 and partial["per_label"]["b"]["known"] == 2


def test_frame_and_segment_f1_by_hand():
    # one clip of 4 frames at 0.5 s: truth on in frames 0-1, prediction on in frame 2 only
    truth = np.array([[1], [1], [0], [0]])
    pred = np.array([[0], [0], [1], [0]])
    result = frame_metrics(["x"], truth, pred, 0.5, np.zeros(4, int), segment_seconds=1.0)
    assert result["frame_f1_micro"] == 0.0
    assert result["segment_f1_micro"] == 0.0  # segment 1 has truth, segment 2 has the prediction
    pred = np.array([[0], [1], [0], [0]])
    assert frame_metrics(["x"], truth, pred, 0.5, np.zeros(4, int))["segment_f1_micro"] == 1.0


class _Fixed:
    """A stand-in recogniser that scores every file with fixed scores."""

    labels = ["cello", "piano", "violin"]
    thresholds = {"cello": 0.5, "piano": 0.5, "violin": 0.5}
    sample_rate = 22050
    hop_seconds = 0.04
    model_path = "fixed"
    meta = {}

    def __init__(self, scores):
        self.scores = scores

    def identify(self, path, sr=None):
        row = self.scores[str(path).rsplit("/", 1)[-1]]

        class R:
            instruments = [{"label": k, "score": v} for k, v in zip(self.labels, row)]
            frames = np.tile(np.array(row, np.float32), (25, 1))
            active = frames >= 0.5
            composers = None

        return R()


def test_family_targets_groups_and_other(tmp_path):
    """A dataset that tells only families (NSynth-like): label scores map to family targets."""
    examples = []
    for name in ("a.wav", "b.wav", "c.wav"):
        write(tmp_path / name, tone(1.0, 22050, 440), 22050)
    examples = [Example("a", "test", ("bowed_string",), tmp_path / "a.wav"),
                Example("b", "test", ("keyboard",), tmp_path / "b.wav"),
                Example("c", "test", ("brass",), tmp_path / "c.wav")]
    recognizer = _Fixed({"a.wav": [0.9, 0.1, 0.2], "b.wav": [0.1, 0.8, 0.7], "c.wav": [0.6, 0.1, 0.1]})
    metrics, _ = evaluate(Dataset("fam", tmp_path, examples), recognizer)
    assert metrics["targets"] == ["bowed_string", "keyboard"] and metrics["not_scored"] == ["brass"]
    single = metrics["single_label"]
    assert single["examples"] == 2 and single["accuracy"] == 1.0
    grouped = metrics["grouped"]["single_label"]  # brass has no label in this model: c.wav is not scored
    assert grouped["examples"] == 2 and grouped["accuracy"] == 1.0
    # groups are ranked by their best label; a label without a group counts as 'other'
    assert _group_ranking(np.array([0.2, 0.6, 0.1, 0.5]), ["strings", None, "keys", "strings"]) == [
        "other", "strings", "keys"]
    assert metrics["grouped"]["single_label"]["confusion"]["labels"][:2] == ["bowed_string", "keyboard"]
    assert metrics["multi_label"]["per_label"]["bowed_string"]["ap"] == 1.0  # max(cello, violin) ranks a first


def test_a_target_named_like_its_family_is_the_label_in_every_view(tmp_path):
    """`flute` is a label and a family: as a target it is the label (`target_members`), so a piccolo as the top
    label of a flute recording is wrong in the single-label view as in the multi-label one; a family target
    that is no label (`keyboard`) still takes its members."""

    class Winds(_Fixed):
        labels = ["flute", "piccolo", "piano"]
        thresholds = dict.fromkeys(labels, 0.5)

    for name in ("a.wav", "b.wav"):
        write(tmp_path / name, tone(1.0, 22050, 440), 22050)
    examples = [Example("a", "test", ("flute",), tmp_path / "a.wav"),
                Example("b", "test", ("keyboard",), tmp_path / "b.wav")]
    recognizer = Winds({"a.wav": [0.3, 0.9, 0.1], "b.wav": [0.1, 0.2, 0.8]})
    metrics, _ = evaluate(Dataset("winds", tmp_path, examples), recognizer)
    single = metrics["single_label"]
    assert single["accuracy"] == 0.5 and single["per_class"]["flute"]["recall"] == 0.0
    assert single["outside"] == {"flute": {"piccolo": 1}}  # the model label behind the flute recording's `other`
    assert single["per_class"]["keyboard"]["recall"] == 1.0
    assert metrics["detection"]["precision"] == 0.5  # piccolo detected on the flute recording: wrong there too
    assert metrics["grouped"]["single_label"]["accuracy"] == 1.0  # piccolo is of the flute family


def test_source_accuracy_on_nsynth_native_files(tmp_path):
    """NSynth's instrument_source_str (through the loader) against the source of the best label."""
    nsynth(tmp_path)

    class Keys(_Fixed):
        labels = ["electric_piano", "piano", "trumpet"]  # electronic, acoustic, acoustic (taxonomy.source_of)
        thresholds = dict.fromkeys(labels, 0.5)

    files = sorted(p.name for p in (tmp_path / "nsynth-test" / "audio").glob("*.wav"))
    # every note's best label is the electric piano, except the two brass notes (trumpet)
    recognizer = Keys({name: [0.1, 0.2, 0.9] if name.startswith("brass") else [0.9, 0.2, 0.1] for name in files})
    metrics, _ = evaluate(f"nsynth:{tmp_path}", recognizer, split="test")
    source = metrics["source"]
    # truth: synthetic, electronic, acoustic, acoustic, electronic; predicted: electronic, electronic,
    # acoustic, acoustic, electronic -> 4 of 5; the synthetic bass's top-2 misses (its second is acoustic)
    assert source["examples"] == 5 and source["accuracy"] == 0.8 and source["top3_accuracy"] == 0.8
    # a manifest's "source" column names a library: no source view
    write(tmp_path / "m" / "a.wav", tone(1.0, 22050, 440), 22050)
    listed = Dataset("libs", tmp_path, [Example("a", "all", ("piano",), tmp_path / "m" / "a.wav",
                                                metadata={"source": "salamander_grand"})])
    assert "source" not in evaluate(listed, Keys({"a.wav": [0.9, 0.2, 0.1]}), split="all")[0]
    assert source["per_class"]["electronic"]["support"] == 2 and source["per_class"]["electronic"]["precision"] == pytest.approx(2 / 3, abs=1e-4)


@pytest.mark.browser
def test_evaluate_report_opens_in_chromium_with_every_figure(tmp_path, capsys):
    manifest(tmp_path / "data")
    out = tmp_path / "report"
    assert main(["evaluate", "--data", f"manifest:{tmp_path / 'data' / 'manifest.jsonl'}", "--split", "all",
                 "--windows", "2", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("manifest.jsonl [all]: 10 examples, top-1 ")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"] == 10 and metrics["windows"]["examples"] == 20
    assert metrics["single_label"]["examples"] == 5  # the violin solos
    assert {"multi_label", "grouped", "frames", "class_distribution"} <= set(metrics)
    assert metrics["frames"]["per_label"].keys() == {"cello", "violin"}
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"ap.png", "roc.png", "confusion.png", "distribution.png", "training.png", "error_1.png"} <= set(pngs)
    with headless_chromium() as driver:
        driver.get((out / "report.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert len(images) == len(pngs) and all(loaded for _, loaded in images), images
    assert errors == []


def test_evaluate_bad_input_gives_one_line_errors(tmp_path, capsys):
    assert main(["evaluate", "--data", "kazoo:/x", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip().startswith("timbrescope: error: unknown data spec 'kazoo:/x'")
    (tmp_path / "empty.csv").write_text("path,labels,split\nx.wav,violin,train\n")
    assert main(["evaluate", "--data", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "no example in split 'test'" in capsys.readouterr().err
    (tmp_path / "gone.csv").write_text("path,labels\ngone.wav,violin\n")
    assert main(["evaluate", "--data", str(tmp_path / "gone.csv"), "--split", "all", "--out", str(tmp_path / "r")]) == 2
    assert "no example of split 'all' could be decoded (1 failed)" in capsys.readouterr().err
    payload = torch.load(default_model_path(), weights_only=True)
    payload["taxonomy_version"] = "0"
    torch.save(payload, tmp_path / "old.ckpt")
    with pytest.raises(ModelError, match="trained on taxonomy v0"):
        Recognizer(tmp_path / "old.ckpt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "old.ckpt"), "--data", str(tmp_path / "gone.csv"),
                 "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
    with pytest.raises(DataError, match="f holds precomputed features but the model was fitted on audio"):
        evaluate(Dataset("f", tmp_path, [Example("x", "test", ("violin",), features=np.zeros(3))]), _Fixed({}))


def test_thresholds_tuned_again_keep_what_the_data_cannot_tune():
    from timbrescope.evaluate.thresholds import tune_thresholds

    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]], np.float32)  # label 2 never plays
    scores = np.array([[0.9, 0.3, 0.2], [0.2, 0.4, 0.6], [0.8, 0.1, 0.1], [0.1, 0.7, 0.3]], np.float32)
    frames = np.zeros((4, 2, 3), np.float32)
    known = np.zeros(4, bool)
    clip, frame = tune_thresholds(truth, scores, np.ones_like(truth), frames, frames, known, 5)
    assert clip[2] == 0.5 and np.array_equal(frame, clip)  # no previous: the default, frames follow clips
    previous = (np.array([0.3, 0.3, 0.8], np.float32), np.array([0.05, 0.1, 0.2], np.float32))
    clip, frame = tune_thresholds(truth, scores, np.ones_like(truth), frames, frames, known, 5, previous)
    assert clip[2] == pytest.approx(0.8) and frame.tolist() == pytest.approx([0.05, 0.1, 0.2])
    assert 0.2 < clip[0] <= 0.8 and 0.3 < clip[1] <= 0.4  # tuned where the label plays: between its scores
    # a label whose positives score low gets a low threshold, unless a floor holds it up
    low = np.array([[0.12, 0.0], [0.02, 0.0], [0.11, 0.0], [0.03, 0.0]], np.float32)
    pair = truth[:, :2]
    clip, _ = tune_thresholds(pair, low, np.ones_like(pair), frames[..., :2], frames[..., :2], known, 5)
    assert clip[0] == pytest.approx(0.05)  # the first candidate that keeps both positives (F1 1.0 up to 0.1)
    clip, _ = tune_thresholds(pair, low, np.ones_like(pair), frames[..., :2], frames[..., :2], known, 5,
                              clip_floor=0.15)
    assert clip[0] == pytest.approx(0.15)
