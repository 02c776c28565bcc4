import json

import pytest

from timbrescope.benchmark import COLUMNS, select_models
from timbrescope.cli import main
from timbrescope.errors import ParameterError
from timbrescope.models import list_models
from timbrescope.models.checkpoint import load_checkpoint

from dataset_fixtures import manifest, uiowa_mis


def test_benchmark_runs_every_model_end_to_end_on_the_tiny_corpus(tiny_corpus, tmp_path, capsys):
    manifest(tmp_path / "real")
    out = tmp_path / "bench"
    assert main(["benchmark", "--data", str(tiny_corpus), "--models", "all", "--epochs", "1", "--budget-minutes",
                 "0.1", "--curve-fractions", "0.5", "--realdev", f"manifest:{tmp_path / 'real' / 'manifest.jsonl'}",
                 "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "benchmark.json").read_text())
    assert [row["model"] for row in result["models"]] == list_models()
    for row in result["models"]:
        assert "error" not in row, row
        assert 0 <= row["map"] <= 1 and 0 <= row["f1_macro"] <= 1 and row["speed"] > 0 and row["parameters"] > 0
        assert row["train_seconds"] >= 0 and row["epochs_run"] == 1
        assert row["realdev"]["examples"] == 10
        assert [p["train_examples"] for p in row["learning_curve"]] == [6, 12]
    knn = next(row for row in result["models"] if row["model"] == "knn")
    assert knn["parameters"] >= 12 * 120  # its stored examples: 12 training clips x 120 MFCC statistics
    table = (out / "benchmark.md").read_text().splitlines()
    assert table[0] == "| " + " | ".join(title for _, title in COLUMNS) + " |" and len(table) == 2 + len(list_models())
    assert capsys.readouterr().out.startswith(table[0])
    page = (out / "report.html").read_text()
    assert page.count("<tr>") == 1 + len(list_models()) and "data:image/png;base64," in page
    assert (out / "learning_curves.png").stat().st_size > 1000
    # run again into the same folder: finished models are reused, not retrained; a checkpoint trained
    # elsewhere is scored as a row of its own, like the others
    before = {row["model"]: row for row in result["models"]}
    assert main(["benchmark", "--data", str(tiny_corpus), "--models", "knn,timbrenet", "--out", str(out), "--quiet",
                 "--trained", f"shipped={out / 'models' / 'timbrenet.ckpt'}"]) == 0
    again = json.loads((out / "benchmark.json").read_text())["models"]
    assert again[:2] == [before["knn"], before["timbrenet"]]
    shipped = again[2]
    assert shipped["model"] == "shipped" and shipped["trained_on"] == str(tiny_corpus)
    recorded = load_checkpoint(out / "models" / "timbrenet.ckpt")[1]["training"]["seconds"]  # its own training time
    assert shipped["test"] == before["timbrenet"]["test"] and shipped["train_seconds"] == recorded
    assert [p["model"] for p in shipped["learning_curve"]] == ["shipped"]


@pytest.mark.parametrize("spec, message", [("shipped", "takes NAME=CHECKPOINT"), ("knn=x.ckpt", "already a model"),
                                           ("mine=nowhere.ckpt", "no checkpoint at nowhere.ckpt")])
def test_trained_rows_are_checked_before_anything_runs(spec, message, tmp_path, capsys):
    assert main(["benchmark", "--data", str(tmp_path), "--models", "knn", "--out", str(tmp_path / "b"),
                 "--trained", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_benchmark_reports_models_that_cannot_use_the_data(tmp_path, capsys):
    uiowa_mis(tmp_path / "uiowa")
    assert main(["benchmark", "--data", f"uiowa_mis:{tmp_path / 'uiowa'}", "--models", "logreg,timbrenet",
                 "--curve-fractions", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    rows = {row["model"]: row for row in json.loads((tmp_path / "b" / "benchmark.json").read_text())["models"]}
    assert rows["logreg"]["top1"] >= 0.9 and rows["logreg"]["speed"] is None
    assert rows["timbrenet"] == {"model": "timbrenet", "error": "UIowa MIS features holds precomputed features; "
                                                               "timbrenet needs audio"}
    assert "| timbrenet | failed: " in capsys.readouterr().out


def test_unknown_models_are_named():
    assert select_models("knn, logreg") == ["knn", "logreg"]
    with pytest.raises(ParameterError, match="unknown model\\(s\\) resnet; known: adaboost"):
        select_models("knn,resnet")


def test_short_notes_script_cuts_each_note_after_its_onset(tmp_path):
    """benchmarks/short_notes.py: every note row is cut 0.2-1.0 s after its onset (a quiet lead-in kept), a note
    already shorter is kept whole, phrases are left out, and the manifest lists what was written."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    sr = 22_050
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(3 * sr) / sr).astype(np.float32)
    sf.write(tmp_path / "long.wav", np.concatenate([np.zeros(sr // 2, np.float32), tone]), sr)  # onset at 0.5 s
    sf.write(tmp_path / "tiny.wav", tone[: sr // 10], sr)  # 0.1 s: shorter than any cut
    sf.write(tmp_path / "phrase.wav", tone, sr)
    rows = ["source,path,labels,kind,duration_s,licence", "a,long.wav,flute,note,3.5,CC0-1.0",
            "a,tiny.wav,flute,note,0.1,CC0-1.0", "a,phrase.wav,flute,phrase,3.0,CC0-1.0"]
    (tmp_path / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    script = Path(__file__).parents[1] / "benchmarks" / "short_notes.py"
    subprocess.run([sys.executable, str(script), "--manifest", str(tmp_path / "MANIFEST.csv"), "--out",
                    str(tmp_path / "short")], capture_output=True, text=True, check=True)
    with (tmp_path / "short" / "MANIFEST.csv").open() as table:
        written = list(csv.DictReader(table))
    assert [row["path"] for row in written] == ["long.flac", "tiny.flac"]
    long, _ = sf.read(tmp_path / "short" / "long.flac")
    assert 0.5 + 0.2 <= len(long) / sr <= 0.5 + 1.0 and float(written[0]["duration_s"]) == round(len(long) / sr, 3)
    assert abs(long[-1]) < 1e-3 and np.abs(long[: sr // 2]).max() == 0  # faded out; the lead-in is kept
    assert len(sf.read(tmp_path / "short" / "tiny.flac")[0]) == sr // 10


def _script(name: str):
    """benchmarks/NAME.py as a module (benchmarks/ is not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ensemble_sets_are_every_combination_or_a_seeded_draw():
    """benchmarks/ensemble_pairs.py: every set of a size while there are few, else SUBSETS distinct-member draws."""
    import numpy as np

    module = _script("ensemble_pairs")
    names = [f"run{i}" for i in range(12)]
    assert module.subsets(names[:4], 2, np.random.default_rng(0)) == [
        ("run0", "run1"), ("run0", "run2"), ("run0", "run3"), ("run1", "run2"), ("run1", "run3"), ("run2", "run3")]
    drawn = module.subsets(names, 4, np.random.default_rng(0))  # 495 sets of 4: a draw
    assert len(drawn) == module.SUBSETS and all(len(set(s)) == 4 for s in drawn)
    assert all([names.index(n) for n in s] == sorted(names.index(n) for n in s) for s in drawn)
    assert drawn == module.subsets(names, 4, np.random.default_rng(0)) and len(set(drawn)) > 150


def test_ensemble_models_keep_apart_when_their_file_stems_are_the_same():
    """benchmarks/ensemble_pairs.py names a model by its stem, by its path where stems collide (two runs' member1),
    and refuses a model given twice."""
    module = _script("ensemble_pairs")
    assert module.names_of(["a/member1.onnx", "b/member1.onnx", "b/run70.onnx"]) == [
        "a/member1.onnx", "b/member1.onnx", "run70"]
    with pytest.raises(SystemExit, match="named twice"):
        module.names_of(["a/member1.onnx", "a/member1.onnx"])


def test_gpu_search_packs_trains_and_finishes_a_run_like_train(tiny_corpus, tmp_path):
    """benchmarks/gpu_search.py on the CPU: the packed features come back within 8-bit rounding, chunks keep their
    size limit, a run trains the packed recipe with its override, and ``finish`` writes a model file that identifies."""
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    import numpy as np
    import torch

    from timbrescope.inference import Recognizer
    from conftest import TINY_RECIPE

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_search.py"
    folder = tmp_path / "pack"

    def run(*args):
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run("pack", "--recipe", str(TINY_RECIPE), "--set", f"data.spec={tiny_corpus}", "--out", str(folder),
        "--chunk-mb", "0.02")
    chunks = sorted(folder.glob("chunk-*/inputs.xz"))
    assert len(chunks) >= 2 and all(path.stat().st_size <= 20_000 for path in chunks)
    log = run("train", str(folder), str(tmp_path / "out"), "--seconds", "300", "--threads", "1",
              "small:3:model.config={widths=[8,16,16,24]};schedule.epochs=2")
    assert "small (exit 0)" in log
    with tarfile.open(tmp_path / "out" / "runs.tar") as tar:
        assert sorted(tar.getnames()) == ["small.log.jsonl", "small.pt"]
        tar.extractall(tmp_path / "runs")
    trained = torch.load(tmp_path / "runs" / "small.pt", weights_only=False)
    assert trained["complete"] and trained["config"]["seed"] == 3 and len(trained["history"]) == 2
    assert trained["state"]["stem.0.weight"].shape[0] == 8  # the override reached the network

    meta, _, valid = _script("gpu_search")._load(folder)
    exact = torch.load(folder / "exact-valid.pt", weights_only=False)
    span = torch.from_numpy(meta["high"] - meta["low"])[-len(exact.clips):, None, None]
    error = (valid.inputs.float() - exact.inputs.float()).abs()
    assert torch.all(error <= span / 510 + 0.02)  # rounding to 8 bits, then to float16
    assert torch.equal(valid.frames, exact.frames) and torch.equal(valid.clips, exact.clips)

    run("finish", str(folder), str(tmp_path / "runs" / "small.pt"), str(tmp_path / "small.ckpt"))
    recognizer = Recognizer(tmp_path / "small.onnx")
    assert recognizer.labels == meta["labels"]
    assert set(recognizer.thresholds) == set(meta["labels"])
    assert all(0 < value < 1 for value in recognizer.thresholds.values())


def test_machine_names_the_cpu_its_cores_and_its_widest_vector_unit():
    """benchmarks/machine.py: a speed figure's first line names the CPU, its cores and AVX-512 / AVX2 / neither,
    from /proc/cpuinfo's first processor."""
    module = _script("machine")
    cpuinfo = ("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2\n\n"
               "processor\t: 1\nmodel name\t: other\n")
    assert module.describe(cpuinfo, cores=2) == "AMD EPYC, 2 cores, AVX2"
    assert module.describe(cpuinfo.replace("avx2", "avx2 avx512f avx512bw"), cores=2) == "AMD EPYC, 2 cores, AVX-512"
    assert module.describe("model name : Old\nflags : fpu sse2\n", cores=4) == "Old, 4 cores, no AVX2"
    assert module.describe(cores=2).split(", ")[1] == "2 cores"  # this machine's, whatever it is


def test_train_step_times_each_configuration_in_every_process():
    """benchmarks/train_step.py: one Markdown row per configuration, a median crop step and whole-clip step per
    process, and the epoch's seconds as the recipe's steps of that batch at the recipe's mix of the two; `--set`
    changes the recipe timed."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "train_step.py"
    done = subprocess.run([sys.executable, str(script), "--config", '{"widths": [8, 8, 8, 8]}', "--config",
                           '{"widths": [8, 8, 8, 8], "top_blocks": 1}', "--set", "sampling.crop_seconds=1.0",
                           "--set", "sampling.whole_clip_share=0.5", "--processes", "2", "--steps", "10",
                           "--batch", "100"], capture_output=True, text=True, timeout=300, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("training step of timbrenet, batch 100: crops of 1 s, whole 5-s clips in 0.5 of the "
                               "steps; 2 process(es) at once")
    assert "epoch of 250 steps" in lines[2]
    rows = [line.split(" | ") for line in lines if line.startswith("| `{")]
    assert [row[0] for row in rows] == ['| `{"widths": [8, 8, 8, 8]}`', '| `{"widths": [8, 8, 8, 8], "top_blocks": 1}`']
    for row in rows:
        seconds = [[float(s) for s in each.split(", ")] for each in row[1].split(" / ")]
        assert len(seconds) == 2 and all(crop > 0 and whole > 0 for crop, whole in seconds)
        epoch = sum(250 * (crop + whole) / 2 for crop, whole in seconds) / 2
        assert abs(float(row[2].rstrip(" |")) - epoch) <= 0.5 + 250 * 0.001  # each figure rounded


def test_seed_spread_writes_each_member_as_the_network_the_ensemble_averages(tmp_path):
    """benchmarks/seed_spread.py: the members written out are the ensemble's networks (their probabilities average
    to its own), with its thresholds and decision rule; a checkpoint that is not an ensemble is refused."""
    import torch

    from timbrescope.models.checkpoint import save_checkpoint
    from timbrescope.models.registry import create_model
    from timbrescope.timeline import DecisionRule

    module = _script("seed_spread")
    labels = ["piano", "violin", "voice"]
    config = {"labels": labels, "widths": [8, 16, 16, 16]}
    torch.manual_seed(0)
    ensemble = create_model("ensemble", labels=labels, members=[{"model": "timbrenet", "config": config}] * 2).eval()
    rule = DecisionRule(clip_floor=0.3)
    save_checkpoint(tmp_path / "pair.ckpt", ensemble, "ensemble", [0.3, 0.4, 0.5], [0.2, 0.3, 0.4], {}, rule)
    written = module.member_checkpoints(tmp_path / "pair.ckpt", tmp_path)
    assert [path.name for path in written] == ["pair-member1.ckpt", "pair-member2.ckpt"]
    logmel = torch.randn(2, 64, 150)
    probabilities = []
    for path in written:
        member, meta = load_checkpoint(path)
        assert meta["model"] == "timbrenet" and meta["thresholds"] == [0.3, 0.4, 0.5]
        assert meta["frame_thresholds"] == [0.2, 0.3, 0.4] and meta["decision"]["clip_floor"] == 0.3
        with torch.no_grad():
            probabilities.append(torch.sigmoid(member.forward_features(logmel)["clip_logits"]))
    assert not torch.allclose(probabilities[0], probabilities[1])
    with torch.no_grad():
        together = torch.sigmoid(ensemble.forward_features(logmel)["clip_logits"])
    torch.testing.assert_close(together, (probabilities[0] + probabilities[1]) / 2, atol=1e-5, rtol=1e-4)
    with pytest.raises(SystemExit, match="not an ensemble"):
        module.member_checkpoints(written[0], tmp_path)


def test_paired_judge_counts_the_split_recordings_and_bounds_the_lead():
    """benchmarks/paired_judge.py: McNemar's exact p from the recordings only one model gets right, a label average
    that weighs each label once, and bootstrap intervals that hold the lead (and exclude 0 when the candidate wins
    every split recording of many)."""
    import numpy as np

    module = _script("paired_judge")
    truth = np.array(["a"] * 8 + ["b"] * 2)
    baseline = np.array([True] * 4 + [False] * 4 + [True, True])
    assert module.label_average(truth, baseline, np.arange(10)[None, :]).tolist() == [0.75]  # (4/8 + 2/2) / 2
    assert module.mcnemar(baseline, baseline) == (0, 0, 1.0)
    candidate = baseline.copy()
    candidate[4:8] = True  # four recordings only the candidate gets right
    assert module.mcnemar(baseline, candidate) == (0, 4, 0.125)  # 2 * 0.5 ** 4
    candidate[0] = False
    only_baseline, only_candidate, p = module.mcnemar(baseline, candidate)
    assert (only_baseline, only_candidate) == (1, 4) and p == pytest.approx(0.375)  # 2 * (1 + 5) / 32
    many = np.array(["a"] * 100)
    low, high = module.lead_intervals(many, np.zeros(100, bool), np.arange(100) < 30)["top-1"]
    assert 0 < low < 0.3 < high < 0.45
    same = module.lead_intervals(truth, baseline, baseline)
    assert same == {"top-1": (0.0, 0.0), "over labels": (0.0, 0.0)}


def test_a_benchmark_script_reports_a_missing_model_in_one_line(tmp_path):
    """benchmarks/*.py run through errors.reported: a TimbrescopeError is one stderr line and exit code 2."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "realdev_accuracy.py"), "--checkpoint",
                           str(tmp_path / "missing.onnx")], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"benchmarks/realdev_accuracy.py: error: {tmp_path / 'missing.onnx'}: "
                                                "no such model"]


def test_a_benchmark_child_that_fails_is_one_error_line_with_its_last_stderr_line():
    """benchmarks/child.py: a child's non-zero exit raises with the program and its last stderr line, whether it ran
    to its end (``run``) or was started and watched (``started``)."""
    import re
    import sys

    from timbrescope.errors import TimbrescopeError

    child = _script("child")
    assert child.run([sys.executable, "-c", "print('fine')"]).stdout == "fine\n"
    with pytest.raises(TimbrescopeError, match=r"^python[\d.]* exited with code 3: ValueError: bad$"):
        child.run([sys.executable, "-c", "import sys; print('first', file=sys.stderr); "
                   "print('ValueError: bad', file=sys.stderr); sys.exit(3)"])
    assert child.failure([sys.executable, "-m", "timbrescope", "serve"], 1, "") == "timbrescope exited with code 1"
    with child.started([sys.executable, "-c", "import sys; sys.exit('boom')"]) as (process, failed):
        assert process.wait() == 1
        assert re.fullmatch(r"python[\d.]* exited with code 1: boom", str(failed()))


@pytest.mark.parametrize("script, arguments, message", [
    ("identify_speed", ["--minutes", "0.05", "--checkpoint", "{tmp}/missing.onnx"],
     "timbrescope.cli exited with code 2: timbrescope: error: {tmp}/missing.onnx: no such model"),
    ("compare_identify", ["{tmp}/missing.jsonl", "{tmp}/one.jsonl"],
     "{tmp}/missing.jsonl: No such file or directory"),
    ("compare_identify", ["{tmp}/one.jsonl", "{tmp}/other.jsonl"], "the two runs cover other files (1 and 2)"),
    ("compare_identify", ["{tmp}/one.jsonl", "{tmp}/bad.jsonl"],
     "{tmp}/bad.jsonl, line 2: not a row of `identify --json`"),
    ("realdev_overlap", ["{tmp}", "--realdev", "{tmp}/none.csv"], "realdev manifest {tmp}/none.csv not found"),
])
def test_subprocess_benchmarks_report_bad_input_in_one_line(tmp_path, script, arguments, message):
    """The benchmarks that run children or read files: bad input is one stderr line and exit code 2."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "one.jsonl").write_text('{"path": "realdev/a.wav"}\n')
    (tmp_path / "other.jsonl").write_text('{"path": "realdev/a.wav"}\n{"path": "realdev/b.wav"}\n')
    (tmp_path / "bad.jsonl").write_text('{"path": "realdev/a.wav"}\n[1, 2]\n')
    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / f"{script}.py"),
                           *(a.format(tmp=tmp_path) for a in arguments)],
                          capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"benchmarks/{script}.py: error: {message.format(tmp=tmp_path)}"]
