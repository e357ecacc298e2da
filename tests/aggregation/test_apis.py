"""Leads and admins read aggregates; raters and anonymous users cannot."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from aggregation.services import item_aggregate_upsert
from modeling.heatmaps import decode_heatmap_png as decode_png
from tests.aggregation.conftest import answer
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def aggregated(raters, make_item, annotate):
    campaign, users = raters
    item = make_item(campaign, prompt="a yellow cat", width=64, height=48)
    annotate(
        item,
        users,
        [
            answer(implausible=[[0.5, 0.5]], words=[1], plausibility=5),
            answer(implausible=[[0.5, 0.5]], words=[1], plausibility=4),
            answer(misaligned=[[0.1, 0.1]], words=[2], plausibility=3),
        ],
    )
    item_aggregate_upsert(item_id=item.pk)
    return campaign, users, item


@pytest.mark.parametrize("role", ["lead", "admin"])
def test_lead_and_admin_read_the_aggregate(aggregated, make_user, role, django_assert_max_num_queries):
    campaign, _, item = aggregated
    client = api_client_for(make_user(f"boss-{role}", role))
    with django_assert_max_num_queries(4):
        response = client.get(reverse("aggregation:item-aggregate", args=[item.pk]))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["item"] == item.pk and body["campaign"] == campaign.pk and body["is_current"] is True
    assert body["scores"]["plausibility"] == {"mean": 4.0, "normalised": 0.75}
    assert body["words"] == [
        {"index": 0, "word": "a", "votes": 0, "misaligned": False},
        {"index": 1, "word": "yellow", "votes": 2, "misaligned": True},
        {"index": 2, "word": "cat", "votes": 1, "misaligned": False},
    ]
    assert body["prompt_misalignment_label"] == "1 0 1"
    assert body["tagged_target"] == "a yellow_0 cat"
    assert body["agreement"]["score_maxdiff"]["plausibility"] == 0.5
    assert body["agreement"]["keyword_unanimity"] == pytest.approx(1 / 3)
    assert body["heatmaps"]["implausibility"]["release_name"] == "artifact_map"
    png = client.get(body["heatmaps"]["implausibility"]["url"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    values = decode_png(b"".join(png.streaming_content))
    assert values.shape == (512, 512) and values[256, 256] == 170 and values.max() == 170


def test_rater_gets_403_everywhere(aggregated):
    campaign, users, item = aggregated
    client = api_client_for(users[0])  # even a rater who annotated this very item
    for url in (
        reverse("aggregation:item-aggregate", args=[item.pk]),
        reverse("aggregation:item-heatmap", args=[item.pk, "implausibility"]),
        reverse("aggregation:campaign-aggregates", args=[campaign.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "leads and admins" in response.json()["detail"]


def test_anonymous_is_refused(aggregated):
    _, _, item = aggregated
    response = APIClient().get(reverse("aggregation:item-aggregate", args=[item.pk]))
    assert response.status_code in (401, 403)


def test_missing_aggregate_and_unknown_kind_are_404(aggregated, make_item, make_user):
    campaign, _, item = aggregated
    client = api_client_for(make_user("lead", "lead"))
    fresh = make_item(campaign, prompt="not rated yet")
    response = client.get(reverse("aggregation:item-aggregate", args=[fresh.pk]))
    assert response.status_code == 404 and "no aggregate" in response.json()["detail"]
    assert client.get(reverse("aggregation:item-heatmap", args=[item.pk, "beauty"])).status_code == 404


def test_campaign_list_is_paginated(aggregated, make_user):
    campaign, _, item = aggregated
    client = api_client_for(make_user("lead", "lead"))
    body = client.get(reverse("aggregation:campaign-aggregates", args=[campaign.pk])).json()
    assert body["count"] == 1 and body["results"][0]["item"] == item.pk


def test_stale_aggregate_is_reported_as_not_current(aggregated, make_user):
    campaign, _, item = aggregated
    campaign.radius_fraction = 0.1
    campaign.save()
    client = api_client_for(make_user("lead", "lead"))
    assert client.get(reverse("aggregation:item-aggregate", args=[item.pk])).json()["is_current"] is False


def test_admin_changelist_and_detail_render(aggregated, admin_client):
    _, _, item = aggregated
    assert admin_client.get(reverse("admin:aggregation_itemaggregate_changelist")).status_code == 200
    detail = admin_client.get(reverse("admin:aggregation_itemaggregate_change", args=[item.aggregate.pk]))
    assert detail.status_code == 200
    assert reverse("aggregation:item-heatmap", args=[item.pk, "implausibility"]).encode() in detail.content
