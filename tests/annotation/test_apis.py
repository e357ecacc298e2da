"""The rater API over HTTP semantics: status codes, field-named errors, permissions."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, AssignmentState
from tests.conftest import api_client_for, valid_submission

pytestmark = pytest.mark.django_db


def lease(client, campaign, **body):
    response = client.post(reverse("api:next-item", args=[campaign.pk]), body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def submit(client, assignment_id, body):
    return client.post(reverse("api:submit", args=[assignment_id]), body, format="json")


def test_rater_flow_next_submit_history(raters, make_item):
    campaign, (r1, _, _) = raters
    item = make_item(campaign, prompt="a yellow cat")
    client = api_client_for(r1)
    body = lease(client, campaign)
    assert body["status"] == "leased"
    leased = body["assignment"]
    assert leased["item"]["words"] == ["a", "yellow", "cat"]
    assert leased["item"]["width"] == item.width and leased["item"]["height"] == item.height
    image = client.get(leased["item"]["image_url"])
    assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\x89PNG")

    response = submit(client, leased["id"], valid_submission())
    assert response.status_code == 201, response.content
    stored = Annotation.objects.get(assignment_id=leased["id"])
    assert stored.implausible_points == [[0.25, 0.5]] and stored.misaligned_words == [1]
    assert stored.scores() == {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}

    repeat = submit(client, leased["id"], valid_submission())
    assert repeat.status_code == 200 and repeat.json()["created"] is False
    different = submit(client, leased["id"], valid_submission(misaligned_words=[0]))
    assert different.status_code == 409 and "different answer" in different.json()["detail"]

    history = client.get(reverse("api:my-assignments")).json()
    assert history["count"] == 1
    assert history["results"][0]["annotation"]["misaligned_words"] == [1]
    done = lease(client, campaign)
    assert done["assignment"] is None and done["status"] == "done" and "Nothing to do" in done["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (valid_submission(implausible_points=[[1.5, 0.2]]), "implausible_points"),
        (valid_submission(misaligned_points=[[0.2, -0.01]]), "misaligned_points"),
        (valid_submission(misaligned_points=[[0.2]]), "misaligned_points"),
        (valid_submission(implausible_points=[[0.1, 0.1]] * 201), "implausible_points"),
        (valid_submission(misaligned_words=[1, 1]), "misaligned_words"),
        (valid_submission(misaligned_words=[3]), "misaligned_words"),
        (valid_submission(misaligned_words=[-1]), "misaligned_words"),
        (valid_submission(scores={"plausibility": 4, "alignment": 3, "aesthetics": 5}), "scores"),
        (valid_submission(scores={"plausibility": 0, "alignment": 3, "aesthetics": 5, "overall": 4}), "scores"),
        (valid_submission(scores={"plausibility": "five", "alignment": 3, "aesthetics": 5, "overall": 4}), "scores"),
        (valid_submission(time_spent_ms=-5), "time_spent_ms"),
        ({**valid_submission(), "rater": 7}, "rater"),
        ({k: v for k, v in valid_submission().items() if k != "misaligned_points"}, "misaligned_points"),
    ],
)
def test_bad_submissions_name_the_field_and_store_nothing(raters, make_item, body, field):
    campaign, (r1, _, _) = raters
    make_item(campaign, prompt="a yellow cat")
    client = api_client_for(r1)
    leased = lease(client, campaign)["assignment"]
    response = submit(client, leased["id"], body)
    assert response.status_code == 400, response.content
    payload = response.json()
    # Nested fields are named by dotted path ("scores.overall", "implausible_points.0.0").
    paths = [path for path in payload["errors"] if path == field or path.startswith(f"{field}.")]
    assert paths and all(payload["errors"][path] for path in paths), payload
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(pk=leased["id"]).state == AssignmentState.LEASED


def test_non_object_body_is_a_400(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    client = api_client_for(r1)
    leased = lease(client, campaign)["assignment"]
    response = client.post(reverse("api:submit", args=[leased["id"]]), [1, 2], format="json")
    assert response.status_code == 400
    garbage = client.post(reverse("api:submit", args=[leased["id"]]), "{not json", content_type="application/json")
    assert garbage.status_code == 400 and "JSON" in garbage.json()["detail"]


def test_rater_cannot_touch_another_raters_assignment(raters, make_item):
    campaign, (r1, r2, _) = raters
    make_item(campaign)
    a1 = lease(api_client_for(r1), campaign)["assignment"]
    c2 = api_client_for(r2)
    assert submit(c2, a1["id"], valid_submission()).status_code == 404
    assert c2.post(reverse("api:heartbeat", args=[a1["id"]])).status_code == 404
    assert c2.post(reverse("api:skip", args=[a1["id"]]), {"reason": "x"}, format="json").status_code == 404
    assert c2.get(reverse("api:my-assignment", args=[a1["id"]])).status_code == 404


def test_rater_never_sees_other_raters_answers(raters, make_item):
    campaign, (r1, r2, _) = raters
    make_item(campaign, prompt="a yellow cat")
    c1, c2 = api_client_for(r1), api_client_for(r2)
    a1 = lease(c1, campaign)["assignment"]
    assert submit(c1, a1["id"], valid_submission(misaligned_words=[2])).status_code == 201
    a2 = lease(c2, campaign)["assignment"]
    assert a2["item"]["id"] == a1["item"]["id"]
    # Nothing r2 can read carries r1's answer: the lease, the history, the progress.
    blobs = [
        c2.get(reverse("api:my-assignments")).content,
        c2.get(reverse("api:campaign-progress", args=[campaign.pk])).content,
        c2.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").content,
    ]
    for blob in blobs:
        assert b'misaligned_words": [2]' not in blob and b'plausibility": 4' not in blob
    progress = c2.get(reverse("api:campaign-progress", args=[campaign.pk])).json()
    assert set(progress) == {"campaign", "done_today", "done_total", "remaining_for_me", "campaign_items_remaining"}


def test_item_image_only_for_leaseholders_and_leads(raters, make_item, make_user):
    campaign, (r1, r2, _) = raters
    item = make_item(campaign)
    url = reverse("api:item-image", args=[item.pk])
    assert api_client_for(r1).get(url).status_code == 404
    lease(api_client_for(r1), campaign)
    assert api_client_for(r1).get(url).status_code == 200
    assert api_client_for(r2).get(url).status_code == 404
    assert api_client_for(make_user("boss", "lead")).get(url).status_code == 200
    assert APIClient().get(url).status_code in (401, 403)


def test_uninvited_rater_cannot_lease_from_a_campaign(raters, make_item, make_user):
    campaign, _ = raters
    make_item(campaign)
    outsider = api_client_for(make_user("outsider", "rater"))
    response = outsider.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    assert response.status_code == 404
    assert outsider.get(reverse("api:campaign-list")).json() == []


def test_leads_and_admins_cannot_lease_and_users_without_role_get_403(raters, make_user):
    campaign, _ = raters
    for user in (make_user("boss", "lead"), make_user("nobody")):
        response = api_client_for(user).post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
        assert response.status_code == 403 and "raters" in response.json()["detail"]


def test_lead_sees_campaign_totals(raters, make_item, make_user):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    make_item(campaign)
    lease(api_client_for(r1), campaign)
    progress = (
        api_client_for(make_user("boss", "lead")).get(reverse("api:campaign-progress", args=[campaign.pk])).json()
    )
    assert progress["items_total"] == 2 and progress["items_in_progress"] == 1 and progress["items_untouched"] == 1
    assert progress["active_leases"] == 1


def test_skip_via_api_requires_reason(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    client = api_client_for(r1)
    a = lease(client, campaign)["assignment"]
    missing = client.post(reverse("api:skip", args=[a["id"]]), {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    ok = client.post(reverse("api:skip", args=[a["id"]]), {"reason": "offensive image"}, format="json")
    assert ok.status_code == 200 and ok.json()["state"] == "skipped"
    assert submit(client, a["id"], valid_submission()).status_code == 409


def test_lookahead_validation_names_the_field(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    response = api_client_for(r1).post(reverse("api:next-item", args=[campaign.pk]), {"lookahead": 7}, format="json")
    assert response.status_code == 400 and "lookahead" in response.json()["errors"]


def test_token_auth_and_session_csrf(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    anon = APIClient()
    token = anon.post(reverse("api-token"), {"username": "r1", "password": "pw-for-tests"}, format="json").json()[
        "token"
    ]
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert lease(token_client, campaign)["status"] == "leased"

    session = APIClient(enforce_csrf_checks=True)
    assert session.login(username="r1", password="pw-for-tests")
    response = session.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_openapi_schema_and_docs_page(make_user):
    client = api_client_for(make_user("someone", "rater"))
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/assignments/{assignment_id}/submit/" in schema.json()["paths"]
    assert client.get(reverse("api-docs")).status_code == 200


def test_me_names_the_callers_roles(make_user):
    body = api_client_for(make_user("boss", "lead", "rater")).get(reverse("api:me")).json()
    assert body == {"username": "boss", "roles": ["lead", "rater"]}
    assert APIClient().get(reverse("api:me")).status_code in (401, 403)
