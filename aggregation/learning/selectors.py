"""Reads for the versions API and the leads page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse

from annotation.models import Assignment, AssignmentState, Campaign

from .models import ItemPrediction, LearningSettings, ModelVersion


def versions_for_campaign(*, campaign: Campaign):
    return ModelVersion.objects.filter(campaign=campaign).order_by("created_at", "id")


def active_version(*, campaign: Campaign) -> ModelVersion | None:
    return ModelVersion.objects.filter(campaign=campaign, is_active=True).first()


def queue_explanation(*, campaign: Campaign, top: int = 20) -> dict[str, Any]:
    """What the queue order is based on, in words and the first items of the order."""
    learning = LearningSettings.objects.filter(campaign=campaign).first()
    active = active_version(campaign=campaign)
    head = list(
        ItemPrediction.objects.filter(item__campaign=campaign, version=active, item__split="train",
                                      item__completed_at__isnull=True)
        .select_related("item")
        .order_by("queue_rank")[:top]
    ) if active else []  # fmt: skip
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
            {"item_id": p.item_id, "rank": p.queue_rank, "acquisition": p.acquisition, "explored": p.explored,
             "priority": p.item.priority, "prompt": p.item.prompt}
            for p in head
        ],
    }  # fmt: skip


def suggestions_for_assignments(*, assignments: Sequence[Assignment]) -> dict[int, dict[str, Any]]:
    """The active model's hint for each open lease whose campaign shows suggestions, by
    assignment id: map URLs (served only to the lease holder) and the predicted misaligned
    word indices. One query for all the leases of a response, none if none is open.

    annotation's rater API calls it through the lease payload hook (LearningConfig.ready()).
    """
    open_leases = [a for a in assignments if a.state == AssignmentState.LEASED]
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
