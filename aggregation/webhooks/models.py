"""Webhook endpoints registered per campaign, and the log of their deliveries."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Campaign


class WebhookEndpoint(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000, help_text="A public http(s) URL; checked again before each delivery.")
    # Kept in clear: every delivery is signed with it (HMAC needs the key itself). The API
    # shows it once, in the response that creates the endpoint.
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list, help_text="The subscribed event names, e.g. ['item.completed'].")
    is_active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True, help_text="Why delivery stopped; cleared when re-enabled.")
    # Deliveries that finally failed (retries exhausted or refused) since the last success.
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["campaign", "is_active"], name="webhook_endpoint_campaign")]

    def __str__(self) -> str:
        return f"{self.url} ({self.campaign_id})"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # Sent in the payload: the same on every retry, so a receiver can drop duplicates.
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker sends it, so a duplicate message (acks_late redelivery, the sweeper)
    # does not send it twice at once; no row lock is held over the network call.
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(delivered_at__isnull=False), name="webhookdelivery_delivered_at"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhookdelivery_pending")]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id} ({self.status})"
