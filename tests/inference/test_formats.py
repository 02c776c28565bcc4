"""`identify` on what users have: every real-world encoding exits 0, files that end early warn, `--strict`
refuses them, `-` reads standard input, a folder without audio is an error."""

import json
import subprocess
import sys

import pytest

from timbrescope.cli import main

from audio_corpus import ENCODED, WARNED, build


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("library")
    return build(ENCODED, folder / "encoded"), build(WARNED, folder / "warned"), folder


def _rows(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_encoding_and_every_short_file_identifies_with_exit_0(library, capsys):
    encoded, warned, folder = library
    assert main(["identify", "--json", str(folder)]) == 0
    rows = {row["path"]: row for row in _rows(capsys)}
    for kind, path in encoded.items():
        row = rows[str(path)]
        assert row["warnings"] == [] and row["duration"] == pytest.approx(1.0, abs=0.1), kind
        assert len(row["instruments"]) > 10 and "error" not in row
    for kind, path in warned.items():
        row = rows[str(path)]
        assert "error" not in row and row["duration"] > 0, kind
        assert len(row["warnings"]) == (0 if WARNED[kind][1] is None else 1), kind
    assert rows[str(warned["truncated_mp3"])]["duration"] < 2.5


def test_warnings_go_to_stderr_and_strict_makes_them_errors(library, capsys):
    _, warned, _ = library
    path = str(warned["truncated_mp3"])
    assert main(["identify", path]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{path} (") and f"warning: {path}: truncated: header promises" in captured.err
    assert main(["identify", "--strict", "--json", path]) == 2
    (row,) = _rows(capsys)
    assert row["path"] == path and "truncated: header promises" in row["error"]


def test_standard_input_is_identified(library):
    encoded, _, _ = library
    data = encoded["m4a_aac"].read_bytes()
    out = subprocess.run([sys.executable, "-m", "timbrescope.cli", "identify", "--json", "-"], input=data,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["path"] == "-" and row["duration"] == pytest.approx(1.02, abs=0.05)


def test_a_folder_without_audio_is_an_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no audio here")
    assert main(["identify", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"timbrescope: error: no audio files under {tmp_path}"
