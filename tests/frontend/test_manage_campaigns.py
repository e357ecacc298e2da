"""The campaigns page as an admin uses it (Django's test client; the browser tests are in
test_manage_browser.py)."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from annotation.campaigns import campaign_create, campaign_invite_csv, campaign_update
from annotation.models import Campaign
from richhf_site.errors import ApplicationError
from tests.frontend.test_manage_permissions import campaign_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user("root", "admin"))
    return client


def test_create_then_edit_every_setting(admin_client):
    response = admin_client.post(
        reverse("manage:campaign-new"),
        campaign_form(
            name="Pick-a-Pic batch 2",
            raters_per_item="5",
            radius_fraction="0.04",
            lease_minutes="30",
            show_suggestions="on",
            qualification_required="on",
            qualification_items="8",
            qualification_threshold="0.7",
            honeypot_share="0.1",
            guidelines="# Rules\nMark **every** artifact.",
            guidelines_zh_hans="# 规则",
        ),
    )
    campaign = Campaign.objects.get(name="Pick-a-Pic batch 2")
    assert response.status_code == 302 and response["Location"].endswith(f"/manage/campaigns/{campaign.pk}/?saved=1")
    assert (campaign.raters_per_item, campaign.radius_fraction, campaign.lease_minutes) == (5, 0.04, 30)
    assert campaign.show_suggestions and campaign.qualification_required
    assert (campaign.qualification_items, campaign.qualification_threshold, campaign.honeypot_share) == (8, 0.7, 0.1)
    assert campaign.guidelines.startswith("# Rules") and campaign.guidelines_translations == {"zh-hans": "# 规则"}
    page = admin_client.get(response["Location"]).content.decode()
    assert "Saved." in page and 'value="0.04"' in page
    # Unticking a box and emptying the translation are saved too.
    admin_client.post(
        reverse("manage:campaign-edit", args=[campaign.pk]),
        campaign_form(name="Pick-a-Pic batch 2", raters_per_item="4", guidelines="Mark artifacts."),
    )
    campaign.refresh_from_db()
    assert campaign.raters_per_item == 4 and not campaign.show_suggestions and not campaign.qualification_required
    assert campaign.guidelines_translations == {}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("radius_fraction", "0.9", "less than or equal to 0.5"),
        ("raters_per_item", "0", "greater than or equal to 1"),
        ("honeypot_share", "0.6", "less than or equal to 0.5"),
        ("qualification_threshold", "1.5", "less than or equal to 1"),
        ("name", "", "required"),
    ],
)
def test_bad_values_are_named_next_to_their_field_and_nothing_is_saved(admin_client, field, value, message):
    response = admin_client.post(reverse("manage:campaign-new"), campaign_form(**{field: value}))
    assert response.status_code == 400
    page = response.content.decode()
    assert f'data-field="{field}"' in page and message in page
    assert not Campaign.objects.exists()


def test_duplicate_name_is_refused_by_the_service(admin_client, make_campaign):
    make_campaign("taken")
    response = admin_client.post(reverse("manage:campaign-new"), campaign_form(name="taken"))
    assert response.status_code == 400 and "exists already" in response.content.decode()
    with pytest.raises(ApplicationError) as err:
        campaign_create(name="x", radius_fraction=0.0)
    assert err.value.field == "radius_fraction"
    with pytest.raises(ApplicationError) as err:
        campaign_update(campaign_id=Campaign.objects.get().pk, lease_minutes=1.5)
    assert err.value.field == "lease_minutes"


def test_invite_by_username_names_the_unknown_ones(admin_client, make_campaign, make_user):
    campaign = make_campaign("team")
    make_user("alice")
    make_user("bob", "rater")
    response = admin_client.post(
        reverse("manage:campaign-invite", args=[campaign.pk]), {"usernames": "alice\nBob\nghost"}
    )
    page = response.content.decode()
    assert response.status_code == 400  # something to fix, but the good ones went in
    assert "2 added: alice, bob" in page and "ghost: no user named &#x27;ghost&#x27;" in page
    assert set(campaign.raters.values_list("username", flat=True)) == {"alice", "bob"}
    # alice became a rater by being invited
    assert campaign.raters.get(username="alice").groups.filter(name="rater").exists()


def test_invite_by_csv_reports_each_bad_line(admin_client, make_campaign, make_user):
    campaign = make_campaign("csv")
    for name in ("ann", "ben", "cat"):
        make_user(name)
    csv = io.BytesIO(b"email,username\na@x,ann\nb@x,\nc@x,ghost\nd@x,ben\ne@x,ann\n\nf@x,cat\n")
    csv.name = "team.csv"
    page = admin_client.post(reverse("manage:campaign-invite", args=[campaign.pk]), {"csv": csv}).content.decode()
    assert "3 added: ann, ben, cat" in page
    for line in ("team.csv:3: no username", "team.csv:4: no user named", "team.csv:6: &#x27;ann&#x27; is listed twice"):
        assert line in page
    report = campaign_invite_csv(campaign=campaign, filename="plain.csv", data=b"ann\n")
    assert report.already == ["ann"] and report.problems == []
    with pytest.raises(ApplicationError, match="plain.csv:2: not UTF-8"):
        campaign_invite_csv(campaign=campaign, filename="plain.csv", data=b"ann\n\xff\n")


def test_invite_link_is_shown_once(admin_client, make_campaign):
    campaign = make_campaign("links")
    response = admin_client.post(reverse("manage:campaign-invite-link", args=[campaign.pk]), {"username": "fresh"})
    page = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "/invite/" in page and "shown only this once" in page
    link = page.split('id="invite-link" readonly value="', 1)[1].split('"', 1)[0]
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in admin_client.get(reverse("manage:campaign-edit", args=[campaign.pk])).content.decode()
    assert Client().get(link.split("testserver", 1)[1]).status_code == 200


def test_preview_renders_markdown_safely(admin_client):
    url = reverse("manage:guidelines-preview")
    body = {"text": "**Bold** <script>alert(1)</script> [x](javascript:alert(1))"}
    html = admin_client.post(url, json.dumps(body), content_type="application/json").json()["html"]
    assert "<strong>Bold</strong>" in html
    assert "<script" not in html and "&lt;script&gt;" in html  # shown as text, never run
    assert 'href="javascript' not in html
    bad = admin_client.post(url, json.dumps({"text": 5}), content_type="application/json")
    assert bad.status_code == 400 and "text" in bad.json()["errors"]


def test_lead_sees_the_list_without_edit_links(make_user, make_campaign):
    campaign = make_campaign("look")
    client = Client()
    client.force_login(make_user("boss", "lead"))
    page = client.get(reverse("manage:campaigns")).content.decode()
    assert "look" in page and reverse("manage:campaign-edit", args=[campaign.pk]) not in page
    assert "New campaign" not in page and "only admins change campaigns" in page
