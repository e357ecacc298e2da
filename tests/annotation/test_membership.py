"""Membership is checked on every lease action: a rater removed from a campaign loses their
open leases at once (heartbeat, submit and skip answer 403 JSON and change nothing)."""

import pytest
from django.urls import reverse

from annotation.models import Annotation, Assignment, AssignmentState
from tests.conftest import api_client_for, valid_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def removed_rater_lease(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    client = api_client_for(r1)
    body = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()
    assignment_id = body["assignment"]["id"]
    campaign.raters.remove(r1)
    return client, assignment_id


@pytest.mark.parametrize(
    ("action", "body"),
    [("heartbeat", {}), ("submit", valid_submission()), ("skip", {"reason": "broken image"})],
)
def test_a_removed_rater_cannot_use_an_open_lease(removed_rater_lease, action, body):
    client, assignment_id = removed_rater_lease
    before = Assignment.objects.get(pk=assignment_id)

    response = client.post(reverse(f"api:{action}", args=[assignment_id]), body, format="json")

    assert response.status_code == 403, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "no longer a rater of this campaign" in response.json()["detail"]
    after = Assignment.objects.get(pk=assignment_id)
    assert (after.state, after.expires_at) == (AssignmentState.LEASED, before.expires_at)
    assert not Annotation.objects.filter(assignment_id=assignment_id).exists()


def test_a_re_invited_rater_can_use_the_lease_again(raters, removed_rater_lease):
    campaign, (r1, _, _) = raters
    client, assignment_id = removed_rater_lease
    campaign.raters.add(r1)
    response = client.post(reverse("api:submit", args=[assignment_id]), valid_submission(), format="json")
    assert response.status_code == 201, response.content


def test_another_raters_assignment_is_still_a_404_not_a_403(raters, removed_rater_lease):
    _, (_, r2, _) = raters
    _, assignment_id = removed_rater_lease
    response = api_client_for(r2).post(reverse("api:heartbeat", args=[assignment_id]), {}, format="json")
    assert response.status_code == 404
