"""Login throttling (page and token endpoint), the admin role's /admin/ access, the secret
key rule, secure cookies, HSTS and the Content-Security-Policy header."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.test import APIClient

from richhf_site import roles
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"
LIMIT = 5


@pytest.fixture(autouse=True)
def _short_lockout(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)


def token_post(username: str, password: str, addr: str = "10.0.0.1"):
    return APIClient().post(
        reverse("api-token"), {"username": username, "password": password}, format="json", REMOTE_ADDR=addr
    )


def page_post(client, username: str, password: str, addr: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=addr)


def test_token_endpoint_refuses_the_right_password_after_too_many_failures(make_user):
    make_user("alice", "rater")
    make_user("bob", "rater")
    for _ in range(LIMIT - 1):
        assert token_post("alice", "wrong").status_code == 400
    locking = token_post("alice", "wrong")
    assert locking.status_code == 429
    refused = token_post("alice", PASSWORD)
    assert refused.status_code == 429, refused.content
    assert refused["Content-Type"] == "application/json"
    assert "Too many failed logins" in refused.json()["detail"]
    assert int(refused["Retry-After"]) == 2
    # Per account: alice from another address is refused too; per address: bob from the
    # same address is refused; bob from elsewhere is not affected.
    assert token_post("alice", PASSWORD, addr="10.0.0.9").status_code == 429
    assert token_post("bob", PASSWORD, addr="10.0.0.1").status_code == 429
    assert token_post("bob", PASSWORD, addr="10.0.0.2").status_code == 200

    time.sleep(2.1)  # the cool-off
    assert token_post("alice", PASSWORD).status_code == 200


def test_25_wrong_passwords_in_a_burst_lock_the_login_page(client, make_user):
    make_user("alice", "rater")
    statuses = [page_post(client, "alice", f"guess{i}").status_code for i in range(25)]
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(statuses[LIMIT - 1 :]) == {429}
    page = page_post(client, "alice", PASSWORD)
    assert page.status_code == 429
    assert "_auth_user_id" not in client.session
    text = page.content.decode()
    assert 'id="login-locked"' in text and "Too many failed logins" in text and 'name="password"' in text

    time.sleep(2.1)
    ok = page_post(client, "alice", PASSWORD)
    assert ok.status_code == 302 and "_auth_user_id" in client.session


def test_failures_on_the_page_count_for_the_token_endpoint_too(client, make_user):
    make_user("alice", "rater")
    for _ in range(LIMIT):
        page_post(client, "alice", "wrong")
    assert token_post("alice", PASSWORD).status_code == 429


def test_a_success_before_the_limit_resets_the_count(make_user):
    make_user("alice", "rater")
    for _ in range(LIMIT - 1):
        token_post("alice", "wrong")
    assert token_post("alice", PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        token_post("alice", "wrong")
    assert token_post("alice", PASSWORD).status_code == 200


def test_token_endpoint_input_names_the_missing_field():
    response = APIClient().post(reverse("api-token"), {"username": "", "password": "x"}, format="json")
    assert response.status_code == 400 and "username" in response.json()["errors"]


# --------------------------------------------------------------------------- the admin role


def test_admin_role_by_user_add_role_opens_the_admin(client, make_user, make_campaign):
    make_campaign("c1")
    user = make_user("adm", "admin")
    assert not user.is_staff
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    changelist = client.get(reverse("admin:annotation_campaign_changelist"))
    assert changelist.status_code == 200 and b"c1" in changelist.content


def test_admin_role_by_group_membership_opens_the_admin_and_ends_with_it(client, make_user):
    user = make_user("adm2")
    client.force_login(user)
    assert client.get("/admin/").status_code == 302  # to the admin's login
    group, _ = Group.objects.get_or_create(name=roles.ADMIN)
    user.groups.add(group)  # what ticking the group in the Django admin's user form does
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200
    user.groups.remove(group)
    assert client.get("/admin/").status_code == 302


def test_lead_and_rater_stay_out_of_the_admin(client, make_user):
    for name, role in (("lead1", "lead"), ("rater1", "rater")):
        client.force_login(make_user(name, role))
        assert client.get("/admin/").status_code == 302, role


# --------------------------------------------------------------------------- headers


def test_secure_cookies_hsts_and_csp(client, make_user, settings):
    make_user("alice", "rater")
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD}, secure=True)
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]
    assert response.cookies["csrftoken"]["secure"]
    page = client.get(reverse("login"), secure=True)
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp


# --------------------------------------------------------------------------- the secret key


def _start(env_overrides: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG")}
    env.update({k: v for k, v in env_overrides.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "richhf_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "key",
    [None, "", "change-me-in-production", "short-but-not-a-placeholder", "django-insecure-" + "x1y2z3" * 10, "a" * 60],
)
def test_production_refuses_to_start_without_a_real_secret_key(key):
    result = _start({"DJANGO_SECRET_KEY": key})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY" in result.stderr


def test_production_starts_with_a_real_key_and_debug_without_one():
    assert "started" in _start({"DJANGO_SECRET_KEY": "k3Y-" + "Zq8vP2rT" * 7}).stdout
    assert "started" in _start({"DJANGO_DEBUG": "1"}).stdout
