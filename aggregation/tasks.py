"""Celery tasks of the aggregation domain: ids in, one service call each.

aggregate_item is idempotent (recompute + upsert), which is what makes acks_late safe: a
message redelivered after a worker died only repeats work. Retries are for transient
database trouble only; a bug raises and is logged rather than retried forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from richhf_site.faults import BrokerUnavailable, task_publish

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    name="aggregation.aggregate_item",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=120,
    time_limit=150,
    ignore_result=True,
)
def aggregate_item(item_id: int, force: bool = False) -> None:
    report = services.item_aggregates_recompute(item_ids=[item_id], force=force)
    if report.skipped:
        logger.warning("item %s is not complete or has no annotations; nothing aggregated", item_id)


@shared_task(name="aggregation.reconcile", ignore_result=True, soft_time_limit=240, time_limit=300)
def reconcile_aggregates(grace_s: int | None = None, limit: int = 5000) -> int:
    grace = timedelta(seconds=settings.RICHHF_RECONCILE_GRACE_S if grace_s is None else grace_s)
    return len(services.aggregates_reconcile(grace=grace, limit=limit))


def item_completed_enqueue(item_id: int) -> None:
    """annotation's item_completed receiver (registered in AggregationConfig.ready()): the
    item's k-th answer is committed, so its aggregate can be computed.

    The answer is stored whatever happens here: with the broker down the item is left to the
    reconciler (beat), which finds complete items without an aggregate, and the rater still
    gets the 201 their committed answer deserves."""
    try:
        task_publish(aggregate_item, item_id)
    except BrokerUnavailable:
        logger.warning("item %s completed while the broker is down; the reconciler will aggregate it", item_id)
