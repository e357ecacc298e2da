"""Reads of active learning: the versions API and the leads page, and what the services
look up before they write (runs in flight, due campaigns, items to predict, checkpoints)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet
from django.urls import reverse

from aggregation.models import ItemAggregate
from aggregation.services.aggregates import settings_fingerprint
from annotation.models import Assignment, AssignmentState, Campaign, Item
from richhf_site.errors import ApplicationError

from .models import IN_FLIGHT, ItemPrediction, LearningSettings, ModelVersion, VersionStatus


def versions_for_campaign(*, campaign: Campaign) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(campaign=campaign).order_by("created_at", "id")


def active_version(*, campaign: Campaign) -> ModelVersion | None:
    return ModelVersion.objects.filter(campaign=campaign, is_active=True).first()


def version_in_flight(*, campaign: Campaign) -> ModelVersion | None:
    """The campaign's queued or running version (at most one: a partial unique constraint)."""
    return ModelVersion.objects.filter(campaign=campaign, status__in=IN_FLIGHT).first()


def version_latest_not_failed(*, campaign: Campaign) -> ModelVersion | None:
    """The newest version that did not fail: the schedule counts time and new aggregates from it."""
    return ModelVersion.objects.filter(campaign=campaign).exclude(status=VersionStatus.FAILED).first()


def version_ids_to_resume(*, now: datetime, stale_after: timedelta) -> list[int]:
    """Running versions whose heartbeat went silent (worker crashed) and queued ones whose
    message got lost (queued for twice the staleness)."""
    stale = ModelVersion.objects.filter(
        Q(status=VersionStatus.RUNNING, heartbeat_at__lt=now - stale_after)
        | Q(status=VersionStatus.QUEUED, created_at__lt=now - 2 * stale_after)
    )
    return list(stale.values_list("pk", flat=True))


def learning_settings_enabled() -> QuerySet[LearningSettings]:
    return LearningSettings.objects.filter(enabled=True).select_related("campaign")


def current_aggregate_count(*, campaign: Campaign) -> int:
    """Aggregates computed under the campaign's current aggregation settings."""
    return ItemAggregate.objects.filter(
        item__campaign=campaign, settings_fingerprint=settings_fingerprint(campaign)
    ).count()


def items_needing_raters(*, campaign: Campaign) -> QuerySet[Item]:
    return Item.objects.filter(campaign=campaign, completed_at__isnull=True).order_by("id")


def extra_training_campaign(*, version: ModelVersion) -> Campaign | None:
    """The campaign whose train split the version's run adds (named in its config, so a
    rename or deletion after the request leaves it out)."""
    name = version.config.get("extra_training_campaign")
    return Campaign.objects.filter(name=name).first() if name else None


def version_checkpoint_local(*, version: ModelVersion) -> Path:
    """A local copy of the version's checkpoint, downloaded from storage on first use and
    reused from the cache after that."""
    local = Path(settings.RICHHF_LEARNING_DIR) / "cache" / f"v{version.pk}"
    files = version.config.get("checkpoint_files") or []
    if not files:
        raise ApplicationError(f"model version {version.pk} has no stored checkpoint")
    if all((local / name).exists() for name in files):
        return local
    for name in files:
        target = local / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(f"{version.checkpoint_prefix}/{name}", "rb") as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
    return local


def predictions_of_active_version(*, campaign: Campaign, item_ids: list[int] | None = None) -> QuerySet[ItemPrediction]:
    """The active version's predictions, by item id, for the downstream exports."""
    rows = ItemPrediction.objects.filter(item__campaign=campaign, version__is_active=True).select_related("item")
    if item_ids:
        rows = rows.filter(item_id__in=item_ids)
    return rows.order_by("item_id")


def queue_explanation(*, campaign: Campaign, top: int = 20) -> dict[str, Any]:
    """What the queue order is based on, in words and the first items of the order."""
    learning = LearningSettings.objects.filter(campaign=campaign).first()
    active = active_version(campaign=campaign)
    head = (
        list(
            ItemPrediction.objects.filter(
                item__campaign=campaign, version=active, item__split="train", item__completed_at__isnull=True
            )
            .select_related("item")
            .order_by("queue_rank")[:top]
        )
        if active
        else []
    )
    if active is None:
        basis = "No active model: items are leased by their own priority (set at import), oldest first."
    else:
        strategy = active.config.get("strategy")
        share = float(active.config.get("random_share", 0))
        basis = (
            f"Model version {active.pk} orders the untouched train items by '{strategy}' "
            f"(highest first), with {share:.0%} of positions given to random items for exploration. "
            "Items already being annotated are always served first; dev/test items keep their own priority."
        )
    return {
        "enabled": bool(learning and learning.enabled),
        "basis": basis,
        "active_version": active.pk if active else None,
        "head": [
            {
                "item_id": p.item_id,
                "rank": p.queue_rank,
                "acquisition": p.acquisition,
                "explored": p.explored,
                "priority": p.item.priority,
                "prompt": p.item.prompt,
            }
            for p in head
        ],
    }


def _may_show_suggestions(assignment: Assignment) -> bool:
    """False only when the lease's campaign is in memory and shows no suggestions (the query
    below checks the campaign's setting in any case)."""
    item = assignment.item
    return not Item.campaign.is_cached(item) or item.campaign.show_suggestions


def suggestions_for_assignments(*, assignments: Sequence[Assignment]) -> dict[int, dict[str, Any]]:
    """The active model's hint for each open lease whose campaign shows suggestions, by
    assignment id: map URLs (served only to the lease holder) and the predicted misaligned
    word indices. One query for all the leases of a response, none if none is open.

    annotation's rater API calls it through the lease payload hook (LearningConfig.ready()).
    """
    # A lease whose campaign (already loaded with it) shows no suggestions needs no query:
    # the rater API's next-item requests of such campaigns skip it altogether.
    open_leases = [a for a in assignments if a.state == AssignmentState.LEASED and _may_show_suggestions(a)]
    if not open_leases:
        return {}
    predictions = {
        p.item_id: p
        for p in ItemPrediction.objects.filter(
            item_id__in={a.item_id for a in open_leases}, item__campaign__show_suggestions=True
        ).only("item_id", "version_id", "misaligned_indices")
    }
    suggestions: dict[int, dict[str, Any]] = {}
    for assignment in open_leases:
        prediction = predictions.get(assignment.item_id)
        if prediction is None:
            continue
        n_words = len(assignment.item.words)
        suggestions[assignment.pk] = {
            "version": prediction.version_id,
            "implausibility_url": reverse("learning:api-suggestion-map", args=[assignment.pk, "implausibility"]),
            "misalignment_url": reverse("learning:api-suggestion-map", args=[assignment.pk, "misalignment"]),
            "misaligned_words": [i for i in prediction.misaligned_indices if 0 <= i < n_words],
        }
    return suggestions
