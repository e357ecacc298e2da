"""Gold items: made from an expert's answer, never counted toward k, leased as honeypots at the
campaign's share, indistinguishable in what a rater receives; the new endpoints' permissions."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import hooks
from annotation.models import (
    Annotation,
    Assignment,
    GoldAnswerKind,
    GoldAnswerScore,
    GoldReference,
    GoldSource,
    Item,
    RaterStatus,
)
from annotation.services import annotation_submit, assignment_next, assignment_skip, campaign_add_raters
from tests.annotation.gold_helpers import (
    EXPERT_POINT,
    careless_submission,
    faithful_submission,
    make_gold,
)
from tests.conftest import api_client_for, submitted_annotation, valid_submission

pytestmark = pytest.mark.django_db


class AlwaysHoneypot(random.Random):
    """Every draw falls under any honeypot share."""

    def random(self) -> float:
        return 0.0


@pytest.fixture
def expert(make_user):
    return make_user("expert", "lead")


@pytest.fixture
def admin(make_user):
    return make_user("boss", "admin")


def _next(client, campaign, **body):
    response = client.post(reverse("api:next-item", args=[campaign.pk]), body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _submit(client, assignment_id, body=None):
    return client.post(reverse("api:submit", args=[assignment_id]), body or valid_submission(), format="json")


# --------------------------------------------------------------------------- making gold


def test_a_lead_marks_their_answer_as_the_reference(expert, make_campaign, make_item) -> None:
    campaign = make_campaign("c")
    item = make_item(campaign)
    answer = submitted_annotation(item, expert, scores=(1, 5, 3, 2), words=[2, 0], implausible=[EXPERT_POINT])
    response = api_client_for(expert).post(reverse("api:make-gold", args=[answer.pk]))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "expert" and body["source_annotation"] == answer.pk
    assert body["misaligned_words"] == [0, 2]
    assert body["scores"] == {"plausibility": 0.0, "alignment": 1.0, "aesthetics": 0.5, "overall": 0.25}
    item.refresh_from_db()
    assert item.is_gold
    ref = GoldReference.objects.get(item=item)
    assert ref.source == GoldSource.EXPERT and ref.implausible_points == [EXPERT_POINT]
    assert ref.created_by == expert


def test_make_gold_refusals_name_the_reason(expert, make_user, make_campaign, make_item) -> None:
    campaign = make_campaign("c", raters_per_item=1)
    client = api_client_for(expert)
    rater = make_user("plain", "rater")
    by_rater = submitted_annotation(make_item(campaign), rater)
    response = client.post(reverse("api:make-gold", args=[by_rater.pk]))
    assert response.status_code == 400 and "expert" in response.json()["errors"]["annotation"][0]

    done = make_item(campaign)
    Item.objects.filter(pk=done.pk).update(completed_at=timezone.now())
    response = client.post(reverse("api:make-gold", args=[submitted_annotation(done, expert).pk]))
    assert response.status_code == 409 and response.json()["code"] == "complete"

    item = make_gold(make_item, campaign, expert)
    second = submitted_annotation(item, make_user("lead2", "lead"))
    response = client.post(reverse("api:make-gold", args=[second.pk]))
    assert response.status_code == 409 and response.json()["code"] == "gold"

    assert client.post(reverse("api:make-gold", args=[999999])).status_code == 404
    assert GoldReference.objects.count() == 1


# --------------------------------------------------------------------------- k, completion, exclusion


def test_gold_items_never_count_toward_k_nor_complete(raters, expert, make_item, monkeypatch) -> None:
    campaign, users = raters
    campaign.raters_per_item = 1
    campaign.honeypot_share = 0.5
    campaign.save()
    gold_item = make_gold(make_item, campaign, expert)
    for i in range(3):  # real work left: honeypots are handed out only beside it
        make_item(campaign, prompt=f"real {i}")
    completed: list[int] = []
    hooks.item_completed_connect(name="test-gold", receiver=completed.append)
    try:
        for user in users:  # k = 1, yet all three get it: a gold item has no k
            result = assignment_next(rater=user, campaign=campaign, rng=AlwaysHoneypot())
            assert result.assignment.item_id == gold_item.pk
            annotation_submit(
                assignment_id=result.assignment.pk,
                rater=user,
                data=_input(faithful_submission()),
            )
    finally:
        hooks._item_completed.pop("test-gold", None)
    gold_item.refresh_from_db()
    assert gold_item.completed_at is None and gold_item.n_submitted == 0
    assert completed == []
    assert GoldAnswerScore.objects.filter(kind=GoldAnswerKind.HONEYPOT, quality=1.0).count() == 3


def _input(body: dict):
    from annotation.services import AnnotationInput

    return AnnotationInput(
        implausible_points=body["implausible_points"],
        misaligned_points=body["misaligned_points"],
        misaligned_words=body["misaligned_words"],
        scores=body["scores"],
        time_spent_ms=body.get("time_spent_ms", 0),
    )


def test_an_excluded_answer_frees_its_slot(raters, make_item) -> None:
    campaign, (r1, r2, _) = raters
    campaign.raters_per_item = 1
    campaign.save()
    item = make_item(campaign)
    first = assignment_next(rater=r1, campaign=campaign).assignment
    annotation_submit(assignment_id=first.pk, rater=r1, data=_input(valid_submission()))
    item.refresh_from_db()
    assert item.completed_at is not None
    assert assignment_next(rater=r2, campaign=campaign).reason == "new"  # r2 never answered here
    # What the quality actions do (moderation.py): exclude the answer, re-queue the item.
    Annotation.objects.filter(assignment=first).update(excluded_at=timezone.now(), excluded_reason="spam")
    Item.objects.filter(pk=item.pk).update(completed_at=None)
    second = assignment_next(rater=r2, campaign=campaign).assignment
    assert second is not None and second.item_id == item.pk
    annotation_submit(assignment_id=second.pk, rater=r2, data=_input(valid_submission()))
    item.refresh_from_db()
    assert item.completed_at is not None and item.n_submitted == 1  # the excluded answer is not counted


def test_a_paused_rater_gets_no_lease(raters, make_item) -> None:
    campaign, (r1, _, _) = raters
    make_item(campaign)
    RaterStatus.objects.create(campaign=campaign, rater=r1, paused_at=timezone.now(), paused_reason="fast")
    body = _next(api_client_for(r1), campaign)
    assert body["status"] == "paused" and body["assignment"] is None
    assert "paused" in body["detail"]
    assert not Assignment.objects.filter(rater=r1).exists()


# --------------------------------------------------------------------------- honeypots


def test_honeypot_share_is_statistically_sane(make_campaign, make_user, expert, make_item) -> None:
    campaign = make_campaign("hp", raters_per_item=1, honeypot_share=0.2)
    rater = make_user("hp-rater", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    gold_ids = {make_gold(make_item, campaign, expert, prompt=f"gold {i}").pk for i in range(60)}
    for i in range(200):
        make_item(campaign, prompt=f"real {i}")
    rng = random.Random(20261202)
    kinds: Counter[str] = Counter()
    seen: list[int] = []
    for _ in range(150):
        result = assignment_next(rater=rater, campaign=campaign, rng=rng)
        item_id = result.assignment.item_id
        seen.append(item_id)
        kinds["gold" if item_id in gold_ids else "real"] += 1
        assignment_skip(assignment_id=result.assignment.pk, rater=rater, reason="test")
    share = kinds["gold"] / 150
    # Binomial(150, 0.2): sd 0.033; four sd either side.
    assert 0.07 < share < 0.33, kinds
    assert len(set(seen)) == len(seen)  # never the same gold item twice


def test_no_honeypot_once_the_real_work_is_done(raters, expert, make_item) -> None:
    campaign, (r1, _, _) = raters
    campaign.honeypot_share = 0.5
    campaign.save()
    make_gold(make_item, campaign, expert)
    result = assignment_next(rater=r1, campaign=campaign, rng=AlwaysHoneypot())
    assert result.assignment is None and result.reason == "new"


def test_no_honeypots_when_the_share_is_zero(raters, expert, make_item) -> None:
    campaign, (r1, _, _) = raters
    make_gold(make_item, campaign, expert)
    real = make_item(campaign)
    result = assignment_next(rater=r1, campaign=campaign, rng=AlwaysHoneypot())
    assert result.assignment.item_id == real.pk


def _shape(value):
    """The JSON shape of a value: key sets and value types, recursively; not the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


class NeverHoneypot(random.Random):
    def random(self) -> float:
        return 1.0


def test_a_gold_lease_and_its_submit_look_exactly_like_a_real_one(raters, expert, make_item, monkeypatch) -> None:
    from annotation import services

    campaign, (r1, r2, _) = raters
    campaign.honeypot_share = 0.5
    campaign.save()
    gold_item = make_gold(make_item, campaign, expert)
    real_item = make_item(campaign)
    monkeypatch.setattr(services, "_RNG", AlwaysHoneypot())
    gold_body = _next(api_client_for(r1), campaign)
    monkeypatch.setattr(services, "_RNG", NeverHoneypot())
    real_body = _next(api_client_for(r2), campaign)
    assert gold_body["assignment"]["item"]["id"] == gold_item.pk
    assert real_body["assignment"]["item"]["id"] == real_item.pk
    assert _shape(gold_body) == _shape(real_body)
    assert "gold" not in str(gold_body).lower()

    gold_submit = _submit(api_client_for(r1), gold_body["assignment"]["id"], faithful_submission())
    real_submit = _submit(api_client_for(r2), real_body["assignment"]["id"], faithful_submission())
    assert gold_submit.status_code == real_submit.status_code == 201
    assert _shape(gold_submit.json()) == _shape(real_submit.json())
    assert gold_submit.json()["feedback"] is None  # a honeypot never gets feedback
    score = GoldAnswerScore.objects.get(rater=r1)
    assert score.kind == GoldAnswerKind.HONEYPOT and score.quality == 1.0
    # Nor may the rater fetch its reference map afterwards: the same 404 as for any item.
    assert api_client_for(r1).get(reverse("api:gold-map", args=[gold_item.pk, "implausibility"])).status_code == 404


def test_honeypot_quality_is_recorded_for_a_careless_answer(raters, expert, make_item) -> None:
    campaign, (r1, _, _) = raters
    campaign.honeypot_share = 0.5
    campaign.save()
    make_gold(make_item, campaign, expert)
    make_item(campaign, prompt="real work")
    lease = assignment_next(rater=r1, campaign=campaign, rng=AlwaysHoneypot()).assignment
    annotation_submit(assignment_id=lease.pk, rater=r1, data=_input(careless_submission()))
    score = GoldAnswerScore.objects.get(rater=r1)
    assert score.quality == 0.0 and score.kind == GoldAnswerKind.HONEYPOT
    assert score.components["score_mae"] == pytest.approx(0.625)
    assert score.answer["misaligned_words"] == [2, 3]


# --------------------------------------------------------------------------- removing gold


def test_removing_gold_makes_it_ordinary_work(raters, expert, admin, make_item) -> None:
    campaign, (r1, _, _) = raters
    item = make_gold(make_item, campaign, expert)
    assert assignment_next(rater=r1, campaign=campaign).reason == "new"
    response = api_client_for(admin).delete(reverse("api:item-gold", args=[item.pk]))
    assert response.status_code == 204
    item.refresh_from_db()
    assert not item.is_gold and not GoldReference.objects.filter(item=item).exists()
    assert item.n_submitted == 1  # the expert's answer now counts
    assert assignment_next(rater=r1, campaign=campaign).assignment.item_id == item.pk
    assert api_client_for(admin).delete(reverse("api:item-gold", args=[item.pk])).status_code == 404


# --------------------------------------------------------------------------- permissions


def test_permission_matrix_of_the_gold_endpoints(raters, expert, admin, make_user, make_item) -> None:
    campaign, (r1, _, _) = raters
    lead = make_user("lead-b", "lead")
    rater_client, lead_client, admin_client = api_client_for(r1), api_client_for(lead), api_client_for(admin)

    def expert_answer():
        return submitted_annotation(make_item(campaign), expert, implausible=[EXPERT_POINT]).pk

    # make-gold: leads and admins.
    assert rater_client.post(reverse("api:make-gold", args=[expert_answer()])).status_code == 403
    assert lead_client.post(reverse("api:make-gold", args=[expert_answer()])).status_code == 201
    gold_pk = admin_client.post(reverse("api:make-gold", args=[expert_answer()])).json()["item"]
    # remove gold: admins only.
    assert rater_client.delete(reverse("api:item-gold", args=[gold_pk])).status_code == 403
    assert lead_client.delete(reverse("api:item-gold", args=[gold_pk])).status_code == 403
    assert admin_client.delete(reverse("api:item-gold", args=[gold_pk])).status_code == 204
    # requalify: admins only.
    RaterStatus.objects.create(campaign=campaign, rater=r1, qualification="failed")
    url = reverse("api:requalify", args=[campaign.pk, r1.pk])
    assert rater_client.post(url).status_code == 403
    assert lead_client.post(url).status_code == 403
    assert admin_client.post(url).status_code == 200
    # Anonymous: nothing.
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.post(reverse("api:make-gold", args=[expert_answer()])).status_code in (401, 403)
    assert anonymous.post(url).status_code in (401, 403)
    assert Item.objects.filter(is_gold=True).count() == 1


def test_gold_answers_reach_neither_exports_nor_dataset_statistics(raters, expert, make_item) -> None:
    from aggregation.dashboard.selectors import campaign_answers_per_day
    from aggregation.exports.records import export_plan, iter_raw_annotations

    campaign, (r1, _, _) = raters
    gold_item = make_gold(make_item, campaign, expert)
    real = make_item(campaign)
    submitted_annotation(gold_item, r1)
    submitted_annotation(real, r1)
    assert [row["item_id"] for row in iter_raw_annotations(campaign)] == [real.pk]
    assert sum(n for _, n in campaign_answers_per_day(campaign=campaign)) == 1
    assert export_plan(campaign).total_items == 1
