"""Delivery: what a receiver gets (signed JSON), retries with backoff, permanent failures,
disabling an endpoint that keeps failing, and the events the other apps emit."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from pytest_django.fixtures import Settings

from aggregation.webhooks import services, tasks
from aggregation.webhooks.events import Event
from aggregation.webhooks.models import WebhookDelivery, WebhookEndpoint
from aggregation.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_is_valid
from annotation.models import Campaign
from annotation.services import AnnotationInput, annotation_submit, assignment_next

from .conftest import Receiver

pytestmark = pytest.mark.django_db

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


@pytest.fixture(autouse=True)
def _fast(settings: Settings) -> None:
    settings.RICHHF_WEBHOOKS_BACKOFF_S = 10
    settings.RICHHF_WEBHOOKS_MAX_ATTEMPTS = 4
    settings.RICHHF_WEBHOOKS_DISABLE_AFTER = 3
    settings.RICHHF_WEBHOOKS_CONNECT_TIMEOUT_S = 1
    settings.RICHHF_WEBHOOKS_READ_TIMEOUT_S = 2


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Runs the delivery task in-process (retries included, without their countdown)."""
    enqueued: list[int] = []

    def delay(delivery_id: int) -> None:
        enqueued.append(delivery_id)
        tasks.deliver.apply(args=(delivery_id,))

    monkeypatch.setattr(tasks.deliver, "delay", delay)
    return enqueued


def _endpoint(campaign: Campaign, url: str, events: tuple[str, ...] = ("item.completed",)) -> WebhookEndpoint:
    return services.endpoint_create(campaign=campaign, url=url, events=list(events), secret="s" * 32)


def _emit(campaign: Campaign, n: int = 1) -> list[int]:
    return services.event_emit(campaign_id=campaign.pk, event=Event.ITEM_COMPLETED, data={"item": n})


def _complete(campaign, users) -> None:
    for user in users:
        lease = assignment_next(rater=user, campaign=campaign).assignment
        annotation_submit(assignment_id=lease.pk, rater=user, data=AnnotationInput(scores=SCORES))


def test_a_completed_item_reaches_the_receiver_signed(
    raters, make_item, allow_private, receiver: Receiver, eager, django_capture_on_commit_callbacks
):
    campaign, users = raters
    item = make_item(campaign)
    endpoint = _endpoint(campaign, receiver.url)
    _endpoint(campaign, receiver.url, events=("export.finished",))  # not subscribed: gets nothing
    with django_capture_on_commit_callbacks(execute=True):
        _complete(campaign, users)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    body = json.loads(request.body)
    assert body["event"] == "item.completed" and body["campaign"] == campaign.pk
    assert body["data"]["item"] == item.pk and body["data"]["n_annotations"] == 3
    assert request.headers["X-RichHF-Event"] == "item.completed"
    assert request.headers["X-RichHF-Delivery"] == body["delivery_id"]
    signature, timestamp = request.headers[SIGNATURE_HEADER], request.headers[TIMESTAMP_HEADER]
    assert signature.startswith("sha256=")
    now = time.time()
    assert signature_is_valid(
        secret=endpoint.secret, body=request.body, signature=signature, timestamp=timestamp, now=now
    )
    # The check a receiver makes refuses another secret, a changed body and a replayed timestamp.
    assert not signature_is_valid(secret="t" * 32, body=request.body, signature=signature, timestamp=timestamp, now=now)
    assert not signature_is_valid(
        secret=endpoint.secret,
        body=request.body.replace(b"item", b"itex"),
        signature=signature,
        timestamp=timestamp,
        now=now,
    )
    assert not signature_is_valid(
        secret=endpoint.secret, body=request.body, signature=signature, timestamp=str(int(timestamp) + 1), now=now
    )
    assert not signature_is_valid(
        secret=endpoint.secret, body=request.body, signature=signature, timestamp=timestamp, now=now + 3600
    )
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert str(delivery.delivery_id) == body["delivery_id"] and delivery.delivered_at is not None


def test_a_failing_receiver_is_retried_with_exponential_backoff(
    make_campaign, allow_private, receiver: Receiver, settings: Settings
):
    receiver.codes = [500, 503, 502, 200]
    endpoint = _endpoint(make_campaign(), receiver.url)
    [delivery_id] = _emit(endpoint.campaign)
    clock = timezone.now()
    delays = []
    for _ in range(3):
        outcome = services.delivery_attempt(delivery_id=delivery_id, now=clock)
        assert outcome.status == "pending" and outcome.retry_in_s is not None
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert delivery.next_attempt_at == clock + timedelta(seconds=outcome.retry_in_s)
        delays.append(outcome.retry_in_s)
        clock += timedelta(seconds=outcome.retry_in_s)
    assert delays == [10, 20, 40]
    assert delivery.last_status_code == 502 and "HTTP 502" in delivery.last_error
    outcome = services.delivery_attempt(delivery_id=delivery_id, now=clock)
    assert outcome.status == "succeeded"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "succeeded",
        4,
        200,
        "",
    )
    # Every attempt carries the same delivery id, so a receiver can drop duplicates.
    assert len({json.loads(r.body)["delivery_id"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 4
    # Done: a duplicate message (acks_late redelivery, the sweeper) sends nothing more.
    assert services.delivery_attempt(delivery_id=delivery_id).status == "skipped"
    assert len(receiver.requests) == 4


def test_the_task_retries_until_it_gives_up(make_campaign, allow_private, receiver: Receiver, eager):
    receiver.codes = [500]
    endpoint = _endpoint(make_campaign(), receiver.url)
    with transaction.atomic():
        [delivery_id] = _emit(endpoint.campaign)
    # The pytest-django transaction never commits: enqueue as the on_commit callback would.
    tasks.deliver.delay(delivery_id)
    assert len(receiver.requests) == 4  # RICHHF_WEBHOOKS_MAX_ATTEMPTS
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.status == "failed" and delivery.attempts == 4
    assert delivery.last_error.startswith("gave up after 4 attempts: HTTP 500")
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1 and endpoint.is_active


@pytest.mark.parametrize(
    ("codes", "attempts", "status"),
    [
        ([404], 1, "failed"),  # a 4xx would get the same answer again
        ([401], 1, "failed"),
        ([301], 1, "failed"),  # redirects are not followed (they could lead anywhere)
        ([408, 200], 2, "succeeded"),
        ([429, 200], 2, "succeeded"),
    ],
)
def test_which_answers_are_retried(
    make_campaign, allow_private, receiver: Receiver, eager, codes: list[int], attempts: int, status: str
):
    receiver.codes = codes
    endpoint = _endpoint(make_campaign(), receiver.url)
    [delivery_id] = _emit(endpoint.campaign)
    tasks.deliver.delay(delivery_id)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (status, attempts)
    assert len(receiver.requests) == attempts


def test_a_refused_connection_is_retried(make_campaign, allow_private, receiver: Receiver):
    endpoint = _endpoint(make_campaign(), receiver.url.replace("/hook", "").rsplit(":", 1)[0] + ":9/hook")
    [delivery_id] = _emit(endpoint.campaign)
    outcome = services.delivery_attempt(delivery_id=delivery_id)
    assert outcome.status == "pending" and outcome.retry_in_s == 10
    assert "ConnectionError" in WebhookDelivery.objects.get(pk=delivery_id).last_error


def test_an_endpoint_that_keeps_failing_is_disabled_and_re_enabling_resets_it(
    make_campaign, allow_private, receiver: Receiver, eager
):
    receiver.codes = [410]
    endpoint = _endpoint(make_campaign(), receiver.url)
    for n in range(2):
        tasks.deliver.delay(_emit(endpoint.campaign, n)[0])
    receiver.codes = [500, 200]  # a success in between resets the count
    tasks.deliver.delay(_emit(endpoint.campaign, 2)[0])
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 0

    receiver.codes = [410]
    for n in range(3):  # RICHHF_WEBHOOKS_DISABLE_AFTER
        tasks.deliver.delay(_emit(endpoint.campaign, n)[0])
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.consecutive_failures == 3
    assert "disabled after 3 failed deliveries in a row" in endpoint.disabled_reason
    assert "HTTP 410" in endpoint.disabled_reason
    sent = len(receiver.requests)
    assert _emit(endpoint.campaign) == []  # a disabled endpoint gets no new deliveries

    services.endpoint_update(endpoint=endpoint, is_active=True)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""
    receiver.codes = [200]
    tasks.deliver.delay(_emit(endpoint.campaign)[0])
    assert len(receiver.requests) == sent + 1


def test_a_delivery_pending_when_its_endpoint_is_disabled_is_not_sent(make_campaign, allow_private, receiver: Receiver):
    endpoint = _endpoint(make_campaign(), receiver.url)
    [delivery_id] = _emit(endpoint.campaign)
    services.endpoint_update(endpoint=endpoint, is_active=False)
    assert services.delivery_attempt(delivery_id=delivery_id).status == "failed"
    assert receiver.requests == []
    assert "disabled" in WebhookDelivery.objects.get(pk=delivery_id).last_error


def test_a_lost_enqueue_is_swept_once_overdue(make_campaign, allow_private, receiver: Receiver, monkeypatch, settings):
    endpoint = _endpoint(make_campaign(), receiver.url)

    def broker_down(delivery_id: int) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(tasks.deliver, "delay", broker_down)
    with transaction.atomic():
        [delivery_id] = _emit(endpoint.campaign)
    services.deliveries_enqueue_due()  # not overdue yet: nothing
    sent: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", sent.append)
    assert services.deliveries_enqueue_due() == 0 and sent == []
    later = timezone.now() + timedelta(seconds=settings.RICHHF_WEBHOOKS_SWEEP_GRACE_S + 1)
    assert services.deliveries_enqueue_due(now=later) == 1 and sent == [delivery_id]
    assert services.deliveries_enqueue_due(now=later) == 0  # not again at the next sweep


def test_emitting_never_fails_the_caller(make_campaign, allow_private, receiver, monkeypatch, caplog):
    endpoint = _endpoint(make_campaign(), receiver.url)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(WebhookDelivery.objects, "bulk_create", broken)
    with caplog.at_level(logging.ERROR), transaction.atomic():
        assert _emit(endpoint.campaign) == []
        assert Campaign.objects.filter(pk=endpoint.campaign_id).exists()  # the transaction is still usable
    assert "was not recorded" in caplog.text


def test_export_finished_is_emitted_when_an_export_succeeds(
    make_campaign, allow_private, receiver: Receiver, monkeypatch, django_capture_on_commit_callbacks
):
    from aggregation.exports.services import export_job_create, export_job_run

    campaign = make_campaign()
    _endpoint(campaign, receiver.url, events=("export.finished",))
    with django_capture_on_commit_callbacks(execute=False):
        job = export_job_create(campaign=campaign, fmt="jsonl")
    sent: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        export_job_run(job_id=job.pk)
    delivery = WebhookDelivery.objects.get()
    assert sent == [delivery.pk] and delivery.event == "export.finished"
    assert delivery.payload["data"]["export_job"] == job.pk and delivery.payload["data"]["format"] == "jsonl"


def test_model_activated_is_emitted_only_when_the_activation_commits(
    make_campaign, make_user, allow_private, receiver: Receiver, monkeypatch, django_capture_on_commit_callbacks
):
    from aggregation.learning.models import ModelVersion, VersionStatus
    from aggregation.learning.services.evaluation import version_activate

    campaign = make_campaign()
    _endpoint(campaign, receiver.url, events=("model.activated",))
    version = ModelVersion.objects.create(campaign=campaign, status=VersionStatus.DONE, combined_metric=0.5)
    sent: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", sent.append)
    monkeypatch.setattr("aggregation.learning.services.evaluation._enqueue_predict", lambda version_id: None)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        version_activate(version=version, user=make_user("boss", "admin"))
    assert sent == []  # not before the commit
    for callback in callbacks:
        callback()
    delivery = WebhookDelivery.objects.get()
    assert sent == [delivery.pk] and delivery.payload["event"] == "model.activated"
    assert (
        delivery.payload["data"]["model_version"] == version.pk and delivery.payload["data"]["activated_by"] == "boss"
    )
