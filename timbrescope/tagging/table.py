"""The tag table: one row per file, its segments, and how a run keeps them safe until the output is written.

Columns of a row: ``path``, ``size`` (bytes), ``mtime`` (seconds since the epoch), ``duration`` (seconds,
decoded), ``format``, ``model``, ``detected``, ``families`` and ``sources`` (lists), ``score_<label>`` for every label of
the model, ``warnings`` (list), ``error`` (null unless the file failed) and ``tagged`` (when it was tagged,
seconds since the epoch). A segment row: ``path``, ``tagged``, ``label``, ``start``, ``end``, ``score``.

A run writes nothing but its work folder (``OUT.parts/``) until it ends: every finished file is one line
appended to a journal (``journal-*.jsonl``; a line cut by a kill is ignored), and every ``PART_ROWS``
files the journal becomes Parquet parts (written to a temp name, then renamed). At the end the old
output, the parts and the journals are merged (the last tagged row of each path wins, with its segments)
into the output, written atomically, and the work folder is removed. A killed run thus loses at most the
files in flight, and the output is always the old one or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from timbrescope.errors import ParameterError
from timbrescope.fileio import atomic_write

FORMATS = (".parquet", ".csv", ".jsonl")
PART_ROWS = 2000  # files per Parquet part
LISTS = ("detected", "families", "sources", "warnings")


def row_schema(labels: list[str]) -> pa.Schema:
    """The columns of a row for a model with ``labels``."""
    return pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime", pa.float64()),
                      ("duration", pa.float64()), ("format", pa.string()), ("model", pa.string()),
                      ("detected", pa.list_(pa.string())), ("families", pa.list_(pa.string())),
                      ("sources", pa.list_(pa.string())),
                      *[(f"score_{label}", pa.float32()) for label in labels],
                      ("warnings", pa.list_(pa.string())), ("error", pa.string()), ("tagged", pa.float64())])


SEGMENT_SCHEMA = pa.schema([("path", pa.string()), ("tagged", pa.float64()), ("label", pa.string()),
                            ("start", pa.float64()), ("end", pa.float64()), ("score", pa.float64())])


def output_format(path: Path) -> str:
    """``.parquet``, ``.csv`` or ``.jsonl`` (ParameterError for anything else)."""
    if path.suffix.lower() not in FORMATS:
        raise ParameterError(f"{path}: the output must end in .parquet, .csv or .jsonl")
    return path.suffix.lower()


def read_table(path: Path, schema: pa.Schema) -> pa.Table:
    """A table written by ``write_table`` (an empty one when ``path`` does not exist)."""
    if not path.exists():
        return schema.empty_table()
    kind = output_format(path)
    try:
        if kind == ".parquet":
            table = pq.read_table(path)
        elif kind == ".jsonl":
            table = pa.Table.from_pylist([json.loads(line) for line in path.read_text().splitlines() if line])
        else:
            text = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in schema.names}, strings_can_be_null=True))
            rows = text.to_pylist()
            for row in rows:
                for name in LISTS:
                    if name in row:
                        row[name] = json.loads(row[name]) if row[name] else []
            table = pa.Table.from_pylist(rows)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ParameterError(f"{path}: cannot read it as a tag table to resume ({exc}); use another --out") from None
    if set(table.column_names) != set(schema.names):
        raise ParameterError(f"{path}: its columns are not this model's tag table; use another --out")
    return table.select(schema.names).cast(schema) if len(table) else schema.empty_table()


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` in the format its suffix names, atomically (CSV lists as JSON text)."""
    kind = output_format(path)

    def write(temp: Path) -> None:
        if kind == ".parquet":
            pq.write_table(table, temp)
        elif kind == ".jsonl":
            with open(temp, "w") as out:
                for row in table.to_pylist():
                    out.write(json.dumps(row) + "\n")
        else:
            columns = {name: (pa.array([json.dumps(v) for v in table[name].to_pylist()], pa.string())
                              if name in LISTS else table[name]) for name in table.column_names}
            pa_csv.write_csv(pa.table(columns), temp)

    atomic_write(path, write)


class Store:
    """The work folder of a run writing ``out`` (and ``segments``): journal, parts, merge."""

    def __init__(self, out: Path, segments: Path | None, labels: list[str]):
        self.out, self.segments = out, segments
        self.schema = row_schema(labels)
        self.folder = Path(f"{out}.parts")
        self._run = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self._rows: list[dict] = []
        self._segments: list[dict] = []
        self._parts = 0
        self._journal = None  # opened at the first file

    def _open_journal(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        return open(self.folder / f"journal-{self._run}-{self._parts:05d}.jsonl", "a")

    def ray_folder(self) -> Path:
        """Where this run's Ray workers write their Parquet files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"ray-{self._run}"

    def done(self) -> dict[str, tuple[int, float, str]]:
        """Path -> (size, mtime, model) of every file already tagged without an error (output, parts
        and journals)."""
        table = self._rows_table(self._journals())
        return {path: (size, mtime, model) for path, size, mtime, model, error in zip(
            *(table[name].to_pylist() for name in ("path", "size", "mtime", "model", "error"))) if error is None}

    def add(self, row: dict, segments: list[dict]) -> None:
        """Keep one finished file (on disk at once: a journal line)."""
        self._journal = self._journal or self._open_journal()
        self._journal.write(json.dumps({"row": row, "segments": segments}) + "\n")
        self._journal.flush()
        self._rows.append(row)
        self._segments += segments
        if len(self._rows) >= PART_ROWS:
            self._flush()

    def finish(self, paths: Iterable[str]) -> pa.Table:
        """Merge everything into the output (rows of ``paths`` only, sorted by path); remove the work folder."""
        self._flush()
        if self._journal:
            self._journal.close()
        keep = set(paths)
        entries = self._journals()  # read once for the rows and their segments
        rows = self._rows_table(entries)
        rows = rows.filter(pa.array([p in keep for p in rows["path"].to_pylist()], pa.bool_())).sort_by("path")
        write_table(rows, self.out)
        if self.segments is not None:
            wanted = set(zip(rows["path"].to_pylist(), rows["tagged"].to_pylist()))
            segs = self._segments_table(entries)
            segs = segs.filter(pa.array([k in wanted for k in zip(segs["path"].to_pylist(), segs["tagged"].to_pylist())],
                                        pa.bool_())).sort_by([("path", "ascending"), ("start", "ascending")])
            write_table(segs, self.segments)
        shutil.rmtree(self.folder, ignore_errors=True)
        return rows

    def _flush(self) -> None:
        """The journal's rows as Parquet parts (segments first: a part's rows find their segments), then a new journal."""
        if not self._rows:
            return
        stem = f"{self._run}-{self._parts:05d}"
        atomic_write(self.folder / f"segments-{stem}.parquet",
                     lambda t: pq.write_table(pa.Table.from_pylist(self._segments, SEGMENT_SCHEMA), t))
        atomic_write(self.folder / f"rows-{stem}.parquet",
                     lambda t: pq.write_table(pa.Table.from_pylist(self._rows, self.schema), t))
        self._journal.close()
        Path(self._journal.name).unlink()
        self._parts += 1
        self._rows, self._segments = [], []
        self._journal = self._open_journal()

    def _journals(self) -> list[dict]:
        """The entries (``{"row", "segments"}``) of the journals and of the Ray engine's Parquet files
        (columns ``row`` and ``segments``, JSON text); what a kill cut short is skipped."""
        entries = []
        for journal in sorted(self.folder.glob("journal-*.jsonl")):
            for line in journal.read_text().splitlines():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:  # the line a kill cut short
                    pass
        for part in sorted(self.folder.glob("ray-*/*.parquet")):
            try:
                table = pq.read_table(part)
            except (OSError, pa.ArrowException):  # a file a kill cut short
                continue
            entries += [{"row": json.loads(row), "segments": json.loads(segments)}
                        for row, segments in zip(table["row"].to_pylist(), table["segments"].to_pylist())]
        return entries

    def _rows_table(self, entries: list[dict]) -> pa.Table:
        tables = [read_table(self.out, self.schema)]
        tables += [pq.read_table(p).cast(self.schema) for p in sorted(self.folder.glob("rows-*.parquet"))]
        tables.append(pa.Table.from_pylist([e["row"] for e in entries], self.schema))
        return _latest(pa.concat_tables(tables))

    def _segments_table(self, entries: list[dict]) -> pa.Table:
        tables = [read_table(self.segments, SEGMENT_SCHEMA)] if self.segments else []
        tables += [pq.read_table(p).cast(SEGMENT_SCHEMA) for p in sorted(self.folder.glob("segments-*.parquet"))]
        tables.append(pa.Table.from_pylist([s for e in entries for s in e["segments"]], SEGMENT_SCHEMA))
        return pa.concat_tables(tables)


def _latest(table: pa.Table) -> pa.Table:
    """One row per path: the last tagged."""
    tagged, paths = table["tagged"].to_pylist(), table["path"].to_pylist()
    latest = {paths[i]: i for i in sorted(range(len(table)), key=tagged.__getitem__)}
    return table.take(pa.array(sorted(latest.values()), pa.int64()))


def stat(path: str) -> tuple[int | None, float | None]:
    """(size in bytes, mtime in seconds) of a file; (None, None) when there is none (a broken link)."""
    try:
        info = os.stat(path)
    except OSError:
        return None, None
    return info.st_size, info.st_mtime
