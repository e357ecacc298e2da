"""The Generators section checked against numbers computed by hand (in the comments), and the
same figures through the database: aggregates in, payload and CSV out, gold items left out."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from aggregation.dashboard.selectors import GeneratorData
from aggregation.dashboard.services import campaign_stats_recompute
from aggregation.dashboard.services.generators import bootstrap_means, generators_section, holm, permutation_p
from aggregation.services.aggregates import item_aggregate_upsert
from annotation.models import Item
from tests.conftest import api_client_for, submitted_annotation

APPROX = pytest.approx


def hand_fixture(**overrides) -> GeneratorData:
    # Columns: plausibility, alignment, aesthetics, overall (already normalised (s - 1) / 4).
    alpha = [[1.00, 0.5, 0.25, 1.0], [0.75, 0.5, 0.25, 1.0], [0.50, 0.5, 0.25, 1.0]]
    beta = [[0.00, 0.5, 0.75, 0.0], [0.25, 0.5, 0.75, 0.0]]
    data = {
        "generator": ["alpha"] * 3 + ["beta"] * 2,
        "scores": np.array(alpha + beta),
        "implausible_points": np.array([2, 0, 1, 0, 0]),
        "coverage": {
            "implausibility": np.array([0.10, 0.0, 0.20, 0.0, 0.0]),
            "misalignment": np.array([0.0, 0.0, 0.30, 0.05, 0.15]),
        },
        "misaligned_words": [["Cat", "sofa"], ["cat"], ["red", "cat,"], [], ["dog"]],
        "estimate_generator": ["alpha", "alpha"],
        "estimate_scores": np.array([[0.6, 0.5, 0.5, 0.5], [0.8, 0.5, 0.5, 0.5]]),
        "model": {"version": 7, "scores": {"plausibility": {"plcc": 0.61, "srcc": 0.58, "n": 40}}},
    }
    return GeneratorData(**(data | overrides))


def test_generator_section_matches_the_hand_computed_fixture():
    out = generators_section(hand_fixture())
    assert out["generators"] == ["alpha", "beta"]
    alpha, beta = out["rows"]
    assert (alpha["n_rated"], alpha["n_estimated"], beta["n_rated"], beta["n_estimated"]) == (3, 2, 2, 0)
    # alpha plausibility: (1 + 0.75 + 0.5) / 3 = 0.75; beta: (0 + 0.25) / 2 = 0.125
    assert alpha["scores"]["plausibility"]["mean"] == APPROX(0.75)
    assert beta["scores"]["plausibility"]["mean"] == APPROX(0.125)
    # A resample of alpha's three values can only have a mean between 0.5 and 1; of constant values, the value.
    p = alpha["scores"]["plausibility"]
    assert 0.5 <= p["ci_low"] < 0.75 < p["ci_high"] <= 1.0
    assert (alpha["scores"]["overall"]["ci_low"], alpha["scores"]["overall"]["ci_high"]) == (1.0, 1.0)
    # implausible regions: alpha 2 of 3 images (points 2, 0, 1), beta none
    assert alpha["implausible_share"]["mean"] == APPROX(2 / 3)
    assert (beta["implausible_share"]["mean"], beta["implausible_share"]["ci_high"]) == (0.0, 0.0)
    # area: implausibility alpha (0.10 + 0 + 0.20) / 3 = 0.10; misalignment beta (0.05 + 0.15) / 2 = 0.10
    assert alpha["area"]["implausibility"]["mean"] == APPROX(0.10)
    assert alpha["area"]["misalignment"]["mean"] == APPROX(0.10)
    assert beta["area"]["misalignment"]["mean"] == APPROX(0.10)
    # words: "Cat", "cat", "cat," are one word -> 3 of 3 alpha images; "red" and "sofa" 1 of 3
    assert [(w["word"], w["count"]) for w in alpha["top_words"]] == [("cat", 3), ("red", 1), ("sofa", 1)]
    assert alpha["top_words"][0]["share"] == 1.0 and alpha["top_words"][1]["share"] == APPROX(1 / 3)
    assert [(w["word"], w["share"]) for w in beta["top_words"]] == [("dog", 0.5)]
    # model estimate on alpha's 2 unrated images: (0.6 + 0.8) / 2 = 0.7; beta has none
    assert alpha["estimate"]["plausibility"]["mean"] == APPROX(0.7)
    assert alpha["estimate"]["plausibility"]["n"] == 2
    assert beta["estimate"]["plausibility"] == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    assert out["model"]["scores"]["plausibility"] == {"plcc": 0.61, "srcc": 0.58, "n": 40}

    pairs = {p["score"]: p for p in out["pairs"]}
    assert set(pairs) == {"plausibility", "alignment", "aesthetics", "overall"}
    assert all(p["test"] == "exact" for p in pairs.values())  # C(5, 3) = 10 relabellings
    # plausibility: diff 0.75 - 0.125 = 0.625. Relabellings (3 of the 5 values as "alpha", sum S)
    # give diff = (5S - 7.5) / 6; |diff| >= 0.625 only for S = 2.25 ({1, .75, .5}) and S = 0.75
    # ({.5, 0, .25}): p = 2 / 10.
    assert pairs["plausibility"]["diff"] == APPROX(0.625)
    assert pairs["plausibility"]["p"] == APPROX(0.2)
    # alignment: equal everywhere, diff 0, every relabelling ties: p = 1
    assert pairs["alignment"]["diff"] == 0 and pairs["alignment"]["p"] == 1.0
    # aesthetics: 0.25 - 0.75 = -0.5; only the one relabelling with no 0.75 in "alpha" reaches it: 1 / 10
    assert pairs["aesthetics"]["diff"] == APPROX(-0.5) and pairs["aesthetics"]["p"] == APPROX(0.1)
    # overall: 1 - 0 = 1; only the observed labelling: 1 / 10
    assert pairs["overall"]["p"] == APPROX(0.1)
    assert (pairs["overall"]["ci_low"], pairs["overall"]["ci_high"]) == (1.0, 1.0)
    # Holm over m = 4: sorted p .1, .1, .2, 1 -> 4 x .1 = .4, max(.4, 3 x .1) = .4, max(.4, 2 x .2) = .4,
    # max(.4, 1 x 1) = 1. Nothing significant at 0.05.
    assert [pairs[s]["p_holm"] for s in ("plausibility", "alignment", "aesthetics", "overall")] == APPROX(
        [0.4, 1.0, 0.4, 0.4]
    )
    assert not any(p["significant"] for p in pairs.values())


def test_the_section_is_seeded_so_a_recompute_gives_the_same_numbers():
    assert generators_section(hand_fixture()) == generators_section(hand_fixture())


def test_holm_by_hand():
    # p = .01, .04, .03 (m = 3): sorted .01 x 3 = .03; .03 x 2 = .06; max(.06, .04 x 1) = .06
    assert holm([0.01, 0.04, 0.03]) == APPROX([0.03, 0.06, 0.06])
    # a raw p of .02 among five tests is not significant after the correction (.02 x 5 = .1)
    assert holm([0.02, 0.5, 0.6, 0.7, 0.8])[0] == APPROX(0.1)


def test_large_groups_use_random_relabellings_and_find_a_real_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(0.7, 0.1, size=(60, 1))
    b = rng.normal(0.5, 0.1, size=(60, 1))
    p, test = permutation_p(a, b, rng=np.random.default_rng(2))
    assert test.startswith("monte carlo")
    assert p[0] == APPROX(1 / 2001)  # no relabelling of 120 values comes near a 2-sigma shift
    same, _ = permutation_p(a, a.copy(), rng=np.random.default_rng(2))
    assert same[0] == 1.0


def test_bootstrap_interval_covers_the_mean_of_a_normal_sample_as_theory_says():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 0.2, size=(400, 1))
    boot = bootstrap_means(x, n_boot=2000, rng=rng)
    low, high = np.percentile(boot, [2.5, 97.5])
    # the standard error is 0.2 / sqrt(400) = 0.01, so the 95% interval is about +- 0.0196
    assert high - low == APPROX(2 * 1.96 * 0.01, rel=0.15)


def test_blank_generator_is_shown_as_not_recorded():
    data = hand_fixture(generator=["alpha", "alpha", "alpha", "", ""])
    out = generators_section(data)
    assert out["generators"] == ["alpha", "(not recorded)"]


@pytest.mark.django_db
def test_database_figures_leave_gold_items_out_and_reach_the_csv(make_campaign, make_item, make_user):
    campaign = make_campaign("gens", raters_per_item=1)
    rater = make_user("r1", "rater")
    lead = make_user("lead", "lead")
    # plausibility 5, 4 -> 1.0, 0.75 (alpha, mean 0.875); 1 -> 0.0 (beta); the gold item (plausibility 1,
    # generator alpha) would pull alpha's mean down to (1 + .75 + 0) / 3 = 0.583 if it counted.
    plan = [("alpha", 5, False), ("alpha", 4, False), ("beta", 1, False), ("alpha", 1, True)]
    for generator, plausibility, gold in plan:
        item = make_item(campaign, prompt="a red cat")
        Item.objects.filter(pk=item.pk).update(generator=generator, is_gold=gold)
        submitted_annotation(item, rater, scores=(plausibility, 3, 3, 3), words=[1], implausible=[(0.5, 0.5)])
        item.completed_at = timezone.now()
        item.save(update_fields=["completed_at"])
        assert item_aggregate_upsert(item_id=item.pk) is not None
    payload = campaign_stats_recompute(campaign_id=campaign.pk).payload
    gen = payload["generators"]
    rows = {r["generator"]: r for r in gen["rows"]}
    assert rows["alpha"]["n_rated"] == 2 and rows["beta"]["n_rated"] == 1
    assert rows["alpha"]["scores"]["plausibility"]["mean"] == APPROX(0.875)
    assert rows["beta"]["scores"]["plausibility"]["mean"] == 0.0
    assert rows["alpha"]["implausible_share"]["mean"] == 1.0
    assert rows["alpha"]["top_words"] == [{"word": "red", "count": 2, "share": 1.0}]
    # gold items' answers are left out of the other sections too, and the gold item of the
    # progress tiles (it never completes)
    assert payload["progress"]["annotations"] == 3
    assert (payload["progress"]["items_total"], payload["progress"]["items_complete"]) == (3, 3)
    assert gen["model"] is None

    response = api_client_for(lead).get(reverse("dashboard:api-stats-csv", args=[campaign.pk]), {"table": "generators"})
    assert response.status_code == 200
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    plaus = [
        r
        for r in table
        if r["metric"] == "mean_normalised_score" and r["name"] == "plausibility" and r["source"] == "human"
    ]
    assert {r["generator"]: float(r["value"]) for r in plaus} == {"alpha": 0.875, "beta": 0.0}
    pairs = api_client_for(lead).get(
        reverse("dashboard:api-stats-csv", args=[campaign.pk]), {"table": "generator_pairs"}
    )
    rows_pairs = list(csv.DictReader(io.StringIO(pairs.content.decode())))
    assert len(rows_pairs) == 4 and rows_pairs[0]["generator_a"] == "alpha" and rows_pairs[0]["diff"] == "0.875"
    bad = api_client_for(lead).get(reverse("dashboard:api-stats-csv", args=[campaign.pk]), {"table": "nope"})
    assert bad.status_code == 400 and "table" in bad.json()["errors"]
