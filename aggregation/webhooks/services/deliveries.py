"""Emitting events and delivering them: one signed POST per endpoint, retried with backoff.

A delivery row is written with the event (in the transaction that caused it, when there is
one) and its Celery task is enqueued after commit. Each attempt claims the row briefly, sends
with short timeouts, and records the outcome:
- 2xx: delivered;
- a connection error, a timeout, 5xx, 408 or 429: tried again after an exponential backoff,
  up to RICHHF_WEBHOOKS_MAX_ATTEMPTS attempts;
- any other answer (4xx, a redirect, which is never followed) or a refused address: failed
  at once, since sending the same request again gets the same answer.
A delivery that finally fails counts against its endpoint; RICHHF_WEBHOOKS_DISABLE_AFTER
of them in a row disable it, with the reason recorded. A success resets the count.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.models import Item

from ..addresses import UrlRefused, UrlUnresolvable, url_check_public
from ..events import Event
from ..models import WebhookDelivery, WebhookEndpoint
from ..signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_for

if TYPE_CHECKING:
    from aggregation.exports.models import ExportJob
    from aggregation.learning.models import ModelVersion

logger = logging.getLogger(__name__)

# Longer than one attempt can take (connect + read timeouts), so a claim outlives its sender.
CLAIM_S = 120
RESPONSE_EXCERPT_BYTES = 500


# --------------------------------------------------------------------------- emit


def event_emit(*, campaign_id: int, event: Event, data: dict[str, Any]) -> list[int]:
    """Records a delivery for each active endpoint of the campaign subscribed to the event
    and enqueues them after commit; returns their ids.

    Never raises: a webhook must not fail the answer, export or activation that caused it.
    The rows are written in a savepoint, so a failure here leaves the caller's transaction
    usable; a lost enqueue is picked up by deliveries_enqueue_due.
    """
    try:
        with transaction.atomic():
            endpoints = [
                e for e in WebhookEndpoint.objects.filter(campaign_id=campaign_id, is_active=True) if event in e.events
            ]
            if not endpoints:
                return []
            now = timezone.now()
            rows = []
            for endpoint in endpoints:
                delivery_id = uuid.uuid4()
                payload = {
                    "event": str(event),
                    "campaign": campaign_id,
                    "occurred_at": now.isoformat(),
                    "data": data,
                    "delivery_id": str(delivery_id),
                }
                rows.append(
                    WebhookDelivery(
                        endpoint=endpoint, delivery_id=delivery_id, event=event, payload=payload, next_attempt_at=now
                    )
                )
            ids = [d.pk for d in WebhookDelivery.objects.bulk_create(rows)]
            transaction.on_commit(lambda: _enqueue(ids))
            return ids
    except Exception:
        logger.exception("webhook %s for campaign %s was not recorded", event, campaign_id)
        return []


def _enqueue(delivery_ids: list[int]) -> None:
    from ..tasks import deliver

    for position, delivery_id in enumerate(delivery_ids):
        try:
            deliver.delay(delivery_id)
        except Exception:  # broker down: the sweeper enqueues them once they are overdue
            # Stop at the first failure: each try against a hung broker costs its timeout.
            logger.exception("webhook deliveries %s not enqueued; left to the sweeper", delivery_ids[position:])
            return


def item_completed_emit(*, item_id: int) -> list[int]:
    """annotation's item_completed hook (after the commit that completed the item)."""
    # One query on the submit path when nobody subscribed: endpoints through the item's campaign.
    if not WebhookEndpoint.objects.filter(campaign__items=item_id, is_active=True).exists():
        return []
    item = Item.objects.only("campaign_id", "source_id", "prompt", "completed_at", "n_submitted").get(pk=item_id)
    data = {
        "item": item.pk,
        "source_id": item.source_id,
        "prompt": item.prompt,
        "n_annotations": item.n_submitted,
        "completed_at": item.completed_at.isoformat() if item.completed_at else None,
    }
    return event_emit(campaign_id=item.campaign_id, event=Event.ITEM_COMPLETED, data=data)


def export_finished_emit(*, job: ExportJob) -> list[int]:
    from django.urls import reverse

    data = {
        "export_job": job.pk,
        "format": job.format,
        "items_exported": job.items_exported,
        "left_out": job.left_out,
        "sha256": job.sha256,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "download_url": reverse("exports:download", args=[job.pk]),
    }
    return event_emit(campaign_id=job.campaign_id, event=Event.EXPORT_FINISHED, data=data)


def model_activated_emit(*, version: ModelVersion) -> list[int]:
    """Called where a version becomes active, inside the activation's transaction: the
    delivery is sent only if that commits."""
    data = {
        "model_version": version.pk,
        "activated_by": version.activated_by,
        "combined_metric": version.combined_metric,
        "dev_metrics": version.dev_metrics,
    }
    return event_emit(campaign_id=version.campaign_id, event=Event.MODEL_ACTIVATED, data=data)


# --------------------------------------------------------------------------- attempts


@dataclass(frozen=True)
class AttemptOutcome:
    status: str  # a WebhookDelivery.Status, or "skipped" (not due, claimed, or already done)
    retry_in_s: int | None = None  # set when the task must try again after that long
    status_code: int | None = None
    error: str = ""


class _Failure(Exception):
    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class _Transient(_Failure):
    """Worth another attempt: the receiver or the network may recover."""


class _Permanent(_Failure):
    """The same request would get the same answer."""


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AttemptOutcome:
    """Sends the delivery once and records the outcome. Safe to call twice (acks_late
    redelivery, the sweeper): a delivery that is done or claimed by another worker is left
    alone. `now` is the clock (tests pass a fake one)."""
    now = now or timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=CLAIM_S))
    )
    if not claimed:
        return AttemptOutcome(status="skipped")
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # its endpoint was deleted meanwhile, and the log with it
        return AttemptOutcome(status="skipped")
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        return _record_failed(
            delivery, now=now, error=f"not sent: the endpoint is disabled ({endpoint.disabled_reason})"
        )
    attempt = delivery.attempts + 1
    status_code: int | None = None
    try:
        status_code = _send(delivery, endpoint, now=now)
    except _Transient as exc:
        if attempt >= settings.RICHHF_WEBHOOKS_MAX_ATTEMPTS:
            return _record_failed(
                delivery,
                now=now,
                attempts=attempt,
                status_code=exc.status_code,
                error=f"gave up after {attempt} attempts: {exc.message}",
            )
        # attempt 1 failed -> wait BACKOFF_S, then 2x, 4x, ... capped at BACKOFF_MAX_S.
        delay = get_exponential_backoff_interval(
            settings.RICHHF_WEBHOOKS_BACKOFF_S, attempt - 1, settings.RICHHF_WEBHOOKS_BACKOFF_MAX_S
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=attempt,
            last_status_code=exc.status_code,
            last_error=exc.message,
            last_attempt_at=now,
            next_attempt_at=now + timedelta(seconds=delay),
            claimed_until=None,
        )
        return AttemptOutcome(
            status=WebhookDelivery.Status.PENDING, retry_in_s=delay, status_code=exc.status_code, error=exc.message
        )
    except _Permanent as exc:
        return _record_failed(delivery, now=now, attempts=attempt, status_code=exc.status_code, error=exc.message)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.SUCCEEDED,
        attempts=attempt,
        last_status_code=status_code,
        last_error="",
        last_attempt_at=now,
        delivered_at=now,
        next_attempt_at=None,
        claimed_until=None,
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(consecutive_failures=0)
    return AttemptOutcome(status=WebhookDelivery.Status.SUCCEEDED, status_code=status_code)


def _send(delivery: WebhookDelivery, endpoint: WebhookEndpoint, *, now: datetime) -> int:
    """POSTs the signed payload; returns the 2xx status or raises _Transient/_Permanent
    with (message, status code or None)."""
    try:
        # Again at delivery time: the name may point elsewhere since it was registered.
        url_check_public(endpoint.url)
    except UrlUnresolvable as exc:
        raise _Transient(str(exc)) from exc
    except UrlRefused as exc:
        raise _Permanent(f"address refused: {exc}") from exc
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "RichHF-Studio-Webhooks/1",
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_for(secret=endpoint.secret, timestamp=timestamp, body=body),
    }
    try:
        response = requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=(settings.RICHHF_WEBHOOKS_CONNECT_TIMEOUT_S, settings.RICHHF_WEBHOOKS_READ_TIMEOUT_S),
            # A redirect could lead to an address the check above never saw.
            allow_redirects=False,
            stream=True,
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}"[:2000]) from exc
    except requests.RequestException as exc:
        raise _Permanent(f"{type(exc).__name__}: {exc}"[:2000]) from exc
    with response:
        code = response.status_code
        if 200 <= code < 300:
            return code
        try:
            excerpt = response.raw.read(RESPONSE_EXCERPT_BYTES, decode_content=True).decode("utf-8", "replace")
        except Exception:
            excerpt = ""
    message = f"HTTP {code}" + (f": {excerpt.strip()}" if excerpt.strip() else "")
    if 300 <= code < 400:
        raise _Permanent(f"{message} (redirects are not followed)", code)
    if code >= 500 or code in (408, 429):
        raise _Transient(message, code)
    raise _Permanent(message, code)


def _record_failed(
    delivery: WebhookDelivery, *, now: datetime, error: str, attempts: int | None = None, status_code: int | None = None
) -> AttemptOutcome:
    counted = attempts is not None  # a delivery never sent (endpoint disabled) is no new failure
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.FAILED,
        attempts=attempts if counted else delivery.attempts,
        last_status_code=status_code if counted else delivery.last_status_code,
        last_error=error,
        last_attempt_at=now if counted else delivery.last_attempt_at,
        next_attempt_at=None,
        claimed_until=None,
    )
    if counted:
        _endpoint_failure_record(endpoint_id=delivery.endpoint_id, error=error)
    return AttemptOutcome(status=WebhookDelivery.Status.FAILED, status_code=status_code, error=error)


def _endpoint_failure_record(*, endpoint_id: int, error: str) -> None:
    """Counts a finally failed delivery; the N-th in a row disables the endpoint. Both are
    single UPDATEs, so two workers failing at once count twice and disable once."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.RICHHF_WEBHOOKS_DISABLE_AFTER
    disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True, consecutive_failures__gte=limit).update(
        is_active=False,
        disabled_reason=f"disabled after {limit} failed deliveries in a row; last: {error}"[:2000],
        updated_at=timezone.now(),
    )
    if disabled:
        logger.warning("webhook endpoint %s disabled after %s failed deliveries", endpoint_id, limit)


# --------------------------------------------------------------------------- sweeper


def deliveries_enqueue_due(*, now: datetime | None = None) -> int:
    """Enqueues pending deliveries overdue by RICHHF_WEBHOOKS_SWEEP_GRACE_S: their message was
    lost (broker down at emit or retry, a worker killed). Returns how many."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.RICHHF_WEBHOOKS_SWEEP_GRACE_S)
    ids = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=overdue)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("pk", flat=True)[:1000]
    )
    # Due again only after another grace period, so a backlog is not enqueued at every sweep.
    WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
    _enqueue(ids)
    return len(ids)
