"""APIs, the leads page, suggestion maps and the two downstream exports (no training: the
version and predictions are written directly)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image

from aggregation.learning.models import ItemPrediction, ModelVersion
from annotation.services import assignment_next
from modeling.heatmaps import encode_heatmap_png
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def _predict(version, item, *, plausibility: float, rank: int, blob: bool = True):
    heat = np.zeros((64, 64), np.float32)
    if blob:
        heat[20:30, 20:30] = 0.9
    row = ItemPrediction(
        item=item,
        version=version,
        strategy="low_plausibility",
        acquisition=1 - plausibility,
        queue_rank=rank,
        scores={"plausibility": plausibility, "alignment": 0.8, "aesthetics": 0.5, "overall": 0.6},
        misaligned_indices=[1],
        tagged_prompt="a yellow_0 cat",
    )
    row.implausibility_map.save(f"i{item.pk}.png", ContentFile(encode_heatmap_png(heat)), save=False)
    row.misalignment_map.save(f"m{item.pk}.png", ContentFile(encode_heatmap_png(heat * 0)), save=False)
    row.save()
    return row


@pytest.fixture
def predicted(raters, make_item):
    campaign, users = raters
    items = [make_item(campaign, prompt="a yellow cat", width=64, height=48) for _ in range(3)]
    version = ModelVersion.objects.create(
        campaign=campaign,
        status="done",
        is_active=True,
        combined_metric=0.3,
        dev_metrics={"combined": 0.3},
        activated_by="rule",
    )
    rows = [
        _predict(version, item, plausibility=p, rank=r)
        for item, p, r in zip(items, (0.9, 0.2, 0.5), (2, 0, 1), strict=True)
    ]
    return campaign, users, items, version, rows


def test_versions_api_and_page_are_for_leads_only(predicted, make_user):
    campaign, users, _, version, _ = predicted
    lead = make_user("lead", "lead")
    for path in (
        f"/api/learning/campaigns/{campaign.pk}/versions/",
        f"/api/learning/campaigns/{campaign.pk}/queue/",
        f"/api/learning/campaigns/{campaign.pk}/settings/",
    ):
        assert api_client_for(users[0]).get(path).status_code == 403
        assert api_client_for(lead).get(path).status_code == 200
    assert api_client_for(users[0]).post(f"/api/learning/campaigns/{campaign.pk}/retrain/").status_code == 403
    queue = api_client_for(lead).get(f"/api/learning/campaigns/{campaign.pk}/queue/").json()
    assert queue["active_version"] == version.pk and str(version.pk) in queue["basis"]
    assert [row["rank"] for row in queue["head"]] == [0, 1, 2]

    client = api_client_for(lead)
    client.force_login(lead)
    page = client.get(f"/learning/campaigns/{campaign.pk}/")
    assert page.status_code == 200
    assert f"v{version.pk}" in page.content.decode() and "queue-basis" in page.content.decode()
    rater_client = api_client_for(users[0])
    rater_client.force_login(users[0])
    assert rater_client.get(f"/learning/campaigns/{campaign.pk}/").status_code == 403


def test_settings_api_validates_and_updates(predicted, make_user):
    campaign, *_ = predicted
    # Leads read the settings, admins change them (tests/aggregation/learning/test_page_permissions.py).
    client = api_client_for(make_user("admin", "admin"))
    url = f"/api/learning/campaigns/{campaign.pk}/settings/"
    assert client.get(url).json()["enabled"] is False  # off by default
    ok = client.put(url, {"enabled": True, "strategy": "head_disagreement", "min_new_aggregates": 50}, format="json")
    assert ok.status_code == 200 and ok.json()["strategy"] == "head_disagreement"
    assert client.put(url, {"strategy": "psychic"}, format="json").status_code == 400
    assert client.put(url, {"random_share": 1.5}, format="json").status_code == 400


def test_suggestion_maps_only_for_the_rater_holding_the_lease(predicted):
    campaign, users, items, _, _ = predicted
    holder, other = users[0], users[1]
    lease = assignment_next(rater=holder, campaign=campaign).assignment
    url = f"/api/learning/assignments/{lease.pk}/suggestion/implausibility.png"
    assert api_client_for(holder).get(url).status_code == 404  # suggestions are off by default
    campaign.show_suggestions = True
    campaign.save()
    response = api_client_for(holder).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (64, 64)
    assert api_client_for(other).get(url).status_code == 404
    assert api_client_for(holder).get(url.replace("implausibility", "secrets")).status_code == 404


def test_inpainting_masks_and_finetune_selection(predicted, tmp_path):
    campaign, _, items, _, _ = predicted
    call_command("export_inpainting_masks", campaign=campaign.name, out=tmp_path / "masks", items=[items[0].pk])
    masks = list((tmp_path / "masks").iterdir())
    assert [m.name for m in masks] == [f"item{items[0].pk}-mask.png"]
    mask = np.asarray(Image.open(masks[0]))
    assert mask.shape == (48, 64) and mask.max() == 255 and mask.min() == 0  # the image's size, blob dilated

    out = tmp_path / "select.jsonl"
    call_command("export_finetune_selection", campaign=campaign.name, out=out, min_plausibility=0.4)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["item_id"] for r in rows] == [items[0].pk]  # one per prompt: the best passing one


def test_next_item_carries_a_suggestion_only_when_the_campaign_shows_them(predicted):
    campaign, users, items, version, rows = predicted
    client = api_client_for(users[0])
    body = client.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()
    assert body["assignment"]["suggestion"] is None
    campaign.show_suggestions = True
    campaign.save()
    body = client.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()
    suggestion = body["assignment"]["suggestion"]
    assert suggestion["version"] == version.pk
    assert suggestion["misaligned_words"] == [1]
    assert client.get(suggestion["implausibility_url"]).status_code == 200
    assert client.get(suggestion["misalignment_url"]).status_code == 200
