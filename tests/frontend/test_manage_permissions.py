"""Who may do what on the admin pages and their endpoints, checked on the server.

A rater gets 403 everywhere; a lead may read the lists and follow jobs but gets 403 on every
change (create, edit, invite, upload, import, export, download); an admin may do everything.
"""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import reverse

from aggregation.exports.models import ExportJob, ImportJob
from annotation.models import Campaign
from richhf_site.models import Invite

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user, make_campaign, settings):
    campaign = make_campaign("perm")
    users = {role: make_user(f"{role}1", role) for role in ("rater", "lead", "admin")}
    make_user("someone", "rater")  # for the invite actions
    export = ExportJob.objects.create(campaign=campaign, format="jsonl", status="succeeded", sha256="0" * 64)
    export.archive.save("e.zip", io.BytesIO(b"PK\x05\x06" + b"\0" * 18), save=True)
    imp = ImportJob.objects.create(campaign=campaign, kind="items", upload_prefix="uploads/x", status="succeeded")
    return campaign, users, export, imp


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def campaign_form(**overrides) -> dict:
    data = {
        "name": "made here",
        "raters_per_item": "3",
        "radius_fraction": "0.05",
        "lease_minutes": "20",
        "qualification_items": "5",
        "qualification_threshold": "0.6",
        "honeypot_share": "0",
    }
    data.update(overrides)
    return data


# (what, method, url builder, body builder) for every page and endpoint; "read" ones are open
# to leads, "write" ones only to admins.
def reads(campaign, export, imp):
    return [
        ("campaign list", "get", reverse("manage:campaigns")),
        ("uploads page", "get", reverse("manage:uploads")),
        ("imports page", "get", reverse("manage:imports")),
        ("import job page", "get", reverse("manage:import-job", args=[imp.pk])),
        ("exports page", "get", reverse("manage:exports")),
        ("import jobs API", "get", reverse("exports:campaign-imports", args=[campaign.pk])),
        ("import job API", "get", reverse("exports:import-job", args=[imp.pk])),
        ("export jobs API", "get", reverse("exports:campaign-exports", args=[campaign.pk])),
        ("export job API", "get", reverse("exports:job", args=[export.pk])),
    ]


def writes(campaign, export, imp):
    csv = io.BytesIO(b"username\nsomeone\n")
    csv.name = "raters.csv"
    return [
        ("new campaign page", "get", reverse("manage:campaign-new"), None),
        ("create campaign", "post", reverse("manage:campaign-new"), campaign_form()),
        ("edit campaign page", "get", reverse("manage:campaign-edit", args=[campaign.pk]), None),
        ("edit campaign", "post", reverse("manage:campaign-edit", args=[campaign.pk]), campaign_form(name="renamed")),
        ("invite by username", "post", reverse("manage:campaign-invite", args=[campaign.pk]), {"usernames": "someone"}),
        ("invite by CSV", "post", reverse("manage:campaign-invite", args=[campaign.pk]), {"csv": csv}),
        ("invite link", "post", reverse("manage:campaign-invite-link", args=[campaign.pk]), {"username": "newbie"}),
        ("guidelines preview", "post_json", reverse("manage:guidelines-preview"), {"text": "**hi**"}),
        ("start export", "post_json", reverse("exports:campaign-exports", args=[campaign.pk]), {"format": "jsonl"}),
        ("download export", "get", reverse("exports:download", args=[export.pk]), None),
        ("upload items", "post", reverse("exports:campaign-imports", args=[campaign.pk]), {"kind": "items"}),
    ]


def call(client: Client, method: str, url: str, body=None):
    if method == "post_json":
        import json

        return client.post(url, json.dumps(body), content_type="application/json")
    return client.post(url, body or {}) if method == "post" else client.get(url)


@pytest.mark.parametrize("role", ["rater", "lead", "admin"])
def test_reads(world, role):
    campaign, users, export, imp = world
    client = client_for(users[role])
    for what, method, url in reads(campaign, export, imp):
        status = call(client, method, url).status_code
        assert status == (403 if role == "rater" else 200), (what, role, status)


@pytest.mark.parametrize("role", ["rater", "lead"])
def test_changes_are_refused_to_raters_and_leads_and_change_nothing(world, role):
    campaign, users, export, imp = world
    client = client_for(users[role])
    for what, method, url, body in writes(campaign, export, imp):
        status = call(client, method, url, body).status_code
        assert status == 403, (what, role, status)
    campaign.refresh_from_db()
    assert campaign.name == "perm" and not campaign.raters.exists()
    assert Campaign.objects.count() == 1 and ExportJob.objects.count() == 1 and ImportJob.objects.count() == 1
    assert not Invite.objects.exists()


def test_admin_may_do_every_change(world):
    campaign, users, export, imp = world
    client = client_for(users["admin"])
    expected = {
        "new campaign page": 200,
        "create campaign": 302,
        "edit campaign page": 200,
        "edit campaign": 302,
        "invite by username": 200,
        "invite by CSV": 200,  # someone is already in by then: reported, not an error
        "invite link": 200,
        "guidelines preview": 200,
        "start export": 202,
        "download export": 200,
        "upload items": 400,  # allowed, but no files: the form's own error
    }
    for what, method, url, body in writes(campaign, export, imp):
        status = call(client, method, url, body).status_code
        assert status == expected[what], (what, status)
    assert Campaign.objects.filter(name="made here").exists()
    campaign.refresh_from_db()
    assert campaign.name == "renamed"
    assert set(campaign.raters.values_list("username", flat=True)) == {"someone", "newbie"}


def test_anonymous_visitors_go_to_log_in_and_the_api_refuses_them(world):
    campaign, _, export, imp = world
    client = Client()
    for what, method, url in reads(campaign, export, imp):
        response = call(client, method, url)
        if url.startswith("/api/"):
            assert response.status_code in (401, 403), what
        else:
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), what
