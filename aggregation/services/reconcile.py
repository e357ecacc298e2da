"""Finds complete items without a current aggregate and enqueues them (the safety net).

The on-commit enqueue in annotation_submit is the fast path; this catches everything it can
miss: Redis down at commit time, a worker killed with the message unacked (Redis hands it
back only after the visibility timeout), a campaign whose radius or heatmap size changed.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Campaign, Item

from .aggregates import settings_fingerprint


def items_without_current_aggregate(*, campaign: Campaign, completed_before=None) -> QuerySet[Item]:
    """Complete items of the campaign whose aggregate is missing or was computed under other
    settings (or another version of the computation)."""
    qs = Item.objects.filter(campaign=campaign, completed_at__isnull=False)
    if completed_before is not None:
        qs = qs.filter(completed_at__lt=completed_before)
    return qs.exclude(aggregate__settings_fingerprint=settings_fingerprint(campaign)).order_by("completed_at", "id")


def aggregates_reconcile(*, grace: timedelta = timedelta(seconds=120), limit: int = 5000, now=None) -> list[int]:
    """Enqueues aggregation for up to `limit` items lacking a current aggregate; returns their ids.

    Items completed less than `grace` ago are left to their own on-commit task. Enqueueing an
    item twice is harmless: the task sees a current aggregate and writes nothing.
    """
    from richhf_site.faults import task_publish

    from ..tasks import aggregate_item

    now = now or timezone.now()
    enqueued: list[int] = []
    for campaign in Campaign.objects.order_by("id"):
        if len(enqueued) >= limit:
            break
        pending = items_without_current_aggregate(campaign=campaign, completed_before=now - grace)
        for item_id in pending.values_list("id", flat=True)[: limit - len(enqueued)]:
            # Broker down: BrokerUnavailable ends this run; the next beat tick starts over.
            task_publish(aggregate_item, item_id)
            enqueued.append(item_id)
    return enqueued
