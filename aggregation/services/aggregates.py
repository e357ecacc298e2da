"""Writes of the aggregation domain: recompute items' aggregates and upsert them.

Locking protocol: the upsert holds the row locks of the items it writes (taken in id order,
so two batches never deadlock), the same locks annotation_submit takes. Two workers
aggregating one item therefore write one after the other, and the one-to-one constraint
plus INSERT .. ON CONFLICT keep a single row whatever happens. All the computation and the
file writes happen before the transaction, so the locks are held for milliseconds.

Heatmap files are content-addressed (the name carries the PNG's hash) and written
atomically: a rerun writes the same name with the same bytes, a file left behind by a killed
worker is exactly the file the retry needs, and a changed setting writes new names and
removes the old files on commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import JSONField, Q
from django.utils import timezone

from annotation.models import Annotation, Campaign, Item
from modeling.heatmaps import RasterGeometry
from modeling.protocol import MAP_KINDS, SCORE_NAMES

from ..models import ItemAggregate
from .compute import AggregateInputs, ComputedAggregate, RaterAnswer, iter_aggregates

logger = logging.getLogger(__name__)

# Bump when the computation changes: every aggregate becomes stale and is recomputed.
AGGREGATION_VERSION = 1


def campaign_aggregation_settings(campaign: Campaign) -> dict:
    return {
        "version": AGGREGATION_VERSION,
        # repr keeps every bit of the float: 1/20 and 0.05 are the same value, 0.0500001 is not.
        "radius_fraction": repr(float(campaign.radius_fraction)),
        "heatmap_width": campaign.heatmap_width,
        "heatmap_height": campaign.heatmap_height,
    }


def settings_fingerprint(campaign: Campaign) -> str:
    """What a current aggregate of this campaign must have been computed under."""
    payload = json.dumps(campaign_aggregation_settings(campaign), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


# Items per heatmap folder: a campaign's maps sit in folders of this many items, so a bulk
# recompute creates a folder every thousand items, not one per item (issue 16).
_ITEMS_PER_FOLDER = 1000


def heatmap_path(*, item: Item, kind: str, png: bytes) -> str:
    digest = hashlib.sha256(png).hexdigest()[:24]
    return f"aggregates/{item.campaign_id}/{item.pk // _ITEMS_PER_FOLDER}/{item.pk}-{kind}-{digest}.png"


def _file_holds(name: str, data: bytes) -> bool:
    try:
        with default_storage.open(name, "rb") as fh:
            return fh.read() == data
    except FileNotFoundError:
        return False


def _local_path(name: str) -> str | None:
    try:
        return default_storage.path(name)
    except NotImplementedError:  # remote storage (S3): no local path
        return None


def _store_file(name: str, data: bytes) -> str:
    """Makes `name` hold exactly `data`, safe against reruns, concurrent writers and kills.

    On the local filesystem the bytes go to a temporary file that is renamed over `name`
    (atomic), so a reader or a concurrent writer never sees a half-written map and a killed
    worker never leaves one under the final name. Remote storages upload whole objects.
    """
    if default_storage.exists(name) and _file_holds(name, data):
        return name
    path = _local_path(name)
    if path is not None:
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:  # the item's folder is new: create it only then (one syscall less per file)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return name
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # a concurrent writer stored the same content under `name` meanwhile
        default_storage.delete(saved)
    if not _file_holds(name, data):
        raise OSError(f"could not store {name}")
    return name


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:  # an orphan file is harmless; never fail a commit over it
            logger.warning("could not delete stale heatmap %s", name, exc_info=True)


def _geometry(item: Item) -> RasterGeometry:
    campaign = item.campaign
    return RasterGeometry(
        image_width=item.width,
        image_height=item.height,
        out_width=campaign.heatmap_width,
        out_height=campaign.heatmap_height,
        radius_fraction=campaign.radius_fraction,
    )


def _inputs_for(item: Item, annotations: Sequence[Annotation]) -> AggregateInputs:
    answers = [
        RaterAnswer(
            annotation_id=a.pk,
            implausible_points=a.implausible_points,
            misaligned_points=a.misaligned_points,
            misaligned_words=a.misaligned_words,
            scores=a.scores(),
        )
        for a in annotations
    ]
    return AggregateInputs(geometry=_geometry(item), words=item.words, answers=answers)


_ANSWER_COLUMNS = ("item_id", "id", "implausible_points", "misaligned_points", "misaligned_words", *SCORE_NAMES)


def _answers_by_item(item_ids: Sequence[int]) -> dict[int, list[RaterAnswer]]:
    """Every annotation of these items as plain values, in id order: one query, no model
    instances (building 3 Annotation objects per item cost more than the query itself)."""
    by_item: dict[int, list[RaterAnswer]] = {pk: [] for pk in item_ids}
    # Excluded answers (quality control) are kept but never aggregated.
    rows = (
        Annotation.objects.filter(item_id__in=list(item_ids), excluded_at__isnull=True)
        .order_by("id")
        .values_list(*_ANSWER_COLUMNS)
    )
    for item_id, pk, implausible, misaligned, words, *scores in rows:
        by_item[item_id].append(
            RaterAnswer(
                annotation_id=pk,
                implausible_points=implausible,
                misaligned_points=misaligned,
                misaligned_words=words,
                scores=dict(zip(SCORE_NAMES, scores, strict=True)),
            )
        )
    return by_item


def _row(
    item: Item, computed: ComputedAggregate, *, fingerprint: str, settings: dict, digest: str, paths: dict, now
) -> dict[str, Any]:
    """The aggregate's row as {field name: value} (file fields by their names): plain values,
    no model instance, for _upsert."""
    fields: dict[str, Any] = {
        "item_id": item.pk,
        "settings_fingerprint": fingerprint,
        "settings": settings,
        "inputs_digest": digest,
        "n_annotations": computed.n_annotations,
        "annotation_ids": computed.annotation_ids,
        "word_votes": computed.word_votes,
        "misaligned_words": computed.misaligned_words,
        "prompt_misalignment_label": computed.label,
        "tagged_target": computed.target,
        "keyword_unanimity": computed.keyword_unanimity,
        "computed_at": now,
    }
    for name, score in computed.scores.items():
        fields.update(
            {f"{name}_mean": score.mean, f"{name}_normalised": score.normalised, f"{name}_maxdiff": score.maxdiff}
        )
    for kind, result in computed.maps.items():
        fields.update(
            {
                f"{kind}_map": paths[kind],
                f"{kind}_max": result.summary.max,
                f"{kind}_mean": result.summary.mean,
                f"{kind}_coverage": result.summary.coverage,
                f"{kind}_points": result.summary.n_points,
                f"{kind}_iou": result.agreement.iou,
                f"{kind}_cc": result.agreement.cc,
            }
        )
    return fields


# (field name, column, JSON?) of every column _upsert writes: the item's first.
_UPSERT_COLUMNS: list[tuple[str, str, bool]] = [("item_id", "item_id", False)] + [
    (f.name, str(f.column), isinstance(f, JSONField))
    for f in ItemAggregate._meta.concrete_fields
    if f.name not in ("id", "item")
]
_UPDATE_FIELDS = [name for name, _, _ in _UPSERT_COLUMNS[1:]]


@dataclass(frozen=True)
class RecomputeReport:
    computed: list[int]
    unchanged: list[int]
    skipped: list[int]  # not complete, no annotations, or gone


def item_aggregates_recompute(*, item_ids: Sequence[int], force: bool = False) -> RecomputeReport:
    """Recomputes the aggregates of complete items from their raw annotations and upserts them.

    An item whose stored aggregate was computed from the same annotations under the current
    settings, with its files in place, is left untouched unless force=True: a duplicate task
    delivery costs three queries. Items not yet complete are skipped. Call it outside any
    transaction; it opens its own for the write and takes the items' row locks there.
    """
    ids = sorted(set(item_ids))
    # An item that already has an aggregate is recomputed even while back in the queue (an
    # answer excluded by quality control): its aggregate follows the answers that remain.
    has_aggregate = Q(completed_at__isnull=False) | Q(aggregate__isnull=False)
    items = {i.pk: i for i in Item.objects.filter(has_aggregate, pk__in=ids).select_related("campaign")}
    by_item = _answers_by_item(list(items))
    existing: dict[int, dict[str, Any]] = {
        row["item_id"]: dict(row)
        for row in ItemAggregate.objects.filter(item_id__in=list(items)).values(
            "item_id", "settings_fingerprint", "inputs_digest", "implausibility_map", "misalignment_map"
        )
    }
    skipped = [pk for pk in ids if pk not in items or not by_item[pk]]
    unchanged: list[int] = []
    rows: list[dict[str, Any]] = []
    pending: list[tuple[Item, AggregateInputs, str, str, dict]] = []
    fingerprints: dict[int, tuple[str, dict]] = {}
    for pk, item in items.items():
        if not by_item[pk]:
            continue
        campaign = item.campaign
        if campaign.pk not in fingerprints:
            fingerprints[campaign.pk] = (settings_fingerprint(campaign), campaign_aggregation_settings(campaign))
        fingerprint, settings = fingerprints[campaign.pk]
        inputs = AggregateInputs(geometry=_geometry(item), words=item.words, answers=by_item[pk])
        digest = inputs.digest()
        old = existing.get(pk)
        if (
            not force
            and old is not None
            and old["settings_fingerprint"] == fingerprint
            and old["inputs_digest"] == digest
            and all(default_storage.exists(old[f"{kind}_map"]) for kind in MAP_KINDS)
        ):
            unchanged.append(pk)
            continue
        pending.append((item, inputs, digest, fingerprint, settings))
    # All maps of the chunk are rasterised in one pass; each item's are encoded and stored
    # as it comes.
    computed_all = iter_aggregates([inputs for _, inputs, *_ in pending])
    for (item, _, digest, fingerprint, settings), computed in zip(pending, computed_all, strict=True):
        paths = {
            kind: _store_file(heatmap_path(item=item, kind=kind, png=computed.maps[kind].png), computed.maps[kind].png)
            for kind in MAP_KINDS
        }
        rows.append(
            _row(
                item,
                computed,
                fingerprint=fingerprint,
                settings=settings,
                digest=digest,
                paths=paths,
                now=timezone.now(),
            )
        )
    if rows:
        _upsert(rows)
    return RecomputeReport(computed=sorted(r["item_id"] for r in rows), unchanged=sorted(unchanged), skipped=skipped)


@transaction.atomic
def _upsert(rows: list[dict[str, Any]]) -> None:
    """Holds the items' row locks (id order) while it replaces their aggregates."""
    ids = sorted(r["item_id"] for r in rows)
    list(Item.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    previous = ItemAggregate.objects.filter(item_id__in=ids).values_list("implausibility_map", "misalignment_map")
    old_files = {name for pair in previous for name in pair if name}
    if connection.vendor == "postgresql":
        _insert_on_conflict(rows)
    else:
        ItemAggregate.objects.bulk_create(
            [ItemAggregate(**r) for r in rows],
            update_conflicts=True,
            unique_fields=["item"],
            update_fields=_UPDATE_FIELDS,
        )
    new_files = {r[f"{kind}_map"] for r in rows for kind in MAP_KINDS}
    stale = sorted(old_files - new_files)
    if stale:
        transaction.on_commit(lambda: _delete_files(stale))


def _insert_on_conflict(rows: list[dict[str, Any]]) -> None:
    """One INSERT ... ON CONFLICT (item_id) DO UPDATE for the whole chunk, written out: the
    ORM's bulk_create built a model instance and prepared 38 fields one by one per row, more
    time than the statement (issue 16). The same rows and constraints."""
    table = ItemAggregate._meta.db_table
    row_sql = "(" + ", ".join("%s::jsonb" if is_json else "%s" for _, _, is_json in _UPSERT_COLUMNS) + ")"
    params: list[Any] = []
    for r in rows:
        params.extend(json.dumps(r[name]) if is_json else r[name] for name, _, is_json in _UPSERT_COLUMNS)
    columns = ", ".join(column for _, column, _ in _UPSERT_COLUMNS)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for _, column, _ in _UPSERT_COLUMNS[1:])
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(rows))} "
        f"ON CONFLICT (item_id) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def item_aggregate_upsert(*, item_id: int, force: bool = False) -> ItemAggregate | None:
    """Recomputes one item's aggregate (see item_aggregates_recompute). None if not complete."""
    item_aggregates_recompute(item_ids=[item_id], force=force)
    return ItemAggregate.objects.filter(item_id=item_id).first()
