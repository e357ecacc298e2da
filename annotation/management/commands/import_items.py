"""Import image-prompt pairs from a folder of images and a JSONL or CSV manifest."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.models import Campaign, Split
from annotation.services import ItemInput, item_create
from modeling.data.tables import TableError, read_table_rows
from richhf_site.errors import ApplicationError

IMAGE_KEYS = ("image", "file_name", "filename", "path")
PROMPT_KEYS = ("prompt", "caption", "text")


@dataclass
class Row:
    line: int
    fields: dict


def read_manifest(path: Path) -> Iterator[Row | tuple[int, str]]:
    """Yields rows, or (line, error) for a line that cannot be parsed."""
    try:
        for row in read_table_rows(path, suffixes=(".jsonl", ".csv")):
            yield (row.line, row.error) if row.error else Row(row.line, row.fields)
    except TableError as exc:
        raise CommandError(str(exc)) from exc


def _first(fields: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = fields.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def _parse_bool(value) -> bool | None:
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


class Command(BaseCommand):
    help = (
        "Import a folder of images with prompts. PATH is the folder (holding items.jsonl, items.csv, "
        "prompts.jsonl or prompts.csv) or the manifest file itself; image paths are relative to the "
        "manifest's folder. Columns: image (or file_name), prompt (or caption), and optional source_id, "
        "category, photorealistic, split (train/dev/test), priority."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--campaign", required=True, help="campaign name (created if missing)")
        parser.add_argument("--split", default=None, choices=Split.values, help="split for rows that name none")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        manifest = self._find_manifest(Path(opts["path"]))
        base = manifest.parent
        # Read (and so decode) the whole manifest first: a file that is not UTF-8 is refused
        # before anything, even the campaign, is written.
        rows = list(read_manifest(manifest))
        campaign, made = Campaign.objects.get_or_create(name=opts["campaign"])
        if made:
            self.stdout.write(f"Created campaign {campaign.name!r}.")
        created = duplicates = 0
        errors: list[str] = []
        for row in tqdm(rows, desc="import", unit="item", disable=opts["no_progress"]):
            if isinstance(row, tuple):
                errors.append(f"{manifest}:{row[0]}: {row[1]}")
                continue
            where = f"{manifest}:{row.line}"
            try:
                data = self._item_input(row.fields, base, default_split=opts["split"])
                _, was_created = item_create(campaign=campaign, data=data)
            except (ValueError, OSError, ApplicationError) as exc:
                errors.append(f"{where}: {getattr(exc, 'message', None) or exc}")
                continue
            created += was_created
            duplicates += not was_created
        for line in errors:
            self.stderr.write(line)
        summary = f"{created} imported, {duplicates} already present, {len(errors)} with errors into {campaign.name!r}."
        if errors:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))

    @staticmethod
    def _find_manifest(path: Path) -> Path:
        if path.is_file():
            return path
        if path.is_dir():
            for name in ("items.jsonl", "items.csv", "prompts.jsonl", "prompts.csv"):
                if (path / name).is_file():
                    return path / name
            raise CommandError(f"{path}: no items.jsonl, items.csv, prompts.jsonl or prompts.csv in this folder")
        raise CommandError(f"{path}: no such file or folder")

    @staticmethod
    def _item_input(fields: dict, base: Path, default_split: str | None) -> ItemInput:
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
        return ItemInput(
            image_bytes=image_path.read_bytes(),
            filename=image_name,
            prompt=prompt,
            source_id=str(fields.get("source_id") or Path(image_name).name),
            category=str(fields.get("category") or ""),
            photorealistic=_parse_bool(fields.get("photorealistic")),
            split=str(fields.get("split") or default_split or Split.TRAIN),
            priority=_parse_priority(fields.get("priority")),
        )
