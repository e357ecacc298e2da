"""Hand-offs through real Celery workers: Redis (the full stack) and the filesystem broker
(the embedded demo default)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from aggregation.models import ItemAggregate
from annotation.models import Assignment, AssignmentState
from tests.conftest import api_client_for, start_celery_worker, stop_celery_worker, valid_submission, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_kth_submission_hands_the_item_to_a_real_worker(celery_worker_proc, raters, make_item):
    campaign, users = raters
    item = make_item(campaign, prompt="a yellow cat")
    for user in users:
        client = api_client_for(user)
        leased = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()["assignment"]
        assert not ItemAggregate.objects.filter(item=item).exists()  # nothing before the k-th answer
        response = client.post(reverse("api:submit", args=[leased["id"]]), valid_submission(), format="json")
        assert response.status_code == 201
    wait_for(lambda: ItemAggregate.objects.filter(item=item).exists(), timeout=30, what="the worker's aggregate")
    item.refresh_from_db()
    assert item.completed_at is not None


def test_embedded_filesystem_broker_runs_beat_tasks_on_a_real_worker(django_db_setup, raters, make_item, tmp_path):
    """The demo's broker: kombu's filesystem transport, with a real worker process."""
    campaign, (r1, _, _) = raters
    item = make_item(campaign)
    past = timezone.now() - timedelta(hours=2)
    stale = Assignment.objects.create(item=item, rater=r1, leased_at=past, expires_at=past + timedelta(minutes=20))
    var_dir = tmp_path / "var"
    proc = start_celery_worker(
        name="fs-test",
        queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
        var_dir=var_dir,
        media_root=var_dir / "media",
        extra_env={"CELERY_BROKER_URL": "filesystem://", "RICHHF_EXPIRE_EVERY_S": "2"},
        concurrency=1,
        beat=True,
    )
    try:

        def expired():
            stale.refresh_from_db()
            return stale.state == AssignmentState.EXPIRED

        # Beat (embedded with --beat, as the demo runs it) sends expire_leases every 2 s
        # through the filesystem queue; the worker picks it up and runs it.
        wait_for(expired, timeout=60, what="beat + worker on the filesystem broker to expire the lease")
    finally:
        stop_celery_worker(proc)
