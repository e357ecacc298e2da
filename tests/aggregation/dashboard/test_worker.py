"""Refresh on a real Celery worker (Redis broker, PostgreSQL): the lead's POST enqueues
dashboard.recompute_campaign_stats after the commit, and the worker fills the cache row."""

from __future__ import annotations

import pytest
from django.urls import reverse

from aggregation.dashboard.models import CampaignStats
from tests.conftest import api_client_for, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_refresh_is_computed_by_the_worker(celery_worker_proc, raters, make_item, make_user, rate):
    campaign, users = raters
    item = make_item(campaign)
    for user, score in zip(users, (1, 2, 5), strict=True):
        rate(item, user, (score,) * 4)
    response = api_client_for(make_user("lead-w", "lead")).post(reverse("dashboard:api-refresh", args=[campaign.pk]))
    assert response.status_code == 202 and response.json()["refresh_requested_at"]

    row = wait_for(
        lambda: CampaignStats.objects.filter(campaign=campaign, computed_at__isnull=False).first(),
        timeout=30,
        what="the worker's recompute",
    )
    assert row.refresh_requested_at is None
    assert row.payload["progress"]["annotations"] == 3
    assert row.payload["scores"]["overall"]["maxdiff"]["counts"] == [0, 0, 0, 0, 1]  # (5 - 1) / 4
