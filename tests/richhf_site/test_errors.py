"""One error contract under /api/: every failure is JSON {"detail": str, "errors": {path: [str]}}.

Covers what reaches the server before or around a view (URL resolver 404s, 405, unreadable,
oversized and deeply nested bodies) and the faults of the services behind it (database or
broker unreachable: 503, never a 500 page). Pages outside /api/ keep Django's HTML.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

import kombu.exceptions
import pytest
import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation import selectors
from tests.conftest import api_client_for, valid_submission

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def assert_error_contract(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["errors"], dict), body
    for path, messages in body["errors"].items():
        assert isinstance(path, str) and isinstance(messages, list), body
        assert all(isinstance(m, str) for m in messages), body
    return body


def submit_raw(client: APIClient, assignment_id: int, body: bytes | str, content_type: str = "application/json") -> Any:
    return client.generic("POST", reverse("api:submit", args=[assignment_id]), body, content_type=content_type)


# --------------------------------------------------------------------------- bodies


def test_json_nested_ten_thousand_levels_is_a_400_naming_the_nesting(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    body = assert_error_contract(submit_raw(client, assignment_id, "[" * 10_000 + "]" * 10_000), 400)
    assert "nested" in body["detail"]


def test_json_deeper_than_the_limit_is_refused_but_ordinary_bodies_pass(
    leased: tuple[APIClient, int], settings: Any
) -> None:
    client, assignment_id = leased
    deep = {"scores": json.loads("[" * 80 + "]" * 80)}
    body = assert_error_contract(submit_raw(client, assignment_id, json.dumps({**valid_submission(), **deep})), 400)
    assert "nested" in body["detail"] and str(settings.RICHHF_MAX_JSON_DEPTH) in body["detail"]
    ok = submit_raw(client, assignment_id, json.dumps(valid_submission()))
    assert ok.status_code == 201, ok.content


def test_ten_megabyte_body_is_a_413_json(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    padding = "x" * (10 * 1024 * 1024)
    body = assert_error_contract(
        submit_raw(client, assignment_id, json.dumps({**valid_submission(), "pad": padding})), 413
    )
    assert "too large" in body["detail"]


def test_oversized_form_body_is_refused_as_json_too(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    response = submit_raw(client, assignment_id, "a=" + "x" * (10 * 1024 * 1024), "application/x-www-form-urlencoded")
    # The API takes JSON only: a form is refused by its content type, before its body is read.
    assert_error_contract(response, 415)


def test_body_size_error_raised_inside_a_view_is_a_413_json(
    leased: tuple[APIClient, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Django raises RequestDataTooBig lazily, when the body is first read: map it where it lands."""
    from django.core.exceptions import RequestDataTooBig

    client, assignment_id = leased

    def too_big(*args: object, **kwargs: object) -> None:
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")

    monkeypatch.setattr("annotation.services.annotation_submit", too_big)
    assert_error_contract(submit_raw(client, assignment_id, json.dumps(valid_submission())), 413)


def test_malformed_json_and_wrong_media_type_are_json_errors(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    body = assert_error_contract(submit_raw(client, assignment_id, "{not json"), 400)
    assert "JSON" in body["detail"]
    assert_error_contract(submit_raw(client, assignment_id, b"\xff\xfe{}"), 400)
    assert_error_contract(submit_raw(client, assignment_id, "1e999", "application/json"), 400)
    assert_error_contract(submit_raw(client, assignment_id, "hello", "text/plain"), 415)
    # A bytes-to-bytes "charset" would inflate a small body past the size limit: refused.
    bomb = zlib.compress(json.dumps(valid_submission()).encode())
    body = assert_error_contract(submit_raw(client, assignment_id, bomb, "application/json; charset=zlib_codec"), 400)
    assert "charset" in body["detail"]


# --------------------------------------------------------------------------- routing


def test_unknown_api_url_is_a_json_404_even_for_a_browser(raters: Any) -> None:
    _, (r1, _, _) = raters
    client = Client()
    client.force_login(r1)
    for accept in ("application/json", BROWSER_ACCEPT):
        body = assert_error_contract(client.get("/api/no-such-endpoint/", HTTP_ACCEPT=accept), 404)
        assert "/api/no-such-endpoint/" in body["detail"]
    assert_error_contract(Client().get("/api/campaigns/999/nothing-here/"), 404)


def test_pages_outside_the_api_keep_html_errors() -> None:
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_wrong_method_is_a_json_405(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    response = client.get(reverse("api:submit", args=[assignment_id]), HTTP_ACCEPT=BROWSER_ACCEPT)
    body = assert_error_contract(response, 405)
    assert "GET" in body["detail"]


def test_auth_and_not_found_errors_carry_errors_too(leased: tuple[APIClient, int]) -> None:
    client, _ = leased
    assert_error_contract(
        APIClient().get(reverse("api:campaign-list")), 401
    )  # token auth first: a 401 with WWW-Authenticate
    assert_error_contract(client.post(reverse("api:submit", args=[999_999]), valid_submission(), format="json"), 404)


def test_uncaught_error_under_api_is_a_json_500(raters: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, (r1, _, _) = raters

    def broken(**kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "campaigns_for_user", broken)
    client = Client(raise_request_exception=False)
    client.force_login(r1)
    body = assert_error_contract(client.get(reverse("api:campaign-list")), 500)
    assert "a bug" not in body["detail"]  # internals stay in the log


# --------------------------------------------------------------------------- unreachable services


@pytest.mark.parametrize(
    ("error", "names"),
    [
        (kombu.exceptions.OperationalError("[Errno 111] Connection refused"), "task queue"),
        (redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6390."), "task queue"),
        (OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused'), "database"),
        (InterfaceError("connection already closed"), "database"),
    ],
)
def test_unreachable_broker_or_database_is_a_clear_503(
    raters: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, names: str
) -> None:
    _, (r1, _, _) = raters

    def unreachable(**kwargs: object) -> None:
        raise error

    monkeypatch.setattr(selectors, "campaigns_for_user", unreachable)
    response = api_client_for(r1).get(reverse("api:campaign-list"))
    body = assert_error_contract(response, 503)
    assert names in body["detail"]
    assert int(response["Retry-After"]) > 0


# --------------------------------------------------------------------------- field paths


def test_nested_field_errors_are_flat_dotted_paths(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    bad = valid_submission(
        implausible_points=[[0.1, 0.2], [0.3, 1.5]],
        scores={"plausibility": 4, "alignment": 3, "aesthetics": 5},
    )
    body = assert_error_contract(client.post(reverse("api:submit", args=[assignment_id]), bad, format="json"), 400)
    assert set(body["errors"]) == {"implausible_points.1.1", "scores.overall"}
    assert body["detail"].split(":")[0] in body["errors"]


def test_django_500_hook_under_api_maps_an_unreachable_database_to_503(rf: Any) -> None:
    """What escapes outside a DRF view (a middleware's query) reaches Django's handler500."""
    from richhf_site import errors

    try:
        raise OperationalError("could not connect to server: Connection refused")
    except OperationalError:
        api = errors.server_error(rf.get("/api/campaigns/"))
        page = errors.server_error(rf.get("/dashboard/campaigns/1/"))
    assert api.status_code == 503 and json.loads(api.content)["errors"] == {} and api["Retry-After"]
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
def test_over_a_real_http_server(live_server: Any, raters: Any, make_item: Callable[..., Any]) -> None:
    """The same answers through a WSGI server and a real socket, as a client sees them."""
    import requests
    from rest_framework.authtoken.models import Token

    campaign, (r1, _, _) = raters
    make_item(campaign)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {Token.objects.create(user=r1).key}"
    base = live_server.url
    leased = session.post(f"{base}/api/campaigns/{campaign.pk}/next/", json={}, timeout=30).json()
    submit_url = f"{base}/api/assignments/{leased['assignment']['id']}/submit/"
    json_headers = {"Content-Type": "application/json"}

    huge = session.post(submit_url, data=b" " * (10 * 1024 * 1024), headers=json_headers, timeout=60)
    assert huge.status_code == 413 and huge.json()["errors"] == {}
    deep = session.post(submit_url, data="[" * 10_000 + "]" * 10_000, headers=json_headers, timeout=30)
    assert deep.status_code == 400 and "nested" in deep.json()["detail"]
    missing = session.get(f"{base}/api/nowhere/", timeout=30)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    ok = session.post(submit_url, json=valid_submission(), timeout=30)
    assert ok.status_code == 201, ok.text


def test_form_bodies_are_refused_with_a_415_json(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    response = client.post(reverse("api:skip", args=[assignment_id]), {"reason": "blurry"}, format="multipart")
    body = assert_error_contract(response, 415)
    assert "multipart/form-data" in body["detail"]
