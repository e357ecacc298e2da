"""Dashboard API and pages: leads and admins only, JSON and CSV, refresh enqueues after commit."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from aggregation.dashboard import tasks
from aggregation.dashboard.models import CampaignStats, ExtraRaterRequest
from aggregation.dashboard.services import STATS_VERSION, campaign_stats_recompute
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_campaign, make_user, make_item, rate):
    campaign = make_campaign("api")
    users = [make_user(f"u{i}", "rater") for i in range(3)]
    item = make_item(campaign)
    for u, s in zip(users, (2, 3, 5), strict=True):
        rate(item, u, (s, s, s, s), words=[0] if s > 2 else [])
    campaign_stats_recompute(campaign_id=campaign.pk)
    return {
        "campaign": campaign,
        "item": item,
        "rater": users[0],
        "lead": make_user("lead", "lead"),
        "admin": make_user("boss", "admin"),
    }


def _endpoints(campaign_id: int, item_id: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("dashboard:api-stats", args=[campaign_id])),
        ("get", reverse("dashboard:api-stats-csv", args=[campaign_id])),
        ("post", reverse("dashboard:api-refresh", args=[campaign_id])),
        ("get", reverse("dashboard:api-item", args=[item_id])),
        ("post", reverse("dashboard:api-extra-rater", args=[item_id])),
    ]


def test_raters_get_403_everywhere(setup):
    client = api_client_for(setup["rater"])
    for method, url in _endpoints(setup["campaign"].pk, setup["item"].pk):
        assert getattr(client, method)(url).status_code == 403, url
    assert CampaignStats.objects.get().refresh_requested_at is None
    assert not ExtraRaterRequest.objects.exists()


def test_anonymous_is_refused(setup):
    from rest_framework.test import APIClient

    for method, url in _endpoints(setup["campaign"].pk, setup["item"].pk):
        assert getattr(APIClient(), method)(url).status_code in (401, 403), url


def test_pages_forbid_raters_and_serve_leads(setup):
    url = reverse("dashboard:campaign", args=[setup["campaign"].pk])
    item_url = reverse("dashboard:item", args=[setup["item"].pk])
    rater = Client()
    rater.force_login(setup["rater"])
    assert rater.get(url).status_code == 403 and rater.get(item_url).status_code == 403
    lead = Client()
    lead.force_login(setup["lead"])
    response = lead.get(url)
    assert response.status_code == 200
    assert b"dashboard-config" in response.content and b'"computed_at"' in response.content
    assert lead.get(item_url).status_code == 200


def test_page_reads_only_the_cache(setup, django_assert_max_num_queries):
    client = Client()
    client.force_login(setup["lead"])
    url = reverse("dashboard:campaign", args=[setup["campaign"].pk])
    with django_assert_max_num_queries(7):  # session, user, groups, campaign, stats row, annotation count
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("who", ["lead", "admin"])
def test_json_for_leads_and_admins(setup, who):
    body = api_client_for(setup[who]).get(reverse("dashboard:api-stats", args=[setup["campaign"].pk])).json()
    assert body["computed_at"] and body["version"] == STATS_VERSION
    st = body["stats"]
    assert st["progress"]["annotations"] == 3
    assert st["scores"]["overall"]["maxdiff"]["counts"] == [0, 0, 0, 1, 0]  # (5 - 2) / 4 = 0.75
    assert {r["username"] for r in st["raters"]} == {"u0", "u1", "u2"}


def test_csv_tables(setup):
    client = api_client_for(setup["lead"])
    url = reverse("dashboard:api-stats-csv", args=[setup["campaign"].pk])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "metric", "value"]
    assert ["overall", "paper_good_share", "0.85"] in rows
    raters = list(csv.DictReader(io.StringIO(client.get(url + "?table=raters").content.decode())))
    assert sorted(r["username"] for r in raters) == ["u0", "u1", "u2"]
    u0 = next(r for r in raters if r["username"] == "u0")
    assert float(u0["bias_overall"]) == pytest.approx(2 - 4)  # others' mean (3 + 5) / 2
    assert client.get(url + "?table=nope").status_code == 400


def test_stats_404_before_any_compute(make_campaign, make_user):
    campaign = make_campaign("fresh")
    response = api_client_for(make_user("l2", "lead")).get(reverse("dashboard:api-stats", args=[campaign.pk]))
    assert response.status_code == 404


def test_refresh_enqueues_after_commit_and_the_task_recomputes(setup, monkeypatch, django_capture_on_commit_callbacks):
    sent: list[int] = []
    monkeypatch.setattr(tasks.recompute_campaign_stats, "delay", lambda cid: sent.append(cid))
    before = CampaignStats.objects.get().computed_at
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(setup["lead"]).post(reverse("dashboard:api-refresh", args=[setup["campaign"].pk]))
    assert response.status_code == 202
    assert sent == [setup["campaign"].pk]
    assert CampaignStats.objects.get().refresh_requested_at is not None
    with django_capture_on_commit_callbacks(execute=True):  # a second click while pending: no second task
        assert (
            api_client_for(setup["lead"])
            .post(reverse("dashboard:api-refresh", args=[setup["campaign"].pk]))
            .status_code
            == 202
        )
    assert sent == [setup["campaign"].pk]
    tasks.recompute_campaign_stats.run(setup["campaign"].pk)
    row = CampaignStats.objects.get()
    assert row.refresh_requested_at is None and row.computed_at > before
    tasks.recompute_campaign_stats.run(999_999)  # deleted campaign: nothing to do, no error
    assert CampaignStats.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):  # once computed, a refresh enqueues again
        api_client_for(setup["lead"]).post(reverse("dashboard:api-refresh", args=[setup["campaign"].pk]))
    assert sent == [setup["campaign"].pk] * 2


def test_item_compare_and_extra_rater(setup):
    client = api_client_for(setup["lead"])
    body = client.get(reverse("dashboard:api-item", args=[setup["item"].pk])).json()
    assert len(body["raters"]) == 3 and body["image_url"].endswith(f"/items/{setup['item'].pk}/image/")
    assert body["extra_rater_requested"] is False
    # the image itself is readable by the lead through the annotation API
    assert client.get(body["image_url"]).status_code == 200
    url = reverse("dashboard:api-extra-rater", args=[setup["item"].pk])
    assert client.post(url, {"reason": "spread"}, format="json").status_code == 201
    assert client.post(url, {}, format="json").status_code == 409
    assert client.get(reverse("dashboard:api-item", args=[setup["item"].pk])).json()["extra_rater_requested"] is True


def test_openapi_schema_lists_the_dashboard_api(make_user):
    client = api_client_for(make_user("schema-lead", "lead"))
    paths = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()["paths"]
    assert "/api/dashboard/campaigns/{campaign_id}/stats/" in paths
    assert "/api/dashboard/items/{item_id}/extra-rater/" in paths


def test_beat_and_task_names(settings):
    from richhf_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["recompute-dashboard-stats"]
    assert entry["task"] == tasks.recompute_all_campaign_stats.name == "dashboard.recompute_all_campaign_stats"
    assert entry["task"] in app.tasks
    assert app.tasks["dashboard.recompute_campaign_stats"].acks_late is True


def test_recompute_all_enqueues_one_per_campaign(setup, make_campaign, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(tasks.recompute_campaign_stats, "delay", lambda cid: sent.append(cid))
    other = make_campaign("other")
    assert tasks.recompute_all_campaign_stats.run() == 2
    assert sorted(sent) == sorted([setup["campaign"].pk, other.pk])
