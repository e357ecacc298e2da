import pytest

from tests.conftest import api_client_for, valid_submission


@pytest.fixture
def lease_and_submit():
    """(rater, campaign, body=None) -> the submit response: leases the next item through the
    API and submits body (a valid answer by default)."""
    from django.urls import reverse

    def run(rater, campaign, body=None, expect=201):
        client = api_client_for(rater)
        leased = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()
        assert leased["assignment"] is not None, leased
        response = client.post(
            reverse("api:submit", args=[leased["assignment"]["id"]]), body or valid_submission(), format="json"
        )
        assert response.status_code == expect, response.content
        return leased["assignment"]["item"]["id"]

    return run
