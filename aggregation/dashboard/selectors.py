"""Reads for the dashboard: the cache row, one item's raw answers for the compare view, and a
campaign's answers as one named table for the statistics recompute."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, overload

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Func, IntegerField, OuterRef, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Cast, TruncDate

from aggregation.models import ItemAggregate
from annotation.models import Annotation, Campaign, Item
from modeling.protocol import MAP_KINDS, POINT_FIELDS, SCORE_NAMES

from .models import CampaignStats, ExtraRaterRequest

Points = list[list[float]]


def campaign_stats_get(*, campaign: Campaign) -> CampaignStats | None:
    return CampaignStats.objects.filter(campaign=campaign).first()


def item_annotations_for_compare(*, item: Item) -> QuerySet[Annotation]:
    return Annotation.objects.filter(item=item).select_related("rater").order_by("id")


def item_open_extra_rater_request(*, item: Item, n_annotations: int | None = None) -> ExtraRaterRequest | None:
    """The item's open request, unless the extra answer has arrived already (then it is settled
    in substance; the item_completed hook or the next recompute records it). n_annotations:
    the item's answer count when the caller has it (item_for_compare reads it)."""
    request = ExtraRaterRequest.objects.filter(item=item, status=ExtraRaterRequest.Status.OPEN).first()
    if request is None:
        return None
    n_now = item.annotations.count() if n_annotations is None else n_annotations
    return None if n_now > request.n_annotations_at_request else request


def item_for_compare(*, item_id: int) -> Item:
    """The item with its campaign and, in the same query, what the heatmap overlay needs:
    `maps_human_n` (raters in its aggregate, None without one), `maps_active_version` (the
    campaign's active model) and `maps_model_version` (that model's prediction for the item,
    None without one: a prediction left by another version does not count)."""
    from aggregation.learning.models import ItemPrediction, ModelVersion

    active = ModelVersion.objects.filter(campaign_id=OuterRef("campaign_id"), is_active=True).values("pk")[:1]
    prediction = ItemPrediction.objects.filter(item_id=OuterRef("pk"), version__is_active=True).values("version_id")[:1]
    human = ItemAggregate.objects.filter(item_id=OuterRef("pk")).values("n_annotations")[:1]
    return (
        Item.objects.select_related("campaign")
        .annotate(
            maps_human_n=Subquery(human),
            maps_active_version=Subquery(active),
            maps_model_version=Subquery(prediction),
            n_annotations_now=Subquery(
                Annotation.objects.filter(item_id=OuterRef("pk"))
                .order_by()
                .values("item_id")
                .annotate(n=Count("id"))
                .values("n")[:1]
            ),
        )
        .get(pk=item_id)
    )


def item_map_file(*, item: Item, source: str, kind: str):
    """The stored PNG of one map (FieldFile), or None: "human" = the aggregate, "model" = the
    active version's prediction."""
    from aggregation.learning.models import ItemPrediction

    row: ItemAggregate | ItemPrediction | None
    if source == "human":
        row = ItemAggregate.objects.filter(item=item).only(f"{kind}_map").first()
    else:
        row = ItemPrediction.objects.filter(item=item, version__is_active=True).only(f"{kind}_map").first()
    field = getattr(row, f"{kind}_map", None) if row is not None else None
    return field or None


@dataclass(frozen=True)
class CampaignAnswerTable:
    """A campaign's answers as named columns, one entry per annotation.

    Answers are ordered by (item, annotation id), so each item's answers are one contiguous run
    (item_first, item_n_answers) and per-item reductions are single numpy calls (reduceat).
    Items and raters that have answers are numbered 0..n-1 in ascending primary-key order:
    `item` and `rater` hold those numbers, item_ids and rater_ids map them back, and every
    item_* column is indexed by the item number.
    """

    item: np.ndarray  # (n_answers,) int64 item number
    rater: np.ndarray  # (n_answers,) int64 rater number
    scores: dict[str, np.ndarray]  # SCORE_NAMES -> (n_answers,) float64 raw 1..5
    time_ms: np.ndarray  # (n_answers,) float64
    points: dict[str, Sequence[Points]]  # MAP_KINDS -> per answer, its normalised (x, y) points
    n_points: np.ndarray  # (n_answers,) int64 points over both map kinds
    word_marks: list[np.ndarray]  # per answer, bool over its item's words
    created_at: list[datetime]
    item_ids: np.ndarray  # (n_items,) int64 primary keys
    item_first: np.ndarray  # (n_items,) index of the item's first answer
    item_n_answers: np.ndarray  # (n_items,) answers per item
    item_words: list[list[str]]
    item_prompt: list[str]
    item_width: np.ndarray  # (n_items,) original image size, pixels
    item_height: np.ndarray
    rater_ids: np.ndarray  # (n_raters,) int64 primary keys

    @property
    def n_answers(self) -> int:
        return len(self.item)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_raters(self) -> int:
        return len(self.rater_ids)

    def score_matrix(self) -> np.ndarray:
        """(n_answers, len(SCORE_NAMES)) raw scores, columns in SCORE_NAMES order."""
        return np.stack([self.scores[name] for name in SCORE_NAMES], axis=1).reshape(-1, len(SCORE_NAMES))

    def item_answers(self, it: int) -> range:
        """Row indices of item number `it`'s answers."""
        first = int(self.item_first[it])
        return range(first, first + int(self.item_n_answers[it]))


def _fetch_rows(queryset: QuerySet) -> list[tuple]:
    """The rows of a values_list queryset, fetched on a plain cursor.

    The ORM's per-row iteration (converters, chunking) costs about ten times the fetch itself on
    a 54,000-answer campaign; every column selected here comes back from the driver in its final
    Python type (integers, text, aware datetimes) on PostgreSQL, so nothing is lost by skipping
    it. SQLite (the demo) returns datetimes as text: there the ORM's own iteration converts them."""
    if connection.vendor != "postgresql":
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class JsonTexts(Sequence):
    """A column of JSON texts, each decoded when it is read."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [json.loads(t) for t in self._texts[index]]
        return json.loads(self._texts[index])


def _json_column(texts: tuple[str, ...] | list[str]) -> list:
    """Decode a column of JSON texts with one json.loads over the whole column: per-row decoding
    (what JSONField does) costs several times more for tens of thousands of short values."""
    return json.loads("[" + ",".join(texts) + "]") if texts else []


class JsonArrayLength(Func):
    """Length of a JSON array column: PostgreSQL's jsonb_array_length, SQLite's json_array_length
    (the demo's database)."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="json_array_length", **extra_context)


def campaign_answer_table(*, campaign: Campaign) -> CampaignAnswerTable:
    """Every answer of the campaign as a CampaignAnswerTable (two queries).

    JSON columns are read as text and decoded column-wise (see _json_column)."""
    point_fields = [POINT_FIELDS[kind] for kind in MAP_KINDS]
    json_fields = (*point_fields, "misaligned_words")
    as_text = {f"{f}_text": Cast(f, output_field=TextField()) for f in json_fields}
    # The sections need only how many points each answer has; the points themselves only for
    # the few items whose map agreement is computed here (decoded on access, see JsonTexts).
    lengths = [JsonArrayLength(f) for f in point_fields]
    n_points = {"n_points": sum(lengths, Value(0, output_field=IntegerField()))}
    fields = ("item_id", "rater_id", *SCORE_NAMES, "time_spent_ms", *as_text, "n_points", "created_at")
    rows = _fetch_rows(
        # Excluded answers (quality control) are left out of every agreement figure.
        Annotation.objects.filter(item__campaign=campaign, item__is_gold=False, excluded_at__isnull=True)
        .order_by("item_id", "id")
        .annotate(**as_text, **n_points)
        .values_list(*fields)
    )
    columns: dict[str, Any] = (
        dict(zip(fields, zip(*rows, strict=True), strict=True)) if rows else {f: () for f in fields}
    )
    columns["misaligned_words"] = _json_column(columns.pop("misaligned_words_text"))
    for f in point_fields:
        columns[f] = JsonTexts(columns.pop(f"{f}_text"))
    item_rows = list(
        Item.objects.filter(campaign=campaign, is_gold=False)
        .annotate(words_text=Cast("words", output_field=TextField()))
        .values_list("id", "words_text", "width", "height", "prompt")
    )
    item_words = _json_column([words for _, words, _, _, _ in item_rows])
    items = {
        pk: (words, width, height, prompt)
        for (pk, _, width, height, prompt), words in zip(item_rows, item_words, strict=True)
    }
    item_pk = np.array(columns["item_id"], dtype=np.int64)
    rater_pk = np.array(columns["rater_id"], dtype=np.int64)
    item_ids, item = np.unique(item_pk, return_inverse=True)
    rater_ids, rater = np.unique(rater_pk, return_inverse=True)
    item = item.astype(np.int64).reshape(-1)
    rater = rater.astype(np.int64).reshape(-1)
    item_first = np.flatnonzero(np.r_[True, np.diff(item) != 0]) if len(rows) else np.zeros(0, dtype=np.int64)
    item_n_answers = np.diff(np.r_[item_first, len(rows)]).astype(np.int64)
    item_info = [items[int(pk)] for pk in item_ids]
    n_words = [len(words) for words, _, _, _ in item_info]
    word_marks = []
    for it, marked in zip(item.tolist(), columns["misaligned_words"], strict=True):
        marks = np.zeros(n_words[it], dtype=bool)
        # Indices outside the prompt (a prompt edited after rating) mark nothing.
        if marked:
            marks[[i for i in marked if 0 <= i < len(marks)]] = True
        word_marks.append(marks)
    return CampaignAnswerTable(
        item=item,
        rater=rater,
        scores={name: np.array(columns[name], dtype=np.float64) for name in SCORE_NAMES},
        time_ms=np.array(columns["time_spent_ms"], dtype=np.float64),
        points={kind: columns[POINT_FIELDS[kind]] for kind in MAP_KINDS},
        n_points=np.array(columns["n_points"], dtype=np.int64),
        word_marks=word_marks,
        created_at=list(columns["created_at"]),
        item_ids=item_ids.astype(np.int64),
        item_first=item_first.astype(np.int64),
        item_n_answers=item_n_answers,
        item_words=[words for words, _, _, _ in item_info],
        item_prompt=[prompt for _, _, _, prompt in item_info],
        item_width=np.array([w for _, w, _, _ in item_info], dtype=np.int64),
        item_height=np.array([h for _, _, h, _ in item_info], dtype=np.int64),
        rater_ids=rater_ids.astype(np.int64),
    )


def campaign_answers_per_day(*, campaign: Campaign) -> list[tuple[date, int]]:
    """(day, answers submitted that day), oldest first."""
    per_day = (
        Annotation.objects.filter(item__campaign=campaign, item__is_gold=False, excluded_at__isnull=True)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    return [(row["day"], row["n"]) for row in per_day]


def campaign_stored_map_agreement(*, campaign: Campaign) -> dict[int, dict[str, float | None]]:
    """Item pk -> the stored aggregate's pairwise map agreement, keyed "<map kind>_iou" / "_cc"."""
    fields = [f"{kind}_{metric}" for kind in MAP_KINDS for metric in ("iou", "cc")]
    return {
        row["item_id"]: {f: row[f] for f in fields}
        for row in ItemAggregate.objects.filter(item__campaign=campaign, item__is_gold=False).values("item_id", *fields)
    }


def user_names(*, user_ids: list[int]) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))


@dataclass(frozen=True)
class GeneratorData:
    """The rows the section is computed from; arrays are aligned by row."""

    generator: list[str]  # rated items: generator name ("" when not recorded)
    scores: np.ndarray  # (n, len(SCORE_NAMES)) normalised 0..1
    implausible_points: np.ndarray  # (n,) points over all raters
    coverage: dict[str, np.ndarray]  # MAP_KINDS -> (n,) share of the image covered
    misaligned_words: list[list[str]]  # per rated item, the words the majority marked
    estimate_generator: list[str] = field(default_factory=list)  # unrated items with a prediction
    estimate_scores: np.ndarray = field(default_factory=lambda: np.zeros((0, len(SCORE_NAMES))))
    model: dict | None = None  # {"version": id, "scores": {name: {plcc, srcc, n}}} of the active model


def campaign_counted_answers(*, campaign: Campaign) -> int:
    """How many answers the dashboard's statistics are computed from: counted answers
    (excluded_at null) of non-gold items. The page compares it with the cached count to tell
    whether the figures are stale."""
    return Annotation.objects.filter(item__campaign=campaign, item__is_gold=False, excluded_at__isnull=True).count()


def campaign_generator_data(*, campaign: Campaign) -> GeneratorData:
    """The rows of the Generators section (three queries): every non-gold item's aggregate,
    and the active model's predicted scores for non-gold items that have no aggregate yet."""
    from aggregation.learning.models import ItemPrediction, ModelVersion

    norm = [f"{s}_normalised" for s in SCORE_NAMES]
    cover = [f"{k}_coverage" for k in MAP_KINDS]
    rows = list(
        ItemAggregate.objects.filter(item__campaign=campaign, item__is_gold=False)
        .order_by("item_id")
        .values_list("item__generator", *norm, "implausibility_points", *cover, "misaligned_words", "item__words")
    )
    n_s = len(SCORE_NAMES)
    scores = np.array([r[1 : 1 + n_s] for r in rows], dtype=np.float64).reshape(len(rows), n_s)
    points = np.array([r[1 + n_s] for r in rows], dtype=np.float64)
    coverage = {k: np.array([r[2 + n_s + j] for r in rows], dtype=np.float64) for j, k in enumerate(MAP_KINDS)}
    words = [
        [r[-1][i] for i in (r[-2] or []) if 0 <= i < len(r[-1])]  # indices outside an edited prompt mark nothing
        for r in rows
    ]
    active = ModelVersion.objects.filter(campaign=campaign, is_active=True).first()
    model = None
    est_gen: list[str] = []
    est_scores = np.zeros((0, n_s))
    if active is not None:
        dev = (active.dev_metrics or {}).get("scores") or {}
        model = {
            "version": active.pk,
            "scores": {s: {k: (dev.get(s) or {}).get(k) for k in ("plcc", "srcc", "n")} for s in SCORE_NAMES},
        }
        predicted = list(
            ItemPrediction.objects.filter(
                item__campaign=campaign, item__is_gold=False, item__aggregate__isnull=True
            ).values_list("item__generator", "scores")
        )
        est_gen = [g for g, _ in predicted]
        est_scores = np.array(
            [[float(sc.get(s, np.nan)) for s in SCORE_NAMES] for _, sc in predicted], dtype=np.float64
        ).reshape(len(predicted), n_s)
    return GeneratorData(
        generator=[r[0] for r in rows],
        scores=scores,
        implausible_points=points,
        coverage=coverage,
        misaligned_words=words,
        estimate_generator=est_gen,
        estimate_scores=est_scores,
        model=model,
    )
