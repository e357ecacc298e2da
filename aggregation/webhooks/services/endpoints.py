"""Admins' registrations of webhook endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from annotation.models import Campaign
from richhf_site.errors import ApplicationError

from ..addresses import UrlRefused, url_check_public
from ..events import EVENT_NAMES
from ..models import WebhookEndpoint
from ..signing import secret_generate

SECRET_MIN_LENGTH = 16


def _url_checked(url: str) -> str:
    url = url.strip()
    try:
        url_check_public(url)
    except UrlRefused as exc:
        raise ApplicationError(f"url: {exc}", field="url") from exc
    return url


def _events_checked(events: Sequence[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENT_NAMES]
    if unknown:
        raise ApplicationError(
            f"events: unknown event {unknown[0]!r}; expected some of {', '.join(EVENT_NAMES)}", field="events"
        )
    if not events:
        raise ApplicationError("events: subscribe to at least one event", field="events")
    return [e for e in EVENT_NAMES if e in events]  # one order, no duplicates


@transaction.atomic
def endpoint_create(
    *, campaign: Campaign, url: str, events: Sequence[str], secret: str | None = None, created_by: Any = None
) -> WebhookEndpoint:
    """Registers an endpoint; the secret is generated unless given. The caller shows
    endpoint.secret once: no read returns it afterwards."""
    if secret is not None and len(secret) < SECRET_MIN_LENGTH:
        raise ApplicationError(f"secret: at least {SECRET_MIN_LENGTH} characters", field="secret")
    return WebhookEndpoint.objects.create(
        campaign=campaign,
        url=_url_checked(url),
        events=_events_checked(events),
        secret=secret or secret_generate(),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: Sequence[str] | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    """Changes what is given. Re-enabling an endpoint clears its failure count and the reason
    it was disabled, and checks its URL again (the host may resolve elsewhere by now)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if url is not None:
        endpoint.url = _url_checked(url)
    if events is not None:
        endpoint.events = _events_checked(events)
    if is_active is True and not endpoint.is_active:
        if url is None:
            _url_checked(endpoint.url)
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = ""
    if is_active is False and endpoint.is_active:
        endpoint.disabled_reason = "disabled by an admin"
    if is_active is not None:
        endpoint.is_active = is_active
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint and its delivery log; a delivery in flight finds it gone and stops."""
    endpoint.delete()
