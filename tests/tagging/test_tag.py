"""`timbrescope tag`: one row per file with errors recorded, resumable (unchanged files skipped, changed and
failed ones tagged again), exactly once after a SIGKILL, the same rows on a local Ray instance."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from timbrescope.cli import main
from timbrescope.inference import Recognizer
from timbrescope.tagging.table import SEGMENT_SCHEMA, read_table, row_schema
from timbrescope.taxonomy import source_of

from audio_corpus import BAD, WARNED, build, tone


@pytest.fixture(scope="module")
def folder(tmp_path_factory, example):
    """Good files (the example, a tone, a unicode name, a nested one, a link), bad ones and short ones."""
    root = tmp_path_factory.mktemp("tagged") / "music"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "example.wav").write_bytes(example.read_bytes())
    sf.write(root / "nested" / "deeper" / "tone.flac", tone(16000 * 3), 16000)
    sf.write(root / "nested" / "Träumerei – take 1.ogg", tone(16000 * 2, 330.0), 16000)
    (root / "linked.wav").symlink_to(root / "example.wav")
    (root / "notes.txt").write_text("not audio, not listed")
    bad = {kind: BAD[kind] for kind in ("text_file", "empty", "random_bytes", "broken_symlink")}
    build(bad, root / "bad")
    build({kind: WARNED[kind] for kind in list(WARNED)[:2]}, root / "short")
    return root


def _rows(path):
    return {row["path"]: row for row in read_table(path, row_schema(Recognizer().labels)).to_pylist()}


def test_every_file_is_a_row_and_bad_ones_record_their_error(folder, tmp_path, capsys):
    out, segments = tmp_path / "tags.parquet", tmp_path / "segments.csv"
    assert main(["tag", str(folder), "--out", str(out), "--segments", str(segments), "--workers", "2"]) == 2
    printed = capsys.readouterr().out
    files = sorted(str(p.absolute()) for p in folder.rglob("*") if p.suffix in (".wav", ".flac", ".ogg", ".mp3")
                   and not p.is_dir())
    rows = _rows(out)
    assert sorted(rows) == files and len(files) == 12
    assert list(pq.read_table(out).column_names[:9]) == ["path", "size", "mtime", "duration", "format", "model",
                                                         "detected", "families", "sources"]
    failed = {path for path, row in rows.items() if row["error"]}
    assert {os.path.basename(p) for p in failed} == {"notes.wav", "empty.wav", "noise.wav", "dangling.wav"}
    for path, row in rows.items():
        assert (row["duration"] is None) == (path in failed)
        if os.path.exists(path):
            assert row["size"] == os.path.getsize(path) and row["mtime"] == pytest.approx(os.path.getmtime(path))
        else:
            assert row["size"] is None and row["mtime"] is None and "broken symbolic link" in row["error"]
        assert row["error"] is None or (row["error"].startswith(path) and "\n" not in row["error"])
    example = rows[str(folder / "example.wav")]
    identified = Recognizer().identify(folder / "example.wav")
    assert example["detected"] == [item["label"] for item in identified.detected()]
    assert example["score_violin"] == pytest.approx(identified.instruments[[i["label"] for i in identified.instruments]
                                                                           .index("violin")]["score"], abs=1e-4)
    assert example["format"] == "WAV" and example["model"] == "default" and example["duration"] == 12.0
    assert example["sources"] == sorted({source_of(label) for label in example["detected"]})
    assert rows[str(folder / "linked.wav")]["detected"] == example["detected"]
    assert any(row["warnings"] for row in rows.values())  # a short file warns and is tagged
    segs = read_table(segments, SEGMENT_SCHEMA).to_pylist()
    assert [s for s in segs if s["path"] == str(folder / "example.wav")] == [
        {"path": str(folder / "example.wav"), "tagged": example["tagged"], **s} for s in identified.segments]
    assert "12 files; tagged now 12 (4 failed" in printed and "files per label: " in printed
    assert not (tmp_path / "tags.parquet.parts").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_csv_and_json_lines_hold_the_same_rows(folder, tmp_path, suffix):
    main(["tag", str(folder / "nested"), str(folder / "bad"), "--out", str(tmp_path / "a.parquet"), "--workers", "1"])
    main(["tag", str(folder / "nested"), str(folder / "bad"), "--out", str(tmp_path / f"a{suffix}"), "--workers", "1"])
    strip = lambda rows: {p: {k: v for k, v in r.items() if k != "tagged"} for p, r in rows.items()}  # noqa: E731
    assert strip(_rows(tmp_path / f"a{suffix}")) == strip(_rows(tmp_path / "a.parquet"))


def test_a_second_run_skips_unchanged_files_and_tags_changed_and_failed_ones(folder, tmp_path, capsys):
    library = tmp_path / "lib"
    library.mkdir()
    for i in range(3):
        sf.write(library / f"{i}.wav", tone(16000, 200.0 + 100 * i), 16000)
    (library / "broken.wav").write_text("text")
    out = tmp_path / "tags.jsonl"
    assert main(["tag", str(library), "--out", str(out), "--workers", "1", "--quiet"]) == 2
    first = _rows(out)
    capsys.readouterr()
    sf.write(library / "1.wav", tone(32000, 440.0), 16000)
    sf.write(library / "3.wav", tone(16000, 550.0), 16000)
    assert main(["tag", str(library), "--out", str(out), "--workers", "1", "--quiet"]) == 2
    assert "5 files; tagged now 3 (1 failed, 0.00 h of audio), 2 unchanged skipped" in capsys.readouterr().out
    second = _rows(out)
    assert sorted(second) == sorted([*first, str(library / "3.wav")])
    assert second[str(library / "0.wav")] == first[str(library / "0.wav")]
    assert second[str(library / "1.wav")]["duration"] == 2.0 and first[str(library / "1.wav")]["duration"] == 1.0
    (library / "2.wav").unlink()  # the output describes the files of this run
    main(["tag", str(library), "--out", str(out), "--workers", "1", "--quiet"])
    assert str(library / "2.wav") not in _rows(out)


def test_a_tagged_file_is_opened_once_and_its_row_names_its_format(folder, monkeypatch):
    from timbrescope.audio import io
    from timbrescope.tagging.rows import tag_file

    opened = []
    real = io._open
    monkeypatch.setattr(io, "_open", lambda source, report: opened.append(source) or real(source, report))
    row, _ = tag_file(Recognizer(), str(folder / "nested" / "deeper" / "tone.flac"))
    assert row["format"] == "FLAC" and row["duration"] == 3.0 and row["error"] is None
    assert len(opened) == 1  # the header comes from the decode, not from a second open


def test_an_output_of_another_model_or_format_is_refused(folder, tmp_path, checkpoint, capsys):
    out = tmp_path / "tags.parquet"
    assert main(["tag", str(folder / "nested"), "--out", str(out), "--quiet"]) == 0
    before = out.read_bytes()
    assert main(["tag", str(folder / "nested"), "--out", str(out), "--checkpoint", str(checkpoint), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{out}: its columns are not this model's tag table; use another --out")
    assert out.read_bytes() == before and not (tmp_path / "tags.parquet.parts").exists()
    assert main(["tag", str(folder), "--out", str(tmp_path / "tags.txt")]) == 2
    assert capsys.readouterr().err.strip().endswith("the output must end in .parquet, .csv or .jsonl")
    (tmp_path / "broken.csv").write_text("a,b\n1,2\n")
    assert main(["tag", str(folder / "nested"), "--out", str(tmp_path / "broken.csv")]) == 2
    assert "its columns are not this model's tag table" in capsys.readouterr().err


def test_a_second_run_on_the_same_output_at_once_is_refused(folder, tmp_path, capsys):
    import fcntl

    out = tmp_path / "tags.parquet"
    with open(f"{out}.lock", "a") as held:  # what a running `tag` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["tag", str(folder / "nested"), "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().endswith("another tag run is writing it; wait for it or use another --out")
    assert not out.exists()
    assert main(["tag", str(folder / "nested"), "--out", str(out), "--quiet"]) == 0  # released: it runs
    assert out.exists() and not (tmp_path / "tags.parquet.lock").exists()


def test_a_run_killed_with_sigkill_resumes_and_tags_every_file_exactly_once(tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        sf.write(library / f"{i:02d}.flac", 0.1 * rng.standard_normal(22050 * 8).astype(np.float32), 22050)
    out = tmp_path / "tags.parquet"
    command = [sys.executable, "-m", "timbrescope", "tag", str(library), "--out", str(out), "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = tmp_path / "tags.parquet.parts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = sum(p.read_text().count("\n") for p in journal.glob("journal-*.jsonl")) if journal.exists() else 0
        if lines >= 5:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and not out.exists()
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    tagged_now = int(done.stdout.split("tagged now ")[1].split(" ")[0])
    assert 0 < tagged_now <= 55  # the files tagged before the kill were kept
    table = pq.read_table(out)
    assert sorted(table["path"].to_pylist()) == sorted(str(p) for p in library.iterdir())  # each exactly once
    assert not journal.exists()


def test_the_ray_engine_gives_the_same_rows_as_the_local_one(folder, tmp_path, capsys):
    pytest.importorskip("ray")
    local, remote = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    paths = [str(folder / "nested"), str(folder / "bad"), str(folder / "example.wav")]
    main(["tag", *paths, "--out", str(local), "--segments", str(tmp_path / "local-seg.parquet"), "--quiet"])
    capsys.readouterr()
    assert main(["tag", *paths, "--out", str(remote), "--segments", str(tmp_path / "ray-seg.parquet"),
                 "--engine", "ray", "--workers", "2", "--quiet"]) == 2
    assert "7 files; tagged now 7 (4 failed" in capsys.readouterr().out
    drop = lambda table: table.drop_columns(["tagged"]).to_pylist()  # noqa: E731
    assert drop(pq.read_table(remote)) == drop(pq.read_table(local))
    assert drop(pq.read_table(tmp_path / "ray-seg.parquet")) == drop(pq.read_table(tmp_path / "local-seg.parquet"))
    assert len(pq.read_table(tmp_path / "ray-seg.parquet")) > 3  # more segments than the 3 files tagged
    assert main(["tag", *paths, "--out", str(remote), "--engine", "ray", "--quiet"]) == 2  # resumes: bad ones again
    assert "tagged now 4 (4 failed" in capsys.readouterr().out
