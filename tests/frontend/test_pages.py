"""The home page shows each role its way in, and nothing of the others'."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def home_for(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("home") + "?list")
    assert response.status_code == 200
    return response.content.decode()


def test_lead_sees_the_dashboard_link_and_a_rater_does_not(raters, make_user):
    campaign, (r1, _, _) = raters
    dashboard = reverse("dashboard:campaign", args=[campaign.pk])
    learning = reverse("learning:campaign", args=[campaign.pk])
    lead_page = home_for(make_user("boss", "lead"))
    assert dashboard in lead_page and learning in lead_page
    assert reverse("annotate", args=[campaign.pk]) not in lead_page
    rater_page = home_for(r1)
    assert reverse("annotate", args=[campaign.pk]) in rater_page
    assert dashboard not in rater_page and learning not in rater_page
    assert reverse("admin:index") not in rater_page


def test_anonymous_visitors_are_sent_to_log_in():
    response = Client().get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
