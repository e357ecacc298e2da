"""Webhook reads."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Campaign

from .models import WebhookDelivery, WebhookEndpoint


def endpoints_of_campaign(*, campaign: Campaign) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(campaign=campaign).order_by("id")


def deliveries_of_campaign(
    *, campaign: Campaign, endpoint_id: int | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """Newest first."""
    deliveries = WebhookDelivery.objects.filter(endpoint__campaign=campaign).select_related("endpoint")
    if endpoint_id is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    if status is not None:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-id")
