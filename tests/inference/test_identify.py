"""identify: the JSON contract, timelines, any input, ONNX, thread limits, the decision rule in the model file."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from timbrescope.cli import main
from timbrescope.errors import AudioError, ModelError, ParameterError
from timbrescope.inference import Recognizer, audio_files
from timbrescope.taxonomy import source_of
from timbrescope.timeline import median_over_time
from timbrescope.train.loop import TrainConfig, train

from audio_corpus import BAD, build
from blas_threads import blas_threads, blas_threads_at_each_log_mel

# The shipped ONNX file runs its temporal convolutions in 8 bits (the default recipe's [export] rule): its frame
# scores on the demo's example differ from the checkpoint's by at most 0.018 (session 38).
TOLERANCE = 0.03


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
    assert result.active[:, 0].sum() == round(5.0 / recognizer.hop_seconds) and result.active[:, 1:].sum() == 0


def test_identify_json_contract(checkpoint, example, capsys):
    assert main(["identify", "--json", "--frames", "--checkpoint", str(checkpoint), str(example)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["path", "duration", "model", "instruments", "families", "sources", "segments", "warnings",
                            "frames", "frame_times"]
    assert result["path"] == str(example) and result["duration"] == 12.0
    labels = Recognizer(checkpoint).labels
    assert sorted(i["label"] for i in result["instruments"]) == labels
    scores = [i["score"] for i in result["instruments"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(set(i) == {"label", "family", "score", "detected"} for i in result["instruments"])
    thresholds = Recognizer(checkpoint).thresholds
    assert [i["detected"] for i in result["instruments"]] == [i["score"] >= thresholds[i["label"]]
                                                               for i in result["instruments"]]
    assert result["families"][0]["score"] == max(scores)
    by_source = {}
    for item in result["instruments"]:
        by_source[source_of(item["label"])] = max(by_source.get(source_of(item["label"]), 0.0), item["score"])
    assert result["sources"] == sorted(({"label": k, "score": v} for k, v in by_source.items()), key=lambda s: -s["score"])
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
    assert long.duration == pytest.approx(63.0) and len(long.frames) == round(63.0 / recognizer.hop_seconds)
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


def test_a_recipe_with_8_bit_temporal_layers_exports_them_calibrated_on_its_validation_split(corpus, example,
                                                                                              tmp_path, capsys):
    """`[export] quantise = "temporal"`: `export` puts the temporal Conv (and no other) on int8 weights through
    DequantizeLinear, records it in the metadata, and identifies close to the checkpoint; without the recipe's
    data to calibrate on, it fails in one line and writes nothing."""
    import shutil

    import onnx

    from conftest import train_args

    data, checkpoint, out = tmp_path / "corpus", tmp_path / "q.ckpt", tmp_path / "q.onnx"
    shutil.copytree(corpus, data)
    assert main(train_args(data, checkpoint, 'export.quantise="temporal"', "export.calibration_clips=16")) == 0
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    capsys.readouterr()
    graph = onnx.load(out).graph
    made_by = {output: node for node in graph.node for output in node.output}
    int8 = {init.name for init in graph.initializer if init.data_type == onnx.TensorProto.INT8}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    dequantised = [node for node in convs if getattr(made_by.get(node.input[1]), "op_type", "") == "DequantizeLinear"]
    floats = {init.name for init in graph.initializer if init.data_type == onnx.TensorProto.FLOAT}
    assert len(dequantised) == 1 and all(node.input[1] in floats for node in convs if node not in dequantised)
    weight = made_by[dequantised[0].input[1]].input[0]
    assert weight in int8 and "temporal" in weight
    quantised = Recognizer(out)
    by_torch, by_onnx = Recognizer(checkpoint).identify(example), quantised.identify(example)
    assert quantised.meta["quantised"] == "temporal" and by_onnx.labels == by_torch.labels
    assert 0 < np.abs(by_onnx.frames - by_torch.frames).max() < 0.05
    shutil.rmtree(data)
    out.unlink()
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().startswith(
        f"timbrescope: error: cannot calibrate the 8-bit temporal layers on the recipe's validation split: {data}")
    assert not out.exists()


def test_a_network_whose_frames_do_not_divide_the_window_keeps_its_timeline_in_place(corpus, tmp_path):
    """A front-end hop of 512 samples gives 46.4-ms frames, 107.7 to a 5-s window: windows advance by their 107
    whole frames (4.97 s), so a noise burst at 115-116 s of a silent 2-minute recording changes the frames of
    115-116 s (windows advancing 5 s put them 0.36 s late); the checkpoint and its ONNX export agree."""
    from conftest import train_args

    checkpoint, out, wav = tmp_path / "hop.ckpt", tmp_path / "hop.onnx", tmp_path / "burst.wav"
    assert main(train_args(corpus, checkpoint, "model.config={widths=[8,16,32,64],frontend={hop_length=512}}")) == 0
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    audio = np.zeros(120 * 22050, np.float32)
    audio[115 * 22050:116 * 22050] = np.random.default_rng(0).normal(0, 0.1, 22050)
    sf.write(wav, audio, 22050)
    by_torch, by_onnx = Recognizer(checkpoint).identify(wav), Recognizer(out).identify(wav)
    hop = 2 * 512 / 22050
    assert len(by_onnx.frames) == round(120 / hop) and by_onnx.frame_times[1] == pytest.approx(hop)
    heard = by_onnx.frames.any(axis=1)  # the windows that hold the burst (silent windows score 0)
    frames, times = by_onnx.frames[heard], by_onnx.frame_times[heard]
    change = np.abs(frames - np.median(frames, axis=0)).max(axis=1)
    assert times[change > change.max() / 2].mean() == pytest.approx(115.5, abs=0.1)  # the burst's middle
    np.testing.assert_allclose(by_onnx.frames, by_torch.frames, atol=TOLERANCE)


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
    assert recognizer.meta["quantised"] == "temporal"  # the recipe's [export] rule: scores within 8 bits' error
    np.testing.assert_allclose(recognizer.identify(example).frames, by_torch.frames, atol=TOLERANCE)
    code = ("import sys, json; from timbrescope.inference import identify; "
            f"r = identify({str(example)!r}); print(json.dumps([r.model, 'torch' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["default", False]


def test_shipped_model_was_trained_by_the_default_recipe():
    """`make model` trains `timbrescope/recipes/default.toml`: the shipped checkpoint records exactly that recipe
    (keys added to recipes since it was trained read as their defaults, which train as before). The corpora are
    compared by folder name, as a model trained on corpora rendered elsewhere records them (v0.13.0's in `out/npm/`;
    v0.14.0 is `make model` run in a fresh clone, docs/notebook, session 58)."""
    from timbrescope.inference import default_model_path
    from timbrescope.models.checkpoint import load_checkpoint
    from timbrescope.train.recipe import resolve_recipe

    _, meta = load_checkpoint(default_model_path())
    shipped, recipe = (resolve_recipe(r).to_dict() for r in (meta["training"]["recipe"], "default"))
    for data in (shipped["data"], recipe["data"]):  # the corpora by folder name
        data["spec"], data["extra_train"] = Path(data["spec"]).name, [Path(p).name for p in data["extra_train"]]
    assert shipped == recipe


def test_identify_holds_numpy_blas_to_one_thread_and_restores_it(example, monkeypatch):
    """While batches run, NumPy's BLAS runs on one thread (its own threads would spin against the
    batch threads); afterwards the caller's setting is back."""
    from threadpoolctl import threadpool_limits

    seen = blas_threads_at_each_log_mel(monkeypatch)
    with threadpool_limits(2, user_api="blas"):
        Recognizer().identify(example)
        after = blas_threads()
    assert seen and all(threads == {1} for threads in seen)
    assert after == {2}


def test_overlapping_identify_calls_share_one_blas_limit_until_the_last_ends():
    """The limit is process-wide: when two calls overlap, the first to end must not undo it for the other."""
    from threadpoolctl import threadpool_limits

    from timbrescope.inference import blas_on_one_thread

    with threadpool_limits(2, user_api="blas"):
        first, second = blas_on_one_thread(), blas_on_one_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert blas_threads() == {1}  # the second call still runs
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


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


def test_progress_reports_the_seconds_decoded_and_can_stop_the_analysis(tmp_path):
    import soundfile as sf

    path = tmp_path / "long.wav"
    sf.write(path, 0.1 * np.sin(np.arange(22050 * 150) * 0.05).astype(np.float32), 22050)
    seen = []
    result = Recognizer().identify(path, progress=seen.append)
    assert seen == pytest.approx([60.0, 120.0, 150.0], abs=0.01) and result.duration == pytest.approx(150.0)

    def stop(seconds):
        raise AudioError(f"stopped at {seconds:.0f} s")

    with pytest.raises(AudioError, match="stopped at 60 s"):
        Recognizer().identify(path, progress=stop)
