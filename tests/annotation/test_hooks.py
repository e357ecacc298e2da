"""annotation/hooks.py: how aggregation learns of a completed item and how learning adds its
suggestion to the leases the rater API returns, without annotation importing either."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from aggregation import tasks as aggregation_tasks
from annotation import hooks
from annotation.models import Item
from annotation.services import AnnotationInput, annotation_submit, assignment_next
from tests.conftest import api_client_for, valid_submission

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


def _submit(campaign, user):
    lease = assignment_next(rater=user, campaign=campaign).assignment
    return annotation_submit(assignment_id=lease.pk, rater=user, data=AnnotationInput(scores=SCORES))


@pytest.mark.django_db
def test_the_kth_answer_enqueues_the_items_aggregation_after_commit(
    raters, make_item, monkeypatch, django_capture_on_commit_callbacks
):
    """The receiver aggregation registers in its AppConfig.ready(), through the real registry."""
    campaign, users = raters
    item = make_item(campaign)
    sent: list[int] = []
    monkeypatch.setattr(aggregation_tasks.aggregate_item, "delay", lambda item_id: sent.append(item_id))
    for user in users[:2]:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            _submit(campaign, user)
        assert callbacks == [] and sent == []  # not complete yet: nothing to aggregate
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _submit(campaign, users[2])
    assert sent == []  # not before the commit: the worker must find the k-th answer
    for callback in callbacks:
        callback()
    assert sent == [item.pk]


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_neither_fails_the_committed_answer_nor_stops_the_others(
    raters, make_item, monkeypatch, caplog
):
    campaign, users = raters
    item = make_item(campaign)
    for user in users[:2]:
        _submit(campaign, user)
    received: list[int] = []

    def broken(item_id: int) -> None:
        raise ConnectionError("broker down")

    # Only these two: the transaction commits for real here, and nothing may reach a broker.
    monkeypatch.setattr(hooks, "_item_completed", {"broken": broken, "recording": received.append})
    client = api_client_for(users[2])
    lease = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()["assignment"]
    with caplog.at_level(logging.ERROR, logger="annotation.hooks"):
        response = client.post(reverse("api:submit", args=[lease["id"]]), valid_submission(), format="json")
    assert response.status_code == 201, response.content
    assert received == [item.pk]
    assert Item.objects.get(pk=item.pk).completed_at is not None
    assert "broken" in caplog.text and "broker down" in caplog.text


@pytest.mark.django_db
def test_lease_payload_providers_run_once_per_response(raters, make_item, monkeypatch):
    campaign, users = raters
    for _ in range(3):
        make_item(campaign)
    calls: list[list[int]] = []

    def hint(assignments):
        calls.append([a.pk for a in assignments])
        return {a.pk: {"state": a.state} for a in assignments if a.state == "leased"}

    monkeypatch.setattr(hooks, "_lease_payload", {"suggestion": hooks._lease_payload["suggestion"], "hint": hint})
    client = api_client_for(users[0])
    body = client.post(reverse("api:next-item", args=[campaign.pk]), {"lookahead": 1}, format="json").json()
    leases = [body["assignment"]["id"], body["upcoming"][0]["id"]]
    assert calls == [leases]
    assert body["assignment"]["hint"] == body["upcoming"][0]["hint"] == {"state": "leased"}
    assert list(body["assignment"])[-2:] == ["suggestion", "hint"]

    client.post(reverse("api:submit", args=[leases[0]]), valid_submission(), format="json")
    calls.clear()
    rows = client.get(reverse("api:my-assignments")).json()["results"]
    assert calls == [[row["id"] for row in rows]]  # the whole page at once
    assert {row["id"]: row["hint"] for row in rows} == {leases[0]: None, leases[1]: {"state": "leased"}}
    assert list(rows[0])[-3:] == ["suggestion", "hint", "annotation"]  # hooks' fields, then the answer
