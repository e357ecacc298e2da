"""The beat job: start the runs that are due, and re-enqueue runs whose worker went silent."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from annotation.models import Campaign

from ..selectors import (
    current_aggregate_count,
    learning_settings_enabled,
    version_ids_to_resume,
    version_latest_not_failed,
)
from . import runs


def campaigns_due(*, now: datetime | None = None) -> list[tuple[Campaign, str]]:
    """Enabled campaigns whose schedule or new-aggregate threshold says: retrain now."""
    now = now or timezone.now()
    due = []
    for learning in learning_settings_enabled():
        campaign = learning.campaign
        last = version_latest_not_failed(campaign=campaign)
        if learning.schedule_hours and (
            last is None or now - last.created_at >= timedelta(hours=learning.schedule_hours)
        ):
            due.append((campaign, "schedule"))
        elif learning.min_new_aggregates:
            new = current_aggregate_count(campaign=campaign) - (last.aggregates_seen if last else 0)
            if new >= learning.min_new_aggregates:
                due.append((campaign, "new aggregates"))
    return due


def learning_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat job: start due runs; re-enqueue runs whose worker went silent (crash), which
    then resume from their last checkpoint."""
    now = now or timezone.now()
    started = sum(runs.retrain_request(campaign=c, reason=why).started for c, why in campaigns_due(now=now))
    # A duplicate message is harmless: retrain_claim skips finished runs and runs with a
    # fresh heartbeat.
    stale_ids = version_ids_to_resume(now=now, stale_after=runs.STALE_AFTER)
    for pk in stale_ids:
        runs.retrain_enqueue(version_id=pk)
    return {"started": started, "resumed": len(stale_ids)}
