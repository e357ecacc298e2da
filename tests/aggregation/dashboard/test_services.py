"""Recompute service on the real database: hand-computed campaign figures, idempotent upsert,
extra-rater requests."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from django.urls import reverse

from aggregation.dashboard.models import CampaignStats, ExtraRaterRequest
from aggregation.dashboard.services import campaign_stats_recompute, extra_rater_request
from annotation.models import Item
from richhf_site.errors import Conflict

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_campaign(make_campaign, make_user, make_item, rate):
    """Three raters, two complete items, one item with a single annotation, one untouched.

    item A ("a cat on a sofa", 4 words): scores a=(5,5,5,5) b=(3,3,3,3) c=(3,3,3,3); words a{1} b{1} c{}
    item B: a=(4,4,4,4) b=(2,2,2,2) c=(2,2,2,2); words all {}
    item C: a only (1,1,1,1)
    item D: nobody
    """
    campaign = make_campaign("small")
    a, b, c = (make_user(n, "rater") for n in ("ann", "bob", "cy"))
    items = [make_item(campaign, prompt="a cat on sofa") for _ in range(4)]
    rate(items[0], a, (5, 5, 5, 5), words=[1], implausible=[[0.5, 0.5]], time_ms=4000)
    rate(items[0], b, (3, 3, 3, 3), words=[1], implausible=[[0.5, 0.5]], time_ms=8000)
    rate(items[0], c, (3, 3, 3, 3), words=[], time_ms=12000)
    rate(items[1], a, (4, 4, 4, 4), time_ms=6000)
    rate(items[1], b, (2, 2, 2, 2), time_ms=10000)
    rate(items[1], c, (2, 2, 2, 2), time_ms=14000)
    rate(items[2], a, (1, 1, 1, 1), time_ms=2000)
    Item.objects.filter(pk__in=[items[0].pk, items[1].pk]).update(completed_at="2026-01-01T00:00:00Z")
    return campaign, (a, b, c), items


def test_recompute_figures_hand_computed(small_campaign):
    campaign, (a, b, c), items = small_campaign
    stats = campaign_stats_recompute(campaign_id=campaign.pk)
    p = stats.payload
    prog = p["progress"]
    assert (prog["items_total"], prog["items_complete"], prog["annotations"], prog["raters"]) == (4, 2, 7, 3)
    assert prog["items_in_progress"] + prog["items_untouched"] == 2
    assert prog["active_raters"] == 3
    assert prog["median_time_s"] == pytest.approx(8.0)  # median of 2,4,6,8,10,12,14 s
    assert sum(d["n"] for d in prog["per_day"]) == 7

    plaus = p["scores"]["plausibility"]
    assert plaus["raw_histogram"] == [1, 2, 2, 1, 1]
    # maxdiff over items with >= 2 raters: A (5-3)/4 = 0.5, B (4-2)/4 = 0.5.
    assert plaus["maxdiff"]["counts"] == [0, 0, 2, 0, 0]
    assert plaus["maxdiff"]["perfect_share"] == 0 and plaus["maxdiff"]["good_share"] == 0
    # Averaged histogram counts every rated item once (3 with annotations).
    assert sum(plaus["averaged_histogram"]["counts"]) == 3
    assert plaus["alpha"]["level"] == "interval" and plaus["alpha"]["n_units"] == 2
    # Independent check of the stored alpha: krippendorff on the same two items (+ the single one).
    data = np.array([[5, 4, 1], [3, 2, np.nan], [3, 2, np.nan]], dtype=float)
    for level, key in (("interval", "alpha"), ("ordinal", "alpha_ordinal")):
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=[1, 2, 3, 4, 5])
        assert plaus["alpha"][key] == pytest.approx(expected, abs=1e-6)

    rows = {r["username"]: r for r in p["raters"]}
    assert rows["ann"]["bias"]["overall"] == pytest.approx(2.0)
    assert rows["bob"]["bias"]["overall"] == pytest.approx(-1.0)
    assert rows["ann"]["annotations"] == 3 and rows["ann"]["median_time_s"] == pytest.approx(4.0)
    assert rows["ann"]["mean_points"] == pytest.approx(1 / 3)
    # Item A words: ann and bob marked word 1 (majority), cy did not; item B all agree.
    assert rows["cy"]["word_disagreement"] == pytest.approx(0.5)
    assert rows["ann"]["word_disagreement"] == 0

    # Fleiss over the 2 x 4 words of the three-rater items.
    assert p["words"]["n_units"] == 8 and p["words"]["raters_per_unit"] == 3
    # Heatmaps (no stored aggregates, computed here): item A pair IoUs a-b 1, a-c 0, b-c 0 -> 1/3;
    # item B everybody empty -> 1. Mean over the two items.
    assert p["heatmaps"]["implausibility"]["iou"] == pytest.approx((1 / 3 + 1) / 2)
    assert p["heatmaps"]["computed_without_aggregate"] == 2

    worst_ids = [w["item_id"] for w in p["worst_items"]]
    assert worst_ids == [items[0].pk, items[1].pk]  # same maxdiff; A has less word unanimity
    assert p["worst_items"][0]["word_unanimity"] == pytest.approx(0.75)


def test_recompute_is_an_upsert_not_an_increment(small_campaign, rate, make_user):
    campaign, _, items = small_campaign
    first = campaign_stats_recompute(campaign_id=campaign.pk)
    again = campaign_stats_recompute(campaign_id=campaign.pk)
    assert CampaignStats.objects.filter(campaign=campaign).count() == 1
    assert again.pk == first.pk
    assert again.payload == first.payload
    assert again.computed_at >= first.computed_at
    # A new annotation changes the figures exactly once, however often it is recomputed.
    rate(items[3], make_user("dee", "rater"), (2, 2, 2, 2))
    for _ in range(2):
        latest = campaign_stats_recompute(campaign_id=campaign.pk)
    assert latest.payload["progress"]["annotations"] == 8


def test_recompute_of_an_empty_campaign(make_campaign, make_item):
    campaign = make_campaign("empty")
    make_item(campaign)
    p = campaign_stats_recompute(campaign_id=campaign.pk).payload
    assert p["progress"]["annotations"] == 0 and p["progress"]["items_untouched"] == 1
    assert p["scores"]["overall"]["alpha"]["alpha"] is None
    assert p["words"]["fleiss_kappa"] is None and p["raters"] == [] and p["worst_items"] == []


def test_extra_rater_request_bumps_priority_once(small_campaign, make_user):
    campaign, _, items = small_campaign
    Item.objects.filter(pk=items[1].pk).update(priority=7.5)
    lead = make_user("lead1", "lead")
    req = extra_rater_request(item_id=items[0].pk, requested_by=lead, reason="disagree")
    items[0].refresh_from_db()
    assert items[0].priority == 8.5  # above every other item of the campaign
    assert req.previous_priority == 0.0 and req.n_annotations_at_request == 3
    # the annotation engine's own hook: one more rater wanted, back in the queue
    assert items[0].extra_raters == 1 and items[0].completed_at is None
    with pytest.raises(Conflict):
        extra_rater_request(item_id=items[0].pk, requested_by=lead)
    assert ExtraRaterRequest.objects.filter(item=items[0]).count() == 1
    items[0].refresh_from_db()
    assert items[0].priority == 8.5 and items[0].extra_raters == 1


def test_extra_rater_request_is_settled_when_the_item_gets_another_annotation(small_campaign, make_user, rate):
    campaign, _, items = small_campaign
    extra_rater_request(item_id=items[0].pk, requested_by=make_user("lead2", "lead"))
    payload = campaign_stats_recompute(campaign_id=campaign.pk).payload
    assert payload["extra_rater_requests_open"] == 1
    assert [w["extra_rater_requested"] for w in payload["worst_items"]] == [True, False]
    rate(items[0], make_user("fourth", "rater"), (3, 3, 3, 3))
    payload = campaign_stats_recompute(campaign_id=campaign.pk).payload
    assert ExtraRaterRequest.objects.get().status == ExtraRaterRequest.Status.FULFILLED
    assert payload["extra_rater_requests_open"] == 0
    # and a new request for the same item is allowed again
    extra_rater_request(item_id=items[0].pk, requested_by=None)
    assert ExtraRaterRequest.objects.filter(status="open").count() == 1


def test_a_new_rater_is_offered_the_requested_item_first(small_campaign, make_user):
    from annotation.services import campaign_add_raters
    from tests.conftest import api_client_for

    campaign, _, items = small_campaign
    extra_rater_request(item_id=items[0].pk, requested_by=make_user("lead3", "lead"))
    newcomer = make_user("newcomer", "rater")
    campaign_add_raters(campaign=campaign, users=[newcomer])
    leased = api_client_for(newcomer).post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    assert leased.status_code in (200, 201), leased.content
    assert leased.json()["assignment"]["item"]["id"] == items[0].pk
