"""API tokens: issued by POST /api/auth/token/ (compatible body), stored hashed, expiring,
listed and revoked by their owner, revoked by an admin; revoked or expired ones get 401 JSON."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from richhf_site.auth import token_create
from richhf_site.authentication import token_hash
from richhf_site.models import ApiToken

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


def obtain(username: str) -> dict:
    response = APIClient().post(reverse("api-token"), {"username": username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def me(key: str):
    return client_with(key).get(reverse("api:me"))


def test_obtained_token_works_is_stored_hashed_and_expires_after_the_ttl(make_user, settings):
    settings.RICHHF_TOKEN_TTL = timedelta(days=30)
    make_user("alice", "rater")
    body = obtain("alice")
    key = body["token"]
    assert len(key) == 40
    assert me(key).json()["username"] == "alice"
    stored = ApiToken.objects.get(pk=body["id"])
    assert stored.key_hash == token_hash(key) and key not in (stored.key_hash, stored.prefix + "x")
    assert not ApiToken.objects.filter(key_hash=key).exists()
    lifetime = stored.expires_at - stored.created_at
    assert lifetime == timedelta(days=30)


def test_an_expired_token_gets_401_json(make_user):
    user = make_user("alice", "rater")
    issued = token_create(user=user, ttl=timedelta(seconds=60))
    assert me(issued.key).status_code == 200
    ApiToken.objects.filter(pk=issued.token.pk).update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = me(issued.key)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json" and "expired" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_a_rater_lists_and_revokes_their_own_tokens_only(make_user):
    make_user("alice", "rater")
    make_user("bob", "rater")
    first, second = obtain("alice"), obtain("alice")
    bobs = obtain("bob")
    alice = client_with(first["token"])

    listed = alice.get(reverse("api-tokens")).json()
    assert [t["id"] for t in listed] == [second["id"], first["id"]]
    assert all("token" not in t and "key_hash" not in t for t in listed)
    assert listed[0]["prefix"] == second["token"][:8] and listed[0]["expired"] is False

    # Someone else's token is a 404, exactly like a missing one, and stays usable.
    assert alice.delete(reverse("api-token-revoke", args=[bobs["id"]])).status_code == 404
    assert me(bobs["token"]).status_code == 200

    assert alice.delete(reverse("api-token-revoke", args=[second["id"]])).status_code == 204
    revoked = me(second["token"])
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert [t["id"] for t in alice.get(reverse("api-tokens")).json()] == [first["id"]]
    # Revoking the token in use works too; the next request is refused.
    assert alice.delete(reverse("api-token-revoke", args=[first["id"]])).status_code == 204
    assert alice.get(reverse("api-tokens")).status_code == 401


def test_an_admin_revokes_any_token_in_the_django_admin(client, make_user):
    make_user("alice", "rater")
    key = obtain("alice")["token"]
    client.force_login(make_user("adm", "admin"))
    token = ApiToken.objects.get(key_hash=token_hash(key))
    response = client.post(
        reverse("admin:richhf_site_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    assert me(key).status_code == 401


def test_a_deactivated_users_token_is_refused(make_user):
    user = make_user("alice", "rater")
    key = obtain("alice")["token"]
    user.is_active = False
    user.save()
    assert me(key).status_code == 401


def test_legacy_drf_tokens_still_work_but_expire_too(make_user, settings):
    settings.RICHHF_TOKEN_TTL = timedelta(days=30)
    user = make_user("alice", "rater")
    legacy = Token.objects.create(user=user)
    assert me(legacy.key).status_code == 200
    Token.objects.filter(pk=legacy.key).update(created=timezone.now() - timedelta(days=31))
    assert me(legacy.key).status_code == 401


def test_an_unknown_token_gets_401_json():
    response = me("0" * 40)
    assert response.status_code == 401 and "detail" in response.json()


def test_a_rater_creates_and_revokes_tokens_on_the_home_page(client, make_user):
    user = make_user("alice", "rater")
    make_user("bob", "rater")
    bobs = obtain("bob")
    client.force_login(user)
    home = client.get(reverse("home") + "?list").content.decode()
    assert 'id="api-tokens"' in home and "You have no API tokens." in home

    page = client.post(reverse("token-new"), {"name": "upload script"})
    assert page.status_code == 200
    text = page.content.decode()
    token = ApiToken.objects.get(user=user)
    key = text.split('<code id="new-token">')[1].split("</code>")[0]
    assert token_hash(key) == token.key_hash and token.name == "upload script"
    assert me(key).status_code == 200
    # Shown once: the list shows the prefix only.
    again = client.get(reverse("home") + "?list").content.decode()
    assert key not in again and f"{key[:8]}…" in again

    assert client.post(reverse("token-revoke", args=[bobs["id"]])).status_code == 404
    assert me(bobs["token"]).status_code == 200
    revoked = client.post(reverse("token-revoke", args=[token.pk]))
    assert revoked.status_code == 302 and revoked["Location"].endswith("#api-tokens")
    assert me(key).status_code == 401


def test_leads_home_page_has_no_token_section(client, make_user):
    client.force_login(make_user("boss", "lead"))
    assert 'id="api-tokens"' not in client.get(reverse("home")).content.decode()


@pytest.mark.parametrize("kind", ["token", "legacy"])
def test_a_token_brings_its_users_roles_in_its_one_look_up(kind, make_user, django_assert_num_queries):
    """The look-up reads the user and their roles in one written-out statement: each user's
    roles come back exactly (none, one, several; a superuser without groups is an admin) and
    /api/me/ costs that one query."""
    from django.contrib.auth import get_user_model

    users = {
        "nobody": make_user("nobody"),
        "rater": make_user("rita", "rater"),
        "both": make_user("lee", "lead"),
        "root": get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD),
    }
    from richhf_site.roles import RATER, user_add_role

    user_add_role(user=users["both"], role=RATER)
    expected = {"nobody": [], "rater": ["rater"], "both": ["lead", "rater"], "root": ["admin"]}
    for name, user in users.items():
        key = token_create(user=user).key if kind == "token" else Token.objects.create(user=user).key
        client = client_with(key)
        with django_assert_num_queries(1 if kind == "token" else 2):  # a legacy key misses ApiToken first
            body = client.get(reverse("api:me")).json()
        assert body == {"username": user.username, "roles": expected[name]}, name
