"""The lead pages' endpoints: the permission matrix (rater 403, lead reads, admin all), the
freshness a dashboard polls, the heatmap PNGs of the item page, and an extra-rater request
settled by the answer that fulfils it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from aggregation.dashboard.models import CampaignStats, ExtraRaterRequest
from aggregation.dashboard.services import STATS_VERSION, campaign_stats_recompute
from aggregation.learning.models import ItemPrediction, ModelVersion
from aggregation.services.aggregates import item_aggregate_upsert
from annotation.models import Item
from modeling.heatmaps import encode_heatmap_png
from tests.conftest import api_client_for, submitted_annotation, valid_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(raters, make_user, make_item):
    campaign, users = raters
    item = make_item(campaign, prompt="a red cat on a sofa")
    for user, scores in zip(users, [(4, 4, 4, 4), (2, 3, 3, 3), (5, 4, 4, 4)], strict=True):
        submitted_annotation(item, user, scores=scores, implausible=[(0.5, 0.5)], misaligned=[(0.2, 0.2)], words=[1])
    Item.objects.filter(pk=item.pk).update(completed_at=timezone.now())
    assert item_aggregate_upsert(item_id=item.pk) is not None
    campaign_stats_recompute(campaign_id=campaign.pk)
    return {
        "campaign": campaign,
        "item": item,
        "rater": users[0],
        "users": users,
        "lead": make_user("lead", "lead"),
        "admin": make_user("boss", "admin"),
    }


def _reads(w) -> list[str]:
    c, i = w["campaign"].pk, w["item"].pk
    return [
        reverse("dashboard:api-freshness", args=[c]),
        reverse("dashboard:api-stats", args=[c]),
        reverse("dashboard:api-stats-csv", args=[c]) + "?table=generators",
        reverse("dashboard:api-stats-csv", args=[c]) + "?table=generator_pairs",
        reverse("dashboard:api-item", args=[i]),
        reverse("dashboard:api-item-map", args=[i, "human", "implausibility"]),
        reverse("dashboard:api-item-map", args=[i, "human", "misalignment"]),
        reverse("learning:api-settings", args=[c]),
        reverse("learning:api-versions", args=[c]),
    ]


def _pages(w) -> list[str]:
    c, i = w["campaign"].pk, w["item"].pk
    return [
        reverse("dashboard:campaign", args=[c]),
        reverse("dashboard:item", args=[i]),
        reverse("learning:campaign", args=[c]),
    ]


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["rater", "lead", "admin"])
def test_permission_matrix(world, who):
    user = world[who]
    api = api_client_for(user)
    allowed = who != "rater"
    for url in _reads(world):
        assert api.get(url).status_code == (200 if allowed else 403), url
    for url in _pages(world):
        assert _browser(user).get(url).status_code == (200 if allowed else 403), url
    c = world["campaign"].pk
    # Refresh and Retrain: leads may start them (they change no settings).
    refresh = api.post(reverse("dashboard:api-refresh", args=[c]))
    assert refresh.status_code == (202 if allowed else 403)
    retrain = api.post(reverse("learning:api-retrain", args=[c]))
    assert retrain.status_code == (202 if allowed else 403)
    # Settings: only admins change them; a lead's change is refused and nothing is written.
    put = api.put(reverse("learning:api-settings", args=[c]), {"random_share": 0.3}, format="json")
    assert put.status_code == (200 if who == "admin" else 403)
    shown = api_client_for(world["admin"]).get(reverse("learning:api-settings", args=[c])).json()
    assert shown["random_share"] == (0.3 if who == "admin" else 0.1)


def test_learning_page_is_read_only_for_a_lead_and_editable_for_an_admin(world):
    c = world["campaign"].pk
    lead_page = _browser(world["lead"]).get(reverse("learning:campaign", args=[c])).content.decode()
    admin_page = _browser(world["admin"]).get(reverse("learning:campaign", args=[c])).content.decode()
    assert 'id="settings-readonly"' in lead_page and '"can_edit": false' in lead_page
    assert 'id="settings-readonly"' not in admin_page and '"can_edit": true' in admin_page


def test_settings_put_names_the_bad_field(world):
    url = reverse("learning:api-settings", args=[world["campaign"].pk])
    bad = api_client_for(world["admin"]).put(url, {"random_share": 1.5}, format="json")
    assert bad.status_code == 400
    unknown = api_client_for(world["admin"]).put(url, {"wizardry": 1}, format="json")
    assert unknown.status_code == 400 and "wizardry" in unknown.json()["errors"]


def test_freshness_says_stale_after_a_new_answer_and_fresh_after_the_recompute(world, make_item):
    url = reverse("dashboard:api-freshness", args=[world["campaign"].pk])
    lead = api_client_for(world["lead"])
    body = lead.get(url).json()
    assert body["stale"] is False and body["n_annotations"] == body["n_annotations_now"] == 3
    assert body["refresh_progress"] == 1.0 and body["refresh_stage"] == "done"
    other = make_item(world["campaign"], prompt="a dog")
    submitted_annotation(other, world["rater"])
    body = lead.get(url).json()
    assert body["stale"] is True and body["n_annotations_now"] == 4 and body["n_annotations"] == 3
    # an answer on a gold item changes no statistic, so it does not make the page stale
    gold = make_item(world["campaign"], prompt="a gold cat")
    Item.objects.filter(pk=gold.pk).update(is_gold=True)
    submitted_annotation(gold, world["users"][1])
    assert lead.get(url).json()["n_annotations_now"] == 4
    campaign_stats_recompute(campaign_id=world["campaign"].pk)
    assert lead.get(url).json()["stale"] is False
    # a payload of an older layout is stale too
    CampaignStats.objects.filter(campaign=world["campaign"]).update(version=STATS_VERSION - 1)
    assert lead.get(url).json()["stale"] is True


def test_refresh_records_queued_then_the_recompute_reports_done(world):
    c = world["campaign"].pk
    api_client_for(world["lead"]).post(reverse("dashboard:api-refresh", args=[c]))
    stats = CampaignStats.objects.get(campaign=world["campaign"])
    assert (stats.refresh_stage, stats.refresh_progress) == ("queued", 0.0)
    stats = campaign_stats_recompute(campaign_id=c)
    assert (stats.refresh_stage, stats.refresh_progress, stats.refresh_requested_at) == ("done", 1.0, None)


def _png_grey(response) -> Image.Image:
    return Image.open(io.BytesIO(b"".join(response.streaming_content)))


def test_item_maps_human_always_model_only_from_the_active_version(world):
    item, lead = world["item"], api_client_for(world["lead"])
    body = lead.get(reverse("dashboard:api-item", args=[item.pk])).json()
    assert body["radius_fraction"] == world["campaign"].radius_fraction
    assert body["maps"]["human"]["implausibility"].endswith("/maps/human/implausibility.png")
    assert body["maps"]["human_n_annotations"] == 3
    assert body["maps"]["model"] is None and body["maps"]["active_version"] is None
    human = lead.get(body["maps"]["human"]["implausibility"])
    assert human["Content-Type"] == "image/png" and np.asarray(_png_grey(human)).max() == 255  # 3 of 3 raters
    assert lead.get(reverse("dashboard:api-item-map", args=[item.pk, "model", "implausibility"])).status_code == 404
    assert lead.get(reverse("dashboard:api-item-map", args=[item.pk, "human", "secrets"])).status_code == 404

    version = ModelVersion.objects.create(campaign=world["campaign"], status="done", is_active=True)
    prediction = ItemPrediction(item=item, version=version, scores={}, strategy="random", acquisition=0.0, queue_rank=0)
    ramp = np.tile(np.linspace(0, 1, 64), (64, 1))
    prediction.implausibility_map.save("p-imp.png", ContentFile(encode_heatmap_png(ramp)), save=False)
    prediction.misalignment_map.save("p-mis.png", ContentFile(encode_heatmap_png(np.zeros((8, 8)))), save=False)
    prediction.save()
    body = lead.get(reverse("dashboard:api-item", args=[item.pk])).json()
    assert body["maps"]["model_version"] == version.pk and body["maps"]["active_version"] == version.pk
    model = lead.get(body["maps"]["model"]["implausibility"])
    assert model.status_code == 200 and _png_grey(model).size == (64, 64)
    # a prediction left by a version that is no longer active is not shown as the model's
    ModelVersion.objects.filter(pk=version.pk).update(is_active=False)
    assert lead.get(reverse("dashboard:api-item", args=[item.pk])).json()["maps"]["model"] is None


def test_extra_rater_request_is_settled_by_the_answer_that_fulfils_it(
    make_campaign, make_user, make_item, django_capture_on_commit_callbacks
):
    from annotation.services import campaign_add_raters

    campaign = make_campaign("k1", raters_per_item=1)
    first, second = make_user("first", "rater"), make_user("second", "rater")
    campaign_add_raters(campaign=campaign, users=[first, second])
    lead = api_client_for(make_user("lead", "lead"))
    item = make_item(campaign, prompt="a cat")

    def answer(rater):
        client = api_client_for(rater)
        with django_capture_on_commit_callbacks(execute=True):
            lease = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()
            assert lease["assignment"]["item"]["id"] == item.pk
            done = client.post(
                reverse("api:submit", args=[lease["assignment"]["id"]]), valid_submission(), format="json"
            )
        assert done.status_code in (200, 201)

    answer(first)
    assert lead.post(reverse("dashboard:api-extra-rater", args=[item.pk]), {}, format="json").status_code == 201
    item_api = reverse("dashboard:api-item", args=[item.pk])
    assert lead.get(item_api).json()["extra_rater_requested"] is True
    answer(second)
    # settled at once, by the item_completed hook: no dashboard recompute has run
    assert ExtraRaterRequest.objects.get(item=item).status == "fulfilled"
    assert lead.get(item_api).json()["extra_rater_requested"] is False
    assert lead.post(reverse("dashboard:api-extra-rater", args=[item.pk]), {}, format="json").status_code == 201


def test_freshness_is_cheap_to_poll(world, django_assert_max_num_queries):
    """The page polls it every few seconds: the campaign, the cache row and one count."""
    client = api_client_for(world["lead"])
    url = reverse("dashboard:api-freshness", args=[world["campaign"].pk])
    client.get(url)  # the role lookup is cached per user object from here on
    with django_assert_max_num_queries(3):
        assert client.get(url).status_code == 200
