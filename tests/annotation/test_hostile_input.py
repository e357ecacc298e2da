"""Submit and skip take JSON as typed: no coercion of strings or booleans, no unknown keys at
any level, and each refusal names the field by its dotted path. Nothing is stored on a 400."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, AssignmentState, Campaign, Item
from annotation.services import ItemInput, ItemRejected, item_create
from tests.conftest import api_client_for, png_bytes, valid_submission

pytestmark = pytest.mark.django_db

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


def submit(client: APIClient, assignment_id: int, body: Any) -> Any:
    return client.post(reverse("api:submit", args=[assignment_id]), body, format="json")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        # coordinates are JSON numbers
        (valid_submission(implausible_points=[["0.5", 0.5]]), "implausible_points.0.0"),
        (valid_submission(misaligned_points=[[0.5, True]]), "misaligned_points.0.1"),
        (valid_submission(implausible_points=[[False, 0.5]]), "implausible_points.0.0"),
        (valid_submission(implausible_points=[[None, 0.5]]), "implausible_points.0.0"),
        (valid_submission(implausible_points=[{"x": 0.5, "y": 0.5}]), "implausible_points.0"),
        # scores are JSON integers
        (valid_submission(scores={**SCORES, "overall": "3"}), "scores.overall"),
        (valid_submission(scores={**SCORES, "overall": 3.0}), "scores.overall"),
        (valid_submission(scores={**SCORES, "aesthetics": True}), "scores.aesthetics"),
        (valid_submission(scores=[4, 3, 5, 4]), "scores"),
        # the other fields too
        (valid_submission(misaligned_words=["1"]), "misaligned_words.0"),
        (valid_submission(misaligned_words=[True]), "misaligned_words.0"),
        (valid_submission(time_spent_ms="12000"), "time_spent_ms"),
        (valid_submission(time_spent_ms=12000.5), "time_spent_ms"),
        ({**valid_submission(), "suggestion_shown": "yes"}, "suggestion_shown"),
        ({**valid_submission(), "suggestion_shown": 1}, "suggestion_shown"),
        # unknown keys, at any level
        (valid_submission(scores={**SCORES, "sharpness": 3}), "scores.sharpness"),
        ({**valid_submission(), "rater": 7}, "rater"),
    ],
)
def test_submit_refuses_coercion_and_unknown_keys_naming_the_path(
    leased: tuple[APIClient, int], body: dict[str, Any], path: str
) -> None:
    client, assignment_id = leased
    response = submit(client, assignment_id, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert path in payload["errors"], payload
    if path in ("scores.sharpness", "rater"):
        assert payload["errors"][path] == ["unknown field"]
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(pk=assignment_id).state == AssignmentState.LEASED


def test_every_unknown_key_is_named_with_the_other_errors(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    body = {**valid_submission(scores={**SCORES, "overall": 9, "x": 1, "y": 2}), "extra": True}
    errors = submit(client, assignment_id, body).json()["errors"]
    assert set(errors) == {"scores.overall", "scores.x", "scores.y", "extra"}


def test_integral_coordinates_and_the_optional_fields_stay_valid(leased: tuple[APIClient, int]) -> None:
    client, assignment_id = leased
    body = {
        **valid_submission(implausible_points=[[0, 1], [0.5, 0.25]], misaligned_points=[[1, 0]]),
        "suggestion_shown": True,
    }
    response = submit(client, assignment_id, body)
    assert response.status_code == 201, response.content
    stored = Annotation.objects.get(assignment_id=assignment_id)
    assert stored.implausible_points == [[0.0, 1.0], [0.5, 0.25]] and stored.suggestion_shown is True
    assert all(isinstance(v, float) for point in stored.implausible_points for v in point)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": 5}, "reason"),
        ({"reason": ["blurry"]}, "reason"),
        ({"reason": "blurry", "note": "x"}, "note"),
        ({}, "reason"),
    ],
)
def test_skip_reason_must_be_a_non_blank_string(leased: tuple[APIClient, int], body: dict[str, Any], path: str) -> None:
    client, assignment_id = leased
    response = client.post(reverse("api:skip", args=[assignment_id]), body, format="json")
    assert response.status_code == 400, response.content
    assert path in response.json()["errors"]
    assert Assignment.objects.get(pk=assignment_id).state == AssignmentState.LEASED


def test_schema_says_the_skip_reason_cannot_be_blank_and_unknown_keys_are_refused(admin_user: Any) -> None:
    """The documented request agrees with the server: an empty reason is refused."""
    client = APIClient()
    client.force_authenticate(admin_user)
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    skip = next(
        body
        for name, body in schema["components"]["schemas"].items()
        if name.startswith("Skip") and "reason" in body.get("properties", {})
    )
    assert skip["properties"]["reason"]["minLength"] == 1
    assert skip["properties"]["reason"]["pattern"] == r"\S"  # not all whitespace either
    assert "reason" in skip["required"]
    # Unknown keys are refused, and documented as such, at every level of a submit.
    assert skip["additionalProperties"] is False
    scores = next(body for name, body in schema["components"]["schemas"].items() if name.startswith("ScoresInput"))
    assert scores["additionalProperties"] is False


def test_next_item_lookahead_is_a_json_integer(raters: Any, make_item: Callable[..., Any]) -> None:
    campaign, (r1, _, _) = raters
    make_item(campaign)
    client = api_client_for(r1)
    url = reverse("api:next-item", args=[campaign.pk])
    assert client.post(url, {"lookahead": "1"}, format="json").status_code == 400
    assert client.post(url, {"lookahead": 1, "peek": 2}, format="json").json()["errors"] == {"peek": ["unknown field"]}
    assert client.post(url, {"lookahead": 1}, format="json").status_code == 200


@pytest.mark.parametrize("priority", [math.nan, math.inf, -math.inf])
def test_item_priority_must_be_finite(make_campaign: Callable[..., Any], priority: float) -> None:
    campaign = make_campaign()
    with pytest.raises(ItemRejected) as caught:
        item_create(
            campaign=campaign,
            data=ItemInput(image_bytes=png_bytes(), filename="a.png", prompt="a cat", priority=priority),
        )
    assert caught.value.field == "priority"
    assert not Item.objects.exists()


# --------------------------------------------------------------------------- import_items


def image_folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "items"
    folder.mkdir()
    for i in range(count):
        (folder / f"{i}.png").write_bytes(png_bytes(seed=i))
    return folder


def test_import_items_csv_from_excel_imports_and_non_finite_priorities_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = image_folder(tmp_path, 5)
    rows = [("0.png", "1.5"), ("1.png", "nan"), ("2.png", "inf"), ("3.png", "-Infinity"), ("4.png", "")]
    text = "image,prompt,priority\r\n" + "".join(f"{name},a red cup,{p}\r\n" for name, p in rows)
    manifest = folder / "items.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + text.encode())  # UTF-8 with a byte-order mark, as Excel saves it
    with pytest.raises(CommandError, match="2 imported, 0 already present, 3 with errors"):
        call_command("import_items", str(folder), "--campaign", "c", "--no-progress")
    err = capsys.readouterr().err
    for line in (3, 4, 5):
        assert f"{manifest}:{line}: priority must be a finite number" in err, err
    assert sorted(Item.objects.values_list("priority", flat=True)) == [0.0, 1.5]


def test_import_items_jsonl_priorities_are_json_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = image_folder(tmp_path, 5)
    manifest = folder / "items.jsonl"
    lines = [
        '{"image": "0.png", "prompt": "a cup", "priority": 2}',
        '{"image": "1.png", "prompt": "a cup", "priority": NaN}',
        '{"image": "2.png", "prompt": "a cup", "priority": 1e999}',
        '{"image": "3.png", "prompt": "a cup", "priority": true}',
        '{"image": "4.png", "prompt": "a cup", "priority": [1]}',
    ]
    manifest.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    with pytest.raises(CommandError, match="1 imported, 0 already present, 4 with errors"):
        call_command("import_items", str(folder), "--campaign", "c", "--no-progress")
    err = capsys.readouterr().err
    for line in (2, 3, 4, 5):
        assert f"{manifest}:{line}: priority must be a finite number" in err, err
    assert list(Item.objects.values_list("priority", flat=True)) == [2.0]


def test_import_items_latin1_manifest_is_a_cli_error_naming_the_file(tmp_path: Path) -> None:
    folder = image_folder(tmp_path, 1)
    manifest = folder / "items.csv"
    manifest.write_bytes("image,prompt\n0.png,caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(CommandError, match=rf"^{manifest}:2: not UTF-8"):
        call_command("import_items", str(folder), "--campaign", "c", "--no-progress")
    assert not Item.objects.exists() and not Campaign.objects.filter(name="c").exists()


@pytest.mark.django_db
def test_an_image_missing_from_storage_is_a_404_json_not_a_500(make_item, make_user):
    item = make_item(Campaign.objects.create(name="images"))
    item.image.storage.delete(item.image.name)
    response = api_client_for(make_user("lead-img", "lead")).get(reverse("api:item-image", args=[item.pk]))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "missing" in response.json()["detail"]
