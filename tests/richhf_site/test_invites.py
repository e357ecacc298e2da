"""One-time invite links: stored as a hash, used once, expiring; the invitee sets a password."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.campaigns import campaign_invite_new_account
from richhf_site.models import Invite

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def issued(make_campaign, make_user):
    campaign = make_campaign("inv")
    admin = make_user("root", "admin")
    return campaign, campaign_invite_new_account(campaign=campaign, username="newbie", created_by=admin)


def test_the_token_is_stored_only_as_its_hash(issued):
    campaign, issued = issued
    invite = Invite.objects.get()
    assert invite.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in {str(v) for v in Invite.objects.values().get().values()}
    user = invite.user
    assert user.username == "newbie" and not user.has_usable_password()
    assert campaign.raters.filter(pk=user.pk).exists()
    assert user.groups.filter(name="rater").exists()


def test_invitee_sets_a_password_once_and_is_logged_in(issued):
    _, issued = issued
    url = reverse("manage:invite-accept", args=[issued.token])
    client = Client()
    page = client.get(url)
    assert page.status_code == 200 and "Welcome, newbie" in page.content.decode()
    assert page["Referrer-Policy"] == "same-origin" and "no-store" in page["Cache-Control"]
    mismatch = client.post(url, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD + "x"})
    assert mismatch.status_code == 400 and "The two passwords differ" in mismatch.content.decode()
    weak = client.post(url, {"password1": "123", "password2": "123"})
    assert weak.status_code == 400 and Invite.objects.get().used_at is None
    done = client.post(url, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("home")
    assert client.get(reverse("home") + "?list").status_code == 200  # logged in
    assert Client().login(username="newbie", password=GOOD_PASSWORD)
    assert Invite.objects.get().used_at is not None
    # Spent: the same link is now a 404 for anyone, and cannot change the password again.
    again = Client().post(url, {"password1": "another long passphrase 7", "password2": "another long passphrase 7"})
    assert again.status_code == 404
    assert Client().login(username="newbie", password=GOOD_PASSWORD)


def test_expired_and_unknown_links_are_404(issued):
    _, issued = issued
    Invite.objects.update(created_at=timezone.now() - timedelta(days=10), expires_at=timezone.now() - timedelta(days=1))
    assert Client().get(reverse("manage:invite-accept", args=[issued.token])).status_code == 404
    assert Client().get(reverse("manage:invite-accept", args=["not-a-token"])).status_code == 404
    assert not get_user_model().objects.get(username="newbie").has_usable_password()


def test_taken_or_invalid_usernames_are_refused(issued, make_campaign):
    from richhf_site.errors import ApplicationError

    campaign, _ = issued
    with pytest.raises(ApplicationError, match="taken"):
        campaign_invite_new_account(campaign=campaign, username="NEWBIE")
    with pytest.raises(ApplicationError, match="username"):
        campaign_invite_new_account(campaign=campaign, username="has spaces!")
    assert Invite.objects.count() == 1
