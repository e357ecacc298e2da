"""The answer table the recompute reads, and the section functions that need more than the
hand-computed payload in test_services checks: stored map agreement first, a cap on the rest."""

from __future__ import annotations

import pytest

from aggregation.dashboard.selectors import campaign_answer_table
from aggregation.dashboard.services import sections

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_items(make_campaign, make_user, make_item, rate):
    """Items 0 and 1 with two raters each, item 2 with one; item 3 never rated."""
    campaign = make_campaign("sections")
    a, b = make_user("sa", "rater"), make_user("sb", "rater")
    items = [make_item(campaign, prompt="red car") for _ in range(4)]
    rate(items[0], a, (5, 4, 3, 2), words=[1, 7], implausible=[[0.5, 0.5]], time_ms=1000)
    rate(items[0], b, (1, 4, 3, 2), implausible=[[0.5, 0.5]], misaligned=[[0.1, 0.1]], time_ms=3000)
    rate(items[1], b, (2, 2, 2, 2), time_ms=5000)
    rate(items[1], a, (3, 3, 3, 3), time_ms=7000)
    rate(items[2], a, (4, 4, 4, 4), time_ms=9000)
    return campaign, (a, b), items


def test_answer_table_names_every_column(three_items):
    campaign, (a, b), items = three_items
    table = campaign_answer_table(campaign=campaign)
    assert table.item_ids.tolist() == [it.pk for it in items[:3]]  # the unrated item is absent
    assert table.rater_ids.tolist() == sorted([a.pk, b.pk])
    assert table.item_n_answers.tolist() == [2, 2, 1] and table.item_first.tolist() == [0, 2, 4]
    # Answers run item by item in the order they were given.
    assert table.scores["plausibility"].tolist() == [5, 1, 2, 3, 4]
    assert table.score_matrix()[0].tolist() == [5, 4, 3, 2]
    assert [len(p) for p in table.points["implausibility"]] == [1, 1, 0, 0, 0]
    assert [len(p) for p in table.points["misalignment"]] == [0, 1, 0, 0, 0]
    assert table.points["implausibility"][0] == [[0.5, 0.5]]
    assert table.n_points.tolist() == [1, 2, 0, 0, 0]  # both map kinds, counted by the database
    # Word 7 lies outside the two-word prompt and marks nothing.
    assert table.word_marks[0].tolist() == [False, True]
    assert table.time_ms.tolist() == [1000, 3000, 5000, 7000, 9000]


def test_map_agreement_prefers_the_stored_aggregate_and_caps_the_rest(three_items):
    campaign, _, items = three_items
    table = campaign_answer_table(campaign=campaign)
    stored_values = {
        "implausibility_iou": 0.25,
        "implausibility_cc": None,
        "misalignment_iou": 1.0,
        "misalignment_cc": None,
    }
    stored = {items[1].pk: stored_values}
    args = {"table": table, "stored": stored, "heatmap_size": (32, 32), "radius_fraction": 0.05}

    none_computed = sections.item_map_agreement(**args, limit=0)
    assert list(none_computed.by_item) == [items[1].pk] and none_computed.computed_here == 0
    assert sections.heatmaps_section(agreement=none_computed)["implausibility"] == {
        "iou": 0.25,
        "cc": None,
        "n_items": 1,
    }

    agreement = sections.item_map_agreement(**args, limit=400)
    assert list(agreement.by_item) == [items[0].pk, items[1].pk] and agreement.computed_here == 1
    # Item 0: both raters put one point at the same place -> IoU 1; one misaligned map empty -> 0.
    assert agreement.by_item[items[0].pk]["implausibility_iou"] == pytest.approx(1.0)
    assert agreement.by_item[items[0].pk]["misalignment_iou"] == pytest.approx(0.0)
    section = sections.heatmaps_section(agreement=agreement)
    assert section["implausibility"]["iou"] == pytest.approx((1.0 + 0.25) / 2)
    assert section["computed_without_aggregate"] == 1
