"""Celery tasks of rater quality control: ids in, one service call each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from annotation.models import Campaign
from richhf_site.faults import BrokerUnavailable, task_publish

logger = logging.getLogger(__name__)

# Past the task's hard time limit (660 s) a "running" run can only be a dead worker's.
STALLED_S = 1800


@shared_task(
    name="quality.recompute",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=600,
    time_limit=660,
    ignore_result=True,
)
def quality_recompute(run_id: int) -> None:
    from .services.recompute import quality_run_execute

    quality_run_execute(run_id=run_id)


@shared_task(name="quality.recompute_all", ignore_result=True)
def quality_recompute_all() -> int:
    """Beat: one (debounced) run per campaign that has answers; a run left "running" by a
    worker that died is marked failed, so the page stops waiting for it."""
    from django.utils import timezone

    from .models import QualityRun, RunState
    from .services.recompute import quality_run_request

    QualityRun.objects.filter(
        state=RunState.RUNNING, started_at__lt=timezone.now() - timedelta(seconds=STALLED_S)
    ).update(state=RunState.FAILED, error="the worker stopped before the run finished", finished_at=timezone.now())
    n = 0
    for campaign in Campaign.objects.filter(items__annotations__isnull=False).distinct():
        quality_run_request(campaign=campaign, trigger="beat")
        n += 1
    return n


@shared_task(
    name="quality.reaggregate_items",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=8,
    ignore_result=True,
)
def reaggregate_items(item_ids: list[int]) -> None:
    from .services.recompute import items_reaggregate

    items_reaggregate(item_ids=item_ids)


def item_answers_changed_enqueue(item_ids: Sequence[int]) -> None:
    """annotation's item_answers_changed receiver: recompute these items' aggregates from the
    answers that still count. With the broker down, the next recompute run's stale check does it."""
    try:
        task_publish(reaggregate_items, list(item_ids))
    except BrokerUnavailable:
        logger.warning("answers of items %s changed while the broker is down; the quality run will catch up", item_ids)


def item_completed_schedule_recompute(item_id: int) -> None:
    """annotation's item_completed receiver: new answers, so recompute the campaign's figures
    soon. Debounced: one queued run per campaign absorbs every completion until it starts."""
    from .services.recompute import quality_run_request

    # Runs in the submit request after its commit: one query for the campaign, then the queue.
    campaign = Campaign.objects.filter(items__pk=item_id).first()
    if campaign is None:
        return
    campaign_id = campaign.pk
    try:
        quality_run_request(campaign=campaign, trigger="answers", countdown=settings.RICHHF_QUALITY_DEBOUNCE_S)
    except BrokerUnavailable:
        logger.warning("campaign %s: quality recompute not queued (broker down); beat will run it", campaign_id)
