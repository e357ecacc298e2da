"""Services without a worker: the activation rule, the admin's override, the run lock, the
schedule, failure handling, and the queue order function."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from aggregation.learning.acquisition import STRATEGIES, queue_order
from aggregation.learning.models import ItemPrediction, ModelVersion, Strategy
from aggregation.learning.services import evaluation, predictions, runs, schedule
from tests.conftest import api_client_for

from .conftest import tiny_learning


@pytest.fixture(autouse=True)
def _learning_dir(settings, tmp_path):
    settings.RICHHF_LEARNING_DIR = tmp_path / "learning"


def _annotated(synthetic_campaign, name: str, answers: int = 3 * 7):
    campaign, items = synthetic_campaign(name)
    call_command("simulate_raters", campaign=campaign.name, raters=3, seed=1, max_items=answers, no_progress=True)
    call_command("aggregate", campaign=campaign.name, workers=1)
    return campaign, items


def test_strategy_choices_match_the_acquisition_library():
    assert tuple(Strategy.values) == STRATEGIES


def test_queue_order_without_random_share_is_by_value_and_seeded_with_it():
    values = [0.1, 0.9, 0.5, 0.9, 0.0]
    assert queue_order(values, random_share=0.0, seed=3) == [(1, False), (3, False), (2, False), (0, False), (4, False)]
    mixed = queue_order(values * 20, random_share=0.5, seed=3)
    assert sorted(i for i, _ in mixed) == list(range(100))
    assert 20 < sum(explored for _, explored in mixed) < 80
    assert mixed == queue_order(values * 20, random_share=0.5, seed=3)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_worse_version_stays_inactive_until_an_admin_forces_it(
    synthetic_campaign, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    campaign, items = _annotated(synthetic_campaign, "al-rule")
    tiny_learning(campaign)
    first = runs.retrain_request(campaign=campaign)
    assert first.started
    v1 = runs.retrain_run(version_id=first.version.pk)
    v1.refresh_from_db()
    assert v1.status == "done" and v1.is_active and v1.activated_by == "rule" and v1.compared_with is None
    assert ItemPrediction.objects.filter(version=v1).count() == 5

    # The active version, re-evaluated on the new run's dev data, scores higher than the new one.
    monkeypatch.setattr(evaluation, "version_evaluate_on", lambda *, version, data: 99.0)
    v2 = runs.retrain_run(version_id=runs.retrain_request(campaign=campaign).version.pk)
    v2.refresh_from_db()
    v1.refresh_from_db()
    assert v2.status == "done" and not v2.is_active
    assert v2.compared_with == {"version": v1.pk, "combined": 99.0}
    assert v1.is_active
    assert ItemPrediction.objects.filter(version=v2).count() == 0  # the queue still follows v1

    lead, admin = make_user("lead", "lead"), make_user("admin", "admin")
    url = f"/api/learning/versions/{v2.pk}/activate/"
    assert api_client_for(lead).post(url).status_code == 403
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client_for(admin).post(url)
    assert response.status_code == 200, response.content
    assert len(callbacks) == 1  # the predictions are recomputed by a task after commit
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v2.is_active and v2.activated_by == "admin" and not v1.is_active
    predictions.predictions_recompute(version_id=v2.pk)
    assert set(ItemPrediction.objects.filter(item__campaign=campaign).values_list("version", flat=True)) == {v2.pk}


@pytest.mark.django_db
def test_database_allows_one_run_in_flight_and_one_active_version(make_campaign):
    campaign = make_campaign("al-db")
    ModelVersion.objects.create(campaign=campaign)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(campaign=campaign, status="running")
    ModelVersion.objects.create(campaign=campaign, status="done", is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(campaign=campaign, status="done", is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(campaign=campaign, status="failed", is_active=True)


@pytest.mark.django_db
def test_retrain_request_is_locked_per_campaign(make_campaign, django_capture_on_commit_callbacks):
    a, b = make_campaign("al-a"), make_campaign("al-b")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = runs.retrain_request(campaign=a)
        again = runs.retrain_request(campaign=a)
        other = runs.retrain_request(campaign=b)
    assert first.started and not again.started and other.started
    assert again.version.pk == first.version.pk
    assert len(callbacks) == 2
    assert ModelVersion.objects.filter(campaign=a).count() == 1


@pytest.mark.django_db
def test_a_run_without_dev_labels_fails_and_frees_the_lock(synthetic_campaign, make_item):
    campaign, items = synthetic_campaign("al-nodev", n_dev=0)
    call_command("simulate_raters", campaign=campaign.name, raters=3, seed=1, max_items=9, no_progress=True)
    call_command("aggregate", campaign=campaign.name, workers=1)
    tiny_learning(campaign)
    version = runs.retrain_run(version_id=runs.retrain_request(campaign=campaign).version.pk)
    version.refresh_from_db()
    assert version.status == "failed" and "dev split" in version.error
    assert runs.retrain_request(campaign=campaign).started


@pytest.mark.django_db
def test_claim_skips_a_live_run_and_takes_over_a_silent_one(make_campaign):
    campaign = make_campaign("al-claim")
    now = timezone.now()
    version = ModelVersion.objects.create(campaign=campaign, status="running", heartbeat_at=now, attempts=1)
    assert runs.retrain_claim(version_id=version.pk) is None
    ModelVersion.objects.filter(pk=version.pk).update(heartbeat_at=now - timedelta(minutes=10))
    claimed = runs.retrain_claim(version_id=version.pk)
    assert claimed is not None and claimed.attempts == 2
    ModelVersion.objects.filter(pk=version.pk).update(status="done")
    assert runs.retrain_claim(version_id=version.pk) is None


@pytest.mark.django_db
def test_schedule_and_new_aggregate_thresholds(synthetic_campaign, make_campaign, django_capture_on_commit_callbacks):
    campaign, _ = _annotated(synthetic_campaign, "al-due", answers=3 * 4)
    idle = make_campaign("al-off")
    tiny_learning(idle)  # disabled: never due
    tiny_learning(campaign, enabled=True, min_new_aggregates=5)
    assert schedule.campaigns_due() == []  # 4 aggregates < 5
    tiny_learning(campaign, min_new_aggregates=4)
    assert schedule.campaigns_due() == [(campaign, "new aggregates")]
    with django_capture_on_commit_callbacks(execute=False):
        assert schedule.learning_tick() == {"started": 1, "resumed": 0}
        assert schedule.learning_tick()["started"] == 0  # the first run is still queued
    version = ModelVersion.objects.get(campaign=campaign)
    ModelVersion.objects.filter(pk=version.pk).update(status="done", aggregates_seen=4)
    assert schedule.campaigns_due() == []  # nothing new since that run
    tiny_learning(campaign, min_new_aggregates=None, schedule_hours=1)
    assert schedule.campaigns_due() == []
    ModelVersion.objects.filter(pk=version.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert schedule.campaigns_due() == [(campaign, "schedule")]


@pytest.mark.django_db
def test_tick_re_enqueues_silent_and_lost_runs(make_campaign, monkeypatch):
    enqueued = []
    monkeypatch.setattr(runs, "retrain_enqueue", lambda *, version_id: enqueued.append(version_id))
    now = timezone.now()
    live = ModelVersion.objects.create(campaign=make_campaign("al-live"), status="running", heartbeat_at=now)
    silent = ModelVersion.objects.create(
        campaign=make_campaign("al-silent"), status="running", heartbeat_at=now - timedelta(minutes=30)
    )
    lost = ModelVersion.objects.create(campaign=make_campaign("al-lost"))
    ModelVersion.objects.filter(pk=lost.pk).update(created_at=now - timedelta(hours=1))
    fresh = ModelVersion.objects.create(campaign=make_campaign("al-fresh"))
    assert schedule.learning_tick(now=now) == {"started": 0, "resumed": 2}
    assert sorted(enqueued) == sorted([silent.pk, lost.pk])
    assert live.pk not in enqueued and fresh.pk not in enqueued
