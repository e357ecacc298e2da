"""Drafts of a live lease (issue 15) and the empty queue's reasons, over the rater API.

A draft restores exactly on reload (the next-item payload and GET), is refused with a 400
naming the field when it could never be submitted, is private to its rater, never counts as
an answer, and is gone after submit, skip or the lease's expiry.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotation, Assignment, AssignmentState, Draft, Item, Qualification, RaterStatus
from annotation.services import campaign_add_raters, leases_expire
from tests.conftest import api_client_for, valid_submission

pytestmark = pytest.mark.django_db

ANSWER = {
    "implausible_points": [[0.25, 0.5], [1.0, 0.0]],
    "misaligned_points": [[0.125, 0.75]],
    "misaligned_words": [0, 2],
    "scores": {"plausibility": 2, "alignment": None, "aesthetics": 5, "overall": None},
    "suggestion_accepted": True,
}


def draft_url(assignment_id: int) -> str:
    return reverse("api:draft", args=[assignment_id])


def next_item(client, campaign, **body) -> dict:
    response = client.post(reverse("api:next-item", args=[campaign.pk]), body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def end_lease(assignment_id: int) -> None:
    """Moves a lease's expiry into the past (the sweeper has not run yet)."""
    now = timezone.now()
    Assignment.objects.filter(pk=assignment_id).update(
        leased_at=now - timedelta(minutes=30), expires_at=now - timedelta(seconds=1)
    )


def put_draft(client, assignment_id: int, answer: dict | None = None, time_spent_ms: int = 4321):
    body = {"answer": ANSWER if answer is None else answer, "time_spent_ms": time_spent_ms}
    return client.put(draft_url(assignment_id), body, format="json")


# --------------------------------------------------------------------------- save and restore


def test_draft_saved_then_restored_exactly_by_get_and_by_the_next_item_payload(leased):
    client, assignment_id = leased
    response = put_draft(client, assignment_id, time_spent_ms=83_517)
    assert response.status_code == 200, response.content
    saved_at = response.json()["saved_at"]
    assert saved_at

    got = client.get(draft_url(assignment_id))
    assert got.status_code == 200
    assert got.json() == {"answer": ANSWER, "time_spent_ms": 83_517, "updated_at": saved_at}

    # A reload asks for the next item again: the same lease comes back with its draft.
    campaign_id = Assignment.objects.get(pk=assignment_id).item.campaign_id
    body = client.post(reverse("api:next-item", args=[campaign_id]), {}, format="json").json()
    assert body["status"] == "leased" and body["assignment"]["id"] == assignment_id
    assert body["assignment"]["draft"] == {"answer": ANSWER, "time_spent_ms": 83_517, "updated_at": saved_at}


def test_a_new_lease_has_a_null_draft_and_a_later_save_replaces_the_earlier(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign, prompt="a yellow cat")
    make_item(campaign, prompt="a red dog")
    client = api_client_for(r1)
    body = next_item(client, campaign, lookahead=1)
    assert body["assignment"]["draft"] is None and body["upcoming"][0]["draft"] is None
    lease_id = body["assignment"]["id"]
    assert put_draft(client, lease_id).status_code == 200
    assert put_draft(client, lease_id, answer={"scores": {"overall": 3}}, time_spent_ms=9000).status_code == 200
    assert client.get(draft_url(lease_id)).json()["answer"] == {"scores": {"overall": 3}}
    assert Draft.objects.count() == 1
    # The preloaded lease has no draft of its own.
    assert client.get(draft_url(body["upcoming"][0]["id"])).status_code == 404


def test_every_part_of_a_draft_is_optional(leased):
    client, assignment_id = leased
    response = put_draft(client, assignment_id, answer={}, time_spent_ms=0)
    assert response.status_code == 200, response.content
    assert client.get(draft_url(assignment_id)).json()["answer"] == {}


def test_delete_drops_the_draft(leased):
    client, assignment_id = leased
    put_draft(client, assignment_id)
    assert client.delete(draft_url(assignment_id)).status_code == 204
    assert client.get(draft_url(assignment_id)).status_code == 404
    assert client.delete(draft_url(assignment_id)).status_code == 204  # nothing left: still fine


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"implausible_points": [[1.5, 0.2]]}, "answer.implausible_points.0.0"),
        ({"misaligned_points": [[0.2, -0.01]]}, "answer.misaligned_points.0.1"),
        ({"misaligned_points": [[0.2]]}, "answer.misaligned_points.0"),
        ({"implausible_points": [[0.1, 0.1]] * 201}, "answer.implausible_points"),
        ({"implausible_points": [["0.1", 0.1]]}, "answer.implausible_points.0.0"),
        ({"misaligned_words": [1, 1]}, "answer.misaligned_words"),
        ({"misaligned_words": [3]}, "answer.misaligned_words"),  # "a yellow cat" has 3 words
        ({"misaligned_words": [-1]}, "answer.misaligned_words.0"),
        ({"scores": {"overall": 6}}, "answer.scores.overall"),
        ({"scores": {"plausibility": 0}}, "answer.scores.plausibility"),
        ({"scores": {"aesthetics": 2.5}}, "answer.scores.aesthetics"),
        ({"scores": {"sharpness": 3}}, "answer.scores.sharpness"),
        ({"suggestion_accepted": "yes"}, "answer.suggestion_accepted"),
        ({"comment": "hi"}, "answer.comment"),
    ],
)
def test_invalid_draft_is_a_400_naming_the_field_and_stores_nothing(leased, answer, field):
    client, assignment_id = leased
    response = put_draft(client, assignment_id, answer=answer)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Draft.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answer": {}}, "time_spent_ms"),
        ({"answer": {}, "time_spent_ms": -1}, "time_spent_ms"),
        ({"answer": {}, "time_spent_ms": "10"}, "time_spent_ms"),
        ({"time_spent_ms": 10}, "answer"),
        ({"answer": [], "time_spent_ms": 10}, "answer"),
    ],
)
def test_draft_body_errors_name_the_field(leased, body, field):
    client, assignment_id = leased
    response = client.put(draft_url(assignment_id), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


# --------------------------------------------------------------------------- who may


def test_another_raters_draft_is_a_404_for_every_method(leased, raters):
    client, assignment_id = leased
    put_draft(client, assignment_id)
    _, (_, r2, _) = raters
    other = api_client_for(r2)
    assert other.get(draft_url(assignment_id)).status_code == 404
    assert put_draft(other, assignment_id).status_code == 404
    assert other.delete(draft_url(assignment_id)).status_code == 404
    assert other.get(draft_url(999_999)).status_code == 404
    # The owner's draft is untouched.
    assert client.get(draft_url(assignment_id)).json()["answer"] == ANSWER


def test_draft_endpoint_is_for_raters_only(leased, make_user, client):
    _, assignment_id = leased
    lead, admin = make_user("lead", "lead"), make_user("admin", "admin")
    for user in (lead, admin):
        api = api_client_for(user)
        assert api.get(draft_url(assignment_id)).status_code == 403
        assert put_draft(api, assignment_id).status_code == 403
        assert api.delete(draft_url(assignment_id)).status_code == 403
    assert client.get(draft_url(assignment_id)).status_code in (401, 403)
    assert not Draft.objects.exists()


def test_a_rater_removed_from_the_campaign_cannot_save_a_draft(leased, raters):
    client, assignment_id = leased
    campaign, (r1, _, _) = raters
    campaign.raters.remove(r1)
    assert put_draft(client, assignment_id).status_code == 403


# --------------------------------------------------------------------------- lifetime


def test_draft_is_deleted_on_submit_and_the_answer_is_what_was_submitted(leased):
    client, assignment_id = leased
    put_draft(client, assignment_id)
    response = client.post(
        reverse("api:submit", args=[assignment_id]), valid_submission(suggestion_accepted=True), format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["assignment"]["draft"] is None
    assert response.json()["assignment"]["annotation"]["suggestion_accepted"] is True
    assert not Draft.objects.filter(assignment_id=assignment_id).exists()
    stored = Annotation.objects.get(assignment_id=assignment_id)
    assert stored.suggestion_accepted is True and stored.implausible_points == [[0.25, 0.5]]
    # A submitted lease takes no draft any more.
    assert put_draft(client, assignment_id).status_code == 409
    assert client.get(draft_url(assignment_id)).status_code == 404


def test_suggestion_accepted_defaults_to_false(leased):
    client, assignment_id = leased
    client.post(reverse("api:submit", args=[assignment_id]), valid_submission(), format="json")
    assert Annotation.objects.get(assignment_id=assignment_id).suggestion_accepted is False


def test_draft_is_deleted_on_skip(leased):
    client, assignment_id = leased
    put_draft(client, assignment_id)
    response = client.post(reverse("api:skip", args=[assignment_id]), {"reason": "blurry"}, format="json")
    assert response.status_code == 200 and response.json()["draft"] is None
    assert not Draft.objects.exists()
    assert put_draft(client, assignment_id).status_code == 409


def test_draft_is_deleted_by_the_expiry_sweeper_and_a_late_save_is_a_409(leased):
    client, assignment_id = leased
    put_draft(client, assignment_id)
    # Past its expiry but before the sweeper ran: the draft is already out of reach.
    end_lease(assignment_id)
    assert client.get(draft_url(assignment_id)).status_code == 404
    response = put_draft(client, assignment_id)
    assert response.status_code == 409 and response.json()["code"] == "lease_not_live"
    assert Draft.objects.exists()
    assert leases_expire() == 1
    assert not Draft.objects.exists()
    assert put_draft(client, assignment_id).status_code == 409


def test_the_sweeper_keeps_drafts_of_live_leases(raters, make_item):
    campaign, (r1, r2, _) = raters
    make_item(campaign)
    make_item(campaign)
    c1, c2 = api_client_for(r1), api_client_for(r2)
    a1 = next_item(c1, campaign)["assignment"]["id"]
    a2 = next_item(c2, campaign)["assignment"]["id"]
    put_draft(c1, a1)
    put_draft(c2, a2)
    end_lease(a1)
    assert leases_expire() == 1
    assert list(Draft.objects.values_list("assignment_id", flat=True)) == [a2]


def test_a_draft_never_counts_as_an_answer(raters, make_item):
    campaign, (r1, r2, r3) = raters
    campaign.raters_per_item = 1
    campaign.save(update_fields=["raters_per_item"])
    item = make_item(campaign, prompt="a yellow cat")
    client = api_client_for(r1)
    lease_id = next_item(client, campaign)["assignment"]["id"]
    full = {**ANSWER, "scores": {"plausibility": 2, "alignment": 3, "aesthetics": 5, "overall": 4}}
    assert put_draft(client, lease_id, answer=full).status_code == 200
    item.refresh_from_db()
    assert item.n_submitted == 0 and item.completed_at is None
    assert not Annotation.objects.exists()
    progress = client.get(reverse("api:campaign-progress", args=[campaign.pk])).json()
    assert progress["done_total"] == 0
    history = client.get(reverse("api:my-assignments")).json()["results"]
    assert history[0]["annotation"] is None and history[0]["state"] == "leased"
    # Once the lease expires, the item (which a "counted" draft would have completed) goes to
    # the next rater.
    end_lease(lease_id)
    leases_expire()
    assert next_item(api_client_for(r2), campaign)["assignment"]["item"]["id"] == item.pk
    assert Item.objects.get(pk=item.pk).completed_at is None


# --------------------------------------------------------------------------- the empty queue


def test_empty_queue_reason_new_for_a_rater_who_never_answered(raters):
    campaign, (r1, _, _) = raters
    body = next_item(api_client_for(r1), campaign)
    assert body["status"] == "new" and body["assignment"] is None
    assert "annotated or skipped every item" not in body["detail"]  # defect 6
    assert "no item is waiting for you" in body["detail"]


def test_empty_queue_reason_done_after_answering_everything(leased, raters):
    client, assignment_id = leased
    campaign, _ = raters
    client.post(reverse("api:submit", args=[assignment_id]), valid_submission(), format="json")
    body = next_item(client, campaign)
    assert body["status"] == "done" and "Nothing to do" in body["detail"]


def test_empty_queue_reason_done_after_skipping_everything(leased, raters):
    client, assignment_id = leased
    campaign, _ = raters
    client.post(reverse("api:skip", args=[assignment_id]), {"reason": "blurry"}, format="json")
    assert next_item(client, campaign)["status"] == "done"


def test_empty_queue_reason_busy_when_the_rest_is_leased_by_others(raters, make_item):
    campaign, (r1, r2, _) = raters
    campaign.raters_per_item = 1
    campaign.save(update_fields=["raters_per_item"])
    make_item(campaign)
    assert next_item(api_client_for(r1), campaign)["status"] == "leased"
    body = next_item(api_client_for(r2), campaign)
    assert body["status"] == "busy" and "other raters" in body["detail"]


def test_empty_queue_reason_paused(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    RaterStatus.objects.create(campaign=campaign, rater=r1, paused_at=timezone.now(), paused_reason="spot check")
    # The queue itself (issue 13) keeps a paused rater's items away; the reason is reported
    # whenever the queue is empty for them.
    Item.objects.filter(campaign=campaign).update(completed_at=timezone.now())
    body = next_item(api_client_for(r1), campaign)
    assert body["status"] == "paused" and "paused" in body["detail"]


def test_empty_queue_reason_not_qualified(raters, make_user):
    campaign, (r1, _, _) = raters
    campaign.qualification_required = True
    campaign.save(update_fields=["qualification_required"])
    RaterStatus.objects.create(campaign=campaign, rater=r1, qualification=Qualification.FAILED)
    body = next_item(api_client_for(r1), campaign)
    assert body["status"] == "not_qualified" and "qualification" in body["detail"]
    # A failed status in a campaign that does not require qualification is no reason.
    r9 = make_user("r9", "rater")
    campaign_add_raters(campaign=campaign, users=[r9])
    campaign.qualification_required = False
    campaign.save(update_fields=["qualification_required"])
    RaterStatus.objects.create(campaign=campaign, rater=r9, qualification=Qualification.FAILED)
    assert next_item(api_client_for(r9), campaign)["status"] == "new"


def test_empty_queue_detail_is_in_the_raters_language(raters):
    campaign, (r1, _, _) = raters
    client = api_client_for(r1)
    response = client.post(
        reverse("api:next-item", args=[campaign.pk]), {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    body = response.json()
    assert body["status"] == "new"  # the status is a code, never translated
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body["detail"]


def test_leased_assignment_state_unchanged_by_draft(leased):
    client, assignment_id = leased
    before = Assignment.objects.get(pk=assignment_id)
    put_draft(client, assignment_id)
    after = Assignment.objects.get(pk=assignment_id)
    assert (after.state, after.expires_at) == (AssignmentState.LEASED, before.expires_at)
