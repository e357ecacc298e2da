"""The one reader of manifests and prompt lists: rows, their FILE:LINE, and what spreadsheets write."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeling.data.tables import TableError, read_table_rows


def test_csv_with_a_byte_order_mark_keeps_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes('\ufeffimage,prompt\na.png,a red cup\nb.png,"two, horses"\n'.encode())
    rows = list(read_table_rows(path))
    assert [r.fields for r in rows] == [
        {"image": "a.png", "prompt": "a red cup"},
        {"image": "b.png", "prompt": "two, horses"},
    ]
    assert [r.where for r in rows] == [f"{path}:2", f"{path}:3"]


def test_jsonl_with_a_byte_order_mark_keeps_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes('\ufeff{"image": "a.png"}\n\n{"image": "b.png"}\n'.encode())
    rows = list(read_table_rows(path))
    assert [(r.line, r.fields) for r in rows] == [(1, {"image": "a.png"}), (3, {"image": "b.png"})]


def test_bad_jsonl_lines_are_reported_with_their_line_and_the_rest_still_read(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"image": "a.png"}\n{not json\n[1, 2]\n' + "[" * 100_000 + "\n" + '{"image": "b.png"}\n')
    rows = list(read_table_rows(path))
    assert [(r.line, r.error is None) for r in rows] == [(1, True), (2, False), (3, False), (4, False), (5, True)]
    assert rows[1].error is not None and rows[1].error.startswith("not valid JSON")
    assert rows[2].error == "expected a JSON object"
    assert rows[4].fields == {"image": "b.png"}


def test_latin1_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_bytes("filename,caption\na.png,ok\nb.png,caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(TableError, match=rf"{path}:3: not UTF-8"):
        list(read_table_rows(path))


def test_parquet_rows_are_numbered(tmp_path: Path) -> None:
    path = tmp_path / "prompts.parquet"
    pq.write_table(pa.table({"filename": ["a.png", "b.png"], "caption": ["x", "y"]}), path)
    rows = list(read_table_rows(path))
    assert [(r.where, r.fields["caption"]) for r in rows] == [(f"{path}#row1", "x"), (f"{path}#row2", "y")]


def test_unknown_kind_of_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "items.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(TableError, match=r"items.xlsx: must be a .csv or .jsonl file"):
        list(read_table_rows(path, suffixes=(".csv", ".jsonl")))


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_other_encodings_of_spreadsheets_are_refused_naming_the_file(tmp_path: Path, encoding: str) -> None:
    """Excel's "Unicode text" (UTF-16) and Windows' ANSI CSV: a clear error, never a traceback."""
    path = tmp_path / "items.csv"
    path.write_bytes("image,prompt\na.png,a café\n".encode(encoding))
    with pytest.raises(TableError, match=rf"^{path}:\d+: not UTF-8 text"):
        list(read_table_rows(path))


def test_csv_from_excel_with_crlf_and_a_byte_order_mark_numbers_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(b'\xef\xbb\xbfimage,prompt\r\na.png,"a cup,\r\non a table"\r\nb.png,two\r\n')
    rows = list(read_table_rows(path))
    assert [(r.line, r.fields["image"]) for r in rows] == [(3, "a.png"), (4, "b.png")]
    assert rows[0].fields["prompt"] == "a cup,\r\non a table"


def test_csv_the_csv_module_cannot_read_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(b"image,prompt\na.png,short\nb.png," + b"x" * 200_000 + b"\n")
    with pytest.raises(TableError, match=rf"^{path}:3: not readable as CSV \(field larger than field limit"):
        list(read_table_rows(path))


def test_parquet_that_is_not_parquet_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "prompts.parquet"
    path.write_bytes(b"filename,caption\na.png,x\n")
    with pytest.raises(TableError, match=rf"^{path}: not a readable Parquet file"):
        list(read_table_rows(path))


def test_unreadable_file_is_a_named_error(tmp_path: Path) -> None:
    folder = tmp_path / "items.csv"
    folder.mkdir()  # a folder where the file should be
    with pytest.raises(TableError, match=rf"^{folder}: cannot read the file"):
        list(read_table_rows(folder))
