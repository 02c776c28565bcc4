"""Recipes of several member networks (``[model] members``): the ensemble model and its training."""

import contextlib
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from timbrescope.cli import main
from timbrescope.errors import ModelError
from timbrescope.evaluate.report import training_histories
from timbrescope.inference import Recognizer
from timbrescope.models import create_model
from timbrescope.models.checkpoint import checkpoint_meta, load_checkpoint
from timbrescope.train.loop import train
from timbrescope.train.recipe import resolve_recipe

from conftest import train_args

LABELS = ["cello", "flute", "piano"]


def test_an_ensemble_scores_the_mean_of_its_members_probabilities():
    torch.manual_seed(0)
    members = [create_model("timbrenet", labels=LABELS, widths=(8, 8, 8, 8)).eval() for _ in range(2)]
    ensemble = create_model("ensemble", labels=LABELS, members=[{"model": "timbrenet", "config": m.config}
                                                                 for m in members]).eval()
    for own, trained in zip(ensemble.members, members):
        own.load_state_dict(trained.state_dict())
    features = torch.randn(3, 64, 126)
    with torch.no_grad():
        out = ensemble.forward_features(features)
        each = [m.forward_features(features) for m in members]
    for key in ("clip_logits", "frame_logits"):
        expected = torch.stack([torch.sigmoid(o[key]) for o in each]).mean(0)
        torch.testing.assert_close(torch.sigmoid(out[key]), expected)
        assert not torch.allclose(torch.sigmoid(each[0][key]), expected)  # the members differ
    assert out["embedding"].shape == (3, 16) and ensemble.hop_seconds == members[0].hop_seconds
    with pytest.raises(ModelError, match="at least two members"):
        create_model("ensemble", labels=LABELS, members=[{"model": "timbrenet", "config": members[0].config}])
    other = create_model("timbrenet", labels=LABELS[:2]).config
    with pytest.raises(ModelError, match="same labels and front-end"):
        create_model("ensemble", labels=LABELS, members=[{"model": "timbrenet", "config": members[0].config},
                                                          {"model": "timbrenet", "config": other}])


def test_a_recipe_of_two_members_trains_each_seed_and_writes_one_averaged_model(corpus, example, tmp_path, capsys):
    """The members train in processes of their own, to the weights their seed trains alone; a member already
    written is reused (a killed run resumes, and its `[export]` settings may differ: training never reads them); the
    averaged model identifies, exports to ONNX with the same scores, and keeps each member's summary."""
    out = tmp_path / "pair.ckpt"
    first = resolve_recipe({"seed": 5, "data": {"spec": str(corpus)}, "optimiser": {"batch_size": 8},
                            "schedule": {"epochs": 1}})
    (tmp_path / "pair.ckpt.members").mkdir()
    train(str(corpus), tmp_path / "pair.ckpt.members" / "member1.ckpt", first.config)  # as if killed after member 1
    reused, _ = load_checkpoint(tmp_path / "pair.ckpt.members" / "member1.ckpt")
    assert main(train_args(corpus, out, "seed=5", "model.members=2", "export.calibration_clips=16")) == 0
    printed = capsys.readouterr().out
    assert "member 1 (seed 5)" in printed and "member 2 (seed 6)" in printed and "2 members averaged" in printed
    model, meta = load_checkpoint(out)
    assert meta["model"] == "ensemble" and [m["seed"] for m in meta["training"]["members"]] == [5, 6]
    assert meta["training"]["recipe"]["model"]["members"] == 2 and 0 <= meta["training"]["valid_map"] <= 1
    assert meta["training"]["recipe"]["export"]["calibration_clips"] == 16
    assert meta["training"]["precision"] == "float32"  # the members' precision, as one network's summary says it
    assert not (tmp_path / "pair.ckpt.members").exists()
    for key, value in reused.state_dict().items():
        torch.testing.assert_close(model.members[0].state_dict()[key], value)
    assert not torch.equal(model.members[0].frame_head.weight, model.members[1].frame_head.weight)
    second = resolve_recipe({"seed": 6, "data": {"spec": str(corpus)}, "optimiser": {"batch_size": 8},
                             "schedule": {"epochs": 1}})
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // 2))  # the threads each of two members had
    try:
        train(str(corpus), tmp_path / "alone.ckpt", second.config)  # member 2 here, not in a process of its own
    finally:
        torch.set_num_threads(threads)
    for key, value in load_checkpoint(tmp_path / "alone.ckpt")[0].state_dict().items():
        assert torch.equal(model.members[1].state_dict()[key], value), key  # bit for bit: training adds no run-to-run difference
    assert len(meta["thresholds"]) == len(model.labels) == len(meta["frame_thresholds"])
    assert main(["export", "--checkpoint", str(out), "--out", str(tmp_path / "pair.onnx")]) == 0
    by_torch, by_onnx = Recognizer(out).identify(example), Recognizer(tmp_path / "pair.onnx").identify(example)
    np.testing.assert_allclose(by_onnx.frames, by_torch.frames, atol=1e-4)
    assert by_onnx.segments == by_torch.segments and by_onnx.thresholds == by_torch.thresholds
    runs = training_histories(Recognizer(out))  # the report's training log: one line per member
    assert [name for name, _ in runs] == ["member 1 (seed 5)", "member 2 (seed 6)"]
    assert [len(history) for _, history in runs] == [1, 1]


def test_members_train_on_the_dataset_they_are_given_not_on_its_folder(corpus, tmp_path):
    """A Dataset (here a chosen subset, as `learning-curve` passes) reaches each member as it is."""
    from dataclasses import replace

    from timbrescope.data.specs import open_dataset

    dataset = open_dataset(corpus)
    train_split = dataset.split("train")
    subset = replace(dataset, examples=train_split[: len(train_split) // 2] + dataset.split("validation"))
    config = resolve_recipe({"seed": 3, "data": {"spec": str(corpus)}, "optimiser": {"batch_size": 8},
                             "schedule": {"epochs": 1}}).config
    alone = train(subset, tmp_path / "one.ckpt", config)
    pair = train(subset, tmp_path / "pair.ckpt", replace(config, members=2))
    full = train(str(corpus), tmp_path / "full.ckpt", config)
    assert pair["train_clips"] == alone["train_clips"] < full["train_clips"]


def test_the_members_share_features_computed_once_which_another_run_does_not_reuse(corpus, tmp_path, capsys):
    """Before the members start, the features are computed once into the members' folder, as each member would
    compute them (the member trained there equals one trained alone: the test above); a features file that another
    run (other data, another front-end) left there is an error, not reused."""
    from timbrescope.data.clips import SkipLog
    from timbrescope.data.specs import open_dataset
    from timbrescope.train import loop

    config = resolve_recipe({"seed": 3, "data": {"spec": str(corpus)}, "optimiser": {"batch_size": 8}}).config
    path = tmp_path / "pair.ckpt.members" / "features.pt"
    loop._share_features(str(corpus), config, path)
    computed: dict = {}
    _, train_feats, valid_feats = loop.training_features(open_dataset(corpus), config, SkipLog(), computed)
    (signature, store), = computed.items()
    shared = loop._shared_features(path)[signature]
    assert len(store) == len(train_feats.clips) + len(valid_feats.clips) > 0 and shared.keys() == store.keys()
    assert all(torch.equal(shared[key], store[key]) for key in store)
    other = resolve_recipe({"data": {"spec": str(corpus), "limit": 4}}).config
    path.unlink()
    loop._share_features(str(corpus), other, path)
    assert main(train_args(corpus, tmp_path / "pair.ckpt", "model.members=2")) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("features.pt belongs to another training run; delete it to start again")
    assert not (tmp_path / "pair.ckpt").exists()


def test_members_of_a_dataset_of_precomputed_features_train_without_a_features_file(tmp_path):
    """UIowa MIS holds features, not audio: nothing to compute once, and the members read the dataset themselves."""
    import dataset_fixtures as fixtures

    root = tmp_path / "uiowa"
    fixtures.uiowa_mis(root)
    config = resolve_recipe({"seed": 3, "data": {"spec": fixtures.spec("uiowa_mis", root)},
                             "model": {"name": "mfcc-mlp", "members": 2}, "optimiser": {"batch_size": 8},
                             "schedule": {"epochs": 1}}).config
    summary = train(fixtures.spec("uiowa_mis", root), tmp_path / "pair.ckpt", config)
    assert [m["seed"] for m in summary["members"]] == [3, 4] and summary["train_clips"] > 0
    assert load_checkpoint(tmp_path / "pair.ckpt")[1]["model"] == "ensemble"


def test_a_member_file_of_another_run_is_an_error_not_reused(corpus, tmp_path, capsys):
    out = tmp_path / "pair.ckpt"
    (tmp_path / "pair.ckpt.members").mkdir()
    other = resolve_recipe({"seed": 9, "data": {"spec": str(corpus)}, "optimiser": {"batch_size": 8},
                            "schedule": {"epochs": 1}})
    train(str(corpus), tmp_path / "pair.ckpt.members" / "member1.ckpt", other.config)
    assert main(train_args(corpus, out, "model.members=2")) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("member1.ckpt belongs to another training run; delete it to start again")
    assert not out.exists() and checkpoint_meta(tmp_path / "pair.ckpt.members" / "member1.ckpt")["model"] == "timbrenet"
    assert main(train_args(corpus, out, "model.members=0")) == 2
    assert "at least one member network, got 0" in capsys.readouterr().err
    assert main(train_args(corpus, out, "model.name=ensemble")) == 2
    assert "ensemble is assembled from trained networks" in capsys.readouterr().err


def test_a_killed_train_takes_its_member_processes_with_it(corpus, tmp_path):
    """Killing ``train`` (SIGKILL: no chance to clean up) ends the members' processes too, within seconds, instead
    of leaving them to train for nobody."""
    psutil = pytest.importorskip("psutil")
    args = train_args(corpus, tmp_path / "pair.ckpt", "model.members=2", "schedule.epochs=500", "schedule.patience=500")
    parent = subprocess.Popen([sys.executable, "-m", "timbrescope", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    members = []
    try:
        deadline = time.monotonic() + 120
        while len(members) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.5)
            members = [child for child in psutil.Process(parent.pid).children()
                       if "spawn_main" in " ".join(child.cmdline())]
        assert len(members) == 2, "the two member processes never started"
        time.sleep(3)  # let them reach their training
        parent.kill()
        parent.wait()
        _, alive = psutil.wait_procs(members, timeout=20)
        assert alive == []
    finally:
        parent.kill()
        for member in members:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
