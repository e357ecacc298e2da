"""Quality control API: permission matrix, actions with their audit entries, undo, bad input."""

import pytest
from django.urls import reverse

from aggregation.quality.models import QualityAction, QualityRun
from annotation.models import Annotation, Item, RaterStatus
from tests.conftest import api_client_for

from .factories import careful_and_spammer_crowd

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_campaign, make_user, make_item):
    campaign = make_campaign("qc")
    careful = [make_user(f"careful{i}", "rater") for i in range(3)]
    spammer = make_user("spammer", "rater")
    campaign.raters.add(*careful, spammer)
    items = careful_and_spammer_crowd(campaign, careful, spammer, make_item, n_items=10)
    users = {
        "anonymous": None,
        "rater": careful[0],
        "lead": make_user("lead", "lead"),
        "admin": make_user("admin", "admin"),
    }
    return campaign, careful, spammer, items, users


def _client(user):
    if user is None:
        from rest_framework.test import APIClient

        return APIClient()
    return api_client_for(user)


READS = ["quality:api-summary", "quality:api-history", "quality:api-audit", "quality:api-policy"]


@pytest.mark.parametrize(("role", "expected"), [("anonymous", 403), ("rater", 403), ("lead", 200), ("admin", 200)])
def test_read_endpoints_matrix(setup, role, expected):
    campaign, *_, users = setup
    client = _client(users[role])
    for name in READS:
        response = client.get(reverse(name, args=[campaign.pk]))
        assert response.status_code in ((401, 403) if expected == 403 else (expected,)), (name, response.content)


@pytest.mark.parametrize(("role", "allowed"), [("anonymous", False), ("rater", False), ("lead", True), ("admin", True)])
def test_action_endpoints_matrix(setup, role, allowed):
    campaign, careful, spammer, items, users = setup
    client = _client(users[role])
    calls = [
        ("quality:api-pause", [campaign.pk], {"rater_id": spammer.pk, "reason": "random answers"}, 201),
        ("quality:api-resume", [campaign.pk], {"rater_id": spammer.pk}, 201),
        ("quality:api-exclude", [campaign.pk], {"rater_id": spammer.pk, "reason": "random answers"}, 201),
        ("quality:api-run", [campaign.pk], {}, 202),
    ]
    for name, args, body, ok in calls:
        response = client.post(reverse(name, args=args), body, format="json")
        if allowed:
            assert response.status_code == ok, (name, response.content)
        else:
            assert response.status_code in (401, 403), (name, response.content)
    if not allowed:
        assert not QualityAction.objects.exists() and not QualityRun.objects.exists()
        assert not Annotation.objects.filter(excluded_at__isnull=False).exists()
        assert not RaterStatus.objects.filter(paused_at__isnull=False).exists()


@pytest.mark.parametrize(("role", "expected"), [("rater", 403), ("lead", 403), ("admin", 200)])
def test_policy_is_changed_by_admins_only(setup, role, expected):
    campaign, *_, users = setup
    response = _client(users[role]).patch(
        reverse("quality:api-policy", args=[campaign.pk]), {"pause_mode": "auto"}, format="json"
    )
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["pause_mode"] == "auto"
        got = _client(users["lead"]).get(reverse("quality:api-policy", args=[campaign.pk])).json()
        assert got["pause_mode"] == "auto"


def test_page_matrix(setup, client):
    campaign, _, _, _, users = setup
    url = reverse("quality:page", args=[campaign.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(users["rater"])
    assert client.get(url).status_code == 403
    client.force_login(users["lead"])
    page = client.get(url)
    assert page.status_code == 200 and b"quality/quality.js" in page.content
    # The dashboard links here.
    dash = client.get(reverse("dashboard:campaign", args=[campaign.pk]))
    assert url.encode() in dash.content


def test_bad_input_names_the_field(setup):
    campaign, _, spammer, _, users = setup
    lead = _client(users["lead"])
    url = reverse("quality:api-pause", args=[campaign.pk])
    no_reason = lead.post(url, {"rater_id": spammer.pk}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    as_string = lead.post(url, {"rater_id": str(spammer.pk), "reason": "x"}, format="json")
    assert as_string.status_code == 400 and "rater_id" in as_string.json()["errors"]
    unknown = lead.post(url, {"rater_id": spammer.pk, "reason": "x", "force": True}, format="json")
    assert unknown.status_code == 400 and "force" in unknown.json()["errors"]
    both = lead.post(
        reverse("quality:api-exclude", args=[campaign.pk]),
        {"rater_id": spammer.pk, "annotation_ids": [1], "reason": "x"},
        format="json",
    )
    assert both.status_code == 400 and "annotation_ids" in both.json()["errors"]
    foreign = lead.post(
        reverse("quality:api-exclude", args=[campaign.pk]), {"annotation_ids": [999999], "reason": "x"}, format="json"
    )
    assert foreign.status_code == 404
    bad_policy = _client(users["admin"]).patch(
        reverse("quality:api-policy", args=[campaign.pk]), {"reliability_threshold": 2}, format="json"
    )
    assert bad_policy.status_code == 400 and "reliability_threshold" in bad_policy.json()["errors"]
    assert not QualityAction.objects.exists()


def test_exclude_chosen_answers_then_undo_with_audit(setup, django_capture_on_commit_callbacks):
    campaign, careful, spammer, items, users = setup
    lead, lead_user = _client(users["lead"]), users["lead"]
    chosen = list(Annotation.objects.filter(rater=spammer).order_by("pk").values_list("pk", flat=True)[:2])
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(
            reverse("quality:api-exclude", args=[campaign.pk]),
            {"annotation_ids": chosen, "reason": "random regions"},
            format="json",
        )
    assert response.status_code == 201
    action = response.json()["action"]
    assert action["annotation_ids"] == chosen and action["applied_by"] == "lead" and not action["automatic"]
    assert Item.objects.filter(completed_at__isnull=True).count() == 2

    undo = lead.post(reverse("quality:api-undo", args=[campaign.pk, action["id"]]), {}, format="json")
    assert undo.status_code == 200 and undo.json()["state"] == "undone" and undo.json()["undone_by"] == "lead"
    assert not Annotation.objects.filter(excluded_at__isnull=False).exists()
    assert not Item.objects.filter(completed_at__isnull=True).exists()
    log = lead.get(reverse("quality:api-audit", args=[campaign.pk])).json()["actions"]
    assert [(a["kind"], a["state"], a["reason"]) for a in log] == [("exclude", "undone", "random regions")]
    assert QualityAction.objects.get().undone_by == lead_user


def test_pause_proposal_applied_by_a_lead(setup):
    campaign, _, spammer, _, users = setup
    lead = _client(users["lead"])
    run = lead.post(reverse("quality:api-run", args=[campaign.pk]), {}, format="json").json()
    from aggregation.quality.services.recompute import quality_run_execute

    quality_run_execute(run_id=run["id"])
    summary = lead.get(reverse("quality:api-summary", args=[campaign.pk])).json()
    row = next(r for r in summary["raters"] if r["username"] == "spammer")
    assert "low_reliability" in row["figures"]["flags"]
    pause = next(p for p in row["proposals"] if p["kind"] == "pause")

    applied = lead.post(reverse("quality:api-apply", args=[campaign.pk, pause["id"]]), {}, format="json")
    assert applied.status_code == 201
    body = applied.json()["action"]
    assert body["id"] == pause["id"] and body["state"] == "applied" and body["applied_by"] == "lead"
    assert RaterStatus.objects.get(rater=spammer).paused_at is not None
    again = lead.post(reverse("quality:api-apply", args=[campaign.pk, pause["id"]]), {}, format="json")
    assert again.status_code == 409
    history = lead.get(reverse("quality:api-history", args=[campaign.pk]), {"rater_id": spammer.pk}).json()
    assert len(history["snapshots"]) == 1 and history["snapshots"][0]["reliability"] < 0.45


def _nullable_to_json_schema(node):
    """OpenAPI 3.0's `nullable: true` as JSON Schema's null type, so jsonschema can check it."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


@pytest.fixture(scope="module")
def documented():
    """Checks an answer against the response the OpenAPI document states for its path, method
    and status: a status the document leaves out fails, so does a field of the wrong type."""
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator
    from referencing import Registry, Resource

    document = _nullable_to_json_schema(SchemaGenerator().get_schema(request=None, public=True))
    registry = Registry().with_resource("urn:doc", Resource.opaque(document))

    def check(response, path, method):
        responses = document["paths"][path][method]["responses"]
        assert str(response.status_code) in responses, (path, method, response.status_code)
        schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
        schema = {"$ref": "urn:doc#/components/schemas/" + schema["$ref"].rsplit("/", 1)[1]}
        jsonschema.validate(response.json(), schema, registry=registry)

    return check


def test_every_answer_matches_its_documented_schema(setup, documented):
    """The quality page and API clients read these answers: with real figures, proposals,
    actions and nulls in them, each one has exactly the shape and status the document states."""
    campaign, _, spammer, _, users = setup
    lead = _client(users["lead"])
    base = "/api/quality/campaigns/{campaign_id}/"

    empty = lead.get(reverse("quality:api-summary", args=[campaign.pk]))
    assert empty.json()["run"] is None and empty.json()["raters"][0]["figures"] is None
    documented(empty, base, "get")

    queued = lead.post(reverse("quality:api-run", args=[campaign.pk]), {}, format="json")
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    documented(queued, base + "runs/", "post")
    from aggregation.quality.services.recompute import quality_run_execute

    quality_run_execute(run_id=queued.json()["id"])
    run = lead.get(reverse("quality:api-run-detail", args=[campaign.pk, queued.json()["id"]]))
    assert run.json()["state"] == "done" and run.json()["progress"] == 1
    documented(run, base + "runs/{run_id}/", "get")

    summary = lead.get(reverse("quality:api-summary", args=[campaign.pk]))
    row = next(r for r in summary.json()["raters"] if r["username"] == "spammer")
    assert row["figures"]["reliability"] is not None and row["proposals"]
    documented(summary, base, "get")
    documented(lead.get(reverse("quality:api-history", args=[campaign.pk])), base + "history/", "get")
    documented(lead.get(reverse("quality:api-policy", args=[campaign.pk])), base + "policy/", "get")

    pause = next(p for p in row["proposals"] if p["kind"] == "pause")
    applied = lead.post(reverse("quality:api-apply", args=[campaign.pk, pause["id"]]), {}, format="json")
    assert applied.status_code == 201
    documented(applied, base + "actions/{action_id}/apply/", "post")
    conflict = lead.post(reverse("quality:api-apply", args=[campaign.pk, pause["id"]]), {}, format="json")
    assert conflict.status_code == 409
    documented(conflict, base + "actions/{action_id}/apply/", "post")
    again = lead.post(
        reverse("quality:api-pause", args=[campaign.pk]), {"rater_id": spammer.pk, "reason": "spam"}, format="json"
    )
    assert again.status_code == 200 and again.json()["created"] is False
    documented(again, base + "pause/", "post")
    undone = lead.post(reverse("quality:api-undo", args=[campaign.pk, pause["id"]]), {}, format="json")
    assert undone.json()["state"] == "undone" and undone.json()["item_id"] is None
    documented(undone, base + "actions/{action_id}/undo/", "post")
    dismiss = lead.post(reverse("quality:api-dismiss", args=[campaign.pk, pause["id"]]), {}, format="json")
    assert dismiss.status_code == 409
    documented(dismiss, base + "actions/{action_id}/dismiss/", "post")
    documented(lead.get(reverse("quality:api-audit", args=[campaign.pk])), base + "audit/", "get")
