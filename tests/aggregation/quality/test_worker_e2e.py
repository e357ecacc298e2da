"""Exclusion end to end on a real Celery worker: an item completes with three answers, a lead
excludes one, the item goes back to the queue, a replacement rater answers, and the aggregate
is recomputed without the excluded answer; undo brings it back."""

import pytest
from django.urls import reverse

from aggregation.models import ItemAggregate
from annotation.models import Annotation, Item
from tests.conftest import api_client_for, valid_submission, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _scores(p, a, ae, o):
    return {"plausibility": p, "alignment": a, "aesthetics": ae, "overall": o}


@pytest.mark.django_db(transaction=True)
def test_exclude_requeue_replace_and_undo_on_a_real_worker(celery_worker_proc, raters, make_item, make_user, settings):
    settings.MEDIA_ROOT = celery_worker_proc.media_root
    campaign, (r1, r2, r3) = raters
    item = make_item(campaign, prompt="a yellow cat on a red sofa")
    bodies = {
        r1: valid_submission(scores=_scores(5, 5, 5, 5), misaligned_words=[1]),
        r2: valid_submission(scores=_scores(4, 4, 4, 4), misaligned_words=[1]),
        r3: valid_submission(scores=_scores(1, 1, 1, 1), misaligned_words=[0, 2, 3]),  # the outlier
    }
    for user, body in bodies.items():
        client = api_client_for(user)
        lease = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()["assignment"]
        assert client.post(reverse("api:submit", args=[lease["id"]]), body, format="json").status_code == 201

    def aggregate_with(n, mean):
        row = ItemAggregate.objects.filter(item=item).first()
        return row if row and row.n_annotations == n and abs(row.overall_mean - mean) < 1e-9 else None

    agg = wait_for(lambda: aggregate_with(3, 10 / 3), timeout=60, what="the 3-answer aggregate")
    assert agg.word_votes[1] == 2 and agg.misaligned_words == [1]

    lead = api_client_for(make_user("lead", "lead"))
    outlier = Annotation.objects.get(item=item, rater=r3)
    excluded = lead.post(
        reverse("quality:api-exclude", args=[campaign.pk]),
        {"annotation_ids": [outlier.pk], "reason": "scores opposite to everyone else"},
        format="json",
    )
    assert excluded.status_code == 201
    action_id = excluded.json()["action"]["id"]
    item.refresh_from_db()
    assert item.completed_at is None and item.n_submitted == 2  # back in the queue

    # The worker recomputes from the two answers that remain: means (5+4)/2.
    agg = wait_for(lambda: aggregate_with(2, 4.5), timeout=60, what="the aggregate without the excluded answer")
    assert outlier.pk not in agg.annotation_ids and agg.plausibility_mean == 4.5

    # A replacement rater gets the item and answers; the item completes and is re-aggregated.
    r4 = make_user("r4", "rater")
    campaign.raters.add(r4)
    client = api_client_for(r4)
    lease = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()["assignment"]
    assert lease["item"]["id"] == item.pk
    body = valid_submission(scores=_scores(3, 3, 3, 3), misaligned_words=[1])
    assert client.post(reverse("api:submit", args=[lease["id"]]), body, format="json").status_code == 201
    agg = wait_for(lambda: aggregate_with(3, 4.0), timeout=60, what="the aggregate with the replacement")
    assert outlier.pk not in agg.annotation_ids
    assert agg.overall_mean == pytest.approx((5 + 4 + 3) / 3)
    assert agg.misaligned_words == [1] and agg.word_votes[:4] == [0, 3, 0, 0]
    assert Item.objects.get(pk=item.pk).completed_at is not None

    # Undo: the excluded answer counts again, next to the replacement (4 answers).
    undo = lead.post(reverse("quality:api-undo", args=[campaign.pk, action_id]), {}, format="json")
    assert undo.status_code == 200 and undo.json()["state"] == "undone"
    agg = wait_for(lambda: aggregate_with(4, 13 / 4), timeout=60, what="the aggregate after undo")
    assert outlier.pk in agg.annotation_ids and agg.word_votes[:4] == [1, 3, 1, 1]
