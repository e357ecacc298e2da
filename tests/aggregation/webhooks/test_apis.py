"""The webhook API: admins register endpoints, leads and admins read the delivery log."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.fixtures import Settings

from aggregation.webhooks import services
from aggregation.webhooks.events import Event
from aggregation.webhooks.models import WebhookEndpoint
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.216.34/hook"


@pytest.fixture
def people(make_user):
    return {
        "admin": make_user("admin1", "admin"),
        "lead": make_user("lead1", "lead"),
        "rater": make_user("rater1", "rater"),
    }


def _list_url(campaign_id: int) -> str:
    return reverse("webhooks:campaign-webhooks", args=[campaign_id])


def test_an_admin_registers_an_endpoint_and_sees_the_secret_once(make_campaign, people):
    campaign = make_campaign()
    client = api_client_for(people["admin"])
    response = client.post(
        _list_url(campaign.pk), {"url": PUBLIC_URL, "events": ["model.activated", "item.completed"]}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 32
    assert body["events"] == ["item.completed", "model.activated"] and body["is_active"] is True
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]

    listed = client.get(_list_url(campaign.pk)).json()
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    detail = client.get(reverse("webhooks:endpoint", args=[body["id"]])).json()
    assert "secret" not in detail and detail["url"] == PUBLIC_URL

    given = client.post(
        _list_url(campaign.pk), {"url": PUBLIC_URL, "events": ["rater.paused"], "secret": "x" * 20}, format="json"
    )
    assert given.status_code == 201 and given.json()["secret"] == "x" * 20


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "http://127.0.0.1:8000/hook", "events": ["item.completed"]}, "url"),
        ({"url": "http://169.254.169.254/", "events": ["item.completed"]}, "url"),
        ({"url": "ftp://93.184.216.34/", "events": ["item.completed"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["item.deleted"]}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL}, "events"),
        ({"events": ["item.completed"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["item.completed"], "secret": "short"}, "secret"),
    ],
)
def test_bad_registrations_are_400_naming_the_field(
    make_campaign, people, settings: Settings, payload: dict, field: str
):
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = False
    response = api_client_for(people["admin"]).post(_list_url(make_campaign().pk), payload, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    # The field, or one of its elements by dotted path ("events.0").
    assert any(path == field or path.startswith(f"{field}.") for path in response.json()["errors"]), response.json()
    assert not WebhookEndpoint.objects.exists()


def test_private_urls_register_with_the_setting(make_campaign, people, settings: Settings):
    settings.RICHHF_WEBHOOKS_ALLOW_PRIVATE = True
    response = api_client_for(people["admin"]).post(
        _list_url(make_campaign().pk),
        {"url": "http://127.0.0.1:8000/hook", "events": ["item.completed"]},
        format="json",
    )
    assert response.status_code == 201


@pytest.mark.parametrize("role", ["lead", "rater"])
def test_only_admins_manage_endpoints(make_campaign, people, role: str):
    campaign = make_campaign()
    endpoint = services.endpoint_create(campaign=campaign, url=PUBLIC_URL, events=[Event.ITEM_COMPLETED])
    client = api_client_for(people[role])
    detail = reverse("webhooks:endpoint", args=[endpoint.pk])
    assert (
        client.post(
            _list_url(campaign.pk), {"url": PUBLIC_URL, "events": ["item.completed"]}, format="json"
        ).status_code
        == 403
    )
    assert client.get(_list_url(campaign.pk)).status_code == 403
    assert client.get(detail).status_code == 403
    assert client.patch(detail, {"is_active": False}, format="json").status_code == 403
    assert client.delete(detail).status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).count() == 1


def test_an_admin_updates_re_enables_and_deletes(make_campaign, people):
    endpoint = services.endpoint_create(campaign=make_campaign(), url=PUBLIC_URL, events=[Event.ITEM_COMPLETED])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, consecutive_failures=5, disabled_reason="disabled after 5 failed deliveries in a row"
    )
    client = api_client_for(people["admin"])
    url = reverse("webhooks:endpoint", args=[endpoint.pk])
    shown = client.get(url).json()
    assert shown["is_active"] is False and shown["disabled_reason"].startswith("disabled after 5")
    response = client.patch(url, {"is_active": True, "events": ["export.finished"]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["is_active"] is True and body["consecutive_failures"] == 0 and body["disabled_reason"] == ""
    assert body["events"] == ["export.finished"]
    refused = client.patch(url, {"url": "http://10.0.0.1/"}, format="json")
    assert refused.status_code == 400 and "url" in refused.json()["errors"]
    assert client.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert client.get(url).status_code == 404


def test_leads_and_admins_read_the_delivery_log_raters_do_not(make_campaign, people):
    campaign = make_campaign()
    endpoint = services.endpoint_create(campaign=campaign, url=PUBLIC_URL, events=[Event.ITEM_COMPLETED])
    other = services.endpoint_create(campaign=make_campaign("c2"), url=PUBLIC_URL, events=[Event.ITEM_COMPLETED])
    services.event_emit(campaign_id=campaign.pk, event=Event.ITEM_COMPLETED, data={"item": 1})
    services.event_emit(campaign_id=other.campaign_id, event=Event.ITEM_COMPLETED, data={"item": 2})
    url = reverse("webhooks:campaign-deliveries", args=[campaign.pk])
    for role in ("lead", "admin"):
        response = api_client_for(people[role]).get(url, {"endpoint": endpoint.pk, "status": "pending"})
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 1
        [row] = body["results"]
        assert row["endpoint"] == endpoint.pk and row["event"] == "item.completed" and row["attempts"] == 0
        assert row["payload"]["data"] == {"item": 1} and row["payload"]["delivery_id"] == row["delivery_id"]
        assert "secret" not in str(row)
    assert api_client_for(people["rater"]).get(url).status_code == 403
    bad = api_client_for(people["lead"]).get(url, {"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


def test_unknown_keys_are_refused_naming_them(make_campaign, people):
    payload = {"url": PUBLIC_URL, "events": ["item.completed"], "evnts": ["export.finished"]}
    response = api_client_for(people["admin"]).post(_list_url(make_campaign().pk), payload, format="json")
    assert response.status_code == 400
    assert "evnts" in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()
