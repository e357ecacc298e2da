"""Import of image-prompt pairs from a manifest (CSV or JSONL) and a folder of images.

One service for every way items arrive: `manage.py import_items` and the admins' upload page
(aggregation/exports/jobs.py) both call items_import_manifest, so a row is checked and written
the same way wherever it comes from. A bad row is reported as `FILE:LINE: reason` and skipped;
each good row is written by item_create (its own transaction, no orphan file).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from annotation.models import Campaign, Split
from annotation.services import ItemInput, item_create
from modeling.data.tables import TableError, read_table_rows
from richhf_site.errors import ApplicationError

IMAGE_KEYS = ("image", "file_name", "filename", "path")
PROMPT_KEYS = ("prompt", "caption", "text")
MANIFEST_NAMES = ("items.jsonl", "items.csv", "prompts.jsonl", "prompts.csv")
MANIFEST_SUFFIXES = (".jsonl", ".csv")


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (not UTF-8, wrong suffix, not a table)."""


@dataclass
class ManifestRow:
    line: int
    fields: dict | None
    error: str = ""


@dataclass
class ManifestReport:
    imported: int = 0
    already_present: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.imported} imported, {self.already_present} already present, {len(self.problems)} with errors"


def manifest_find(path: Path) -> Path:
    """The manifest itself, or the first of MANIFEST_NAMES in the folder."""
    if path.is_file():
        return path
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name
        raise ManifestError(f"{path}: no {', '.join(MANIFEST_NAMES[:-1])} or {MANIFEST_NAMES[-1]} in this folder")
    raise ManifestError(f"{path}: no such file or folder")


def manifest_read(path: Path) -> list[ManifestRow]:
    """Reads (and so decodes) the whole manifest: a file that is not UTF-8 is refused before
    anything is written. A line that cannot be parsed comes back with its error."""
    try:
        return [
            ManifestRow(row.line, None, row.error) if row.error else ManifestRow(row.line, row.fields)
            for row in read_table_rows(path, suffixes=MANIFEST_SUFFIXES)
        ]
    except TableError as exc:
        raise ManifestError(str(exc)) from exc


def _first(fields: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = fields.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def _parse_bool(value: object) -> bool | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "y"}:
        return True
    if text in {"0", "false", "no", "n"}:
        return False
    raise ValueError(f"photorealistic must be true/false, not {value!r}")


def _parse_priority(value: object) -> float:
    """A finite number: a JSON number, or a CSV cell holding one. "nan" and "inf" parse as
    floats but are refused (NaN would sort first in the queue); so is JSON true, not 1."""
    if value in (None, ""):
        return 0.0
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ValueError(f"priority must be a finite number, not {value!r}")
    return number


def item_input_from_row(fields: dict, base: Path, default_split: str | None) -> ItemInput:
    """One manifest row as an item, its image read from base (never from outside it)."""
    image_name = _first(fields, IMAGE_KEYS)
    if not image_name:
        raise ValueError(f"no image column (one of {', '.join(IMAGE_KEYS)})")
    prompt = _first(fields, PROMPT_KEYS)
    if not prompt.strip():
        raise ValueError(f"no prompt (one of {', '.join(PROMPT_KEYS)})")
    image_path = (base / image_name).resolve()
    if base.resolve() not in image_path.parents:
        raise ValueError(f"image path {image_name!r} points outside {base}")
    if not image_path.is_file():
        raise ValueError(f"image {image_name!r} not found in {base}")
    generator = fields.get("generator")
    return ItemInput(
        image_bytes=image_path.read_bytes(),
        filename=image_name,
        prompt=prompt,
        source_id=str(fields.get("source_id") or Path(image_name).name),
        category=str(fields.get("category") or ""),
        photorealistic=_parse_bool(fields.get("photorealistic")),
        split=str(fields.get("split") or default_split or Split.TRAIN),
        priority=_parse_priority(fields.get("priority")),
        generator="" if generator is None else str(generator),
    )


def items_import_rows(
    *,
    campaign: Campaign,
    rows: list[ManifestRow],
    base: Path,
    label: str,
    default_split: str | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> ManifestReport:
    """Imports the rows (read by manifest_read) into campaign. label names the manifest in
    every problem (`label:LINE: reason`); images are looked up in base. Call it outside any
    transaction: each item is committed on its own, so a bad row never undoes a good one."""
    report = ManifestReport()
    total = len(rows)
    for done, row in enumerate(rows, start=1):
        where = f"{label}:{row.line}"
        if row.fields is None:
            report.problems.append(f"{where}: {row.error}")
        else:
            try:
                data = item_input_from_row(row.fields, base, default_split)
                _, created = item_create(campaign=campaign, data=data)
            except (ValueError, OSError, ApplicationError) as exc:
                report.problems.append(f"{where}: {getattr(exc, 'message', None) or exc}")
            else:
                report.imported += created
                report.already_present += not created
        if progress:
            progress(done, total)
    return report
