"""Opt-in measurement (RICHHF_DASHBOARD_BENCH=1): recompute time for an 18,000-item campaign
with 3 raters per item, and the page load time from its cache. Rows are bulk-created (no images,
no lease dance); the statistics only read Annotation and Item rows."""

from __future__ import annotations

import os
import random
import time

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from aggregation.dashboard.services import campaign_stats_recompute
from annotation.models import Annotation, Assignment, AssignmentState, Item

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("RICHHF_DASHBOARD_BENCH") != "1", reason="set RICHHF_DASHBOARD_BENCH=1"),
]

N_ITEMS = 18_000


def test_recompute_and_page_load_for_18k_items(make_campaign, make_user):
    rng = random.Random(0)
    campaign = make_campaign("big")
    raters = [make_user(f"b{i}", "rater") for i in range(30)]
    now = timezone.now()
    words = "a photo of a red car parked next to a tall tree".split()
    items = Item.objects.bulk_create(
        Item(campaign=campaign, image=f"items/x/{i}.png", width=512, height=512, prompt=" ".join(words), words=words,
             content_hash=f"{i:064x}", completed_at=now)
        for i in range(N_ITEMS)
    )  # fmt: skip
    pairs = [(item, r) for item in items for r in rng.sample(raters, 3)]
    assignments = Assignment.objects.bulk_create(
        Assignment(item=item, rater=r, state=AssignmentState.SUBMITTED, leased_at=now, expires_at=now, finished_at=now)
        for item, r in pairs
    )
    truth = {item.pk: rng.randint(1, 5) for item in items}

    def score(pk: int) -> int:
        return min(5, max(1, truth[pk] + rng.choice((-1, 0, 0, 1))))

    Annotation.objects.bulk_create(
        (
            Annotation(
                assignment=a,
                item_id=a.item_id,
                rater_id=a.rater_id,
                implausible_points=[[rng.random(), rng.random()]] if rng.random() < 0.5 else [],
                misaligned_points=[],
                misaligned_words=[4] if rng.random() < 0.3 else [],
                plausibility=score(a.item_id),
                alignment=score(a.item_id),
                aesthetics=score(a.item_id),
                overall=score(a.item_id),
                time_spent_ms=rng.randint(5_000, 60_000),
            )  # fmt: skip
            for a in assignments
        ),
        batch_size=5000,
    )
    started = time.perf_counter()
    stats = campaign_stats_recompute(campaign_id=campaign.pk)
    recompute_s = time.perf_counter() - started
    assert stats.payload["progress"]["annotations"] == 3 * N_ITEMS
    assert stats.payload["scores"]["overall"]["maxdiff"]["n"] == N_ITEMS

    client = Client()
    client.force_login(make_user("biglead", "lead"))
    url = reverse("dashboard:campaign", args=[campaign.pk])
    client.get(url)  # warm templates
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - t0)
        assert response.status_code == 200
    print(f"\nrecompute {recompute_s:.2f} s (heatmaps computed for "
          f"{stats.payload['heatmaps']['computed_without_aggregate']} items); page {min(timings) * 1000:.1f} ms "
          f"best / {max(timings) * 1000:.1f} ms worst; page bytes {len(response.content)}")  # fmt: skip
    assert max(timings) < 1.0
