"""Reads for the dashboard: the cache row, one item's raw answers for the compare view, and a
campaign's answers as one named table for the statistics recompute."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, overload

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Func, IntegerField, QuerySet, TextField, Value
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


def item_open_extra_rater_request(*, item: Item) -> ExtraRaterRequest | None:
    return ExtraRaterRequest.objects.filter(item=item, status=ExtraRaterRequest.Status.OPEN).first()


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
    Python type (integers, text, aware datetimes), so nothing is lost by skipping it."""
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


def campaign_answer_table(*, campaign: Campaign) -> CampaignAnswerTable:
    """Every answer of the campaign as a CampaignAnswerTable (two queries).

    JSON columns are read as text and decoded column-wise (see _json_column)."""
    point_fields = [POINT_FIELDS[kind] for kind in MAP_KINDS]
    json_fields = (*point_fields, "misaligned_words")
    as_text = {f"{f}_text": Cast(f, output_field=TextField()) for f in json_fields}
    # The sections need only how many points each answer has; the points themselves only for
    # the few items whose map agreement is computed here (decoded on access, see JsonTexts).
    lengths = [Func(f, function="jsonb_array_length", output_field=IntegerField()) for f in point_fields]
    n_points = {"n_points": sum(lengths, Value(0, output_field=IntegerField()))}
    fields = ("item_id", "rater_id", *SCORE_NAMES, "time_spent_ms", *as_text, "n_points", "created_at")
    rows = _fetch_rows(
        # Excluded answers (quality control) are left out of every agreement figure.
        Annotation.objects.filter(item__campaign=campaign, excluded_at__isnull=True)
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
        Item.objects.filter(campaign=campaign)
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
        Annotation.objects.filter(item__campaign=campaign)
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
        for row in ItemAggregate.objects.filter(item__campaign=campaign).values("item_id", *fields)
    }


def user_names(*, user_ids: list[int]) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
