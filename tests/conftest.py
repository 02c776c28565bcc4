import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The ``tiny`` rendered corpus (seed 1), built once per test session."""
    from timbrescope.synth.corpus import Settings, build_corpus, resolve_preset

    folder = tmp_path_factory.mktemp("tiny-corpus")
    build_corpus(folder, Settings(resolve_preset("tiny"), seed=1), workers=1)
    return folder


TINY_RECIPE = pathlib.Path(__file__).parent / "recipes" / "tiny.toml"


def train_args(data, out, *settings: str) -> list[str]:
    """``timbrescope train`` arguments for the tests' tiny recipe on ``data``, with ``--set`` overrides."""
    args = ["train", "--recipe", str(TINY_RECIPE), "--out", str(out), "--quiet", "--set", f"data.spec={data}"]
    for setting in settings:
        args += ["--set", setting]
    return args
