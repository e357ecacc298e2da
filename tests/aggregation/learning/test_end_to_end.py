"""The loop with a real training worker: simulated raters annotate part of a synthetic
campaign through the API, aggregates are computed (synchronously: the default queue's
workers are covered by tests/aggregation), the training worker retrains, registers a version and re-orders
the queue; a fresh rater is then served items in acquisition order."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.conftest import api_client_for, wait_for

from .conftest import tiny_learning

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_retraining_on_a_real_worker_orders_the_queue(training_worker, synthetic_campaign, make_user):
    from aggregation.learning.models import ItemPrediction, ModelVersion
    from aggregation.models import ItemAggregate
    from annotation.services import assignment_next, assignment_skip

    settings.MEDIA_ROOT = training_worker.media_root
    campaign, items = synthetic_campaign("al-e2e")
    # 4 dev items (priority 10) and 3 train items get their three answers; 5 stay untouched.
    call_command("simulate_raters", campaign=campaign.name, raters=3, seed=1, max_items=3 * 7, no_progress=True)
    call_command("aggregate", campaign=campaign.name)
    assert ItemAggregate.objects.filter(item__campaign=campaign).count() == 7
    tiny_learning(campaign)

    lead = make_user("lead", "lead")
    client = api_client_for(lead)
    first = client.post(f"/api/learning/campaigns/{campaign.pk}/retrain/")
    assert first.status_code == 202, first.content
    # The lock: a second request while the first is queued or running starts nothing.
    second = client.post(f"/api/learning/campaigns/{campaign.pk}/retrain/")
    assert second.status_code == 200
    assert second.json()["started"] is False
    assert second.json()["version"]["id"] == first.json()["version"]["id"]

    version_id = first.json()["version"]["id"]

    def finished():
        v = ModelVersion.objects.get(pk=version_id)
        return v if v.status in ("done", "failed") and v.progress == 1.0 or v.status == "failed" else None

    version = wait_for(
        finished, timeout=420, interval=1.0, what=f"version {version_id} to finish; see {training_worker.log}"
    )
    assert version.status == "done", version.error
    assert ModelVersion.objects.filter(campaign=campaign).count() == 1
    assert version.is_active and version.activated_by == "rule"
    assert version.data_counts["train"] == 3 and version.data_counts["dev"] == 4
    assert set(version.dev_metrics["heatmaps"]) == {"implausibility", "misalignment"}
    assert version.combined_metric == pytest.approx(version.dev_metrics["combined"])
    assert version.duration_s > 0
    print(f"retrain duration {version.duration_s:.1f} s, dev combined {version.combined_metric:.4f}")
    assert version.config["checkpoint_files"]

    untouched = [i for i in items if i.split == "train"][3:]
    untouched_ids = {i.pk for i in items if i.split == "train"} - set(
        ItemAggregate.objects.filter(item__campaign=campaign).values_list("item_id", flat=True)
    )
    assert len(untouched_ids) == len(untouched) == 5
    predictions = {p.item_id: p for p in ItemPrediction.objects.filter(version=version)}
    assert set(predictions) == untouched_ids
    for p in predictions.values():
        assert set(p.scores) == {"plausibility", "alignment", "aesthetics", "overall"}
        assert p.implausibility_map.name and p.misalignment_map.name
        # low_plausibility: the acquisition value is 1 - the predicted plausibility.
        assert p.acquisition == pytest.approx(1 - p.scores["plausibility"])

    # A fresh rater is served the untouched items in decreasing acquisition order.
    expected = [pk for pk, _ in sorted(predictions.items(), key=lambda kv: (-kv[1].acquisition, kv[0]))]
    fresh = make_user("fresh", "rater")
    campaign.raters.add(fresh)
    served = []
    while True:
        result = assignment_next(rater=fresh, campaign=campaign)
        if result.assignment is None:
            break
        served.append(result.assignment.item_id)
        assignment_skip(assignment_id=result.assignment.pk, rater=fresh, reason="order check")
    assert served == expected

    # Raters never see the registry.
    rater = make_user("plain-rater", "rater")
    assert api_client_for(rater).get(f"/api/learning/campaigns/{campaign.pk}/versions/").status_code == 403
    listed = client.get(f"/api/learning/campaigns/{campaign.pk}/versions/")
    assert listed.status_code == 200 and listed.json()[0]["id"] == version.pk
