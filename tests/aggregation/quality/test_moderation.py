"""annotation/moderation.py: pause releases leases, exclusion re-queues items, undo restores."""

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import hooks, moderation
from annotation.models import Assignment, AssignmentState, Draft, Item
from annotation.services import assignment_next
from tests.conftest import api_client_for, submitted_annotation, valid_submission

pytestmark = pytest.mark.django_db


def _complete(item, users, scores=((3, 3, 3, 3),) * 3):
    anns = [submitted_annotation(item, u, scores=s) for u, s in zip(users, scores, strict=True)]
    Item.objects.filter(pk=item.pk).update(n_submitted=len(anns), completed_at=timezone.now())
    return anns


def test_pause_releases_live_leases_and_drafts_and_blocks_new_leases(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    make_item(campaign, prompt="a dog")
    lease = assignment_next(rater=r1, campaign=campaign, lookahead=1)
    Draft.objects.create(assignment=lease.assignment, answer={"scores": {"overall": 2}})

    result = moderation.rater_pause(campaign=campaign, rater=r1, reason="spam")

    assert result.changed and result.released_leases == 2
    assert not Assignment.objects.filter(rater=r1, state=AssignmentState.LEASED).exists()
    assert not Draft.objects.exists()
    response = api_client_for(r1).post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    # The page's contract: no lease, and a status of its own with the reason in words.
    assert response.status_code == 200 and response.json()["status"] == "paused"
    assert response.json()["assignment"] is None and "paused" in response.json()["detail"]
    # A second pause changes nothing; resume lets the rater lease again.
    assert not moderation.rater_pause(campaign=campaign, rater=r1, reason="again").changed
    assert moderation.rater_resume(campaign=campaign, rater=r1).changed
    # Released items went to the others (a rater never gets an item twice); a new one is theirs.
    fresh = make_item(campaign, prompt="a bird")
    response = api_client_for(r1).post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    assert response.status_code == 200 and response.json()["assignment"]["item"]["id"] == fresh.pk


def test_submit_after_pause_is_a_clear_409_and_the_lease_is_gone(leased, raters):
    client, assignment_id = leased
    campaign, (r1, _, _) = raters
    moderation.rater_pause(campaign=campaign, rater=r1, reason="too fast")

    response = client.post(reverse("api:submit", args=[assignment_id]), valid_submission(), format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "paused" and "paused" in body["detail"]
    assert Assignment.objects.get(pk=assignment_id).state == AssignmentState.EXPIRED
    assert not Assignment.objects.get(pk=assignment_id).item.annotations.exists()
    heartbeat = client.post(reverse("api:heartbeat", args=[assignment_id]), {}, format="json")
    assert heartbeat.status_code == 409 and heartbeat.json()["code"] == "paused"


def test_exclusion_requeues_the_item_and_tells_aggregation(
    raters, make_item, make_user, django_capture_on_commit_callbacks
):
    campaign, users = raters
    item = make_item(campaign)
    anns = _complete(item, users)
    seen: list[list[int]] = []
    hooks.item_answers_changed_connect(name="test", receiver=lambda ids: seen.append(list(ids)))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            changed = moderation.annotations_exclude(annotation_ids=[anns[0].pk], reason="spammer")
    finally:
        hooks._item_answers_changed.pop("test")

    assert changed == [anns[0].pk]
    assert seen == [[item.pk]]
    item.refresh_from_db()
    assert item.completed_at is None and item.n_submitted == 2
    anns[0].refresh_from_db()
    assert anns[0].excluded_at is not None and anns[0].excluded_reason == "spammer"
    # A replacement rater gets the item; the excluded rater never does again.
    newcomer = make_user("r4", "rater")
    campaign.raters.add(newcomer)
    assert assignment_next(rater=newcomer, campaign=campaign).assignment.item_id == item.pk
    assert assignment_next(rater=users[0], campaign=campaign).assignment is None
    # Excluding again changes nothing.
    assert moderation.annotations_exclude(annotation_ids=[anns[0].pk], reason="again") == []


def test_include_restores_the_count_and_completion(raters, make_item):
    campaign, users = raters
    item = make_item(campaign)
    anns = _complete(item, users)
    moderation.annotations_exclude(annotation_ids=[anns[2].pk], reason="x")
    item.refresh_from_db()
    assert item.completed_at is None

    assert moderation.annotations_include(annotation_ids=[anns[2].pk]) == [anns[2].pk]

    item.refresh_from_db()
    assert item.n_submitted == 3 and item.completed_at is not None
    anns[2].refresh_from_db()
    assert anns[2].excluded_at is None and anns[2].excluded_reason == ""
