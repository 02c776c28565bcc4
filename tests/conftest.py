import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from timbrescope.train.recipe import TrainConfig  # noqa: E402


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The ``tiny`` rendered corpus (seed 1), built once per test session."""
    from timbrescope.synth.corpus import Settings, build_corpus, resolve_preset

    folder = tmp_path_factory.mktemp("tiny-corpus")
    build_corpus(folder, Settings(resolve_preset("tiny"), seed=1), workers=1)
    return folder


TINY_RECIPE = pathlib.Path(__file__).parent / "recipes" / "tiny.toml"


TINY_CONFIG = TrainConfig(epochs=3, batch_size=8, seed=0)


@pytest.fixture(scope="session")
def corpus(tiny_corpus):
    return tiny_corpus


@pytest.fixture(scope="session")
def checkpoint(tiny_corpus, tmp_path_factory):
    """A timbrenet trained on the tiny corpus for 3 epochs (``TINY_CONFIG``), once per session."""
    from timbrescope.train.loop import train

    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    train(tiny_corpus, path, TINY_CONFIG)
    return path


@pytest.fixture(scope="session")
def example(tmp_path_factory):
    """The demo's example recording (12 s: piano trio and violin, csound test bank)."""
    from timbrescope.synth.example import render_example

    path = tmp_path_factory.mktemp("example") / "example.wav"
    render_example(path)
    return path


def train_args(data, out, *settings: str) -> list[str]:
    """``timbrescope train`` arguments for the tests' tiny recipe on ``data``, with ``--set`` overrides."""
    args = ["train", "--recipe", str(TINY_RECIPE), "--out", str(out), "--quiet", "--set", f"data.spec={data}"]
    for setting in settings:
        args += ["--set", setting]
    return args
