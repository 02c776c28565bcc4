import json
import os
import subprocess
import sys

import pytest

from timbrescope import __version__
from timbrescope.cli import main

from audio_corpus import BAD, GOOD, build

# libmpg123 prints this to the C-level stderr by itself when it opens a cut MP3; it is not ours.
_LIBRARY_NOISE = ("Warning: Xing stream size", "[src/libmpg123/")  # libmpg123 writes to stderr itself


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    return build(BAD, folder / "bad"), build(GOOD, folder / "good")


def test_version_and_no_traceback_as_a_process(corpus):
    out = subprocess.run([sys.executable, "-m", "timbrescope.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"timbrescope {__version__}"
    bad, _ = corpus
    out = subprocess.run([sys.executable, "-m", "timbrescope.cli", "info", str(bad["random_bytes"])],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"error: {bad['random_bytes']}: not a recognised audio format, or corrupt data"


@pytest.mark.parametrize("kind", sorted(BAD))
def test_info_on_bad_input_prints_one_line_and_exits_2(kind, corpus, capfd):
    if kind == "no_read_permission" and os.geteuid() == 0:
        pytest.skip("root reads a file without read permission")
    path = corpus[0][kind]
    assert main(["info", str(path)]) == 2
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if not line.startswith(_LIBRARY_NOISE)]
    assert out == "" and len(lines) == 1
    assert lines[0].startswith(f"error: {str(path).replace(chr(10), chr(92) + 'n')}: ")


def test_info_reports_good_files_and_keeps_going_after_a_bad_one(corpus, capfd):
    bad, good = corpus
    code = main(["info", "--json", str(good["eight_channels"]), str(bad["missing"]), str(good["rate_8k"])])
    out, _ = capfd.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and len(rows) == 3
    assert rows[0]["channels"] == 8 and rows[0]["sample_rate"] == 16000 and rows[0]["duration"] == 1.0
    assert rows[1] == {"path": str(bad["missing"]), "error": f"{bad['missing']}: no such file"}
    assert rows[2]["sample_rate"] == 8000 and rows[2]["format"] == "WAV"
    assert main(["info", str(good["flac"])]) == 0
    assert capfd.readouterr().out.strip() == f"{good['flac']}: 1.000 s, 16000 Hz, 1 ch, FLAC PCM_16"
