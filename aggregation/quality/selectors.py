"""Reads of rater quality control: answers for the recompute, gold accuracy, the latest figures
per rater, their history, the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, QuerySet

from annotation.models import Annotation, Campaign, GoldAnswerScore, RaterStatus
from modeling.protocol import MAP_KINDS, POINT_FIELDS, SCORE_NAMES

from .models import QualityAction, QualityPolicy, QualityRun, RaterSnapshot
from .services.reliability import Answer


def policy_get(*, campaign: Campaign) -> QualityPolicy:
    """The campaign's policy; an unsaved one with the defaults when none was stored."""
    return QualityPolicy.objects.filter(campaign=campaign).first() or QualityPolicy(campaign=campaign)


def campaign_answers(*, campaign: Campaign) -> list[Answer]:
    """Every answer on the campaign's real (non-gold) items, excluded ones flagged, in one query."""
    fields = (
        "id",
        "item_id",
        "rater_id",
        *SCORE_NAMES,
        "misaligned_words",
        *[POINT_FIELDS[k] for k in MAP_KINDS],
        "item__words",
        "item__width",
        "item__height",
        "time_spent_ms",
        "excluded_at",
    )
    rows = (
        Annotation.objects.filter(item__campaign=campaign, item__is_gold=False)
        .order_by("item_id", "id")
        .values_list(*fields)
    )
    radius = campaign.radius_fraction
    n_scores = len(SCORE_NAMES)
    out = []
    for row in rows:
        pk, item_id, rater_id, *rest = row
        scores, rest = rest[:n_scores], rest[n_scores:]
        words, *points, item_words, width, height, time_ms, excluded_at = rest
        out.append(
            Answer(
                annotation_id=pk,
                item_id=item_id,
                rater_id=rater_id,
                scores=scores,
                misaligned_words=words,
                n_words=len(item_words),
                points=dict(zip(MAP_KINDS, points, strict=True)),
                image_width=width,
                image_height=height,
                radius_fraction=radius,
                time_spent_ms=time_ms,
                excluded=excluded_at is not None,
            )
        )
    return out


def gold_accuracy_by_rater(*, campaign: Campaign) -> dict[int, tuple[float, int]]:
    """rater id -> (mean quality 0..1 of their gold answers, how many) in this campaign:
    qualification and honeypot answers alike, older qualification attempts included (their
    scores outlive the answers a retry deletes)."""
    rows = (
        GoldAnswerScore.objects.filter(campaign=campaign)
        .order_by()
        .values("rater_id")
        .annotate(mean=Avg("quality"), n=Count("pk"))
    )
    return {r["rater_id"]: (float(r["mean"]), int(r["n"])) for r in rows}


def latest_run(*, campaign: Campaign) -> QualityRun | None:
    return QualityRun.objects.filter(campaign=campaign).order_by("-created_at", "-id").first()


def latest_done_run(*, campaign: Campaign) -> QualityRun | None:
    return QualityRun.objects.filter(campaign=campaign, state="done").order_by("-finished_at", "-id").first()


def rater_summary(*, campaign: Campaign) -> list[dict[str, Any]]:
    """One row per rater of the campaign: the latest run's figures, pause state, open proposals."""
    run = latest_done_run(campaign=campaign)
    snapshots = {s.rater_id: s for s in RaterSnapshot.objects.filter(run=run)} if run else {}
    user_ids = set(campaign.raters.values_list("pk", flat=True)) | set(snapshots)
    statuses = {s.rater_id: s for s in RaterStatus.objects.filter(campaign=campaign, rater_id__in=user_ids)}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    proposals: dict[int, list[dict[str, Any]]] = {}
    for p in QualityAction.objects.filter(campaign=campaign, state="proposed", rater_id__in=user_ids):
        assert p.rater_id is not None
        proposals.setdefault(p.rater_id, []).append({"id": p.pk, "kind": p.kind, "reason": p.reason})
    counts = dict(
        Annotation.objects.filter(item__campaign=campaign, rater_id__in=user_ids, excluded_at__isnull=True)
        .values("rater_id")
        .annotate(n=Count("pk"))
        .values_list("rater_id", "n")
    )
    rows = []
    for rater_id in sorted(user_ids, key=lambda pk: names.get(pk, "")):
        snap = snapshots.get(rater_id)
        status = statuses.get(rater_id)
        rows.append(
            {
                "rater_id": rater_id,
                "username": names.get(rater_id, f"user {rater_id}"),
                "paused": bool(status and status.paused_at),
                "paused_at": status.paused_at if status else None,
                "paused_reason": status.paused_reason if status else "",
                "counting_answers": counts.get(rater_id, 0),
                "figures": snapshot_figures(snap) if snap else None,
                "proposals": proposals.get(rater_id, []),
            }
        )
    return rows


SNAPSHOT_FIELDS = (
    "n_answers",
    "n_excluded",
    "keyword_competence",
    "score_bias",
    "score_consistency",
    "map_agreement",
    "reliability",
    "gold_accuracy",
    "n_gold",
    "median_time_ms",
    "fast_share",
    "fast_answer_ids",
    "flags",
)


def snapshot_figures(snap: RaterSnapshot) -> dict[str, Any]:
    return {name: getattr(snap, name) for name in SNAPSHOT_FIELDS}


def rater_history(*, campaign: Campaign, rater_id: int | None = None, limit: int = 200) -> Iterator[dict[str, Any]]:
    """Snapshots oldest first (the last `limit` runs), for trend charts."""
    runs = list(
        QualityRun.objects.filter(campaign=campaign, state="done")
        .order_by("-finished_at", "-id")
        .values_list("pk", flat=True)[:limit]
    )
    qs = RaterSnapshot.objects.filter(run_id__in=runs).order_by("computed_at", "rater_id")
    if rater_id is not None:
        qs = qs.filter(rater_id=rater_id)
    for snap in qs:
        yield {
            "rater_id": snap.rater_id,
            "run_id": snap.run_id,
            "computed_at": snap.computed_at,
            **snapshot_figures(snap),
        }


def audit_log(*, campaign: Campaign) -> QuerySet[QualityAction]:
    return QualityAction.objects.filter(campaign=campaign).select_related(
        "rater", "item", "created_by", "applied_by", "dismissed_by", "undone_by"
    )
