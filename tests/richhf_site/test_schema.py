"""The OpenAPI document itself (issue 12, "An exact schema", "API docs work offline").

tests/richhf_site/test_api_contract.py checks live answers against it; these pin the points
schemathesis first found wrong, and the docs page's independence from any CDN.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _ref(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _body(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    response = document["paths"][path][method]["responses"][status]
    return _ref(document, response["content"]["application/json"]["schema"])


def test_the_document_generates_without_warnings_and_validates(tmp_path) -> None:
    # --fail-on-warn: a view whose answer drf-spectacular cannot see is a document that lies.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


@pytest.mark.parametrize(
    ("path", "item"),
    [
        ("/api/me/assignments/", "OwnAssignmentOutput"),
        ("/api/campaigns/{campaign_id}/aggregates/", "ItemAggregateOutput"),
    ],
)
def test_paginated_lists_are_documented_as_their_page(document: dict[str, Any], path: str, item: str) -> None:
    page = _body(document, path, "get", "200")
    assert page["type"] == "object"
    assert set(page["required"]) == {"count", "next", "previous", "results"}
    assert page["properties"]["results"]["items"]["$ref"].endswith(f"/{item}")
    names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
    assert {"limit", "offset"} <= names


def test_retrain_documents_both_answers_it_gives(document: dict[str, Any]) -> None:
    path = "/api/learning/campaigns/{campaign_id}/retrain/"
    for status in ("200", "202"):
        body = _body(document, path, "post", status)
        assert set(body["required"]) == {"started", "version"}
        assert body["properties"]["started"]["type"] == "boolean"


def test_every_operation_documents_its_errors_in_the_error_contract(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorResponse"]
    assert sorted(error["required"]) == ["detail", "errors"]
    assert set(error["properties"]) == {"detail", "errors", "code"}
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            expected = {"400", "401", "403", "404", "429", "503"}
            if method in ("post", "put", "patch"):
                expected.add("413")
            if "requestBody" in operation:
                expected.add("415")
            for status in sorted(expected):
                response = operation["responses"].get(status)
                if response is None or not response["content"]["application/json"]["schema"]["$ref"].endswith(
                    "/ErrorResponse"
                ):
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_conflicts_are_documented_where_they_happen(document: dict[str, Any]) -> None:
    for path in (
        "/api/assignments/{assignment_id}/submit/",
        "/api/assignments/{assignment_id}/skip/",
        "/api/assignments/{assignment_id}/heartbeat/",
        "/api/dashboard/items/{item_id}/extra-rater/",
        "/api/learning/versions/{version_id}/activate/",
    ):
        assert "409" in document["paths"][path]["post"]["responses"], path


def _request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return _ref(document, body)


def test_strings_the_server_refuses_blank_are_documented_non_blank(document: dict[str, Any]) -> None:
    reason = _request_schema(document, "/api/assignments/{assignment_id}/skip/")["properties"]["reason"]
    token = _request_schema(document, "/api/auth/token/")
    for field in (reason, token["properties"]["username"]):
        assert field["minLength"] == 1
        # DRF trims before its blank check: "   " is refused too, so a non-space is required.
        assert re.search(field["pattern"], "  a ") and not re.search(field["pattern"], " \t ")
    assert token["properties"]["password"]["minLength"] == 1
    assert set(token["required"]) == {"username", "password"}


def test_request_bodies_are_json_only(document: dict[str, Any]) -> None:
    # Form encodings cannot carry JSON numbers and nested objects (points, scores).
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                # The one exception: the admins' upload of files (images, zips, TFRecords).
                expected = (
                    "multipart/form-data" if path == "/api/campaigns/{campaign_id}/imports/" else "application/json"
                )
                assert list(operation["requestBody"]["content"]) == [expected], (method, path)


def test_nested_input_classes_are_named_after_their_view(document: dict[str, Any]) -> None:
    # Every view's nested `Input` would otherwise be one "InputRequest" component.
    body = document["paths"]["/api/dashboard/items/{item_id}/extra-rater/"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/ExtraRaterRequestApiInputRequest")
    assert "InputRequest" not in document["components"]["schemas"]


def test_the_token_endpoint_needs_no_credentials(document: dict[str, Any]) -> None:
    assert document["paths"]["/api/auth/token/"]["post"].get("security") in (None, [])


def test_blank_strings_are_refused_as_documented(make_user) -> None:
    client = APIClient()
    make_user("someone", "rater")
    response = client.post("/api/auth/token/", {"username": "  ", "password": "pw-for-tests"}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()["errors"]


def test_integer_path_ids_are_documented_non_negative(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"]["type"] == "integer":
                    assert parameter["schema"]["minimum"] == 0, (path, parameter["name"])


@pytest.mark.django_db(transaction=True)
def test_the_docs_page_loads_nothing_from_another_origin(live_server) -> None:
    page = requests.get(f"{live_server.url}/api/docs/", timeout=30)
    assert page.status_code == 200
    html = page.text
    # No CDN (redoc@latest was), no web fonts, nothing but this server's own files.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), html
    assert "cdn" not in html.lower()
    scripts = re.findall(r"""<script[^>]*\bsrc=["']([^"']+)["']""", html)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
    for src in scripts:
        asset = requests.get(f"{live_server.url}{src}", timeout=30)
        assert asset.status_code == 200, src
        assert "Redoc" in asset.text[:200_000] and len(asset.content) > 100_000
    spec = re.search(r"""spec-url=["']([^"']+)["']""", html)
    assert spec is not None and spec.group(1) == "/api/schema/"
    assert requests.get(f"{live_server.url}{spec.group(1)}", timeout=30).status_code == 200


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_docs_render_with_every_other_origin_unreachable(live_server, page) -> None:
    # As offline: any request that leaves this server fails. Redoc must still draw the API.
    left: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{live_server.url}/api/docs/")
    page.get_by_text("RichHF Studio API", exact=False).first.wait_for(timeout=30_000)
    # An operation drawn in the main panel, with its documented error answers.
    page.locator("h2").filter(has_text="assignments_heartbeat_create").first.wait_for(timeout=30_000)
    assert page.get_by_role("tab", name="409").count() + page.get_by_text("409").count() > 0
    # Redoc's own "API docs by Redocly" logo is the one thing it fetches from elsewhere.
    assert [url for url in left if "cdn.redoc.ly/redoc/logo" not in url] == []
