"""Task wiring: names the annotation side and beat rely on, and the delivery guarantees."""

from django.conf import settings
from django.db import OperationalError

from aggregation import tasks
from richhf_site.celery import app


def test_beat_runs_the_reconciler_by_its_registered_name():
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-aggregates"]
    assert entry["task"] == tasks.reconcile_aggregates.name == "aggregation.reconcile"
    assert entry["task"] in app.tasks


def test_aggregate_item_is_late_acked_with_narrow_retries_and_time_limits():
    task = app.tasks["aggregation.aggregate_item"]
    assert task.name == tasks.aggregate_item.name
    # acks_late is only safe because the task is idempotent (tests/aggregation/test_services.py).
    assert task.acks_late and task.reject_on_worker_lost
    assert task.autoretry_for == (OperationalError, tasks.InterfaceError)
    assert 0 < task.soft_time_limit < task.time_limit
