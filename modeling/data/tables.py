"""Rows of the tabular files people hand us (manifests, prompt lists): CSV, JSONL, Parquet.

One reader for every importer, so each reports a bad row the same way, as ``FILE:LINE: reason``
(``FILE#rowN`` for Parquet), and each accepts what spreadsheets write: a UTF-8 byte-order mark
is dropped, not taken for part of the first column's name.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")


class TableError(ValueError):
    """The file as a whole cannot be read (wrong kind, not UTF-8); the message names it."""


@dataclass(frozen=True)
class TableRow:
    where: str  # "FILE:LINE" (CSV, JSONL) or "FILE#rowN" (Parquet)
    line: int
    fields: dict[str, Any]
    error: str | None = None  # set when this one row cannot be parsed; fields is then empty


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(f"{path}:{line}: not UTF-8 text (save the file as UTF-8)") from exc


def read_table_rows(path: Path, *, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> Iterator[TableRow]:
    """Yields every row of a CSV (header row of column names), JSONL (one JSON object a line;
    blank lines skipped) or Parquet file. A row that cannot be parsed comes with ``error``."""
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise TableError(f"{path}: must be a {' or '.join(suffixes)} file")
    if suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix == ".jsonl":
        for line_no, line in enumerate(_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield TableRow(where, line_no, {}, f"not valid JSON ({message})")
                continue
            if not isinstance(record, dict):
                yield TableRow(where, line_no, {}, "expected a JSON object")
                continue
            yield TableRow(where, line_no, record)
    else:
        yield from _parquet_rows(path)


def _csv_rows(path: Path) -> Iterator[TableRow]:
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    try:
        for record in reader:
            # reader.line_num is the physical line of the record's end (1 = the header).
            fields = {k: v for k, v in record.items() if k is not None}
            yield TableRow(f"{path}:{reader.line_num}", reader.line_num, fields)
    except csv.Error as exc:  # e.g. a cell past csv's field size limit: the framing is lost
        # line_num still counts the last record read; the bad one starts on the next line.
        raise TableError(f"{path}:{reader.line_num + 1}: not readable as CSV ({exc})") from exc


def _parquet_rows(path: Path) -> Iterator[TableRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096)
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"{path}: not a readable Parquet file ({exc})") from exc
    index = 0
    try:
        for batch in batches:
            for record in batch.to_pylist():
                index += 1
                yield TableRow(f"{path}#row{index}", index, record)
    except (pa.ArrowException, OSError) as exc:  # a damaged row group, after the rows before it
        raise TableError(f"{path}#row{index + 1}: not a readable Parquet row ({exc})") from exc
