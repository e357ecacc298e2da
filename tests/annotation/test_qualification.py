"""Qualification: a new rater gets N gold items with feedback after each, then real work if
their mean quality reaches the threshold; a rater who fails is told so; an admin lets them
retry, with gold items they have not seen, or their oldest ones again when too few are left."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation.models import (
    Annotation,
    Assignment,
    GoldAnswerKind,
    GoldAnswerScore,
    Item,
    Qualification,
    RaterStatus,
)
from annotation.services import campaign_add_raters
from modeling.data.synthetic import generate_release
from tests.annotation.gold_helpers import careless_submission, faithful_submission, make_gold
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_campaign, make_user, make_item):
    """A campaign needing 3 qualification answers at 0.6, with 4 gold and 2 real items."""
    campaign = make_campaign("q", qualification_required=True, qualification_items=3, qualification_threshold=0.6)
    expert = make_user("expert", "lead")
    admin = make_user("admin", "admin")
    raters = [make_user(f"q{i}", "rater") for i in range(2)]
    campaign_add_raters(campaign=campaign, users=raters)
    gold = {make_gold(make_item, campaign, expert, prompt=f"a gold cat {i}").pk for i in range(4)}
    real = {make_item(campaign, prompt=f"a real cat {i}").pk for i in range(2)}
    return campaign, raters, admin, gold, real


def _next(client, campaign, lookahead=0):
    response = client.post(reverse("api:next-item", args=[campaign.pk]), {"lookahead": lookahead}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _answer(client, campaign, body):
    lease = _next(client, campaign)
    assert lease["status"] == "leased", lease
    response = client.post(reverse("api:submit", args=[lease["assignment"]["id"]]), body, format="json")
    assert response.status_code == 201, response.content
    return lease["assignment"]["item"]["id"], response.json()["feedback"]


def test_a_careful_rater_qualifies_after_n_gold_items_with_feedback(setup) -> None:
    campaign, (rater, _), _, gold, real = setup
    client = api_client_for(rater)
    for n in range(1, 4):
        item_id, feedback = _answer(client, campaign, faithful_submission())
        assert item_id in gold
        assert feedback["quality"] == 1.0
        assert feedback["reference"]["implausible_points"] == [[0.5, 0.5]]
        assert feedback["reference"]["misaligned_words"] == [1]
        assert feedback["reference"]["scores"] == {
            "plausibility": 2.0,
            "alignment": 4.0,
            "aesthetics": 3.0,
            "overall": 3.0,
        }
        assert feedback["yours"]["scores"]["alignment"] == 4
        assert feedback["qualification"]["answered"] == n and feedback["qualification"]["required"] == 3
    assert feedback["qualification"]["status"] == "passed"
    status = RaterStatus.objects.get(campaign=campaign, rater=rater)
    assert status.qualification == Qualification.PASSED
    assert GoldAnswerScore.objects.filter(rater=rater, kind=GoldAnswerKind.QUALIFICATION).count() == 3
    # Real work follows, and its submit carries no feedback.
    item_id, feedback = _answer(client, campaign, faithful_submission())
    assert item_id in real and feedback is None


def test_a_careless_rater_fails_and_is_told_clearly(setup) -> None:
    campaign, (_, rater), _, gold, _ = setup
    client = api_client_for(rater)
    for _ in range(3):
        item_id, feedback = _answer(client, campaign, careless_submission())
        assert item_id in gold and feedback["quality"] == 0.0
    assert feedback["qualification"]["status"] == "failed"
    assert feedback["qualification"]["mean_quality"] == 0.0
    body = _next(client, campaign)
    assert body["status"] == "not_qualified" and body["assignment"] is None
    assert "did not pass" in body["detail"]
    real_leases = Assignment.objects.filter(rater=rater, item__is_gold=False)
    assert not real_leases.exists()


def test_qualification_leases_never_exceed_n(setup) -> None:
    campaign, (rater, _), _, gold, _ = setup
    client = api_client_for(rater)
    _answer(client, campaign, faithful_submission())
    _answer(client, campaign, faithful_submission())
    body = _next(client, campaign, lookahead=1)  # one answer left: no preloaded second lease
    assert body["assignment"]["item"]["id"] in gold and body["upcoming"] == []


def test_no_gold_items_means_no_work_and_says_why(make_campaign, make_user, make_item) -> None:
    campaign = make_campaign("empty-q", qualification_required=True)
    rater = make_user("lonely", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    make_item(campaign)
    body = _next(api_client_for(rater), campaign)
    assert body["status"] == "qualification_unavailable" and "practice" in body["detail"]


def test_requalify_gives_unseen_gold_items_then_reuses_the_oldest(setup) -> None:
    campaign, (_, rater), admin, gold, real = setup
    client = api_client_for(rater)
    first_attempt = [_answer(client, campaign, careless_submission())[0] for _ in range(3)]
    assert _next(client, campaign)["status"] == "not_qualified"

    response = api_client_for(admin).post(reverse("api:requalify", args=[campaign.pk, rater.pk]))
    assert response.status_code == 200, response.content
    # 4 gold items, 3 seen: one unseen, so the two seen longest ago are handed out again.
    assert response.json() == {
        "campaign": campaign.pk,
        "rater": rater.pk,
        "qualification": "pending",
        "attempt": 2,
        "reused_items": 2,
    }
    # Their old answers went; the scores of attempt 1 stay, with a copy of each answer.
    old_scores = GoldAnswerScore.objects.filter(rater=rater, attempt=1)
    assert old_scores.count() == 3 and old_scores.filter(annotation__isnull=True).count() == 2
    assert all(s.answer["misaligned_words"] == [2, 3] for s in old_scores)
    assert Annotation.objects.filter(rater=rater).count() == 1

    second_attempt = []
    for _ in range(3):
        item_id, feedback = _answer(client, campaign, faithful_submission())
        second_attempt.append(item_id)
        assert feedback["qualification"]["attempt"] == 2
    assert set(second_attempt) == (gold - {first_attempt[2]}) | set(first_attempt[:2])
    assert feedback["qualification"]["status"] == "passed"
    assert _next(client, campaign)["assignment"]["item"]["id"] in real


def test_requalify_refusals(setup) -> None:
    campaign, (rater, other), admin, _, _ = setup
    client = api_client_for(admin)
    # Still pending (never finished): nothing to retry.
    response = client.post(reverse("api:requalify", args=[campaign.pk, rater.pk]))
    assert response.status_code == 409 and response.json()["code"] == "pending"
    # Not a rater of the campaign, or no such campaign: 404.
    assert client.post(reverse("api:requalify", args=[campaign.pk, admin.pk])).status_code == 404
    assert client.post(reverse("api:requalify", args=[999999, rater.pk])).status_code == 404


# --------------------------------------------------------------------------- imported gold: map feedback


@pytest.fixture
def imported_gold(tmp_path: Path, make_user):
    release = tmp_path / "release"
    generate_release(release, splits={"train": 2}, seed=5, image_size=32, progress=False)
    call_command(
        "import_richhf",
        str(release / "train.tfrecord"),
        "--images",
        str(release / "images"),
        "--prompts",
        str(release / "prompts.jsonl"),
        "--campaign",
        "imp",
        "--as-gold",
        "--no-progress",
    )
    campaign = Item.objects.filter(campaign__name="imp").first().campaign
    campaign.qualification_required = True
    campaign.qualification_items = 2
    campaign.save()
    users = [make_user("m1", "rater"), make_user("m2", "rater")]
    campaign_add_raters(campaign=campaign, users=users)
    return campaign, users


def test_imported_reference_maps_are_shown_only_to_their_answerer(imported_gold, make_user) -> None:
    campaign, (rater, other) = imported_gold
    client = api_client_for(rater)
    item_id, feedback = _answer(client, campaign, faithful_submission())
    url = feedback["reference"]["implausibility_map_url"]
    assert url == reverse("api:gold-map", args=[item_id, "implausibility"])
    assert feedback["reference"]["implausible_points"] is None
    assert 0.0 <= feedback["quality"] <= 1.0
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    # Another rater (who may be given this item later) cannot; a lead can; a bad kind is 404.
    assert api_client_for(other).get(url).status_code == 404
    assert api_client_for(make_user("lead", "lead")).get(url).status_code == 200
    assert client.get(reverse("api:gold-map", args=[item_id, "nope"])).status_code == 404


def test_a_qualified_raters_lease_stays_within_the_query_bound(setup, django_assert_max_num_queries) -> None:
    """The standing (qualification, pause) rides on the statement that locks the rater: a
    qualified rater's lease costs what any lease costs (tests/test_query_counts.py)."""
    from tests.test_query_counts import MAX_QUERIES, _token_client

    campaign, (rater, _), _, _, real = setup
    RaterStatus.objects.create(campaign=campaign, rater=rater, qualification=Qualification.PASSED)
    client = _token_client(rater)
    with django_assert_max_num_queries(MAX_QUERIES["next_item_one"]):
        body = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()
    assert body["assignment"]["item"]["id"] in real
