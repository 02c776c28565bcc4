import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _commands(target: str) -> str:
    """What ``make`` would run for ``target`` on a machine where nothing is installed yet (``-B``)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-n", "-B", target, "SUDO="], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_setup_installs_every_debian_package_the_sources_need():
    install = next(line for line in _commands(".stamps/apt").splitlines() if "apt-get install" in line).split()
    # one package of each group: the base corpus, synth --extra's engines and clips, its rooms, pysinsy's build
    assert {"fluid-soundfont-gm", "festival", "bristol", "grandorgue-demo", "lmms-common", "csoundqt-examples",
            "cmake"} <= set(install)


def test_make_model_renders_both_corpora_with_every_source():
    commands = _commands("model")
    synths = [line.split() for line in commands.splitlines() if " synth " in line]
    assert [line[line.index("--preset") + 1] for line in synths] == ["default", "notes"]
    for line in synths:
        assert {"--festival", "--extra", "--sinsy", "--soundfont", "--train-on-holdout"} <= set(line)
        assert ("--sfz", "build/npm-banks") in set(zip(line, line[1:]))  # the npm libraries since v0.13.0
    assert commands.index("fetch-banks --out build/npm-banks") < commands.index(" synth ")
