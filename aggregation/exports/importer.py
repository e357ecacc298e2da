"""Import of release TFRecord files (public RichHF-18K or our own exports).

Every record is checked before anything is written: framing and CRCs, the eight features,
a prompt for its filename, the number of word labels against the prompt's words, decodable
heatmaps, an image file. A bad record is reported as FILE#INDEX: reason and skipped; each
good record is written in its own transaction (item + ground truth + files), so nothing is
ever half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction

from annotation.gold import gold_from_import
from annotation.models import Campaign, GoldReference, Split
from annotation.services import ItemInput, item_create, item_mark_labelled
from modeling.data.release import RichHFRecord
from modeling.data.tables import TableError, read_table_rows
from modeling.data.tfrecord import decode_example, scan_records
from modeling.heatmaps import decode_heatmap_png, encode_png
from modeling.protocol import MAP_KINDS, RELEASE_MAP_NAMES
from modeling.text import labels_to_misaligned_indices, split_prompt_words, tagged_target
from richhf_site.errors import ApplicationError

from .models import ImportedLabel

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


@dataclass
class ImportReport:
    imported: int = 0
    already_present: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.imported} imported, {self.already_present} already present, {len(self.problems)} problems"


class PromptsError(ValueError):
    pass


def load_prompts(path: Path) -> dict[str, str]:
    """(filename or id) -> caption, from CSV, JSONL or Parquet. Keys are stored both as given
    and as the base name without extension, so either form matches a record's filename."""
    return load_prompt_table(path)[0]


def load_prompt_table(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(captions, generators): both keyed as load_prompts says. The optional `generator`
    column names the model that made each image (the dashboard compares generators)."""
    if not path.is_file():
        raise PromptsError(f"{path}: no such prompts file")
    prompts: dict[str, str] = {}
    generators: dict[str, str] = {}
    try:
        for row in read_table_rows(path):
            if row.error:
                raise PromptsError(f"{row.where}: {row.error}")
            fields = row.fields
            key = str(
                fields.get("filename") or fields.get("file_name") or fields.get("id") or fields.get("image_id") or ""
            ).strip()
            caption = fields.get("caption") or fields.get("prompt")
            if not key or caption is None:
                raise PromptsError(f"{row.where}: needs a filename (or id) and a caption (or prompt)")
            prompts[key] = str(caption)
            prompts.setdefault(Path(key).stem, str(caption))
            generator = fields.get("generator")
            if generator not in (None, ""):
                generators[key] = str(generator)
                generators.setdefault(Path(key).stem, str(generator))
    except TableError as exc:
        raise PromptsError(str(exc)) from exc
    return prompts, generators


def index_images(folder: Path) -> dict[str, Path]:
    """Base name without extension -> image path (the release matches images by base name)."""
    if not folder.is_dir():
        raise PromptsError(f"{folder}: no such images folder")
    return {p.stem: p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def _split_of(path: Path) -> str:
    stem = path.stem.lower()
    for split in Split.values:
        if stem == split or stem.startswith(f"{split}.") or stem.startswith(f"{split}-") or stem.endswith(f"_{split}"):
            return split
    return Split.TRAIN


def _check_map(png: bytes, feature: str) -> np.ndarray:
    try:
        array = decode_heatmap_png(png)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the record's problem
        raise ValueError(f"{feature} is not a decodable image ({exc})") from exc
    if array.ndim != 2:
        raise ValueError(f"{feature} must be a grayscale image")
    return array


@dataclass
class _Checked:
    record: RichHFRecord
    prompt: str
    words: list[str]
    misaligned: list[int]
    image: Path
    maps: tuple[bytes, bytes]
    generator: str = ""


def _check(
    data: bytes, prompts: dict[str, str], images: dict[str, Path], generators: dict[str, str] | None = None
) -> _Checked:
    try:
        record = RichHFRecord.from_features(decode_example(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a release record: {exc}") from exc
    prompt = prompts.get(record.filename) or prompts.get(record.image_id)
    if prompt is None:
        raise ValueError(f"no prompt for {record.filename!r} in the prompts file")
    words = split_prompt_words(prompt)
    misaligned = labels_to_misaligned_indices(record.prompt_misalignment_label, len(words))
    image = images.get(record.image_id)
    if image is None:
        raise ValueError(f"no image named {record.image_id}.* in the images folder")
    for name, value in record.scores().items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} score {value} is outside [0, 1]")
    # Stored as canonical 8-bit grayscale PNG: pixel-identical to what the record held.
    implausibility, misalignment = (
        encode_png(_check_map(record.map_png(kind), RELEASE_MAP_NAMES[kind])) for kind in MAP_KINDS
    )
    generator = (generators or {}).get(record.filename) or (generators or {}).get(record.image_id) or ""
    return _Checked(record, prompt, words, misaligned, image, (implausibility, misalignment), generator)


def _write_gold(item, checked: _Checked) -> bool:
    """Makes the item gold (issue 13): the record becomes its reference answer, never ground
    truth, so the item never completes or reaches an export. Returns False if already gold."""
    if ImportedLabel.objects.filter(item=item).exists():
        raise ValueError("this image is already imported as ground truth, so it cannot become gold")
    maps = dict(zip(MAP_KINDS, checked.maps, strict=True))
    _, created = gold_from_import(
        item=item, maps=maps, scores=checked.record.scores(), misaligned_words=checked.misaligned
    )
    return created


def _write(campaign: Campaign, checked: _Checked, split: str, source: str, as_gold: bool = False) -> bool:
    """Creates item + label (or gold reference); returns False when the item already has one."""
    record = checked.record
    item, created = item_create(
        campaign=campaign,
        data=ItemInput(
            image_bytes=checked.image.read_bytes(),
            filename=checked.image.name,
            prompt=checked.prompt,
            source_id=record.filename,
            split=split,
            generator=checked.generator,
        ),
    )
    if as_gold:
        try:
            return _write_gold(item, checked)
        except BaseException:
            if created:
                item.image.delete(save=False)
                item.delete()
            raise
    if not created and GoldReference.objects.filter(item=item).exists():
        raise ValueError("this image is a gold item here, so it cannot be imported as ground truth")
    if not created and ImportedLabel.objects.filter(item=item).exists():
        return False
    label = ImportedLabel(
        item=item,
        filename=record.filename,
        **record.scores(),
        prompt_misalignment_label=record.prompt_misalignment_label,
        tagged_target=tagged_target(checked.words, checked.misaligned),
        source=source[:500],
    )
    stem = item.content_hash
    saved: list = []
    try:
        label.implausibility_map.save(
            f"{campaign.pk}/{stem}-implausibility.png", ContentFile(checked.maps[0]), save=False
        )
        saved.append(label.implausibility_map)
        label.misalignment_map.save(f"{campaign.pk}/{stem}-misalignment.png", ContentFile(checked.maps[1]), save=False)
        saved.append(label.misalignment_map)
        with transaction.atomic():
            label.save()
            # Imported items are already labelled: they never enter the raters' queue.
            item_mark_labelled(item_id=item.pk)
    except BaseException:
        for field_file in saved:
            field_file.delete(save=False)
        if created:
            item.image.delete(save=False)
            item.delete()
        raise
    return True


def import_release(
    *,
    campaign: Campaign,
    tfrecords: list[Path],
    images_dir: Path,
    prompts_path: Path,
    progress: Callable[[int], object] | None = None,
    as_gold: bool = False,
) -> ImportReport:
    """as_gold: each record's item becomes a gold item with the record as its reference."""
    prompts, generators = load_prompt_table(prompts_path)
    images = index_images(images_dir)
    report = ImportReport()
    for path in tfrecords:
        try:
            _import_file(
                path,
                campaign=campaign,
                prompts=prompts,
                generators=generators,
                images=images,
                report=report,
                progress=progress,
                as_gold=as_gold,
            )
        except OSError as exc:  # unreadable file (a folder, no permission, I/O error): named, the others go on
            report.problems.append(f"{path}: cannot read the file ({exc.strerror or exc})")
    return report


def _import_file(
    path: Path,
    *,
    campaign: Campaign,
    prompts: dict[str, str],
    generators: dict[str, str],
    images: dict[str, Path],
    report: ImportReport,
    progress: Callable[[int], object] | None,
    as_gold: bool = False,
) -> None:
    split = _split_of(path)
    with path.open("rb") as handle:  # one record in memory at a time
        for record in scan_records(handle):
            where = f"{path}#{record.index}"
            if progress:
                progress(1)
            if record.problem or record.payload is None:
                rest = "; rest of file ignored" if record.fatal else " (corrupt record skipped)"
                report.problems.append(f"{where}: {record.problem}{rest}")
                continue
            try:
                checked = _check(record.payload, prompts, images, generators)
                if _write(campaign, checked, split, where, as_gold=as_gold):
                    report.imported += 1
                else:
                    report.already_present += 1
            except (ValueError, ApplicationError) as exc:
                report.problems.append(f"{where}: {getattr(exc, 'message', None) or exc}")
            except OSError as exc:  # reading its image or writing its files failed; _write cleaned up
                report.problems.append(f"{where}: file error ({exc})")
