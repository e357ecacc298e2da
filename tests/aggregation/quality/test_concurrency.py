"""Two leads acting at once, and a rater paused while submitting (real connections, row locks)."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from aggregation.quality.models import QualityAction
from annotation.models import Annotation, Assignment, AssignmentState, Item, RaterStatus
from tests.conftest import api_client_for, valid_submission

from .factories import careful_and_spammer_crowd

pytestmark = pytest.mark.django_db(transaction=True)


def _race(*calls):
    """Runs the calls in threads released together; returns their results (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as exc:  # surfaced by the caller
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def crowd(make_campaign, make_user, make_item):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    campaign = make_campaign("race")
    careful = [make_user(f"careful{i}", "rater") for i in range(3)]
    spammer = make_user("spammer", "rater")
    campaign.raters.add(*careful, spammer)
    items = careful_and_spammer_crowd(campaign, careful, spammer, make_item, n_items=6)
    leads = [make_user("lead1", "lead"), make_user("lead2", "lead")]
    return campaign, careful, spammer, items, leads


def test_two_leads_exclude_the_same_rater_at_once(crowd):
    campaign, _, spammer, items, leads = crowd
    url = reverse("quality:api-exclude", args=[campaign.pk])
    responses = _race(
        *[
            lambda lead=lead: api_client_for(lead).post(url, {"rater_id": spammer.pk, "reason": "spam"}, format="json")
            for lead in leads
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert QualityAction.objects.filter(kind="exclude").count() == 1
    assert len(QualityAction.objects.get(kind="exclude").annotation_ids) == 6
    assert Annotation.objects.filter(rater=spammer, excluded_at__isnull=False).count() == 6
    # Counters exact: every item holds 2 counting answers and is back in the queue.
    assert set(Item.objects.values_list("n_submitted", flat=True)) == {2}
    assert not Item.objects.filter(completed_at__isnull=False).exists()


def test_two_leads_pause_the_same_rater_at_once(crowd):
    campaign, _, spammer, _, leads = crowd
    url = reverse("quality:api-pause", args=[campaign.pk])
    responses = _race(
        *[
            lambda lead=lead: api_client_for(lead).post(url, {"rater_id": spammer.pk, "reason": "spam"}, format="json")
            for lead in leads
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert QualityAction.objects.filter(kind="pause").count() == 1
    assert RaterStatus.objects.filter(rater=spammer, paused_at__isnull=False).count() == 1


def test_rater_paused_while_submitting_ends_one_way_or_the_other(crowd, make_item, make_user):
    campaign, _, _, _, leads = crowd
    worker = make_user("worker", "rater")
    campaign.raters.add(worker)
    make_item(campaign, prompt="a fresh item")
    client = api_client_for(worker)
    lease = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()["assignment"]
    submit, pause = _race(
        lambda: client.post(reverse("api:submit", args=[lease["id"]]), valid_submission(), format="json"),
        lambda: api_client_for(leads[0]).post(
            reverse("quality:api-pause", args=[campaign.pk]), {"rater_id": worker.pk, "reason": "x"}, format="json"
        ),
    )
    assert pause.status_code == 201
    state = Assignment.objects.get(pk=lease["id"]).state
    if submit.status_code == 201:  # the submit held the lease first: the answer stands
        assert state == AssignmentState.SUBMITTED and Annotation.objects.filter(assignment_id=lease["id"]).exists()
    else:  # the pause came first: a clear 409, the lease released, nothing stored
        assert submit.status_code == 409 and submit.json()["code"] == "paused"
        assert state == AssignmentState.EXPIRED and not Annotation.objects.filter(assignment_id=lease["id"]).exists()
    # Either way, the paused rater gets nothing new.
    again = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    assert again.status_code == 200 and again.json()["status"] == "paused" and again.json()["assignment"] is None
