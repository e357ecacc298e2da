"""Streaming writers: TFRecord (the public release), Parquet, raw JSONL.

Each export is written into a temporary folder next to the destination and moved into place
only when complete, so a failed or interrupted export never leaves a half-written file and
never destroys an earlier export in the same folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.utils import timezone

from annotation.models import Campaign
from modeling.data.release import RichHFRecord
from modeling.data.tfrecord import TFRecordWriter
from modeling.protocol import RELEASE_SCORE_FEATURES, SCORE_NAMES

from .records import SPLIT_ORDER, ExportRecord, export_plan, iter_export_records, iter_raw_annotations

FORMATS = ("tfrecord", "parquet", "jsonl")
PARQUET_ROW_GROUP = 256

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class ExportedFile:
    name: str
    records: int
    bytes: int
    sha256: str


@dataclass
class ExportResult:
    format: str
    campaign: str
    items: int
    left_out: dict[str, int]
    files: list[ExportedFile] = field(default_factory=list)

    def summary(self) -> str:
        left = ", ".join(f"{n} {why}" for why, n in self.left_out.items()) or "nothing"
        return f"{self.items} items exported ({', '.join(f.name for f in self.files)}); left out: {left}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_record(record: ExportRecord) -> RichHFRecord:
    return RichHFRecord.from_protocol(
        filename=record.filename,
        scores=record.normalised,
        map_pngs={"implausibility": record.implausibility_png, "misalignment": record.misalignment_png},
        prompt_misalignment_label=record.prompt_misalignment_label,
    )


def _write_tfrecord(
    campaign: Campaign,
    tmp: Path,
    progress: Progress,
    total: int,
    with_images: bool = False,
    splits: tuple[str, ...] = SPLIT_ORDER,
) -> list[tuple[str, int]]:
    """The release's three files; with_images adds images/<filename> and prompts.jsonl, the
    layout modeling/ trains on (the release itself ships neither)."""
    from django.core.files.storage import default_storage

    written = []
    done = 0
    prompts = (tmp / "prompts.jsonl").open("w", encoding="utf-8") if with_images else None
    if with_images:
        (tmp / "images").mkdir()
    try:
        for split in splits:
            name = f"{split}.tfrecord"
            with TFRecordWriter(tmp / name) as writer:
                for record in iter_export_records(campaign, splits=(split,)):
                    writer.write_example(release_record(record).to_features())
                    if prompts is not None:
                        with default_storage.open(record.image_name, "rb") as src:
                            (tmp / "images" / Path(record.filename).name).write_bytes(src.read())
                        line = {"filename": record.filename, "caption": record.prompt}
                        if record.generator:  # import_richhf reads it back (a generator column)
                            line["generator"] = record.generator
                        prompts.write(json.dumps(line) + "\n")
                    done += 1
                    progress(done, total)
                written.append((name, writer.count))
    finally:
        if prompts is not None:
            prompts.close()
    if with_images:
        written.append(("prompts.jsonl", done))
    return written


PARQUET_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("filename", pa.string()),
        ("prompt", pa.string()),
        ("words", pa.list_(pa.string())),
        ("split", pa.string()),
        ("category", pa.string()),
        ("photorealistic", pa.bool_()),
        ("source_id", pa.string()),
        ("generator", pa.string()),
        ("image_path", pa.string()),
        ("image", pa.binary()),
        *[(f"{s}_mean", pa.float64()) for s in SCORE_NAMES],
        *[(f"{s}_score", pa.float64()) for s in SCORE_NAMES],
        ("n_raters", pa.int32()),
        ("word_votes", pa.list_(pa.int32())),
        ("prompt_misalignment_label", pa.string()),
        ("tagged_target", pa.string()),
        ("artifact_map", pa.binary()),
        ("misalignment_map", pa.binary()),
        ("origin", pa.string()),
    ]
)


@dataclass(frozen=True)
class ExtraColumns:
    """Columns another app adds to the Parquet rows (one per exported item) and the raw JSONL
    rows (one per answer). Each factory is called once per export, so it can read in bulk, and
    returns the per-row lookup. The TFRecord release format never gets extra columns."""

    parquet_fields: list[pa.Field]
    parquet: Callable[[Campaign], Callable[[int], dict]]  # item id -> values
    jsonl: Callable[[Campaign], Callable[[dict], dict]]  # raw row -> values


_extra_columns: dict[str, ExtraColumns] = {}


def extra_columns_register(*, name: str, columns: ExtraColumns) -> None:
    """Called from an AppConfig.ready(); keyed by name, so a second ready() replaces."""
    _extra_columns[name] = columns


def _parquet_schema() -> pa.Schema:
    schema = PARQUET_SCHEMA
    for extra in _extra_columns.values():
        for f in extra.parquet_fields:
            schema = schema.append(f)
    return schema


def _parquet_row(record: ExportRecord, include_image: bool, read_image: Callable[[str], bytes]) -> dict:
    return {
        "item_id": record.item_id,
        "filename": record.filename,
        "prompt": record.prompt,
        "words": record.words,
        "split": record.split,
        "category": record.category,
        "photorealistic": record.photorealistic,
        "source_id": record.source_id,
        "generator": record.generator,
        "image_path": record.image_name,
        "image": read_image(record.image_name) if include_image else None,
        **{f"{s}_mean": record.raw_mean[s] for s in SCORE_NAMES},
        **{f"{s}_score": record.normalised[s] for s in SCORE_NAMES},
        "n_raters": record.n_raters,
        "word_votes": record.word_votes,
        "prompt_misalignment_label": record.prompt_misalignment_label,
        "tagged_target": record.tagged_target,
        "artifact_map": record.implausibility_png,
        "misalignment_map": record.misalignment_png,
        "origin": record.origin,
    }


def _write_parquet(
    campaign: Campaign,
    tmp: Path,
    progress: Progress,
    total: int,
    include_image: bool,
    splits: tuple[str, ...] = SPLIT_ORDER,
) -> list[tuple[str, int]]:
    from django.core.files.storage import default_storage

    def read_image(name: str) -> bytes:
        with default_storage.open(name, "rb") as handle:
            return handle.read()

    name = "richhf.parquet"
    count = 0
    rows: list[dict] = []
    schema = _parquet_schema()
    extras = [extra.parquet(campaign) for extra in _extra_columns.values()]
    with pq.ParquetWriter(tmp / name, schema, compression="zstd") as writer:
        for record in iter_export_records(campaign, splits=splits):
            row = _parquet_row(record, include_image, read_image)
            for lookup in extras:
                row.update(lookup(record.item_id))
            rows.append(row)
            count += 1
            if len(rows) >= PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows.clear()
            progress(count, total)
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return [(name, count)]


def _write_jsonl(
    campaign: Campaign, tmp: Path, progress: Progress, total: int, split: str | None = None
) -> list[tuple[str, int]]:
    name = "annotations.jsonl"
    count = 0
    extras = [extra.jsonl(campaign) for extra in _extra_columns.values()]
    with (tmp / name).open("w", encoding="utf-8") as handle:
        for row in iter_raw_annotations(campaign, split=split):
            for lookup in extras:
                row.update(lookup(row))
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
            progress(count, total)
    return [(name, count)]


def _distinct_items_in_jsonl(path: Path) -> int:
    # Rows come ordered by item, so counting changes of item_id needs no set of all ids.
    items, last = 0, None
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            item_id = json.loads(line)["item_id"]
            if item_id != last:
                items, last = items + 1, item_id
    return items


def export_campaign(
    *,
    campaign: Campaign,
    fmt: str,
    out_dir: Path,
    progress: Progress | None = None,
    include_image_bytes: bool = False,
    with_images: bool = False,
    split: str | None = None,
) -> ExportResult:
    """Writes the export into out_dir (created if needed) and returns what was written.

    split limits the export to one split (tfrecord: that split's file only). Files appear in
    out_dir only once all of them are complete; other files already in out_dir are left alone.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if split and split not in SPLIT_ORDER:
        raise ValueError(f"split must be one of {', '.join(SPLIT_ORDER)}, not {split!r}")
    splits = (split,) if split else SPLIT_ORDER
    progress = progress or (lambda done, total: None)
    plan = export_plan(campaign, split=split)
    if fmt == "jsonl":
        from annotation.models import Annotation

        answers = Annotation.objects.filter(item__campaign=campaign)
        total = (answers.filter(item__split=split) if split else answers).count()
    else:
        total = plan.exportable
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        if fmt == "tfrecord":
            written = _write_tfrecord(campaign, tmp, progress, total, with_images, splits)
        elif fmt == "parquet":
            written = _write_parquet(campaign, tmp, progress, total, include_image_bytes, splits)
        else:
            written = _write_jsonl(campaign, tmp, progress, total, split)
        files = [
            ExportedFile(name=name, records=n, bytes=(tmp / name).stat().st_size, sha256=sha256_of(tmp / name))
            for name, n in written
        ]
        if fmt == "tfrecord":
            # Only the release files count as records; prompts.jsonl rides along.
            files_for_count = [f for f in files if f.name.endswith(".tfrecord")]
        else:
            files_for_count = files
        result = ExportResult(
            format=fmt,
            campaign=campaign.name,
            items=_distinct_items_in_jsonl(tmp / written[0][0])
            if fmt == "jsonl"
            else sum(f.records for f in files_for_count),
            # Raw answers include incomplete items: nothing is left out of a JSONL export.
            left_out={} if fmt == "jsonl" else plan.left_out,
            files=files,
        )
        manifest = {
            **asdict(result),
            "created_at": timezone.now().isoformat(),
            "campaign_settings": {
                "raters_per_item": campaign.raters_per_item,
                "radius_fraction": campaign.radius_fraction,
                "heatmap_size": [campaign.heatmap_width, campaign.heatmap_height],
            },
            "score_mapping": RELEASE_SCORE_FEATURES if fmt == "tfrecord" else None,
        }
        (tmp / f"manifest-{fmt}.json").write_text(json.dumps(manifest, indent=2))
        for name, _ in written:
            os.replace(tmp / name, out_dir / name)
        if (tmp / "images").is_dir():
            shutil.rmtree(out_dir / "images", ignore_errors=True)
            os.replace(tmp / "images", out_dir / "images")
        os.replace(tmp / f"manifest-{fmt}.json", out_dir / f"manifest-{fmt}.json")
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
