"""The rows an export writes, read from the database one chunk at a time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q

from annotation.models import Annotation, Campaign, Item, Split
from modeling.protocol import SCORE_NAMES

from ..models import ItemAggregate
from ..services.aggregates import settings_fingerprint
from .models import ImportedLabel

SPLIT_ORDER = (Split.TRAIN, Split.DEV, Split.TEST)
CHUNK = 500


@dataclass
class ExportRecord:
    """One item's ground truth. Scores are raw 1..5 means where raters exist (None for
    imported ground truth) and normalised [0,1] always; maps are 8-bit grayscale PNG bytes."""

    item_id: int
    filename: str
    prompt: str
    words: list[str]
    split: str
    category: str
    photorealistic: bool | None
    source_id: str
    image_name: str
    normalised: dict[str, float]
    raw_mean: dict[str, float | None]
    word_votes: list[int] | None
    n_raters: int
    prompt_misalignment_label: str
    tagged_target: str
    implausibility_png: bytes
    misalignment_png: bytes
    origin: str = "aggregate"  # or "imported"
    extra: dict = field(default_factory=dict)
    generator: str = ""  # the model that made the image, when known


def export_filename(item: Item) -> str:
    """The release's `filename`: the source file name (a Pick-a-Pic name) or, for items that
    came without one, a stable name from the content hash."""
    return item.source_id or f"{item.content_hash}.png"


@dataclass
class ExportPlan:
    """Which items an export holds and which it leaves out, with reasons."""

    campaign: Campaign
    total_items: int
    exportable: int
    left_out: dict[str, int]


def _current_aggregates(campaign: Campaign):
    return ItemAggregate.objects.filter(item__campaign=campaign, settings_fingerprint=settings_fingerprint(campaign))


def _imported(campaign: Campaign):
    return ImportedLabel.objects.filter(item__campaign=campaign)


def export_plan(campaign: Campaign, *, split: str | None = None) -> ExportPlan:
    """Counts in one pass over the campaign's items (EXISTS semi-joins, no IN lists); only
    split's items when one is given."""
    truth = Exists(_current_aggregates(campaign).filter(item_id=OuterRef("pk"))) | Exists(
        _imported(campaign).filter(item_id=OuterRef("pk"))
    )
    items = Item.objects.filter(campaign=campaign, is_gold=False)
    if split:
        items = items.filter(split=split)
    counts = items.annotate(has_truth=truth).aggregate(
        total=Count("pk"),
        exportable=Count("pk", filter=Q(has_truth=True)),
        incomplete=Count("pk", filter=Q(has_truth=False, completed_at__isnull=True)),
    )
    total, exportable, incomplete = counts["total"], counts["exportable"], counts["incomplete"]
    complete_without = total - exportable - incomplete
    left_out = {}
    if incomplete:
        left_out["items still being annotated (fewer than k answers)"] = incomplete
    if complete_without:
        left_out["complete items whose aggregate is missing or stale (aggregation pending)"] = complete_without
    return ExportPlan(campaign=campaign, total_items=total, exportable=exportable, left_out=left_out)


def _read(field_file) -> bytes:
    with field_file.open("rb") as handle:
        return handle.read()


def _item_fields(item: Item) -> dict:
    return {
        "item_id": item.pk,
        "prompt": item.prompt,
        "words": list(item.words),
        "split": item.split,
        "category": item.category,
        "photorealistic": item.photorealistic,
        "source_id": item.source_id,
        "image_name": item.image.name,
        "generator": item.generator,
    }


def iter_export_records(campaign: Campaign, *, splits: tuple[str, ...] = SPLIT_ORDER) -> Iterator[ExportRecord]:
    """Items with a current aggregate or imported ground truth, by split then item id."""
    for split in splits:
        aggregates = _current_aggregates(campaign).filter(item__split=split).select_related("item").order_by("item_id")
        for agg in aggregates.iterator(chunk_size=CHUNK):
            yield ExportRecord(
                **_item_fields(agg.item),
                filename=export_filename(agg.item),
                normalised={s: getattr(agg, f"{s}_normalised") for s in SCORE_NAMES},
                raw_mean={s: getattr(agg, f"{s}_mean") for s in SCORE_NAMES},
                word_votes=list(agg.word_votes),
                n_raters=agg.n_annotations,
                prompt_misalignment_label=agg.prompt_misalignment_label,
                tagged_target=agg.tagged_target,
                implausibility_png=_read(agg.implausibility_map),
                misalignment_png=_read(agg.misalignment_map),
                extra={s: getattr(agg, f"{s}_maxdiff") for s in SCORE_NAMES},
            )
        imported = (
            _imported(campaign)
            .filter(item__split=split)
            .exclude(Exists(_current_aggregates(campaign).filter(item_id=OuterRef("item_id"))))
            .select_related("item")
            .order_by("item_id")
        )
        for label in imported.iterator(chunk_size=CHUNK):
            yield ExportRecord(
                **_item_fields(label.item),
                filename=label.filename,
                normalised={s: getattr(label, s) for s in SCORE_NAMES},
                raw_mean={s: None for s in SCORE_NAMES},
                word_votes=None,
                n_raters=0,
                prompt_misalignment_label=label.prompt_misalignment_label,
                tagged_target=label.tagged_target,
                implausibility_png=_read(label.implausibility_map),
                misalignment_png=_read(label.misalignment_map),
                origin="imported",
            )


def rater_pseudonym(user_id: int) -> str:
    """Stable per installation, not reversible without the secret key: raters stay anonymous
    in public exports while their answers can still be grouped."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"rater:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"rater-{digest[:12]}"


def iter_raw_annotations(campaign: Campaign, *, split: str | None = None) -> Iterator[dict]:
    """Every submitted answer of the campaign (of split's items when given), for
    re-aggregation under other rules."""
    # Gold items' answers are quality checks, never data (issue 13).
    qs = Annotation.objects.filter(item__campaign=campaign, item__is_gold=False)
    if split:
        qs = qs.filter(item__split=split)
    qs = qs.select_related("item").order_by("item_id", "id")
    for ann in qs.iterator(chunk_size=CHUNK):
        item = ann.item
        yield {
            "item_id": item.pk,
            "filename": export_filename(item),
            "prompt": item.prompt,
            "words": item.words,
            "split": item.split,
            "image_width": item.width,
            "image_height": item.height,
            "rater": rater_pseudonym(ann.rater_id),
            "implausible_points": ann.implausible_points,
            "misaligned_points": ann.misaligned_points,
            "misaligned_words": ann.misaligned_words,
            "scores": ann.scores(),
            "time_spent_ms": ann.time_spent_ms,
            "suggestion_shown": ann.suggestion_shown,
            "submitted_at": ann.created_at.isoformat(),
        }
