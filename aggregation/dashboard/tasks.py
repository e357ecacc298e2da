"""Celery task of the dashboard: an id in, one service call.

Idempotent (the service recomputes everything and overwrites the cache row), so acks_late is
safe: a redelivered message repeats the work and changes nothing.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from annotation.models import Campaign


@shared_task(
    name="dashboard.recompute_campaign_stats",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=5,
    soft_time_limit=540,
    time_limit=600,
    ignore_result=True,
)
def recompute_campaign_stats(campaign_id: int) -> None:
    from .services import campaign_stats_recompute

    try:
        campaign_stats_recompute(campaign_id=campaign_id)
    except Campaign.DoesNotExist:
        return  # deleted since it was enqueued: nothing to cache


@shared_task(name="dashboard.recompute_all_campaign_stats", ignore_result=True)
def recompute_all_campaign_stats() -> int:
    """For beat: one recompute message per campaign."""
    ids = list(Campaign.objects.values_list("pk", flat=True))
    for pk in ids:
        recompute_campaign_stats.delay(pk)
    return len(ids)
