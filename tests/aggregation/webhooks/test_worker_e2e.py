"""On a real Celery worker (Redis, PostgreSQL): a completed item's webhook fails once at the
receiver, is retried by the worker after its backoff, and arrives signed."""

from __future__ import annotations

import json
import os
import time

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from pytest_django.fixtures import Settings

from aggregation.webhooks import services, tasks
from aggregation.webhooks.events import Event
from aggregation.webhooks.models import WebhookDelivery
from aggregation.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_is_valid
from annotation import hooks
from tests.conftest import api_client_for, start_celery_worker, stop_celery_worker, valid_submission, wait_for

from .conftest import Receiver

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_a_failed_delivery_after_its_backoff(
    raters, make_item, receiver: Receiver, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = True
    queue = f"webhooks-e2e-{os.getpid()}"
    # Only the webhook receiver of the hook (no aggregation task left in a queue nobody
    # reads), and the deliveries on this test's own queue, read by a worker that allows
    # the local receiver.
    monkeypatch.setattr(
        hooks, "_item_completed", {"webhooks.item_completed": hooks._item_completed["webhooks.item_completed"]}
    )
    monkeypatch.setattr(
        tasks.deliver, "delay", lambda delivery_id: tasks.deliver.apply_async((delivery_id,), queue=queue)
    )
    worker = start_celery_worker(
        name="webhooks",
        queues=[queue],
        var_dir=tmp_path / "var",
        media_root=tmp_path / "media",
        extra_env={"RICHHF_WEBHOOKS_ALLOW_PRIVATE": "1", "RICHHF_WEBHOOKS_BACKOFF_S": "1"},
        concurrency=1,
    )
    try:
        campaign, users = raters
        item = make_item(campaign)
        endpoint = services.endpoint_create(campaign=campaign, url=receiver.url, events=[Event.ITEM_COMPLETED])
        receiver.codes = [503, 200]
        for user in users:
            client = api_client_for(user)
            lease = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()
            response = client.post(
                reverse("api:submit", args=[lease["assignment"]["id"]]), valid_submission(), format="json"
            )
            assert response.status_code in (200, 201), response.content
        delivery = wait_for(
            lambda: WebhookDelivery.objects.filter(status="succeeded").first(), timeout=60, what="delivered"
        )
    finally:
        stop_celery_worker(worker)
    assert delivery.attempts == 2 and delivery.last_status_code == 200
    first, second = receiver.requests
    assert json.loads(first.body)["delivery_id"] == json.loads(second.body)["delivery_id"] == str(delivery.delivery_id)
    assert json.loads(second.body)["data"]["item"] == item.pk
    assert int(second.headers[TIMESTAMP_HEADER]) - int(first.headers[TIMESTAMP_HEADER]) >= 1  # the backoff
    assert signature_is_valid(
        secret=endpoint.secret,
        body=second.body,
        signature=second.headers[SIGNATURE_HEADER],
        timestamp=second.headers[TIMESTAMP_HEADER],
        now=time.time(),
    )
    assert django_settings.CELERY_BROKER_URL.startswith("redis")  # through the real broker
