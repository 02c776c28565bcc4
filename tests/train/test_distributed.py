"""Training under real `torchrun` processes (2 ranks, gloo on the CPU): DDP keeps the ranks' weights equal,
each rank trains on its share of rank 0's epoch, rank 0 writes a normal checkpoint, and a killed run
resumes under torchrun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from timbrescope.inference import Recognizer
from timbrescope.train.distributed import Ranks, join, shard

from conftest import TINY_RECIPE

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


@pytest.fixture(autouse=True)
def _temp_in_tmp_path(tmp_path, monkeypatch):
    """torchrun makes a log folder (``torchelastic_*``) under TMPDIR for each run and may leave it: keep it in the
    test's folder, not the machine's /tmp."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))


def _torchrun(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*TORCHRUN, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def _train(corpus, out: Path, *settings: str) -> list[str]:
    command = ["-m", "timbrescope", "train", "--recipe", str(TINY_RECIPE), "--out", str(out), "--quiet",
               "--set", f"data.spec={corpus}"]
    for setting in settings:
        command += ["--set", setting]
    return command


def _finished(command: list[str]) -> str:
    """The standard output of a torchrun training run to its end (which must succeed)."""
    process = _torchrun(*command)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def test_ranks_share_the_epoch_and_ddp_keeps_their_weights_equal(tmp_path):
    process = _torchrun(str(Path(__file__).parent / "ddp_ranks.py"), str(tmp_path / "seen.json"))
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["world"] == 2 and seen["device"] == "cpu"
    first, second = seen["ranks"]
    assert sorted(first["order"] + second["order"][:4]) == list(range(9))  # rank 0's order, split, padded to 10
    assert len(first["order"]) == len(second["order"]) == 5
    assert first["weights"] == second["weights"]  # gradients were averaged across ranks
    assert first["agree"] is True and second["agree"] is True  # rank 0's decision everywhere


def test_one_process_trains_on_the_whole_epoch_as_before():
    order = np.arange(5)
    assert shard(order, Ranks()) is order and not torch.distributed.is_initialized()


def test_one_process_trains_on_the_gpu_when_there_is_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert join() == Ranks(0, 1, "cuda") and not torch.distributed.is_initialized()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert join() == Ranks(0, 1, "cpu")


def test_torchrun_trains_two_epochs_into_a_normal_checkpoint(corpus, tmp_path, example):
    out = tmp_path / "ddp.ckpt"
    assert _finished(_train(corpus, out, "schedule.epochs=2")).count("best epoch") == 1  # rank 0 alone reports
    log = [json.loads(line) for line in (tmp_path / "ddp.ckpt.log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2]
    training = torch.load(out, weights_only=False)["training"]
    assert training["ranks"] == 2 and training["epochs_run"] == 2
    assert not Path(f"{out}.state").exists()
    result = Recognizer(out).identify(example)
    assert result.duration == 12.0 and len(result.instruments) == len(Recognizer(out).labels)


def test_a_killed_torchrun_run_resumes_where_it_stopped(corpus, tmp_path):
    out = tmp_path / "ddp.ckpt"
    command = _train(corpus, out, "schedule.epochs=40", "schedule.patience=100")
    process = _torchrun(*command)
    state = Path(f"{out}.state")
    deadline = time.monotonic() + 300
    log = Path(f"{out}.log.jsonl")  # written after the state: once it exists, a state of that epoch does too
    while not log.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # torchrun starts each worker in a session of its own: killing the agent's group leaves them training on,
    # writing the state and the log beside the resumed run (the flake of sessions 21-22). Kill them too.
    subprocess.run(["pkill", "-KILL", "-f", str(out)], check=False)
    while subprocess.run(["pgrep", "-f", str(out)], capture_output=True).returncode == 0:
        time.sleep(0.05)
    if not state.exists():
        pytest.fail("the run ended before it could be killed: " + process.stderr.read()[-2000:])
    before = [json.loads(line) for line in (tmp_path / "ddp.ckpt.log.jsonl").read_text().splitlines()]
    assert 1 <= len(before) < 40
    _finished(command)
    log = [json.loads(line) for line in (tmp_path / "ddp.ckpt.log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == list(range(1, 41))
    assert log[:len(before)] == before  # the epochs done before the kill were not run again
    assert torch.load(out, weights_only=False)["training"]["epochs_run"] == 40


def test_torchrun_trains_a_recipes_members_one_after_another_on_every_rank(corpus, tmp_path, example):
    out = tmp_path / "pair.ckpt"
    assert _finished(_train(corpus, out, "model.members=2")).count("2 members averaged") == 1  # rank 0 alone reports
    meta = torch.load(out, weights_only=False)
    assert meta["model"] == "ensemble" and meta["training"]["ranks"] == 2
    assert [m["seed"] for m in meta["training"]["members"]] == [0, 1] and not Path(f"{out}.members").exists()
    assert len(Recognizer(out).identify(example).instruments) == len(meta["config"]["labels"])
