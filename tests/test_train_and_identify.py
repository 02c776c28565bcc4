import json
from dataclasses import asdict, replace

import numpy as np
import pytest
import soundfile as sf
import torch

from timbrescope.cli import main
from timbrescope.errors import AudioError, DataError, ModelError, ParameterError
from timbrescope.inference import Recognizer, audio_files
from timbrescope.synth.example import render_example
from timbrescope.timeline import median_over_time
from timbrescope.train.loop import TrainConfig, _budget_schedule, train, tune_thresholds
from timbrescope.train.sampling import Batch, epoch_order, random_crop

from audio_corpus import BAD, build
from conftest import TINY_RECIPE, train_args

CONFIG = TrainConfig(epochs=3, batch_size=8, seed=0)


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return tiny_corpus


@pytest.fixture(scope="module")
def checkpoint(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    train(corpus, path, CONFIG)
    return path


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    path = tmp_path_factory.mktemp("example") / "example.wav"
    render_example(path)
    return path


def test_training_writes_checkpoint_log_and_no_resume_state(checkpoint):
    log = [json.loads(line) for line in open(f"{checkpoint}.log.jsonl")]
    assert [row["epoch"] for row in log] == [1, 2, 3]
    assert all(row["train_loss"] > 0 and 0 <= row["valid_map"] <= 1 for row in log)
    assert not (checkpoint.parent / f"{checkpoint.name}.state").exists()
    recognizer = Recognizer(checkpoint)
    assert recognizer.labels == sorted(recognizer.labels) and len(recognizer.thresholds) == len(recognizer.labels)


class Killed(Exception):
    """Raised by a progress callback: the training process killed mid-epoch."""


def kill_in_epoch(epoch: int):
    def progress(stage, done, total):
        if stage == f"epoch {epoch}":
            raise Killed
    return progress


def test_killed_training_resumes_to_the_same_weights(corpus, checkpoint, tmp_path):
    out = tmp_path / "resumed.ckpt"
    with pytest.raises(Killed):
        train(corpus, out, CONFIG, progress=kill_in_epoch(2))
    assert (tmp_path / "resumed.ckpt.state").exists() and not out.exists()
    state = torch.load(tmp_path / "resumed.ckpt.state", weights_only=False)
    del state["config"]["exclude_banks"]  # as a state written before that setting existed
    torch.save(state, tmp_path / "resumed.ckpt.state")
    train(corpus, out, CONFIG)
    resumed = torch.load(out, weights_only=True)["state_dict"]
    straight = torch.load(checkpoint, weights_only=True)["state_dict"]
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key])
    with pytest.raises(DataError, match="another training run"):
        (tmp_path / "resumed.ckpt.state").write_bytes(b"")
        torch.save({"config": {}, "labels": []}, tmp_path / "resumed.ckpt.state")
        train(corpus, out, CONFIG)


def test_budget_fits_the_one_cycle_schedule_into_the_time_it_holds(corpus, tmp_path):
    config = TrainConfig(epochs=30, budget_seconds=100)
    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.learning_rate)
    schedule = _budget_schedule(optimiser, config, step_seconds=2.0, steps_done=20, steps_per_epoch=10)
    assert schedule.total_steps == 50  # 100 s at 2 s per step, not 30 epochs of 10 steps
    used = []
    for _ in range(30):  # the steps left
        used.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
    assert max(used) > config.learning_rate / 2 and used[-1] < config.learning_rate * 1e-4
    short = _budget_schedule(optimiser, config, step_seconds=1000.0, steps_done=3, steps_per_epoch=10)
    assert short.total_steps == 3 and short.last_epoch == 3  # over budget already: ends with the steps taken
    summary = train(corpus, tmp_path / "budget.ckpt", replace(config, batch_size=8, budget_seconds=1e-6))
    assert summary["epochs_run"] == 1


def test_random_crop_cuts_inputs_and_frame_targets_to_the_same_stretch(corpus, tmp_path, monkeypatch):
    n, mels, length, labels = 6, 4, 21, 3
    inputs = torch.arange(length, dtype=torch.float32).expand(n, mels, length).clone()  # value = input frame
    frames = torch.zeros(n, 11, labels)
    frames[:, :3, 0] = 1  # label 0 sounds in output frames 0-2 (input frames 0-5)
    frames[:, :, 1] = 1  # label 1 throughout
    known = torch.tensor([True] * (n - 1) + [False])
    clips = torch.tensor([[1.0, 1.0, 1.0]] * n)  # label 2: a clip label without frames
    batch = Batch(inputs, clips, torch.ones(n, labels), frames, known, torch.full((n,), -1), torch.zeros(n))
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(20):
        cut = random_crop(batch, 9, 2, rng)  # 9 input frames -> 8, i.e. 4 output frames
        assert cut.inputs.shape == (n, mels, 8) and cut.frames.shape == (n, 4, labels)
        first = cut.inputs[:, 0, 0].long()
        assert (first % 2 == 0).all() and (cut.inputs[:, :, 1:] - cut.inputs[:, :, :-1] == 1).all()
        for i in range(n):
            torch.testing.assert_close(cut.frames[i], frames[i, first[i] // 2:first[i] // 2 + 4])
            expected = [float(first[i] < 6), 1.0, 0.0] if known[i] else [1.0, 1.0, 1.0]
            assert cut.clips[i].tolist() == expected
        starts.update(first.tolist())
    assert starts == set(range(0, 14, 2))  # every even start that leaves 8 frames
    assert random_crop(batch, 40, 2, rng) is batch  # longer than the clip: whole clips
    notes = replace(batch, frames=torch.zeros(n, 11, labels), single_note=torch.tensor([True, True, False] * 2))
    notes.frames[:, 5:, 0] = 1  # a note from output frame 5 (its onset) to the end
    notes.frames[1, :, 0] = 0  # ... but clip 1 is silent throughout
    note_starts, other_starts = set(), set()
    for _ in range(50):
        first = random_crop(notes, 9, 2, rng).inputs[:, 0, 0].long() // 2  # output frames
        note_starts.update(first[[0, 3]].tolist())
        other_starts.update(first[[1, 2, 4]].tolist())
    assert note_starts == set(range(6))  # a note's stretch always holds its onset (and may start before it)
    assert other_starts == set(range(7))  # other clips (and silent notes) start anywhere
    from timbrescope.train import loop

    seen = []  # (input frames, frame-target frames) of every training batch

    def recording_crop(*args):
        cut = random_crop(*args)
        seen.append((cut.inputs.shape[2], cut.frames.shape[1]))
        return cut

    monkeypatch.setattr(loop, "random_crop", recording_crop)  # as the loop imported it
    train(corpus, tmp_path / "crop.ckpt", replace(CONFIG, epochs=1, crop_seconds=2.0))
    assert seen and set(seen) == {(100, 50)}  # 2 s of 20-ms input frames, 40-ms targets, in every batch
    with pytest.raises(ParameterError, match="training crop"):
        replace(CONFIG, crop_seconds=0)


def test_excluded_banks_leave_out_the_clips_they_play_in(corpus, tmp_path, monkeypatch, capsys):
    from timbrescope.train import loop

    relabelled = tmp_path / "corpus"  # the tiny corpus, its first 4 train clips played by a bank "held_out"
    relabelled.mkdir()
    (relabelled / "audio").symlink_to(corpus / "audio")
    (relabelled / "corpus.json").write_bytes((corpus / "corpus.json").read_bytes())
    rows = [json.loads(line) for line in open(corpus / "manifest.jsonl")]
    for row in [row for row in rows if row["split"] == "train"][:4]:
        row["parts"][0]["bank"] = "held_out"
    (relabelled / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    train_banks = [{part["bank"] for part in row["parts"]} for row in rows if row["split"] == "train"]
    bank, corpus = "held_out", relabelled
    counted = []  # examples whose features are computed: the train split first

    def counting(model, examples, *args):
        counted.append(len(examples))
        return features(model, examples, *args)

    features = loop._features
    monkeypatch.setattr(loop, "_features", counting)
    out = tmp_path / "held-out.ckpt"
    assert main(train_args(corpus, out, f'data.exclude_banks=["{bank}"]')) == 0
    assert counted[0] == sum(bank not in banks for banks in train_banks) < len(train_banks)
    assert Recognizer(out).labels  # a working model of the other banks' labels
    assert main(train_args(corpus, tmp_path / "misspelt.ckpt", f'data.exclude_banks=["{bank}", "nosuch"]')) == 2
    assert "no training clip uses the bank(s) nosuch;" in capsys.readouterr().err
    assert not (tmp_path / "misspelt.ckpt").exists()


def test_extra_train_data_adds_its_train_split_only(corpus, tmp_path, capsys):
    from timbrescope.train.loop import train

    copy = tmp_path / "second"  # a second corpus with the same example ids, as `synth --seed 1` writes
    copy.mkdir()
    for name in ("audio", "corpus.json", "manifest.jsonl"):
        (copy / name).symlink_to(corpus / name)
    rows = [json.loads(line) for line in open(corpus / "manifest.jsonl")]
    n_train, n_valid = (sum(row["split"] == split for row in rows) for split in ("train", "validation"))
    cache = {}
    summary = train(corpus, tmp_path / "two.ckpt", replace(CONFIG, epochs=1, extra_train=(str(copy),)),
                    feature_cache=cache)
    assert summary["train_clips"] == 2 * n_train and summary["validation_clips"] == n_valid
    assert [len(store) for store in cache.values()] == [2 * n_train + n_valid]  # ids kept apart, not shared
    assert main(train_args(corpus, tmp_path / "bad.ckpt", f'data.extra_train=["{tmp_path / "nosuch"}"]')) == 2
    assert "nosuch: no such corpus folder" in capsys.readouterr().err
    assert not (tmp_path / "bad.ckpt").exists()


def test_solo_and_note_shares_set_the_shares_of_their_draws():
    clips = torch.zeros(100, 3)
    clips[:10, 0] = 1  # 10 single-instrument clips
    clips[10:, :2] = 1  # 90 clips of two instruments
    rng = np.random.default_rng(0)
    plain = epoch_order(clips, None, rng)
    assert sorted(plain) == list(range(100))
    drawn = np.concatenate([epoch_order(clips, 0.5, rng) for _ in range(50)])
    assert len(drawn) == 5000 and abs((drawn < 10).mean() - 0.5) < 0.03
    assert sorted(epoch_order(clips[:10], 0.5, rng)) == list(range(10))  # nothing to balance: a permutation
    with pytest.raises(ParameterError, match="solo share"):
        TrainConfig(solo_share=1.0)
    notes = np.zeros(100, bool)
    notes[:4] = True  # 4 of the 10 single-instrument clips are single notes
    drawn = np.concatenate([epoch_order(clips, 0.5, rng, notes, 0.3) for _ in range(50)])
    assert abs((drawn < 4).mean() - 0.3) < 0.03 and abs(((drawn >= 4) & (drawn < 10)).mean() - 0.2) < 0.03
    with pytest.raises(ParameterError, match="note share"):
        TrainConfig(solo_share=0.5, note_share=0.5)
    with pytest.raises(ParameterError, match="note share"):
        TrainConfig(note_share=0.2)


def test_single_notes_are_told_from_the_manifest(corpus):
    from timbrescope.data.specs import open_dataset
    from timbrescope.train.loop import is_single_note

    examples = open_dataset(corpus).examples
    flags = [is_single_note(ex) for ex in examples]
    assert flags == [len(ex.metadata["parts"]) == 1 and ex.metadata["parts"][0]["material"] == "note"
                     for ex in examples]
    assert any(flags) and not all(flags)


def test_median_over_time_matches_scipy():
    from scipy.ndimage import median_filter
    frames = np.random.default_rng(0).random((37, 5)).astype(np.float32)
    np.testing.assert_array_equal(median_over_time(frames, 5), median_filter(frames, size=(5, 1), mode="nearest"))
    np.testing.assert_array_equal(median_over_time(frames, 5, chunk=7),  # chunk borders inside the file
                                  median_filter(frames, size=(5, 1), mode="nearest"))
    np.testing.assert_array_equal(median_over_time(frames[:1], 5), frames[:1])
    assert median_over_time(frames[:0], 5).shape == (0, 5)


def test_timeline_frames_are_detected_labels_smoothed_at_their_frame_thresholds():
    from timbrescope.timeline import active_frames

    frames = np.zeros((16, 3), np.float32)
    frames[2:9, 0] = 0.6   # a detected label playing 2..8
    frames[5, 0] = 0.1     # a one-frame dip, smoothed over
    frames[13, 0] = 0.9    # a one-frame spike, smoothed away
    frames[:, 1] = 0.9     # loud frames of a label the clip score does not detect
    frames[3:6, 2] = 0.3   # a detected label under its frame threshold
    detected = np.array([True, False, True])
    active = active_frames(frames, detected, np.array([0.4, 0.4, 0.35]), 5)
    assert np.flatnonzero(active[:, 0]).tolist() == [2, 3, 4, 5, 6, 7, 8]
    assert not active[:, 1].any() and not active[:, 2].any()
    assert active_frames(frames, detected, np.array([0.4, 0.4, 0.25]), 5)[:, 2].sum() == 3
    by_window = np.repeat(detected[None], 16, axis=0)
    by_window[:5, 0] = False  # label 0 not detected in the window of frames 0-4
    assert np.flatnonzero(active_frames(frames, by_window, np.array([0.4, 0.4, 0.35]), 5)[:, 0]).tolist() == [5, 6, 7, 8]


def test_timeline_keeps_a_label_to_the_windows_that_detect_it(checkpoint):
    """In a 15-s recording whose first 5-s window alone detects label 0 (a stand-in network: loud
    windows score 0.9, quiet ones 0.01, every frame 0.5), label 0 plays 0-5 s only."""
    recognizer = Recognizer(checkpoint)
    labels = recognizer.labels

    class Network:
        batches_at_once = 1

        def probabilities(self, windows):
            loud = np.sqrt(np.mean(windows ** 2, axis=1)) > 0.1
            clips = np.zeros((len(windows), len(labels)), np.float32)
            clips[:, 0] = np.where(loud, 0.9, 0.01)
            return [clips, np.full((len(windows), 200, len(labels)), 0.5, np.float32)]

    recognizer._backend = Network()
    recognizer.thresholds, recognizer.frame_thresholds = dict.fromkeys(labels, 0.5), dict.fromkeys(labels, 0.3)
    noise = np.random.default_rng(0).standard_normal(15 * recognizer.sample_rate).astype(np.float32)
    noise[5 * recognizer.sample_rate:] *= 0.01
    result = recognizer.identify(0.5 * noise, sr=recognizer.sample_rate)
    assert [item["label"] for item in result.detected()] == [labels[0]]
    assert result.segments == [{"label": labels[0], "start": 0.0, "end": 5.0, "score": 0.5}]
    assert result.active[:, 0].sum() == round(5.0 / recognizer.frame_seconds) and result.active[:, 1:].sum() == 0


def test_frame_thresholds_are_tuned_on_the_timelines_of_detected_labels():
    """Label 0 is detected in both clips and sounds in frames 0-4 of each, at 0.3 against 0.1 elsewhere:
    its frame threshold separates them (0.15, the lowest of the best candidates). Label 1 never sounds, so it keeps its clip threshold (0.5, the default) for frames."""
    clip_probs = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    frame_probs = torch.full((2, 10, 2), 0.1)
    frame_probs[:, :5, 0] = 0.3

    class Fixed(torch.nn.Module):
        frame_level, output_activation = True, "sigmoid"

        def forward_features(self, inputs):
            return {"clip_logits": torch.logit(clip_probs), "frame_logits": torch.logit(frame_probs)}

        def probabilities(self, logits):
            return torch.sigmoid(logits)

    frames = torch.zeros(2, 10, 2)
    frames[:, :5, 0] = 1
    feats = Batch(torch.zeros(2, 1), torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.ones(2, 2), frames,
                      torch.ones(2, dtype=torch.bool), torch.full((2,), -1), torch.zeros(2, dtype=torch.bool))
    clip_thresholds, frame_thresholds = tune_thresholds(Fixed(), feats, CONFIG)
    assert clip_thresholds.tolist() == pytest.approx([0.05, 0.5])
    assert frame_thresholds.tolist() == pytest.approx([0.15, 0.5])


def test_training_tunes_frame_thresholds_that_draw_the_timeline(checkpoint, example, tmp_path, capsys):
    """The checkpoint holds per-label frame thresholds beside the clip thresholds; segments follow
    the frame thresholds; `tune-thresholds` tunes both again with the weights unchanged; a checkpoint
    saved without frame thresholds draws timelines at its clip thresholds."""
    payload = torch.load(checkpoint, weights_only=True)
    labels = Recognizer(checkpoint).labels
    assert len(payload["frame_thresholds"]) == len(payload["thresholds"]) == len(labels)
    assert all(0.05 <= t <= 0.95 for t in payload["frame_thresholds"])
    recognizer = Recognizer(checkpoint)
    assert list(recognizer.frame_thresholds.values()) == pytest.approx(payload["frame_thresholds"])
    recognizer.thresholds = dict.fromkeys(labels, 0.0)  # every label detected ...
    recognizer.frame_thresholds = dict.fromkeys(labels, 1.01)  # ... and no frame reaches its threshold
    assert recognizer.identify(example).segments == []
    recognizer.frame_thresholds = dict.fromkeys(labels, 0.0)
    assert {s["label"] for s in recognizer.identify(example).segments} == set(labels)

    out = tmp_path / "retuned.ckpt"
    assert main(["tune-thresholds", "--checkpoint", str(checkpoint), "--data", str(checkpoint.parent.parent), "--out",
                 str(out)]) == 2  # a folder that holds no dataset
    assert capsys.readouterr().err.startswith("timbrescope: error: ") and not out.exists()
    corpus_root = payload["training"]["data"]
    assert main(["tune-thresholds", "--checkpoint", str(checkpoint), "--data", corpus_root, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: clip and frame thresholds of {len(labels)} labels tuned on ")
    retuned = torch.load(out, weights_only=True)
    assert retuned["frame_thresholds"] == pytest.approx(payload["frame_thresholds"])
    assert retuned["thresholds"] == pytest.approx(payload["thresholds"])
    assert all(torch.equal(retuned["state_dict"][k], v) for k, v in payload["state_dict"].items())

    del retuned["frame_thresholds"]
    torch.save(retuned, out)
    old = Recognizer(out)
    assert old.frame_thresholds == old.thresholds


def test_identify_json_contract(checkpoint, example, capsys):
    assert main(["identify", "--json", "--frames", "--checkpoint", str(checkpoint), str(example)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["path", "duration", "model", "instruments", "families", "segments", "warnings",
                            "frames", "frame_times"]
    assert result["path"] == str(example) and result["duration"] == 12.0
    labels = Recognizer(checkpoint).labels
    assert sorted(i["label"] for i in result["instruments"]) == labels
    scores = [i["score"] for i in result["instruments"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(set(i) == {"label", "family", "score"} for i in result["instruments"])
    assert result["families"][0]["score"] == max(scores)
    assert len(result["frames"]) == len(result["frame_times"]) == 300 and len(result["frames"][0]) == len(labels)
    for seg in result["segments"]:
        assert set(seg) == {"label", "start", "end", "score"} and 0 <= seg["start"] < seg["end"] <= 12.0


def test_identify_keeps_going_past_bad_files_and_exits_2(checkpoint, example, tmp_path, capsys):
    bad = build(BAD, tmp_path)
    paths = [str(example)] + [str(bad[kind]) for kind in ("random_bytes", "text_file", "missing")]
    assert main(["identify", "--json", "--checkpoint", str(checkpoint), *paths]) == 2
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["path"] for row in rows] == paths
    assert "instruments" in rows[0] and all(set(row) == {"path", "error"} for row in rows[1:])
    assert "not a recognised audio format" in rows[1]["error"]


def test_any_length_silence_and_arrays(checkpoint, tmp_path):
    recognizer = Recognizer(checkpoint)
    short = recognizer.identify(np.sin(np.arange(4410) / 5.0).astype(np.float32), sr=44100)
    assert short.duration == pytest.approx(0.1) and len(short.frames) >= 1
    silence = recognizer.identify(np.zeros(22050 * 10, np.float32), sr=22050)
    assert silence.detected() == [] and silence.segments == []
    path = tmp_path / "long.flac"
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(22050 * 63)).astype(np.float32), 22050)
    long = recognizer.identify(path)
    assert long.duration == pytest.approx(63.0) and len(long.frames) == round(63.0 / recognizer.frame_seconds)
    with pytest.raises(ParameterError, match="sample rate"):
        recognizer.identify(np.zeros(100, np.float32))
    with pytest.raises(AudioError, match="finite"):
        recognizer.identify(np.full(100, np.nan, np.float32), sr=22050)


def test_model_and_threshold_errors_are_one_line(tmp_path, capsys, checkpoint):
    assert main(["identify", "--checkpoint", str(tmp_path / "none.ckpt"), str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"timbrescope: error: {tmp_path / 'none.ckpt'}: no such checkpoint"
    with pytest.raises(ParameterError, match="threshold must be in 0..1"):
        Recognizer(checkpoint, threshold=2.0)
    with pytest.raises(ModelError):
        Recognizer(tmp_path)


def test_directories_are_walked_for_audio(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.wav", "b.flac", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert audio_files([str(tmp_path)]) == [str(tmp_path / "a" / "x.wav"), str(tmp_path / "b.flac")]


def test_rendered_test_split_evaluation(checkpoint, corpus, tmp_path):
    from timbrescope.evaluate.evaluation import evaluate
    from timbrescope.evaluate.report import write_report

    metrics, _ = evaluate(corpus, Recognizer(checkpoint), "test")
    assert metrics["examples"] == 4 and metrics["split"] == "test"
    assert 0 <= metrics["multi_label"]["map"] <= 1 and 0 <= metrics["frames"]["frame_f1_micro"] <= 1
    metrics, _ = evaluate(corpus, Recognizer(checkpoint), "train")  # one-part clips: by what they play
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    materials = [row["parts"][0]["material"] for row in rows if row["split"] == "train" and len(row["parts"]) == 1]
    views = metrics["single_label_by_material"]
    assert {m: v["examples"] for m, v in views.items()} == {m: materials.count(m) for m in set(materials)}
    single = metrics["single_label"]
    assert sum(v["examples"] for v in views.values()) == single["examples"]
    assert sum(v["examples"] * v["accuracy"] for v in views.values()) == pytest.approx(
        single["examples"] * single["accuracy"], abs=1e-3)
    metrics, details = evaluate(corpus, recognizer := Recognizer(checkpoint), "train")
    page = (write_report(metrics, details, recognizer, tmp_path)["report"]).read_text()
    assert all(f"top-1 on one-part clips: {m} ({v['examples']})" in page for m, v in views.items())


def test_transfer_copies_and_freezes_everything_but_the_head(corpus, tmp_path, capsys):
    assert main(train_args(corpus, tmp_path / "single.ckpt", "model.name=raw-cnn1d",
                           "model.config={multi_label = false}")) == 0
    assert main(train_args(corpus, tmp_path / "multi.ckpt", "model.name=raw-cnn1d",
                           f"model.transfer_from={tmp_path / 'single.ckpt'}", "schedule.epochs=2",
                           "sampling.solo_share=0.4", "sampling.note_share=0.2")) == 0
    single = torch.load(tmp_path / "single.ckpt", weights_only=True)
    multi = torch.load(tmp_path / "multi.ckpt", weights_only=True)
    assert single["config"]["multi_label"] is False and multi["config"]["multi_label"] is True
    assert single["training"]["config"]["solo_share"] is None and multi["training"]["config"]["solo_share"] == 0.4
    assert multi["training"]["config"]["note_share"] == 0.2
    convs = [key for key in multi["state_dict"] if key.startswith("convs.")]
    assert convs and all(torch.equal(multi["state_dict"][k], single["state_dict"][k]) for k in convs)
    assert not torch.equal(multi["state_dict"]["head.weight"], single["state_dict"]["head.weight"])
    capsys.readouterr()
    assert main(train_args(corpus, tmp_path / "x.ckpt", f"model.transfer_from={tmp_path / 'single.ckpt'}")) == 2
    assert "holds a 'raw-cnn1d' model, not a TimbreNet" in capsys.readouterr().err
    assert main(train_args(corpus, tmp_path / "x.ckpt", "model.config={oops")) == 2
    assert "model.config must be a table" in capsys.readouterr().err


def test_composer_head_is_trained_reported_and_evaluated(corpus, tmp_path):
    from timbrescope.data.specs import open_dataset
    from timbrescope.evaluate.evaluation import evaluate

    train(corpus, tmp_path / "c.ckpt", TrainConfig(model="spec-cnn2d", epochs=1, batch_size=8))
    recognizer = Recognizer(tmp_path / "c.ckpt")
    train_composers = {ex.metadata["composer"] for ex in open_dataset(corpus).split("train") if ex.metadata["composer"]}
    assert recognizer.composers == sorted(train_composers) and len(train_composers) >= 2
    result = recognizer.identify(corpus / "audio" / "test" / "test-000001.flac").to_dict()
    assert [c["label"] for c in result["composers"]] != [] and sum(c["score"] for c in result["composers"]) == \
        pytest.approx(1.0, abs=1e-3)
    metrics, _ = evaluate(corpus, recognizer, "test")
    with_composer = [ex for ex in open_dataset(corpus).split("test") if ex.metadata["composer"]]
    assert metrics["composer"]["examples"] == len(with_composer) > 0
    assert "composers" not in Recognizer().identify(corpus / "audio" / "test" / "test-000001.flac").to_dict()


def test_learning_curve_command_trains_on_nested_fractions(corpus, tmp_path, capsys):
    out = tmp_path / "curve"
    recipe = ["--recipe", str(TINY_RECIPE), "--set", f"data.spec={corpus}", "--set", "model.name=mfcc-mlp"]
    assert main(["learning-curve", *recipe, "--fractions", "0.5", "1", "--out", str(out)]) == 0
    points = json.loads((out / "learning_curve.json").read_text())
    assert [(p["fraction"], p["train_examples"]) for p in points] == [(0.5, 6), (1.0, 12)]
    assert all(0 <= p["valid_map"] <= 1 for p in points) and (out / "learning_curve.png").stat().st_size > 1000
    assert capsys.readouterr().out.splitlines()[0].strip().startswith("6 training examples: validation mAP")
    assert main(["learning-curve", *recipe, "--fractions", "0", "--out", str(out)]) == 2


def test_train_learning_curve_and_benchmark_train_the_recipe_they_are_given(corpus, tmp_path):
    """One resolution for all three: the config each run saves is the recipe's, model defaults included."""
    from timbrescope.benchmark import benchmark
    from timbrescope.train.recipe import resolve_recipe

    settings = [f"data.spec={corpus}", "model.name=timbrenet"]
    recipe = resolve_recipe(TINY_RECIPE, settings)
    assert (recipe.config.solo_share, recipe.config.note_share, recipe.config.batch_size) == (0.5, 0.35, 8)
    assert main(train_args(corpus, tmp_path / "t.ckpt", *settings[1:])) == 0
    assert main(["learning-curve", "--recipe", str(TINY_RECIPE), *sum((["--set", s] for s in settings), []),
                 "--fractions", "1", "--out", str(tmp_path / "curve")]) == 0
    trained = torch.load(tmp_path / "t.ckpt", weights_only=True)["training"]
    curved = torch.load(tmp_path / "curve" / "fraction-1.ckpt", weights_only=True)["training"]
    assert trained["config"] == curved["config"] == asdict(recipe.config)
    assert trained["recipe"] == recipe.to_dict()
    benchmark(corpus, ["mfcc-mlp"], tmp_path / "bench", epochs=1, curve_fractions=())
    benched = torch.load(tmp_path / "bench" / "models" / "mfcc-mlp.ckpt", weights_only=True)["training"]["config"]
    wanted = resolve_recipe({"seed": 0, "data": {"spec": str(corpus)}, "model": {"name": "mfcc-mlp"},
                             "schedule": {"epochs": 1}}).config
    assert benched == asdict(wanted)
    assert (wanted.batch_size, wanted.learning_rate) == (128, 1e-3)  # the reference system's own


def test_recipes_resolve_files_names_and_overrides_with_clear_errors(tmp_path):
    from timbrescope.train.recipe import resolve_recipe

    shipped = resolve_recipe("default")
    assert shipped.data == "out/corpus-default" and shipped.config.extra_train == ("out/corpus-notes",)
    assert (shipped.config.epochs, shipped.config.crop_seconds, shipped.config.seed) == (26, 3.0, 1)
    again = resolve_recipe(shipped.to_dict())
    assert again == shipped
    changed = resolve_recipe("default", ["schedule.epochs=3", "data.spec=elsewhere", "schedule.budget_minutes=2"])
    assert (changed.config.epochs, changed.data, changed.config.budget_seconds) == (3, "elsewhere", 120.0)
    for bad, message in ((["schedule.epoch=3"], "unknown key schedule.epoch; keys of \\[schedule\\]: epochs"),
                         (["optimizer.batch_size=3"], "unknown recipe section 'optimizer'"),
                         (["epochs"], "--set takes section.key=value"),
                         (["sampling.solo_share=1.5"], "solo share")):
        with pytest.raises(ParameterError, match=message):
            resolve_recipe("default", bad)
    with pytest.raises(ParameterError, match="recipe 'nosuch' not found: give a .toml file or one of default"):
        resolve_recipe("nosuch")
    (tmp_path / "broken.toml").write_text("[data\n")
    with pytest.raises(ParameterError, match="not a valid TOML recipe"):
        resolve_recipe(tmp_path / "broken.toml")
    with pytest.raises(ParameterError, match="names no data"):
        resolve_recipe(TINY_RECIPE)


def test_train_help_lists_at_most_8_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    options = {word for word in capsys.readouterr().out.split() if word.startswith("--")}
    assert options == {"--help", "--recipe", "--set", "--out", "--threads", "--quiet"}


def test_exported_onnx_model_identifies_as_its_checkpoint(checkpoint, example, tmp_path, capsys):
    """`timbrescope export` writes an ONNX model whose results equal the checkpoint's (scores to 1e-4,
    the same segments); errors are one line."""
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(onnx_path)]) == 0
    assert "tiny.onnx: timbrenet with" in capsys.readouterr().out
    by_torch, by_onnx = Recognizer(checkpoint).identify(example), Recognizer(onnx_path).identify(example)
    assert by_onnx.labels == by_torch.labels and by_onnx.thresholds == by_torch.thresholds
    np.testing.assert_allclose(by_onnx.frames, by_torch.frames, atol=1e-4)
    assert [i["label"] for i in by_onnx.instruments[:5]] == [i["label"] for i in by_torch.instruments[:5]]
    assert by_onnx.segments == by_torch.segments and by_onnx.model == str(onnx_path)
    assert main(["export", "--checkpoint", str(tmp_path / "missing.ckpt")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.ckpt: no such checkpoint")
    (tmp_path / "file").write_text("")
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "file" / "x.onnx")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"timbrescope: error: output folder {tmp_path / 'file'} is not writable")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert main(["identify", "--checkpoint", str(tmp_path / "junk.onnx"), str(example)]) == 2
    assert capsys.readouterr().err.strip() == f"timbrescope: error: {tmp_path / 'junk.onnx'}: not a timbrescope ONNX model (InvalidProtobuf)"


def test_only_log_mel_models_export(corpus, tmp_path, capsys):
    train(corpus, tmp_path / "mlp.ckpt", TrainConfig(model="mfcc-mlp", epochs=1, batch_size=8))
    assert main(["export", "--checkpoint", str(tmp_path / "mlp.ckpt")]) == 2
    assert "only models with the log-mel front-end export to ONNX; mfcc-mlp has none" in capsys.readouterr().err
    assert not (tmp_path / "mlp.onnx").exists()


def test_shipped_onnx_model_is_the_shipped_checkpoint_and_runs_without_torch(example):
    """The default model is the export of the shipped checkpoint (its SHA-256 recorded in the ONNX
    metadata), and identifying with it never imports PyTorch."""
    import subprocess
    import sys

    from timbrescope.inference import default_model_path, default_onnx_path
    from timbrescope.models.checkpoint import file_sha256

    recognizer = Recognizer()
    assert recognizer.model_path == default_onnx_path() and recognizer.network is None
    assert recognizer.meta["checkpoint_sha256"] == file_sha256(default_model_path())
    by_torch = Recognizer(default_model_path()).identify(example)
    np.testing.assert_allclose(recognizer.identify(example).frames, by_torch.frames, atol=1e-4)
    code = ("import sys, json; from timbrescope.inference import identify; "
            f"r = identify({str(example)!r}); print(json.dumps([r.model, 'torch' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["default", False]


def test_identify_holds_numpy_blas_to_one_thread_and_restores_it(example, monkeypatch):
    """While batches run, NumPy's BLAS runs on one thread (its own threads would spin against the
    batch threads); afterwards the caller's setting is back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from timbrescope import inference

    seen = []
    log_mel = inference.log_mel
    monkeypatch.setattr(inference, "log_mel", lambda *a: seen.append(
        {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}) or log_mel(*a))
    with threadpool_limits(2, user_api="blas"):
        Recognizer().identify(example)
        after = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    assert seen and all(threads == {1} for threads in seen)
    assert after == {2}


def test_overlapping_identify_calls_share_one_blas_limit_until_the_last_ends():
    """The limit is process-wide: when two calls overlap, the first to end must not undo it for the other."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from timbrescope.inference import blas_on_one_thread

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(2, user_api="blas"):
        first, second = blas_on_one_thread(), blas_on_one_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert blas_threads() == {1}  # the second call still runs
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


def test_ensemble_benchmark_scores_members_and_their_mean(checkpoint, corpus, tmp_path):
    """An ensemble of one model twice is that model: every row of the table carries its figures."""
    import subprocess
    import sys
    from pathlib import Path

    other = tmp_path / "again.ckpt"
    other.write_bytes(Path(checkpoint).read_bytes())
    script = Path(__file__).parents[1] / "benchmarks" / "ensemble_validation.py"
    done = subprocess.run([sys.executable, str(script), "--data", str(corpus), str(checkpoint), str(other)],
                          capture_output=True, text=True, check=True)
    rows = [line.split("|")[2:4] for line in done.stdout.splitlines() if line.startswith("| ") and "ckpt" in line
            or line.startswith("| mean of 2")]
    assert len(rows) == 3 and rows[0] == rows[1] == rows[2]
    assert 0 <= float(rows[0][0]) <= 1 and 0 <= float(rows[0][1]) <= 1
    assert f"clips of {corpus} [validation]" in done.stdout


def test_inference_needs_nothing_of_training_and_changes_no_process_state(checkpoint):
    import subprocess
    import sys

    script = ("import sys, torch\n"
              "from timbrescope.inference import Recognizer\n"
              f"r = Recognizer({str(checkpoint)!r})\n"
              "assert r.rule.window_seconds == 5.0 and r.rule.smooth_frames == 5\n"
              "loaded = sorted(m for m in sys.modules if m.startswith('timbrescope.train'))\n"
              "assert not loaded, loaded\n"
              "assert (torch.tensor([1e-40]) * 1.0).item() != 0.0, 'denormals flushed by the constructor'\n"
              "from timbrescope.inference import tune_process\n"
              "tune_process()\n"
              "assert (torch.tensor([1e-40]) * 1.0).item() == 0.0\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_decision_rule_travels_in_the_checkpoint(checkpoint, example, tmp_path):
    from timbrescope.models.checkpoint import load_checkpoint, save_checkpoint
    from timbrescope.timeline import DecisionRule

    model, meta = load_checkpoint(checkpoint)
    assert DecisionRule.from_dict(meta["decision"]) == DecisionRule()
    assert meta["training"]["recipe"]["schedule"]["epochs"] == 3
    strict = DecisionRule(min_segment_seconds=60.0, smooth_frames=9)  # no segment can be that long
    save_checkpoint(tmp_path / "rule.ckpt", model, meta["model"], meta["thresholds"], meta["frame_thresholds"],
                    meta["training"], strict)
    recognizer = Recognizer(tmp_path / "rule.ckpt")
    assert recognizer.rule == strict
    assert Recognizer(checkpoint).identify(example).segments and not recognizer.identify(example).segments


def test_augmentations_draw_then_apply_and_repeat_from_the_same_draw():
    from timbrescope.augment import Mixture, SpecMask, augment

    n, mels, length = 6, 8, 20
    inputs = torch.log(torch.rand(n, mels, length) + 1e-3)
    clips = torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    batch = Batch(inputs, clips, torch.ones(n, 3), torch.zeros(n, 10, 3), torch.ones(n, dtype=torch.bool),
                  torch.full((n,), -1), torch.zeros(n))
    mixture = Mixture(1.0)
    draw = mixture.draw(np.random.default_rng(0), n)
    assert draw.mixed.all() and sorted(draw.partner.tolist()) == list(range(n))
    assert ((draw.gain_db >= -10) & (draw.gain_db <= 0)).all()
    once, twice = mixture.apply(batch, draw), mixture.apply(batch, draw)
    assert torch.equal(once["inputs"], twice["inputs"])
    partner = draw.partner
    torch.testing.assert_close(once["clips"], torch.maximum(clips, clips[partner]))
    assert (once["inputs"] >= inputs - 1e-6).all()  # power added, never removed
    assert Mixture(0.0).apply(batch, Mixture(0.0).draw(np.random.default_rng(0), n)) == {}
    masks = SpecMask().draw(np.random.default_rng(1), n, mels, length)
    assert masks.shape == (n, 4) and (masks[:, 1] <= mels // 8).all() and (masks[:, 3] <= length // 10).all()
    masked = SpecMask().apply(inputs, masks)
    for i, (f0, fw, t0, tw) in enumerate(masks):
        assert (masked[i, f0:f0 + fw] == inputs[i].min()).all() and (masked[i, :, t0:t0 + tw] == inputs[i].min()).all()
    first, second = (augment(batch, "logmel", 0.5, np.random.default_rng(7)) for _ in range(2))
    assert torch.equal(first.inputs, second.inputs) and not torch.equal(first.inputs, inputs)
    assert augment(batch, None, 1.0, np.random.default_rng(0)) is batch
