"""Celery tasks of the aggregation domain: ids in, one service call each.

aggregate_item is idempotent (recompute + upsert), which is what makes acks_late safe: a
message redelivered after a worker died only repeats work. Retries are for transient
database trouble only; a bug raises and is logged rather than retried forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError

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
def reconcile_aggregates(grace_s: int = 120, limit: int = 5000) -> int:
    return len(services.aggregates_reconcile(grace=timedelta(seconds=grace_s), limit=limit))


def item_completed_enqueue(item_id: int) -> None:
    """annotation's item_completed receiver (registered in AggregationConfig.ready()): the
    item's k-th answer is committed, so its aggregate can be computed."""
    aggregate_item.delay(item_id)
