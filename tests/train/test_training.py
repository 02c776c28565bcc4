"""Training: runs, resume, budgets, crops, shares, held-out banks, recipes, thresholds, augmentation."""

import json
import subprocess
import sys
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from timbrescope.cli import main
from timbrescope.errors import DataError, ParameterError
from timbrescope.inference import Recognizer
from timbrescope.train.loop import TrainConfig, _budget_schedule, train, tune_thresholds
from timbrescope.train.recipe import resolve_recipe
from timbrescope.train.sampling import Batch, epoch_order, random_crop

from conftest import TINY_CONFIG, TINY_RECIPE, train_args

CONFIG = TINY_CONFIG


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
    batches = len(seen)
    seen.clear()
    train(corpus, tmp_path / "whole.ckpt", replace(CONFIG, epochs=1, crop_seconds=2.0, whole_clip_share=1.0))
    assert seen == [] and batches > 0  # every batch on whole clips
    with pytest.raises(ParameterError, match="training crop"):
        replace(CONFIG, crop_seconds=0)
    with pytest.raises(ParameterError, match="whole-clip share"):
        replace(CONFIG, whole_clip_share=1.5)


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
    floored = tmp_path / "floored.ckpt"
    assert main(["tune-thresholds", "--checkpoint", str(checkpoint), "--data", corpus_root, "--out", str(floored),
                 "--clip-floor", "0.6"]) == 0
    floored_payload = torch.load(floored, weights_only=True)
    assert floored_payload["decision"]["clip_floor"] == 0.6 and payload["decision"]["clip_floor"] == 0.05
    assert min(floored_payload["thresholds"]) >= 0.6 - 1e-6 and Recognizer(floored).rule.clip_floor == 0.6
    floored_training = floored_payload["training"]  # the summary records the rule the thresholds follow
    assert floored_training["config"]["clip_floor"] == floored_training["recipe"]["decision"]["clip_floor"] == 0.6
    assert payload["training"]["config"]["clip_floor"] == 0.05 and retuned["training"] == payload["training"]

    del retuned["frame_thresholds"]
    torch.save(retuned, out)
    old = Recognizer(out)
    assert old.frame_thresholds == old.thresholds


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
    shipped = resolve_recipe("default")
    assert shipped.data == "out/corpus-default" and shipped.config.extra_train == ("out/corpus-notes",)
    assert (shipped.config.epochs, shipped.config.crop_seconds, shipped.config.seed) == (26, 2.0, 3)
    again = resolve_recipe(shipped.to_dict())
    assert again == shipped
    changed = resolve_recipe("default", ["schedule.epochs=3", "data.spec=elsewhere", "schedule.budget_minutes=2"])
    assert (changed.config.epochs, changed.data, changed.config.budget_seconds) == (3, "elsewhere", 120.0)
    assert resolve_recipe("default", ["decision.clip_floor=0.2"]).config.clip_floor == 0.2
    assert (shipped.config.quantise, shipped.config.calibration_clips) == ("temporal", 128)
    for bad, message in ((["schedule.epoch=3"], "unknown key schedule.epoch; keys of \\[schedule\\]: epochs"),
                         (["decision.clip_floor=0.01"], "clip-threshold floor must lie in 0.05-0.95"),
                         (["optimizer.batch_size=3"], "unknown recipe section 'optimizer'"),
                         (["epochs"], "--set takes section.key=value"),
                         (["sampling.solo_share=1.5"], "solo share"),
                         (["export.quantise=int4"], "export.quantise must be one of none, temporal, got 'int4'"),
                         (["export.calibration_clips=0"], "export.calibration_clips must be 1 or more")):
        with pytest.raises(ParameterError, match=message):
            resolve_recipe("default", bad)
    with pytest.raises(ParameterError, match="recipe 'nosuch' not found: give a .toml file or one of default"):
        resolve_recipe("nosuch")
    (tmp_path / "broken.toml").write_text("[data\n")
    with pytest.raises(ParameterError, match="not a valid TOML recipe"):
        resolve_recipe(tmp_path / "broken.toml")
    with pytest.raises(ParameterError, match="names no data"):
        resolve_recipe(TINY_RECIPE)


def test_the_readme_and_the_recipe_docstring_name_every_recipe_key():
    """A key left out of the docs is one a user cannot find: the README lists each section's keys in brackets."""
    import re
    from pathlib import Path

    from timbrescope.train import recipe

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    keys_paragraph = readme[readme.index("A training run is a recipe:"):readme.index("every key is optional")]
    listed = dict(re.findall(r"`(\w+)` \(([^)]*)\)", keys_paragraph))
    for section, keys in recipe.SECTIONS.items():
        assert set(keys) <= set(re.findall(r"\w+", listed.get(section, ""))), section
        assert all(key in recipe.__doc__ for key in keys), section


def test_train_help_lists_at_most_8_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    options = {word for word in capsys.readouterr().out.split() if word.startswith("--")}
    assert options == {"--help", "--recipe", "--set", "--out", "--threads", "--quiet"}


def test_ensemble_benchmark_scores_members_and_their_mean(checkpoint, corpus, tmp_path):
    """An ensemble of one model twice is that model: every row of the table carries its figures."""
    import subprocess
    import sys
    from pathlib import Path

    other = tmp_path / "again.ckpt"
    other.write_bytes(Path(checkpoint).read_bytes())
    script = Path(__file__).parents[2] / "benchmarks" / "ensemble_validation.py"
    done = subprocess.run([sys.executable, str(script), "--data", str(corpus), str(checkpoint), str(other)],
                          capture_output=True, text=True, check=True)
    rows = [line.split("|")[2:4] for line in done.stdout.splitlines() if line.startswith("| ") and "ckpt" in line
            or line.startswith("| mean of 2")]
    assert len(rows) == 3 and rows[0] == rows[1] == rows[2]
    assert 0 <= float(rows[0][0]) <= 1 and 0 <= float(rows[0][1]) <= 1
    assert f"clips of {corpus} [validation]" in done.stdout


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


def test_release_lets_single_notes_go_early_and_ends_their_frame_targets():
    from timbrescope.augment import Release, ReleaseDraw
    from timbrescope.augment.release import SILENCE

    n, mels, length, pool, hop = 3, 4, 40, 2, 0.02
    inputs = torch.full((n, mels, length), -2.0)
    inputs[:, :, :4] = -9.0  # quiet before the onset at input frame 4 (output frame 2)
    frames = torch.zeros(n, length // pool, 2)
    frames[:, 2:, 0] = 1.0
    single = torch.tensor([1.0, 1.0, 0.0])  # the third clip is no single note: never released
    batch = Batch(inputs, torch.tensor([[1.0, 0.0]] * n), torch.ones(n, 2), frames, torch.ones(n, dtype=torch.bool),
                  torch.full((n,), -1), single)
    draw = ReleaseDraw(torch.ones(n, dtype=torch.bool), torch.full((n,), 0.2), torch.full((n,), 0.05),
                       torch.tensor([False, True, True]))
    out = Release(1.0, hop, pool).apply(batch, draw)
    # cut at input frame 4 + 0.2 s / 20 ms = 14; three time constants (7.5 frames) later: output frame 11
    assert torch.equal(out["inputs"][:, :, :15], inputs[:, :, :15]) and torch.equal(out["inputs"][2], inputs[2])
    tail = out["inputs"][:2, 0, 15:]
    assert (tail[:, 1:] <= tail[:, :-1]).all()  # falls after the cut
    torch.testing.assert_close(out["inputs"][0, :, -1], torch.full((mels,), -9.0), atol=1e-3, rtol=0)  # quietest level
    torch.testing.assert_close(out["inputs"][1, :, -1], torch.full((mels,), SILENCE), atol=1e-3, rtol=0)  # silence
    assert out["frames"][:2, 2:11, 0].eq(1).all() and out["frames"][:2, 11:].eq(0).all()
    assert torch.equal(out["frames"][2], frames[2])
    assert Release(0.0, hop, pool).apply(batch, Release(0.0, hop, pool).draw(np.random.default_rng(0), n)) == {}
    assert resolve_recipe({"data": {"spec": "x"}, "augment": {"release_probability": 0.4}}).config.release_probability == 0.4
    with pytest.raises(ParameterError, match="augmentation probabilities must lie in 0-1"):
        TrainConfig(release_probability=1.5)
    draws = Release(0.5, hop, pool).draw(np.random.default_rng(3), 1000)
    assert 0.4 < draws.released.float().mean() < 0.6 and draws.cut.min() >= 0.1 and draws.cut.max() <= 1.5


def test_bfloat16_precision_runs_the_forward_pass_under_autocast_where_the_device_computes_it(corpus, tmp_path,
                                                                                              monkeypatch):
    """`optimiser.precision = "bfloat16"`: the training forward pass in bfloat16 (the weights stay float32) where the
    device computes it natively, float32 elsewhere; the summary says which ran; other values are refused."""
    from timbrescope.models.checkpoint import load_checkpoint
    from timbrescope.models.timbrenet import TimbreNet
    from timbrescope.train import loop

    seen = []
    forward = TimbreNet.forward_features

    def spy(self, logmel):
        out = forward(self, logmel)
        if self.training:
            seen.append(out["clip_logits"].dtype)
        return out

    monkeypatch.setattr(TimbreNet, "forward_features", spy)
    config = replace(CONFIG, epochs=1, precision="bfloat16")
    for native, precision in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda native=native: native)
        assert loop.training_precision(config, "cpu") == str(precision).removeprefix("torch.")
        seen.clear()
        summary = train(corpus, tmp_path / f"{native}.ckpt", config)
        assert seen and set(seen) == {precision} and summary["precision"] == str(precision).removeprefix("torch.")
        model, _ = load_checkpoint(tmp_path / f"{native}.ckpt")
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert loop.training_precision(replace(config, precision="float32"), "cpu") == "float32"
    with pytest.raises(ParameterError, match="optimiser.precision must be one of float32, bfloat16, got 'float16'"):
        resolve_recipe("default", ["optimiser.precision=float16"])


def test_training_keeps_freed_memory_for_its_next_steps_instead_of_faulting_it_in_again():
    """A 64-MB activation allocated and freed ten times is faulted in page by page each time under glibc's
    defaults; after ``retain_freed_memory`` (which ``train`` calls) the process reuses it (a fresh process: the
    setting is process-wide)."""
    code = """
import resource, torch
from timbrescope.train.loop import retain_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        block = torch.ones(16 << 20)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
default = faults()
retain_freed_memory()
faults()
print(default, faults())
"""
    default, kept = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split())
    assert default > 10 * (64 << 20) // 4096 // 2 and kept < default // 20
