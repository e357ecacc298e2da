"""The Django admin writes endpoints through the same services as the API."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.fixtures import Settings

from aggregation.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_the_admin_adds_an_endpoint_with_a_generated_secret_shown_once(admin_client, make_campaign, settings: Settings):
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = False
    campaign = make_campaign()
    add = reverse("admin:webhooks_webhookendpoint_add")
    form = {"campaign": campaign.pk, "url": "http://10.0.0.1/hook", "events": ["item.completed"], "is_active": "on"}
    refused = admin_client.post(add, form)
    assert refused.status_code == 200 and "not a public address" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()

    response = admin_client.post(add, {**form, "url": "https://93.184.216.34/hook"}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.events == ["item.completed"]
    assert endpoint.secret in response.content.decode()  # the one time it is shown
    change = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    assert endpoint.secret not in admin_client.get(change).content.decode()

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, consecutive_failures=5, disabled_reason="disabled after 5 failed deliveries in a row"
    )
    page = admin_client.get(change).content.decode()
    assert "disabled after 5 failed deliveries in a row" in page
    admin_client.post(change, {**form, "url": "https://93.184.216.34/hook", "is_active": "on"})
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""
